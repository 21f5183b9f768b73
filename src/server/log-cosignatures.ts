/**
 * Witness cosignatures of the log's checkpoints (C2SP tlog-cosignature): stored as witnesses
 * send them, each line verified against the configured witness keys, and served with the
 * checkpoint they sign, for the newest one or for a proof bundle that asks for a quorum.
 */
import type { z } from 'zod';
import { DomainError, isDomainError } from '../core/errors.ts';
import {
  canonicalSignatureLine, cosignaturesOf, formatKeyId, openCheckpoint, parseNote, parseVerifierKey, type CosignatureVerifier, type NoteVerifier,
} from '../tlog/index.ts';
import type { Pool } from '../store/pool.ts';
import {
  checkpointNotesOfSize, cosignaturesFor, insertCosignature, latestCheckpoint, listCosignedCandidates, listLogKeys, readHead, type CheckpointRow,
} from '../store/tlog-tables.ts';
import type * as wire from './wire.ts';


/**
 * The newest checkpoint with the cosignatures made over its own text (one size may hold two
 * texts after a key rotation). Each stored line is verified again over the served text, by a
 * configured witness: a line that does not verify is left off, so the served note always opens.
 * Each is served in its canonical spelling, whatever a row stored before lines were made
 * canonical on the way in holds.
 * The note served last is kept: every proof bundle carries the checkpoint, and until a new
 * checkpoint is signed or a witness adds a line, the same rows give the same note, so the
 * signatures are not verified again per request.
 */
export function checkpointServer(pool: Pool, witnesses: readonly CosignatureVerifier[]): () => Promise<{ row: CheckpointRow; note: string }> {
  let last: { rows: string; row: CheckpointRow; note: string } | undefined;
  return async () => {
    const row = await latestCheckpoint(pool);
    if (!row) throw new DomainError('not_found', 'no checkpoint has been signed yet; try again in a second');
    const stored = (await cosignaturesFor(pool, row)).map((cosignature) => cosignature.signature_line);
    const rows = [row.size, row.key_id, row.signed_note, ...stored].join('\n');
    if (last?.rows !== rows) {
      const text = Buffer.from(parseNote(row.signed_note).text, 'utf8');
      const lines = stored.map((line) => cosignatureOf(text, line, witnesses)).filter((cosignature) => cosignature !== undefined);
      last = { rows, row, note: row.signed_note + lines.map((cosignature) => cosignature.line).join('') };
    }
    return { row: last.row, note: last.note };
  };
}

/**
 * The newest checkpoint covering `seq`, signed with the log's current key (what a verifier
 * holds: /v1/log/key), that at least `wanted` configured witnesses cosigned, each counted
 * once by name (one witness with two keys is one witness), their lines verified again over
 * its text as checkpointServer does; with those lines.
 */
export async function cosignedCheckpoint(pool: Pool, witnesses: readonly CosignatureVerifier[], logKeyId: number, seq: number, wanted: number): Promise<{ row: CheckpointRow; note: string }> {
  const names = new Set(witnesses.map((witness) => witness.name));
  if (wanted > names.size) {
    throw new DomainError('not_found', `this log keeps cosignatures of ${names.size} witness(es); no checkpoint can carry ${wanted}`);
  }
  const candidates = await listCosignedCandidates(pool, seq, wanted, formatKeyId(logKeyId), witnesses.map((witness) => ({ name: witness.name, keyId: formatKeyId(witness.keyId) })));
  for (const row of candidates) {
    const text = Buffer.from(parseNote(row.signed_note).text, 'utf8');
    const lines = (await cosignaturesFor(pool, row)).map((stored) => cosignatureOf(text, stored.signature_line, witnesses)).filter((cosignature) => cosignature !== undefined);
    if (new Set(lines.map((cosignature) => cosignature.witness)).size >= wanted) return { row, note: row.signed_note + lines.map((cosignature) => cosignature.line).join('') };
  }
  await assertEventExists(pool, seq);
  throw new DomainError('not_found', `no checkpoint covering event ${seq} signed with the log's current key carries ${wanted} witness cosignature(s) yet; try again after the witnesses' next round`);
}

/**
 * An event past the log's head is not late, it does not exist: "try again" would send a
 * client polling for an event that may never come. Read only when no checkpoint covers the
 * event (the head is one more query), so the usual proof needs none.
 */
export async function assertEventExists(pool: Pool, seq: number): Promise<void> {
  const { size } = await readHead(pool);
  if (seq >= size) throw new DomainError('not_found', `there is no event ${seq}: the log holds ${size} event${size === 1 ? '' : 's'}${size === 0 ? '' : `, numbered 0 to ${size - 1}`}`, { details: { event: seq, logSize: size } });
}

/**
 * A stored cosignature line (`— name base64\n`) that is a configured witness's valid signature
 * over `text`: the witness's name and the line in its canonical spelling, with its newline;
 * undefined when it is not one.
 */
function cosignatureOf(text: Buffer, line: string, witnesses: readonly CosignatureVerifier[]): { witness: string; line: string } | undefined {
  let signature;
  try {
    [signature] = parseNote(`x\n\n${line}`).signatures;
  } catch {
    return undefined;
  }
  const witness = witnesses.find((candidate) => candidate.name === signature!.name && candidate.keyId === signature!.keyId);
  if (witness === undefined || !witness.verify(text, signature!.signature)) return undefined;
  return { witness: witness.name, line: `${canonicalSignatureLine(signature!)}\n` };
}

/**
 * Stores the cosignatures a witness added to one of our checkpoints. The note must be a
 * checkpoint the log signed (same text, its signature valid) with any of its keys: after a
 * rotation a witness may still cosign the last checkpoint of the old key, and a server whose
 * key another process retired still takes cosignatures of the new key's checkpoints. Each
 * witness line is verified against the configured witness keys; unknown lines are ignored, a
 * forged one refused.
 */
export async function storeCosignatures(pool: Pool, signer: { verifierKey: string }, witnesses: readonly CosignatureVerifier[], note: string): Promise<z.output<typeof wire.cosignaturesStored>> {
  const open = (key: string) => openCheckpoint(note, parseVerifierKey(key), witnesses as readonly NoteVerifier[]);
  let opened: ReturnType<typeof openCheckpoint> | undefined;
  try {
    opened = open(signer.verifierKey);
  } catch (error) {
    // Not this server's key: the log's other keys are read only then, and this key's refusal
    // is the one said when none opens the note.
    for (const { verifier_key: key } of await listLogKeys(pool)) {
      if (key === signer.verifierKey) continue;
      try {
        opened = open(key);
        break;
      } catch {
        // the next key
      }
    }
    // The rule and the reason of the format that refused the note (tlog/errors.ts), kept.
    if (opened === undefined) {
      const refused = isDomainError(error) ? error : undefined;
      throw new DomainError('invalid_input', `couldn't accept the cosignatures: ${(error as Error).message}`, {
        rule: refused?.rule ?? 'c2sp-tlog-checkpoint', ...(refused?.details === undefined ? {} : { details: refused.details }), cause: error,
      });
    }
  }
  const size = opened.checkpoint.size;
  const ours = await checkpointNotesOfSize(pool, size);
  // The cosignature is over this text: it belongs to the checkpoint rows with this text only.
  const cosigned = ours.filter((row) => parseNote(row.signed_note).text === opened.note.text);
  if (cosigned.length === 0) {
    throw new DomainError('not_found', `this log never signed that checkpoint of size ${size}`);
  }
  const verified = cosignaturesOf(opened.note, witnesses);
  if (verified.length === 0) throw noConfiguredWitness(witnesses, opened.note.unknown);
  for (const [cosignature, checkpoint] of verified.flatMap((one) => cosigned.map((row) => [one, row] as const))) {
    // Stored in its canonical spelling, not as sent: base64 read leniently (padding bits
    // ignored, as Go's note.Open reads it) lets one signature be spelt several ways, a
    // strict decoder refuses every spelling but one, and a log publishes one spelling per value.
    const line = canonicalSignatureLine(opened.note.verified.find((signature) => signature.name === cosignature.name && signature.keyId === cosignature.keyId)!);
    await insertCosignature(pool, {
      checkpoint_size: size,
      checkpoint_key_id: checkpoint.key_id,
      witness: cosignature.name,
      key_id: formatKeyId(cosignature.keyId),
      timestamp_s: cosignature.timestampSeconds,
      signature_line: `${line}\n`,
    });
  }
  // Whose lines were taken, so that a witness can tell its own from another's the note
  // carried already (a served note that another witness cosigned, sent back with one more line).
  return { stored: verified.length, witnesses: verified.map((cosignature) => `${cosignature.name}+${formatKeyId(cosignature.keyId)}`) };
}

/**
 * The refusal of a note without a line of a configured witness, saying what can change it. A
 * witness gains nothing by sending again: the log's operator adds its verifier key. A server
 * with no witnesses configured stores no cosignatures at all, which the witness cannot know;
 * one whose witnesses are others names them, so a witness can see whether its key was mistyped.
 */
function noConfiguredWitness(witnesses: readonly CosignatureVerifier[], unknown: readonly { name: string; keyId: number }[]): DomainError {
  const carried = unknown.length === 0 ? 'no witness signature' : `signatures by ${unknown.map((signature) => `${signature.name}+${formatKeyId(signature.keyId)}`).join(', ')}`;
  const remedy = "its operator adds a witness by putting the witness's verifier key (as `chipledger log cosigner-keygen` printed it) in CHIPLEDGER_LOG_WITNESSES";
  if (witnesses.length === 0) {
    return new DomainError('forbidden', `this log has no witnesses configured (CHIPLEDGER_LOG_WITNESSES is empty), so it stores no cosignatures; the note carries ${carried}; ${remedy}`, { rule: 'configured-witness' });
  }
  const known = [...new Set(witnesses.map((witness) => `${witness.name}+${formatKeyId(witness.keyId)}`))].join(', ');
  return new DomainError('forbidden', `the note carries no cosignature of a witness this log knows: it carries ${carried}, and the witnesses configured are ${known}; ${remedy}`, { rule: 'configured-witness' });
}
