/**
 * Which key signs the log, and how a new one takes over. A log key is never swapped
 * silently: the first key is recorded when the log starts signing; a different key is
 * adopted only when the previous key is at hand to announce it, in a checkpoint that the
 * old and the new key both sign and whose extension line names the new verifier key. A
 * verifier that trusts the old key follows that checkpoint to the new one.
 */
import { formatCheckpoint, formatKeyId, keyRotationExtension, parseSignerKey, signNote, type Ed25519NoteSigner } from '../../tlog/index.ts';
import { limits } from '../../core/limits.ts';
import { describeHolders, formatWait, isWaitBoundError, terminateSql } from '../../store/advisory-locks.ts';
import type { Pool, PoolClient } from '../../store/pool.ts';
import { HeadRootMismatch } from './head-root.ts';
import type { HeadSealer } from './head-seal.ts';
import { withQueryTimeout } from '../../store/query-timeout.ts';
import { inLogSigningTransaction, insertCheckpoint, insertLogKey, listLogKeys, logSigningLockHolders, lockHead, sealHead } from '../../store/tlog-tables.ts';

export { keyRotationExtension };

export class LogKeyError extends Error {
  override name = 'LogKeyError';
}

/**
 * The log signing lock, or the log's head, was not had within the start's bound: another
 * process holds it (a start frozen while it adopted its key, a signer stuck, a batch). Not a key that is wrong, so not a
 * reason to doubt the database the key was configured for; running the start again is.
 */
export class LogSigningLockBusy extends LogKeyError {
  override name = 'LogSigningLockBusy';
}

/**
 * Makes `signer` the log's key: records it if the log has none yet, or announces it
 * with `previousSignerKey` if another key signed so far. Returns whether it rotated.
 *
 * Call it only after the start-up check passed (checkLogOnStart): the announcement signs
 * the head with both keys, so it must never sign a state the check refused. (It signs the head
 * as it finds it, which may hold events other processes committed since the check, as any
 * checkpoint may: each of those was appended to a proved tree, leaf by leaf.) It runs under the
 * log signing lock, so no checkpoint of the old key lands after the announcement, and the
 * announcement and the new key's row commit together: a crash leaves both or neither.
 *
 * The transaction has the checkpointer's bounds: it waits at most `waitMs` for the lock and
 * for each statement, sits idle at most limits.logSigningIdleMsMax (a start frozen inside it
 * would otherwise stop every server's checkpoints for as long as it stayed frozen), and waits
 * for each reply from a database frozen or cut off databaseReplyMarginMs longer. A lock not
 * had in time is refused (LogSigningLockBusy), naming the session that holds it.
 */
export async function adoptLogKey(
  pool: Pool, signer: Ed25519NoteSigner, previousSignerKey?: string, waitMs: number = limits.logKeyAdoptionWaitMsMax,
  storedRoot?: (size: number, client: PoolClient) => Promise<Buffer>, sealer?: HeadSealer,
): Promise<boolean> {
  const previous = previousSignerKey === undefined ? undefined : parseSignerKey(previousSignerKey);
  let locked = false;
  let headLocked = false;
  const bounded = withQueryTimeout(pool, Math.max(1, Math.trunc(waitMs)) + limits.databaseReplyMarginMs);
  return inLogSigningTransaction(bounded, async (client) => {
    locked = true;
    const keys = await listLogKeys(client);
    const current = keys.at(-1);
    if (keys.some((key) => key.verifier_key === signer.verifierKey)) {
      if (current?.verifier_key !== signer.verifierKey) {
        throw new LogKeyError(`the log key ${signer.verifierKey} was replaced by ${current!.verifier_key}; a retired key cannot sign again`);
      }
      return false;
    }
    // Locked as a batch locks it, so that no batch commits between this read and the key's
    // row: a process without the key, finding none yet, would leave the log's first keyed
    // head unsealed, and every server would refuse it from then on.
    const head = await lockHead(client);
    headLocked = true;
    if (current === undefined) {
      await insertLogKey(client, { key_id: formatKeyId(signer.keyId), verifier_key: signer.verifierKey, first_size: head.size, announced_size: null });
      // Before the log had a key nothing could seal its heads (written by commands run without
      // one), and what the start-up check proved is all there is to go on: the first key vouches
      // for the log as it finds it, by sealing its head (head-seal.ts).
      if (sealer !== undefined && !sealer.sealedBy(head, head.seal)) await sealHead(client, sealer.seal(head));
      return false;
    }
    if (previous === undefined) throw new LogKeyError(notTheLogsKey(current.verifier_key, signer));
    if (previous.verifierKey !== current.verifier_key) throw new LogKeyError(`the previous key given is ${previous.verifierKey}, but the log's current key is ${current.verifier_key}`);
    if (previous.name !== signer.name) throw new LogKeyError(`the new key is named ${signer.name} but the log's origin is ${previous.name}: a new origin is a new log, not a rotation`);
    // The announcement is signed for good, as any checkpoint: never over a head no key holder
    // wrote (head-seal.ts), nor a root the tiles do not give (checkpointer.ts).
    await sealer?.assertVouched(client, head);
    const stored = await storedRoot?.(head.size, client);
    if (stored !== undefined && !stored.equals(head.root)) throw new HeadRootMismatch(head.size, head.root, stored);
    const text = formatCheckpoint({ origin: signer.name, size: head.size, rootHash: head.root, extensions: [`${keyRotationExtension} ${signer.verifierKey}`] });
    const note = signNote(text, [previous, signer]);
    // Both rows in this one transaction: an announcement without its key row (or the
    // reverse) would make every later start-up check refuse the key chain.
    const announced = await insertCheckpoint(client, { size: head.size, root: head.root, key_id: formatKeyId(signer.keyId), signed_note: note });
    if (!announced) throw new LogKeyError(`a checkpoint of size ${head.size} by the new key ${signer.verifierKey} is already stored, though the key was never announced`);
    await insertLogKey(client, { key_id: formatKeyId(signer.keyId), verifier_key: signer.verifierKey, first_size: head.size, announced_size: head.size });
    // Sealed anew by the new key: a process still on the old one finds a seal it did not
    // write at its next batch, and is refused there (head-seal.ts), instead of appending heads
    // that only the old key vouches for, which no server on the new key would extend.
    if (sealer !== undefined) await sealHead(client, sealer.seal(head));
    return true;
  }, waitMs).catch(async (error: unknown) => {
    if (!isWaitBoundError(error)) throw error;
    if (!locked) throw await signingLockBusy(pool, signer, waitMs, error);
    if (!headLocked) throw new LogSigningLockBusy(headBusy(signer, waitMs), { cause: error });
    throw error;
  });
}

async function signingLockBusy(pool: Pool, signer: Ed25519NoteSigner, waitMs: number, cause: unknown): Promise<LogSigningLockBusy> {
  const holders = await logSigningLockHolders(withQueryTimeout(pool, limits.databaseReplyMarginMs)).catch(() => undefined);
  const held = holders === undefined ? 'another process' : describeHolders(holders);
  const terminate = terminateSql(holders ?? []);
  const ending = terminate === undefined ? '' : ` (${terminate})`;
  return new LogSigningLockBusy(
    `couldn't adopt the log key ${signer.verifierKey}: waited ${formatWait(waitMs)} for the log signing lock, which another chipledger holds (${held}); `
      + `a holder that is frozen or cut off loses it after ${formatWait(limits.logSigningIdleMsMax)} idle, so run this again; if it keeps failing, stop the process that holds it or end its session${ending}`,
    { cause },
  );
}

function headBusy(signer: Ed25519NoteSigner, waitMs: number): string {
  return `couldn't adopt the log key ${signer.verifierKey}: waited ${formatWait(waitMs)} for the log's head, which a batch of another chipledger holds; `
    + `a batch holds it for moments, and one frozen or cut off loses it after ${formatWait(limits.headLockIdleMsMax)} idle, so run this again`;
}

/**
 * Why a configured key that is not the log's is refused. Of the log's origin it may be a new
 * key, and the remedy is a rotation. Of another origin it can never sign this log (a new
 * origin is a new log, and a rotation to it is refused), so a rotation is not suggested.
 */
function notTheLogsKey(currentVerifierKey: string, signer: Ed25519NoteSigner): string {
  const origin = currentVerifierKey.slice(0, currentVerifierKey.indexOf('+'));
  if (signer.name !== origin) {
    return `the configured log key is of origin ${signer.name}, but this log's origin is ${origin} (signed by ${currentVerifierKey}): a key for this log must keep its origin, since a new origin is a new log; configure the log's own key, or make a new one with \`chipledger log keygen --origin ${origin} --out FILE\``;
  }
  return `this log is signed by ${currentVerifierKey}, not by the configured key ${signer.verifierKey}; to rotate to the new key, also configure the current one as the previous key (CHIPLEDGER_LOG_PREVIOUS_KEY_FILE) so that it can announce the new one`;
}
