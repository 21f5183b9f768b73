/**
 * What the `chipledger log` commands share: their dependencies (output, fetch, clocks, the
 * environment's token), reading their options (the log's key, --url and --token, whole
 * numbers), their one error report (guard), progress on stderr, and the key a run starts
 * from when a state file records one.
 */
import { constants, existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isDomainError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';
import { parseVerifierKey, type Ed25519NoteVerifier } from '../../tlog/index.ts';
import { apiTokenPattern, apiTokenRule } from '../config.ts';
import { Failure, printable, processOutput, type Output } from '../output.ts';
import { createProgress } from '../progress.ts';
import { LogClient, LogFetchError } from './client.ts';
import { describeKey, followKeyChain, sameKey, type Rotation } from './key-chain.ts';
import type { SavedCheckpoint } from './state.ts';
import type { ProgressSink } from './verify.ts';

/** Progress bars appear from this many tiles or entries on (about 8,000 leaves). */
export const progressItemsMin = 32;

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

export const defaultDeps: LogCommandDeps = {
  output: processOutput,
  envToken: process.env.CHIPLEDGER_TOKEN,
  envUrl: process.env.CHIPLEDGER_URL,
  now: Date.now,
  sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
};

export interface KeyOptions {
  key?: string;
  keyFile?: string;
}

export interface ServerOptions {
  url: string;
  token?: string;
}

export function usage(message: string): Failure {
  return new Failure(`chipledger: ${message}`, 2);
}

/**
 * Operating errors of these commands become Failures with the message people need. Their
 * messages may quote what a log served (its problem's detail, a note that does not parse):
 * printable(), as every other command does with a server's text, so a hostile log cannot
 * retitle, clear or recolour the terminal, or reorder what it shows.
 */
export async function guard(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof LogFetchError) throw new Failure(printable(error.message));
    if (isDomainError(error)) throw new Failure(printable(error.message));
    if (error instanceof Failure) throw new Failure(printable(error.message), error.exitCode);
    throw error;
  }
}

export function clientOf(options: ServerOptions, deps: LogCommandDeps): LogClient {
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

export async function verifierOf(options: KeyOptions, flag = '--key'): Promise<Ed25519NoteVerifier> {
  if ((options.key === undefined) === (options.keyFile === undefined)) throw usage(`give the log's verifier key with ${flag} KEY or ${flag}-file FILE (one of them)`);
  const text = options.key ?? (await readVerifierKeyFile(options.keyFile!));
  try {
    return parseVerifierKey(text.trim());
  } catch (error) {
    const file = options.key === undefined ? undefined : fileNamed(options.key);
    if (file !== undefined) {
      throw usage(`${flag} takes the key itself (name+hexid+base64), and ${JSON.stringify(options.key)} ${file}; give the file with ${flag}-file ${options.key}, or its contents with ${flag} "$(cat ${options.key})"`);
    }
    throw usage(`${flag}: ${(error as Error).message}`);
  }
}

/**
 * How a file name given where the key goes (`--key etc/log.vkey`) is described, when it is
 * one: it exists, or it has a path's shape and not a key's. A verifier key is
 * name+hexid+base64 and its name may hold a slash (chipledger.example/log), so only a value
 * without '+' is taken for a path by its shape.
 */
function fileNamed(value: string): string | undefined {
  if (existsSync(value)) return 'is a file';
  return !value.includes('+') && /[/\\]|\.(vkey|pub|key|txt)$/i.test(value) ? 'looks like a file name' : undefined;
}

/**
 * A verifier key file's text (--key-file, --log-key-file), read as serve reads its key files
 * (readKeyFileChecked): through one descriptor opened non-blocking, so a FIFO is refused
 * instead of waited on; a regular file only, so /dev/zero is refused instead of read until
 * memory runs out; and at most limits.keyFileBytesMax bytes (a verifier key is a hundred-odd). A
 * public key: its mode is not checked. A file that cannot be read is named by its absolute
 * path (under `npm run`, a relative one is taken from the repository root).
 */
export async function readVerifierKeyFile(path: string): Promise<string> {
  const what = `the verifier key file ${resolve(path)}`;
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new Failure(`couldn't read ${what}: ${(error as Error).message}`);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Failure(`couldn't read ${what}: it is not a regular file`);
    // Read one byte past the bound: a file that grew since its size was read is refused too.
    const buffer = Buffer.alloc(limits.keyFileBytesMax + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      length += bytesRead;
      if (bytesRead === 0 || length === buffer.length) break;
    }
    if (length > limits.keyFileBytesMax) throw new Failure(`${what} is longer than ${limits.keyFileBytesMax} bytes: it is not a verifier key`);
    return buffer.subarray(0, length).toString('utf8');
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(`couldn't read ${what}: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
}

export function wholeNumber(text: string | undefined, flag: string, fallback: number | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max.toLocaleString('en-US')}`;
    throw usage(`${flag} must be a whole number ${range}, got ${JSON.stringify(text)}`);
  }
  return value;
}

export function progressSink(output: Output): ProgressSink {
  return {
    start(label, total, unit) {
      if (total < progressItemsMin) return { update() {}, finish() {}, abandon() {} };
      return createProgress(`  ${label}`, total, unit, output.errStream);
    },
  };
}

/**
 * The key a run starts from: of the key given and the one its state file records (the key
 * that signed the saved checkpoint), the later in the log's chain of announced keys. Never
 * an earlier key: a log whose old key was retired (perhaps because it leaked) must not be
 * believed when it signs with that key again, so a cron job still given the old key goes on
 * from where its state is. Two keys neither of which was announced from the other are a
 * mistake in the command, said before anything is checked.
 */
export async function startingKey(client: LogClient, given: Ed25519NoteVerifier, saved: SavedCheckpoint | undefined, statePath: string): Promise<Ed25519NoteVerifier> {
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
export function keysFollowed(rotations: readonly Rotation[]): string {
  if (rotations.length === 0) return '';
  return ` (by ${describeKey(rotations.at(-1)!.verifier)}, followed from the key given through ${rotations.map((rotation) => `the announcement at size ${rotation.announcement.size}`).join(', ')})`;
}

/**
 * Says on stderr what a log signed, with its note line by line where there is one: a signed
 * head that contradicts another is the evidence against the log, so it goes into the command's
 * own output as well as any state file (printable(): the note is the log's text).
 */
export function sayNote(output: Output, intro: string, note: string | undefined): void {
  output.err(`${intro}${note === undefined ? '' : '. Its note as served:'}`);
  for (const line of note?.trimEnd().split('\n') ?? []) output.err(`  ${printable(line)}`);
}
