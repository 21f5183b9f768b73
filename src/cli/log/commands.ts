/**
 * `chipledger log …`: the transparency log from the outside. Key generation for the log and
 * for witnesses, a full verification (`verify`), an offline-verifiable proof for one event
 * (`prove`), a monitor that follows the checkpoint (`monitor`), and a simple witness
 * (`witness`). Only the public HTTP surface is used, so these work against any deployment.
 *
 * Results go to stdout, progress, alerts and failures to stderr; a failed check throws a
 * Failure (exit 1), a usage problem exits 2, both through the program's one error report.
 */
import type { Command } from 'commander';
import { limits } from '../../core/limits.ts';
import { generateCosignerKey, generateSignerKey, isValidKeyName } from '../../tlog/index.ts';
import { writeKeyFile } from '../log-key.ts';
import { Failure, printable, printableJson } from '../output.ts';
import { clientOf, defaultDeps, guard, keysFollowed, progressSink, sayNote, startingKey, usage, verifierOf, type KeyOptions, type LogCommandDeps, type ServerOptions } from './command-kit.ts';
import { monitorCommand, type MonitorOptions } from './monitor-command.ts';
import { eventFileFormats, proveCommand } from './prove-command.ts';
import { assertStateWritable } from './state-file.ts';
import { assertStateOfLog, readState, savedFrom, writeState } from './state.ts';
import { verifyLog } from './verify.ts';
import { witnessCommand, type WitnessOptions } from './witness-command.ts';

export { progressItemsMin, type LogCommandDeps } from './command-kit.ts';
export { monitorCommand, type MonitorOptions } from './monitor-command.ts';
export { proveCommand } from './prove-command.ts';
export { witnessCommand, type WitnessOptions } from './witness-command.ts';

export async function keygenCommand(options: { origin: string; out: string }, kind: 'log' | 'witness', deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    // The origin is the key's name in every signed note: a name no note can carry is the
    // command line's mistake (exit 2), said before anything is made or written. A C1 or bidi
    // control, which a note may carry (isValidKeyName refuses C0 only, as C2SP does, for
    // other logs' keys), is refused too: this name is printed raw in every `log verify`,
    // `prove` and `witness` line after, where a terminal would act on it.
    if (!isValidKeyName(options.origin) || printable(options.origin) !== options.origin) {
      const [option, example] = kind === 'log' ? ['--origin', 'chipledger.example/log'] : ['--name', 'witness.example.org'];
      throw usage(`${option} must name the key in signed notes: not empty, without spaces, '+', control characters or bidi controls, such as ${example}; got ${printableJson(options.origin, 'one line')}`);
    }
    const keys = kind === 'log' ? generateSignerKey(options.origin) : generateCosignerKey(options.origin);
    // Whole or not at all, mode 0600, never over a file (log-key.ts).
    writeKeyFile(options.out, keys.signerKey);
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
      // A checkpoint whose signature verified, and that the log's own data or an earlier
      // checkpoint contradicts, is the evidence against the log: said whole, to be kept.
      const checked = report.failures.some((failure) => failure.kind !== 'fetch' && failure.kind !== 'limit');
      if (checked && report.checkpoint !== undefined) {
        sayNote(deps.output, `the checkpoint the log signed (size ${report.checkpoint.size}, root ${report.checkpoint.rootHash.toString('hex')}) is contradicted above; keep it as evidence`, report.note);
      }
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
    .requiredOption('--url <url>', 'the server').option('--token <token>', 'a token that sees the event (or CHIPLEDGER_TOKEN, when --url is CHIPLEDGER_URL)').option('--event-file <file>', `check against this file instead of fetching the event: ${eventFileFormats}`)
    .option('--out <file>', 'save the proof here instead of printing it'))
    .action(async (seq: string, options: KeyOptions & ServerOptions & { out?: string; eventFile?: string }) => void (await proveCommand(seq, options, deps)));
  keyOptions(log.command('monitor').description('follow the checkpoint; alert on a signature, consistency, truncation or fork failure')
    .requiredOption('--url <url>', 'the server').requiredOption('--state <file>', 'the last consistent checkpoint, kept between runs')
    .option('--interval-ms <ms>', `between checkpoint fetches (default ${limits.monitorIntervalMsDefault})`).option('--max-rounds <n>', 'stop after this many fetches (default: until interrupted)')
    .option('--keep-going', 'keep following after an alert (exit 1 at the end)'))
    .action(async (options: MonitorOptions) => void (await monitorCommand(options, deps)));
  log.command('witness').description('cosign the newest checkpoint if it is consistent with the last one cosigned, and send the cosignature to the log')
    .requiredOption('--url <url>', 'the server').option('--log-key <verifierKey>', "the log's verifier key").option('--log-key-file <file>', 'read it from a file')
    .requiredOption('--witness-key-file <file>', 'the witness key from log cosigner-keygen').requiredOption('--state <file>', 'the last cosigned checkpoint')
    .action(async (options: WitnessOptions) => void (await witnessCommand(options, deps)));
  return log;
}
