/**
 * `chipledger log …`: the transparency log from the outside. Key generation for the log and
 * for witnesses, a full verification (`verify`), an offline-verifiable proof for one event
 * (`prove`), a monitor that follows the checkpoint (`monitor`), and a simple witness
 * (`witness`). Only the public HTTP surface is used, so these work against any deployment.
 *
 * Results go to stdout, progress, alerts and failures to stderr; a failed check throws a
 * Failure (exit 1), a usage problem exits 2, both through the program's one error report.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { isDomainError } from '../../core/errors.ts';
import {
  cosignCheckpoint, generateCosignerKey, generateSignerKey, leafHash, parseCosignerKey, parseNote, parseTlogProof, parseVerifierKey,
  tileWidth, verifyTlogProof, type Cosigner, type Ed25519NoteVerifier,
} from '../../tlog/index.ts';
import { apiTokenPattern, apiTokenRule } from '../config.ts';
import { Failure, printable, processOutput, type Output } from '../output.ts';
import { createProgress } from '../progress.ts';
import { LogClient, LogFetchError } from './client.ts';
import { followStep, type HeldHead } from './follow.ts';
import { describeKey, followKeyChain, openFollowingRotation, sameKey, type Rotation } from './key-chain.ts';
import { assertStateOfLog, assertStateWritable, readState, savedFrom, verifierKeyText, writeState, type SavedCheckpoint } from './state.ts';
import { verifyLog, type ProgressSink } from './verify.ts';

/** Progress bars appear from this many tiles or entries on (about 8,000 leaves). */
export const progressItemsMin = 32;
/** Default pause between two checkpoint fetches of `log monitor`. */
export const monitorIntervalMsDefault = 5_000;
/**
 * The longest pause between two fetches of `log monitor`: one day. (A timer cannot wait past
 * 2^31 - 1 ms, about 24.8 days: node would fire it after 1 ms, and the monitor would hammer
 * the log it watches.)
 */
export const monitorIntervalMsMax = 86_400_000;
/**
 * Rounds since the monitor's state last moved in which the log served a checkpoint but not
 * what settles it (its consistency proof, or the key list that explains its signature),
 * before that is an alert: a log can be down for a round or two, but one that serves
 * checkpoints and fails only there, even every other round, is dodging the check.
 */
export const monitorUnprovenRoundsMax = 3;
/** Unsettled signed heads the monitor keeps to hold later rounds to (the newest). */
export const monitorPendingHeadsMax = 4;

export interface LogCommandDeps {
  output: Output;
  fetch?: typeof fetch;
  /** Milliseconds since the epoch: the witness's cosignature time. */
  now: () => number;
  /** Waits between monitor rounds. */
  sleep: (ms: number) => Promise<void>;
  /** Waits between attempts at one request (cli/fetch.ts); the timer when absent. Apart from `sleep`, so that a retry is never taken for a round. */
  retrySleep?: (ms: number) => Promise<void>;
  /**
   * CHIPLEDGER_TOKEN and CHIPLEDGER_URL: the token, when --token is not given (a command line
   * shows in `ps`; the environment does not), for a --url of CHIPLEDGER_URL's origin only. A
   * log command may be pointed at anyone's log, and the token is ours.
   */
  envToken?: string | undefined;
  envUrl?: string | undefined;
}

const defaultDeps: LogCommandDeps = {
  output: processOutput,
  envToken: process.env.CHIPLEDGER_TOKEN,
  envUrl: process.env.CHIPLEDGER_URL,
  now: Date.now,
  sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
};

interface KeyOptions {
  key?: string;
  keyFile?: string;
}

interface ServerOptions {
  url: string;
  token?: string;
}

function usage(message: string): Failure {
  return new Failure(`chipledger: ${message}`, 2);
}

/**
 * Operating errors of these commands become Failures with the message people need. Their
 * messages may quote what a log served (its problem's detail, a note that does not parse):
 * printable(), as every other command does with a server's text, so a hostile log cannot
 * retitle, clear or recolour the terminal, or reorder what it shows.
 */
async function guard(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof LogFetchError) throw new Failure(printable(error.message));
    if (isDomainError(error)) throw new Failure(printable(error.message));
    if (error instanceof Failure) throw new Failure(printable(error.message), error.exitCode);
    throw error;
  }
}

function clientOf(options: ServerOptions, deps: LogCommandDeps): LogClient {
  if (!/^https?:\/\//.test(options.url)) throw usage(`--url must be an http(s) URL, got "${options.url}"`);
  // fetch refuses such a URL, and every message would then print it, password included.
  if (/^https?:\/\/[^/?#]*@/.test(options.url)) throw usage('--url must not hold a user name or password; give a token with --token');
  // Checked as CHIPLEDGER_TOKEN is: a mistyped token would otherwise fail in fetch as if the
  // log could not be reached ("Cannot convert argument to a ByteString"). Never echoed.
  if (options.token !== undefined && !apiTokenPattern.test(options.token)) throw usage(`--token ${apiTokenRule}`);
  const fromEnvironment = options.token === undefined && deps.envToken !== undefined;
  const token = options.token ?? (sameOrigin(options.url, deps.envUrl) ? deps.envToken : undefined);
  if (fromEnvironment && token === undefined) deps.output.err(`note: CHIPLEDGER_TOKEN is not sent to ${options.url}: it goes only to the server CHIPLEDGER_URL names; give --token to use a token here`);
  return new LogClient({ baseUrl: options.url, ...(token ? { token } : {}), ...(deps.fetch ? { fetch: deps.fetch } : {}), ...(deps.retrySleep ? { sleep: deps.retrySleep } : {}), onRetry: (message) => deps.output.err(`note: ${message}`) });
}

function sameOrigin(url: string, other: string | undefined): boolean {
  if (other === undefined) return false;
  try {
    return new URL(url).origin === new URL(other).origin;
  } catch {
    return false;
  }
}

async function verifierOf(options: KeyOptions, flag = '--key'): Promise<Ed25519NoteVerifier> {
  if ((options.key === undefined) === (options.keyFile === undefined)) throw usage(`give the log's verifier key with ${flag} KEY or ${flag}-file FILE (one of them)`);
  const text = options.key ?? (await readText(options.keyFile!, 'the verifier key file'));
  try {
    return parseVerifierKey(text.trim());
  } catch (error) {
    throw usage(`${flag}: ${(error as Error).message}`);
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new Failure(`couldn't read ${what} ${path}: ${(error as Error).message}`);
  }
}

function wholeNumber(text: string | undefined, flag: string, fallback: number | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max.toLocaleString('en-US')}`;
    throw usage(`${flag} must be a whole number ${range}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function progressSink(output: Output): ProgressSink {
  return {
    start(label, total, unit) {
      if (total < progressItemsMin) return { update() {}, finish() {}, abandon() {} };
      return createProgress(`  ${label}`, total, unit, output.errStream);
    },
  };
}

/** Writes a secret key file readable by its owner only; never replaces an existing file. */
async function writeKeyFile(path: string, text: string): Promise<void> {
  try {
    await writeFile(path, `${text}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Failure(`${path} exists; refusing to overwrite a key (move it away first)`);
    throw new Failure(`couldn't write the key file ${path}: ${(error as Error).message}`);
  }
}

export async function keygenCommand(options: { origin: string; out: string }, kind: 'log' | 'witness', deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    const keys = kind === 'log' ? generateSignerKey(options.origin) : generateCosignerKey(options.origin);
    await writeKeyFile(options.out, keys.signerKey);
    deps.output.err(`wrote the ${kind === 'log' ? 'log signing' : 'witness cosigning'} key to ${options.out} (mode 0600); its verifier key:`);
    deps.output.out(keys.verifierKey);
    return 0;
  });
}

export interface VerifyCommandOptions extends KeyOptions, ServerOptions {
  state?: string;
}

export async function verifyCommand(options: VerifyCommandOptions, deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    const given = await verifierOf(options);
    const client = clientOf(options, deps);
    if (options.state) await assertStateWritable(options.state);
    const saved = options.state ? await readState(options.state) : undefined;
    if (options.state) assertStateOfLog(options.state, saved, given.name);
    const verifier = options.state ? await startingKey(client, given, saved, options.state) : given;
    const report = await verifyLog(client, { verifier, saved, checkEntries: client.hasToken, progress: progressSink(deps.output) });
    if (report.failures.length > 0) {
      for (const failure of report.failures) deps.output.err(`FAILED [${failure.kind}] ${printable(failure.message)}`);
      const kept = options.state ? `; ${options.state} was not updated` : '';
      // Only fetches (or this verifier's own bound) failed: no check failed, the data was not
      // there to check. An operator must not take a network problem for tampering, nor the reverse.
      if (report.failures.every((failure) => failure.kind === 'fetch' || failure.kind === 'limit')) throw new Failure(`log verify couldn't check the log at ${client.description}: it is NOT verified, and no check failed${kept}`);
      throw new Failure(`log verify: ${report.failures.length} problem(s) in the log at ${client.description}${kept}`);
    }
    const checkpoint = report.checkpoint!;
    if (options.state) await writeState(options.state, savedFrom(checkpoint, report.note!, report.verifier ?? verifier));
    const entries = client.hasToken ? `${report.entriesChecked.toLocaleString('en-US')} entries hashed` : 'entries NOT checked (no token: hash tiles only)';
    const consistency = !saved ? (options.state ? 'no earlier checkpoint saved' : 'no --state') : saved.size === checkpoint.size ? `same as saved size ${saved.size}` : `consistent with saved size ${saved.size}`;
    deps.output.out(`ok: ${checkpoint.origin} size ${checkpoint.size} root ${checkpoint.rootHash.toString('hex')}: signature ok${keysFollowed(report.rotations)}, ${report.tilesChecked} hash tile${report.tilesChecked === 1 ? '' : 's'} ok, ${entries}; ${consistency}${options.state ? `; saved to ${options.state}` : ''}`);
    return 0;
  });
}

/**
 * The key a run starts from: of the key given and the one its state file records (the key
 * that signed the saved checkpoint), the later in the log's chain of announced keys. Never
 * an earlier key: a log whose old key was retired (perhaps because it leaked) must not be
 * believed when it signs with that key again, so a cron job still given the old key goes on
 * from where its state is. Two keys neither of which was announced from the other are a
 * mistake in the command, said before anything is checked.
 */
async function startingKey(client: LogClient, given: Ed25519NoteVerifier, saved: SavedCheckpoint | undefined, statePath: string): Promise<Ed25519NoteVerifier> {
  if (saved?.verifierKey === undefined) return given;
  let recorded: Ed25519NoteVerifier;
  try {
    recorded = parseVerifierKey(saved.verifierKey);
  } catch (error) {
    throw new Failure(`the state file ${statePath} records a log key that does not parse (${(error as Error).message}); it is not one of ours`);
  }
  if (sameKey(recorded, given)) return given;
  for (const [from, to] of [[given, recorded], [recorded, given]] as const) {
    const chain = await followKeyChain(client, from);
    if ('failure' in chain) {
      if (chain.failure.kind === 'fetch') throw new Failure(`the key given is not the one ${statePath} records, and ${chain.failure.message}`);
      // The recorded key signed what this state holds: a key list that cannot follow it is
      // the log's doing (exit 1). One that cannot follow the key given may be the command's.
      if (from === recorded) throw new Failure(`[signature] the log's key list does not follow the key recorded in ${statePath} (${describeKey(recorded)}): ${chain.failure.message}`);
      continue;
    }
    if (chain.rotations.some((rotation) => sameKey(rotation.verifier, to))) return to;
  }
  throw usage(`the key given, ${describeKey(given)}, is not the key recorded in ${statePath} (${describeKey(recorded)}), and the log announced neither from the other; give the log's key (or the one this state was first checked with)`);
}

/** How an answer says which announced keys it followed from the key given (nothing when none). */
function keysFollowed(rotations: readonly Rotation[]): string {
  if (rotations.length === 0) return '';
  return ` (by ${describeKey(rotations.at(-1)!.verifier)}, followed from the key given through ${rotations.map((rotation) => `the announcement at size ${rotation.announcement.size}`).join(', ')})`;
}

/** The event's bytes: from a file, from GET /v1/events/:seq, or from its entry bundle. */
async function eventBytes(client: LogClient, seq: number, proofText: string, eventFile: string | undefined): Promise<Buffer> {
  if (eventFile !== undefined) {
    try {
      return await readFile(eventFile);
    } catch (error) {
      throw new Failure(`couldn't read the event file ${eventFile}: ${(error as Error).message}`);
    }
  }
  if (!client.hasToken) throw usage('give --token (to fetch the event) or --event-file FILE (its canonical bytes) to check the proof against the event');
  const listed = await client.event(seq);
  if (listed) return listed;
  const size = parseNoteSize(parseTlogProof(proofText).checkpointNote);
  const tileIndex = Math.floor(seq / tileWidth);
  try {
    const entries = await client.entries(tileIndex, Math.min(tileWidth, size - tileIndex * tileWidth));
    return entries[seq - tileIndex * tileWidth]!;
  } catch (error) {
    if (error instanceof LogFetchError && (error.status === 401 || error.status === 403)) {
      throw new Failure(`event ${seq} is not visible to this token (not among its events, and it may not read entry bundles)`);
    }
    throw error;
  }
}

function parseNoteSize(note: string): number {
  const lines = parseNote(note).text.split('\n');
  return Number(lines[1]);
}

export async function proveCommand(seqText: string, options: KeyOptions & ServerOptions & { out?: string; eventFile?: string }, deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    const seq = wholeNumber(seqText, 'EVENT_SEQ', undefined)!;
    const verifier = await verifierOf(options);
    const client = clientOf(options, deps);
    const text = await client.eventProof(seq);
    const event = await eventBytes(client, seq, text, options.eventFile);
    let verified;
    let rotations: readonly Rotation[] = [];
    try {
      verified = verifyTlogProof(text, leafHash(event), verifier);
    } catch (error) {
      // Signed by a key the log announced since the key given? Only then is it tried again.
      const opened = await openFollowingRotation(client, parseTlogProof(text).checkpointNote, verifier);
      if ('failure' in opened || opened.rotations.length === 0) throw new Failure(`the proof for event ${seq} does not verify: ${(error as Error).message}`);
      rotations = opened.rotations;
      try {
        verified = verifyTlogProof(text, leafHash(event), opened.verifier);
      } catch (again) {
        throw new Failure(`the proof for event ${seq} does not verify: ${(again as Error).message}`);
      }
    }
    if (verified.index !== seq) throw new Failure(`the server answered a proof for entry ${verified.index}, not event ${seq}`);
    const summary = `ok: event ${seq} is entry ${seq} of ${verified.checkpoint.origin} at size ${verified.checkpoint.size} (root ${verified.checkpoint.rootHash.toString('hex')}); the proof verifies offline with the log key${keysFollowed(rotations)}`;
    if (options.out) {
      try {
        await writeFile(options.out, text);
      } catch (error) {
        throw new Failure(`couldn't save the proof to ${options.out}: ${(error as Error).message}`);
      }
      deps.output.out(`${summary}; saved to ${options.out}`);
    } else {
      deps.output.out(text.trimEnd());
      deps.output.err(summary);
    }
    return 0;
  });
}

export interface MonitorOptions extends KeyOptions, ServerOptions {
  state: string;
  intervalMs?: string;
  maxRounds?: string;
  keepGoing?: boolean;
}

export async function monitorCommand(options: MonitorOptions, deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    const given = await verifierOf(options);
    const client = clientOf(options, deps);
    const intervalMs = wholeNumber(options.intervalMs, '--interval-ms', monitorIntervalMsDefault, 1, monitorIntervalMsMax)!;
    const maxRounds = wholeNumber(options.maxRounds, '--max-rounds', undefined, 1);
    await assertStateWritable(options.state);
    let last = await readState(options.state);
    assertStateOfLog(options.state, last, given.name);
    let verifier = await startingKey(client, given, last, options.state);
    let alerts = 0;
    let reached = 0;
    // Rounds left unsettled since everything served was last settled; only a settled round
    // resets it, so a log that alternates an unsettled round with an old checkpoint is
    // counted all the same. The signed heads no proof has tied in yet stay pending, and every
    // later round is held to them: moving on does not make a fork forgotten.
    let unsettledRounds = 0;
    let pending: HeldHead[] = [];
    // Runs until interrupted, or for --max-rounds checkpoint fetches.
    // The wait before the next round: the interval, or longer when the log asked for longer.
    let waitMs = intervalMs;
    for (let round = 0; maxRounds === undefined || round < maxRounds; round += 1) {
      if (round > 0) await deps.sleep(waitMs);
      waitMs = intervalMs;
      let step = await followStep(client, verifier, last, pending);
      if (step.kind === 'unreachable' && step.unsettled !== undefined) {
        unsettledRounds += 1;
        const head = step.unsettled.head;
        if (head && !pending.some((held) => held.size === head.size && held.rootHash.equals(head.rootHash))) pending = [...pending, head].slice(-monitorPendingHeadsMax);
        if (unsettledRounds >= monitorUnprovenRoundsMax) {
          step = { kind: 'alert', failure: { kind: step.unsettled.kind, message: `unsettled: in ${unsettledRounds} rounds since all it served was last settled, the log served ${step.unsettled.what} (last: ${step.message})` } };
          unsettledRounds = 0;
        }
      } else if (step.kind === 'ok') {
        // Every pending head was just held to the rest and found consistent.
        unsettledRounds = 0;
        pending = [];
      }
      if (step.kind === 'unreachable') {
        const again = maxRounds === undefined || round + 1 < maxRounds;
        waitMs = Math.max(intervalMs, step.retryAfterMs ?? 0);
        const asked = waitMs > intervalMs ? ', as the log asked' : '';
        deps.output.err(`warning: ${printable(step.message)}${again ? `; trying again in ${waitMs} ms${asked}` : ''}`);
        continue;
      }
      reached += 1;
      if (step.kind === 'alert') {
        alerts += 1;
        deps.output.err(`ALERT [${step.failure.kind}] ${client.description}: ${printable(step.failure.message)}`);
        if (!options.keepGoing) {
          throw new Failure(`log monitor stopped on an alert; ${last === undefined ? `no checkpoint was saved to ${options.state}` : `${options.state} still holds the last consistent checkpoint (size ${last.size})`}`);
        }
      } else if (step.change !== 'same' || step.rotations.length > 0 || last?.verifierKey !== verifierKeyText(step.verifier)) {
        for (const rotation of step.rotations) deps.output.out(`${new Date(deps.now()).toISOString()} key rotation: ${describeKey(rotation.verifier)} announced at size ${rotation.announcement.size}, signed by the key before it; following it`);
        verifier = step.verifier;
        last = savedFrom(step.checkpoint, step.note, step.verifier);
        await writeState(options.state, last);
        deps.output.out(`${new Date(deps.now()).toISOString()} ${step.change === 'first' ? 'first checkpoint' : 'consistent'}: size ${step.checkpoint.size} root ${step.checkpoint.rootHash.toString('hex')}`);
      }
    }
    if (alerts > 0) throw new Failure(`log monitor raised ${alerts} alert(s)`);
    // A bounded run (cron) that never reached the log checked nothing: that is no success.
    if (reached === 0) throw new Failure(`log monitor couldn't reach the log at ${client.description} in any of its ${maxRounds} round(s); nothing was checked`);
    return 0;
  });
}

export interface WitnessOptions extends ServerOptions {
  logKey?: string;
  logKeyFile?: string;
  witnessKeyFile: string;
  state: string;
}

/** The served note without any line of ours: a re-cosigning replaces our older cosignature. */
function withoutCosignatureOf(note: string, cosigner: Cosigner): string {
  const parsed = parseNote(note);
  const others = parsed.signatures.filter((signature) => signature.name !== cosigner.name || signature.keyId !== cosigner.keyId);
  return `${parsed.text}\n${others.map((signature) => `${signature.line}\n`).join('')}`;
}

export async function witnessCommand(options: WitnessOptions, deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    const given = await verifierOf({ key: options.logKey, keyFile: options.logKeyFile }, '--log-key');
    const client = clientOf(options, deps);
    let cosigner: Cosigner;
    try {
      cosigner = parseCosignerKey((await readText(options.witnessKeyFile, 'the witness key file')).trim());
    } catch (error) {
      if (error instanceof Failure) throw error;
      throw usage(`--witness-key-file: ${(error as Error).message}`);
    }
    await assertStateWritable(options.state);
    const last: SavedCheckpoint | undefined = await readState(options.state);
    assertStateOfLog(options.state, last, given.name);
    const step = await followStep(client, await startingKey(client, given, last, options.state), last);
    if (step.kind === 'unreachable') throw new Failure(step.message);
    if (step.kind === 'alert') throw new Failure(`refusing to cosign: [${step.failure.kind}] ${step.failure.message}`);
    const cosigned = cosignCheckpoint(withoutCosignatureOf(step.note, cosigner), cosigner, Math.floor(deps.now() / 1000));
    // Saved before the cosignature leaves: after a crash here the witness still refuses
    // anything inconsistent with what it may already have published.
    await writeState(options.state, savedFrom(step.checkpoint, step.note, step.verifier));
    const stored = await client.postCosignature(cosigned);
    deps.output.out(`cosigned ${step.checkpoint.origin} size ${step.checkpoint.size} root ${step.checkpoint.rootHash.toString('hex')} as ${cosigner.name} (${step.change === 'first' ? 'first checkpoint seen' : step.change === 'same' ? 'same as last time' : `consistent with size ${last!.size}`}${keysFollowed(step.rotations)}); the log stored ${stored} cosignature(s)`);
    return 0;
  });
}

/** Adds `log` and its subcommands to the program. */
export function registerLogCommands(program: Command, overrides: Partial<LogCommandDeps> = {}): Command {
  const deps: LogCommandDeps = { ...defaultDeps, ...overrides };
  const log = program.command('log').description('the transparency log: keys, verification, proofs, monitoring, witnessing (public HTTP endpoints)');
  const keyOptions = (command: Command) => command.option('--key <verifierKey>', "the log's verifier key, name+hexid+base64").option('--key-file <file>', 'read the verifier key from a file');
  log.command('keygen').description('create the log signing key (Ed25519); writes it with mode 0600 and prints the verifier key')
    .requiredOption('--origin <name>', "the log's origin, e.g. chipledger.example/log").requiredOption('--out <file>', 'where to write the signer key (must not exist)')
    .action(async (options: { origin: string; out: string }) => void (await keygenCommand(options, 'log', deps)));
  log.command('cosigner-keygen').description('create a witness cosigning key (C2SP tlog-cosignature, Ed25519)')
    .requiredOption('--name <name>', "the witness's name, e.g. witness.example.org").requiredOption('--out <file>', 'where to write the key (must not exist)')
    .action(async (options: { name: string; out: string }) => void (await keygenCommand({ origin: options.name, out: options.out }, 'witness', deps)));
  keyOptions(log.command('verify').description('verify the checkpoint signature, every hash tile and (with a token) every entry; check consistency with --state')
    .requiredOption('--url <url>', 'the server, e.g. http://127.0.0.1:8080').option('--state <file>', 'the checkpoint saved by the last run; updated on success')
    .option('--token <token>', 'authority or auditor token: also fetch and hash every entry (or CHIPLEDGER_TOKEN, which ps does not show, when --url is CHIPLEDGER_URL)'))
    .action(async (options: VerifyCommandOptions) => void (await verifyCommand(options, deps)));
  keyOptions(log.command('prove <eventSeq>').description("fetch an event's C2SP tlog-proof and verify it offline against the event")
    .requiredOption('--url <url>', 'the server').option('--token <token>', 'a token that sees the event (or CHIPLEDGER_TOKEN, when --url is CHIPLEDGER_URL)').option('--event-file <file>', "the event's canonical bytes instead of fetching them")
    .option('--out <file>', 'save the proof here instead of printing it'))
    .action(async (seq: string, options: KeyOptions & ServerOptions & { out?: string; eventFile?: string }) => void (await proveCommand(seq, options, deps)));
  keyOptions(log.command('monitor').description('follow the checkpoint; alert on a signature, consistency, truncation or fork failure')
    .requiredOption('--url <url>', 'the server').requiredOption('--state <file>', 'the last consistent checkpoint, kept between runs')
    .option('--interval-ms <ms>', `between checkpoint fetches (default ${monitorIntervalMsDefault})`).option('--max-rounds <n>', 'stop after this many fetches (default: until interrupted)')
    .option('--keep-going', 'keep following after an alert (exit 1 at the end)'))
    .action(async (options: MonitorOptions) => void (await monitorCommand(options, deps)));
  log.command('witness').description('cosign the newest checkpoint if it is consistent with the last one cosigned, and send the cosignature to the log')
    .requiredOption('--url <url>', 'the server').option('--log-key <verifierKey>', "the log's verifier key").option('--log-key-file <file>', 'read it from a file')
    .requiredOption('--witness-key-file <file>', 'the witness key from log cosigner-keygen').requiredOption('--state <file>', 'the last cosigned checkpoint')
    .action(async (options: WitnessOptions) => void (await witnessCommand(options, deps)));
  return log;
}
