/**
 * One step of following a log (monitor and witness): take the newest checkpoint, check its
 * signature, and check it against the last one seen, by size and by an RFC 9162
 * consistency proof. Pure over a LogSource; the commands decide what to do with the answer.
 */
import { emptyRoot, verifyConsistency, type Checkpoint, type NoteVerifier } from '../../tlog/index.ts';
import { LogFetchError, type LogSource } from './client.ts';
import type { SavedCheckpoint } from './state.ts';
import type { VerifyFailure } from './tiles.ts';
import { compareWithSaved, openServedCheckpoint } from './verify.ts';

export type FollowStep =
  /** The checkpoint verifies and extends (or equals) the last one; `first` when there was none. */
  | { kind: 'ok'; checkpoint: Checkpoint; note: string; change: 'first' | 'same' | 'grew' }
  /** The log contradicted itself or the saved checkpoint: alert, and do not move on. */
  | { kind: 'alert'; failure: VerifyFailure }
  /**
   * The log could not be read this time (network, 5xx): nothing is known either way.
   * `unprovenSize`: the signed checkpoint was read, but not the proof that it extends the
   * last one (a log that keeps failing only there is dodging the check).
   */
  | { kind: 'unreachable'; message: string; unprovenSize?: number };

export async function followStep(source: LogSource, verifier: NoteVerifier, last: SavedCheckpoint | undefined): Promise<FollowStep> {
  let note: string;
  try {
    note = await source.checkpoint();
  } catch (error) {
    if (error instanceof LogFetchError) return { kind: 'unreachable', message: error.message };
    throw error;
  }
  const opened = openServedCheckpoint(note, verifier);
  if ('failure' in opened) return { kind: 'alert', failure: opened.failure };
  const { checkpoint } = opened;
  if (last === undefined) return { kind: 'ok', checkpoint, note, change: 'first' };
  const contradiction = compareWithSaved(last, checkpoint, verifier);
  if (contradiction) return { kind: 'alert', failure: contradiction };
  if (checkpoint.size === last.size) return { kind: 'ok', checkpoint, note, change: 'same' };
  let proof: Buffer[];
  try {
    proof = last.size === 0 ? [] : await source.consistencyProof(last.size, checkpoint.size);
  } catch (error) {
    if (!(error instanceof LogFetchError)) throw error;
    // The log signed this size, and the proof route reads the committed head, so it owes the
    // proof: a refusal (4xx) or an answer that is no proof (a 200 not parsed) is the log
    // contradicting itself, as a split view would. Only the network or a 5xx says nothing.
    if (error.status !== undefined && error.status < 500) {
      return { kind: 'alert', failure: { kind: 'consistency', message: `unproven: the log signed a checkpoint of size ${checkpoint.size} but gave no proof that it extends the one of size ${last.size} seen before (${error.message})` } };
    }
    return { kind: 'unreachable', message: error.message, unprovenSize: checkpoint.size };
  }
  const oldRoot = last.size === 0 ? emptyRoot : last.rootHash;
  if (last.size === 0 && !last.rootHash.equals(emptyRoot)) {
    return { kind: 'alert', failure: { kind: 'fork', message: `fork: the saved checkpoint of size 0 has root ${last.rootHash.toString('hex')}, not the empty tree's` } };
  }
  if (!verifyConsistency(last.size, checkpoint.size, proof, oldRoot, checkpoint.rootHash)) {
    return {
      kind: 'alert',
      failure: {
        kind: 'consistency',
        message: `inconsistent: the checkpoint of size ${checkpoint.size} (root ${checkpoint.rootHash.toString('hex')}) does not extend the one of size ${last.size} seen before (root ${last.rootHash.toString('hex')}): the consistency proof does not verify`,
      },
    };
  }
  return { kind: 'ok', checkpoint, note, change: 'grew' };
}
