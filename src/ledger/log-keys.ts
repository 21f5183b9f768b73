/**
 * Which key signs the log, and how a new one takes over. A log key is never swapped
 * silently: the first key is recorded when the log starts signing; a different key is
 * adopted only when the previous key is at hand to announce it, in a checkpoint that the
 * old and the new key both sign and whose extension line names the new verifier key. A
 * verifier that trusts the old key follows that checkpoint to the new one.
 */
import { formatCheckpoint, formatKeyId, keyRotationExtension, parseSignerKey, signNote, type Ed25519NoteSigner } from '../tlog/index.ts';
import type { Pool } from '../store/pool.ts';
import { inLogSigningTransaction, insertCheckpoint, insertLogKey, listLogKeys, readHead } from '../store/tlog-tables.ts';

export { keyRotationExtension };

export class LogKeyError extends Error {
  override name = 'LogKeyError';
}

/**
 * Makes `signer` the log's key: records it if the log has none yet, or announces it
 * with `previousSignerKey` if another key signed so far. Returns whether it rotated.
 *
 * Call it only after the start-up check passed (checkLogOnStart): the announcement signs
 * the head with both keys, so it must never sign a state nobody proved. It runs under the
 * log signing lock, so no checkpoint of the old key lands after the announcement, and the
 * announcement and the new key's row commit together: a crash leaves both or neither.
 */
export async function adoptLogKey(pool: Pool, signer: Ed25519NoteSigner, previousSignerKey?: string): Promise<boolean> {
  const previous = previousSignerKey === undefined ? undefined : parseSignerKey(previousSignerKey);
  return inLogSigningTransaction(pool, async (client) => {
    const keys = await listLogKeys(client);
    const current = keys.at(-1);
    if (keys.some((key) => key.verifier_key === signer.verifierKey)) {
      if (current?.verifier_key !== signer.verifierKey) {
        throw new LogKeyError(`the log key ${signer.verifierKey} was replaced by ${current!.verifier_key}; a retired key cannot sign again`);
      }
      return false;
    }
    const head = await readHead(client);
    if (current === undefined) {
      await insertLogKey(client, { key_id: formatKeyId(signer.keyId), verifier_key: signer.verifierKey, first_size: head.size, announced_size: null });
      return false;
    }
    if (previous === undefined) throw new LogKeyError(notTheLogsKey(current.verifier_key, signer));
    if (previous.verifierKey !== current.verifier_key) throw new LogKeyError(`the previous key given is ${previous.verifierKey}, but the log's current key is ${current.verifier_key}`);
    if (previous.name !== signer.name) throw new LogKeyError(`the new key is named ${signer.name} but the log's origin is ${previous.name}: a new origin is a new log, not a rotation`);
    const text = formatCheckpoint({ origin: signer.name, size: head.size, rootHash: head.root, extensions: [`${keyRotationExtension} ${signer.verifierKey}`] });
    const note = signNote(text, [previous, signer]);
    // Both rows in this one transaction: an announcement without its key row (or the
    // reverse) would make every later start-up check refuse the key chain.
    const announced = await insertCheckpoint(client, { size: head.size, root: head.root, key_id: formatKeyId(signer.keyId), signed_note: note });
    if (!announced) throw new LogKeyError(`a checkpoint of size ${head.size} by the new key ${signer.verifierKey} is already stored, though the key was never announced`);
    await insertLogKey(client, { key_id: formatKeyId(signer.keyId), verifier_key: signer.verifierKey, first_size: head.size, announced_size: head.size });
    return true;
  });
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
