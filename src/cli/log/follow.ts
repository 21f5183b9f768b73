/**
 * One step of following a log (monitor and witness): take the newest checkpoint, check its
 * signature (following any key rotation the log announced), and check it against the last
 * one seen, by size and by RFC 9162 consistency proofs. Pure over a LogSource; the commands
 * decide what to do with the answer.
 */
import { emptyRoot, verifyConsistency, type Checkpoint, type Ed25519NoteVerifier } from '../../tlog/index.ts';
import { LogFetchError, type LogSource } from './client.ts';
import { describeKey, openFollowingRotation, type Rotation } from './key-chain.ts';
import { recordedKey, type PendingHead, type SavedCheckpoint } from './state.ts';
import type { VerifyFailure } from './tiles.ts';
import { compareWithSaved, contradictingProofStatuses } from './verify.ts';

export type FollowStep =
  /**
   * The checkpoint verifies and extends (or equals) the last one; `first` when there was
   * none. `verifier` signed it: the key given, or the one `rotations` led to.
   */
  | { kind: 'ok'; checkpoint: Checkpoint; note: string; change: 'first' | 'same' | 'grew'; verifier: Ed25519NoteVerifier; rotations: readonly Rotation[] }
  /**
   * The log contradicted itself or the saved checkpoint: alert, and do not move on. `served`:
   * the checkpoint the log signed this round, with its note, where the contradiction came after
   * its signature verified. It is the evidence: the command keeps it (a monitor's and a
   * witness's state hold their later rounds to it), so that a log that shows a fork once and
   * then goes back to the honest view is not found consistent again.
   */
  | { kind: 'alert'; failure: VerifyFailure; served?: HeldHead }
  /**
   * The log could not be read this time (network, 5xx): nothing is known either way.
   * `unsettled`: a checkpoint was read, but what would settle it was not (the proof that it
   * extends the last one, or the key list that would explain its signature). A log that
   * keeps failing only there is dodging the check: the monitor counts such rounds.
   */
  | { kind: 'unreachable'; message: string; unsettled?: Unsettled; retryAfterMs?: number | undefined };

/**
 * What a round left open, and the kind of failure it is when it stays open. `head`: a signed
 * head that no proof has tied to the others yet; the monitor keeps it and holds the next
 * rounds' checkpoints to it, so that a log cannot have it forgotten by moving on.
 */
export interface Unsettled {
  kind: 'consistency' | 'signature';
  what: string;
  head?: HeldHead;
}

/** A signed tree head in hand, and how a message names it. */
export interface HeldHead {
  size: number;
  rootHash: Buffer;
  what: string;
  /**
   * The signed note it came in, where the head is a checkpoint served (an announcement is
   * read again from the key list each run): what the monitor keeps of a head left pending.
   */
  note?: string;
}

/**
 * `pending`: signed heads of earlier rounds still unsettled (monitor); each must be
 * consistent with this round's heads as well.
 */
export async function followStep(source: LogSource, verifier: Ed25519NoteVerifier, last: SavedCheckpoint | undefined, pending: readonly HeldHead[] = []): Promise<FollowStep> {
  let note: string;
  try {
    note = await source.checkpoint();
  } catch (error) {
    if (error instanceof LogFetchError) return { kind: 'unreachable', message: error.message, retryAfterMs: error.retryAfterMs };
    throw error;
  }
  const opened = await openFollowingRotation(source, note, verifier);
  if ('failure' in opened) {
    // Only the key list failed to come: the signature is not known to be bad, nor good.
    if (opened.failure.kind === 'fetch') {
      return { kind: 'unreachable', message: opened.failure.message, unsettled: { kind: 'signature', what: 'a checkpoint without the key list that settles its signature' } };
    }
    return { kind: 'alert', failure: opened.failure };
  }
  const { checkpoint, rotations } = opened;
  const change = last === undefined ? 'first' : checkpoint.size === last.size ? 'same' : 'grew';
  const served: HeldHead = { size: checkpoint.size, rootHash: checkpoint.rootHash, what: `the checkpoint of size ${checkpoint.size}`, note };
  const evidence = (step: FollowStep): FollowStep => (step.kind === 'alert' ? { ...step, served: { ...served, what: servedEarlier(served.size) } } : step);
  if (last) {
    const contradiction = compareWithSaved(last, checkpoint, recordedKey(last) ?? verifier);
    if (contradiction) return evidence({ kind: 'alert', failure: contradiction });
  }
  // Every head in hand, by size: the last one seen, each announcement followed, the new
  // one. Each must extend the one before it.
  const heads: HeldHead[] = [
    ...(last ? [{ size: last.size, rootHash: last.rootHash, what: `the one of size ${last.size} seen before` }] : []),
    ...rotations.map((rotation) => ({ size: rotation.announcement.size, rootHash: rotation.announcement.rootHash, what: `the announcement of key ${describeKey(rotation.verifier)} at size ${rotation.announcement.size}` })),
    ...pending,
    served,
  ].sort((a, b) => a.size - b.size);
  for (let at = 1; at < heads.length; at += 1) {
    const failed = await checkExtends(source, heads[at - 1]!, heads[at]!);
    if (failed) return evidence(failed);
  }
  return { kind: 'ok', checkpoint, note, change, verifier: opened.verifier, rotations };
}

/** Whether `newer` extends `older`: the same root at the same size, else a consistency proof that verifies. */
async function checkExtends(source: LogSource, older: HeldHead, newer: HeldHead): Promise<FollowStep | undefined> {
  const inconsistent = (why: string): FollowStep => ({
    kind: 'alert',
    failure: { kind: 'consistency', message: `inconsistent: ${newer.what} (root ${newer.rootHash.toString('hex')}) does not extend ${older.what} (root ${older.rootHash.toString('hex')}): ${why}` },
  });
  if (older.size === newer.size) return older.rootHash.equals(newer.rootHash) ? undefined : inconsistent('two roots at one size (a fork)');
  if (older.size === 0) {
    if (older.rootHash.equals(emptyRoot)) return undefined;
    return { kind: 'alert', failure: { kind: 'fork', message: `fork: ${older.what} has size 0 and root ${older.rootHash.toString('hex')}, not the empty tree's` } };
  }
  let proof: Buffer[];
  try {
    proof = await source.consistencyProof(older.size, newer.size);
  } catch (error) {
    if (!(error instanceof LogFetchError)) throw error;
    if (error.status !== undefined && contradictingProofStatuses.has(error.status)) {
      return { kind: 'alert', failure: { kind: 'consistency', message: `unproven: the log signed a checkpoint of size ${newer.size} but gave no proof that it extends ${older.what} (${error.message})` } };
    }
    return { kind: 'unreachable', message: error.message, retryAfterMs: error.retryAfterMs, unsettled: { kind: 'consistency', what: `a signed checkpoint of size ${newer.size} without a proof that it extends ${older.what}`, head: { ...newer, what: servedEarlier(newer.size) } } };
  }
  return verifyConsistency(older.size, newer.size, proof, older.rootHash, newer.rootHash) ? undefined : inconsistent('the consistency proof does not verify');
}

/** How a message names a served checkpoint that a later round, or run, holds the log to. */
const servedEarlier = (size: number) => `the checkpoint of size ${size} served earlier`;

/** Whether two signed heads are one: the same size and root. */
export function sameHead(a: Pick<HeldHead, 'size' | 'rootHash'>, b: Pick<HeldHead, 'size' | 'rootHash'>): boolean {
  return a.size === b.size && a.rootHash.equals(b.rootHash);
}

/** Whether a state already holds `head`: as its last checkpoint, or among its pending heads. */
export function holdsHead(head: HeldHead, last: SavedCheckpoint | undefined, pending: readonly HeldHead[]): boolean {
  return (last !== undefined && sameHead(last, head)) || pending.some((held) => sameHead(held, head));
}

/** A head a state file keeps (PendingHead), as a round holds it. */
export function heldOfPending(head: PendingHead): HeldHead {
  return { size: head.size, rootHash: head.rootHash, note: head.note, what: servedEarlier(head.size) };
}

/** What a state file keeps of a held head: a checkpoint served, with its note (an announcement is read again from the key list each run). */
export function pendingOfHeld(head: HeldHead): PendingHead[] {
  return head.note === undefined ? [] : [{ size: head.size, rootHash: head.rootHash, note: head.note }];
}
