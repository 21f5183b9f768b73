/**
 * `chipledger log witness`: a simple witness. It cosigns the log's newest checkpoint only if
 * it is consistent with the last one it cosigned (saved before the cosignature leaves), and
 * posts the cosignature to the log.
 */
import { cosignCheckpoint, formatKeyId, parseCosignerKey, parseNote, type Cosigner } from '../../tlog/index.ts';
import { readKeyFileChecked, type KeyFileKind } from '../log-key.ts';
import { Failure } from '../output.ts';
import { limits } from '../../core/limits.ts';
import { clientOf, defaultDeps, guard, keysFollowed, sayNote, startingKey, usage, verifierOf, type LogCommandDeps, type ServerOptions } from './command-kit.ts';
import { followStep, heldOfPending, holdsHead, pendingOfHeld } from './follow.ts';
import { assertStateWritable } from './state-file.ts';
import { assertStateOfLog, nothingUnsettled, readMonitorState, savedFrom, writeMonitorState, type SavedCheckpoint } from './state.ts';

export interface WitnessOptions extends ServerOptions {
  logKey?: string;
  logKeyFile?: string;
  witnessKeyFile: string;
  state: string;
}

/** The witness's own key (`log cosigner-keygen --out`), read through one descriptor as serve reads the log's. */
const witnessKeyFile: KeyFileKind = { what: 'the witness key', holds: 'a C2SP cosigner key (cosignature/v1)', check: (text) => void parseCosignerKey(text) };

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
    // Read as serve reads the log's key: whoever else can read a witness key can cosign in the
    // witness's name, so a file open to its group or others is refused before it signs anything.
    const read = readKeyFileChecked(options.witnessKeyFile, witnessKeyFile);
    if (!read.ok) throw usage(`--witness-key-file: ${read.problem}`);
    const cosigner = parseCosignerKey(read.signerKey);
    await assertStateWritable(options.state);
    const loaded = await readMonitorState(options.state);
    assertStateOfLog(options.state, loaded, given.name);
    const last: SavedCheckpoint | undefined = loaded?.saved;
    // Signed heads a run (this witness's, or a monitor's on the same file) kept as evidence or
    // left unproven: nothing inconsistent with any of them is cosigned.
    const held = (loaded?.unsettled.heads ?? []).map(heldOfPending);
    const step = await followStep(client, await startingKey(client, given, last, options.state), last, held);
    if (step.kind === 'unreachable') throw new Failure(step.message);
    if (step.kind === 'alert') {
      const served = step.served;
      if (served !== undefined && !holdsHead(served, last, held)) {
        // Kept before the refusal is said: every later run refuses too, until someone has looked.
        const heads = [...(loaded?.unsettled.heads ?? []), ...pendingOfHeld(served)].slice(-limits.monitorPendingHeadsMax);
        await writeMonitorState(options.state, { origin: loaded?.origin ?? given.name, saved: last, unsettled: { rounds: loaded?.unsettled.rounds ?? 0, heads } });
        sayNote(deps.output, `the log signed the checkpoint of size ${served.size} (root ${served.rootHash.toString('hex')}), which contradicts what this witness holds; ${options.state} keeps it as evidence, and later runs refuse to cosign until it is moved away`, served.note);
      }
      throw new Failure(`refusing to cosign: [${step.failure.kind}] ${step.failure.message}`);
    }
    const cosigned = cosignCheckpoint(withoutCosignatureOf(step.note, cosigner), cosigner, Math.floor(deps.now() / 1000));
    // Saved before the cosignature leaves: after a crash here the witness still refuses
    // anything inconsistent with what it may already have published. Every head held was
    // just found consistent with it: nothing is left open.
    await writeMonitorState(options.state, { origin: step.checkpoint.origin, saved: savedFrom(step.checkpoint, step.note, step.verifier), unsettled: nothingUnsettled });
    const { stored, witnesses } = await client.postCosignature(cosigned);
    // The note carries other witnesses' lines as the log served them: a count alone would say
    // "stored" for theirs while ours, of a key the log does not know, was passed over.
    const ours = `${cosigner.name}+${formatKeyId(cosigner.keyId)}`;
    if (witnesses !== undefined && !witnesses.includes(ours)) {
      throw new Failure(`the log did not take this witness's cosignature: it took those of ${witnesses.join(', ')} only, so it does not know ${ours}; its operator adds this witness's verifier key ${cosigner.verifierKey} to CHIPLEDGER_LOG_WITNESSES`);
    }
    deps.output.out(`cosigned ${step.checkpoint.origin} size ${step.checkpoint.size} root ${step.checkpoint.rootHash.toString('hex')} as ${cosigner.name} (${step.change === 'first' ? 'first checkpoint seen' : step.change === 'same' ? 'same as last time' : `consistent with size ${last!.size}`}${keysFollowed(step.rotations)}); the log stored ${stored} cosignature(s)`);
    return 0;
  });
}
