/**
 * C2SP tlog-proof: a self-contained, offline-verifiable proof that an entry is in the log,
 * for auditors and exports. The text is
 *
 *   c2sp.org/tlog-proof@v1
 *   extra <base64>        (optional, unauthenticated application data)
 *   index <decimal>
 *   <base64 hash>         (zero or more: the inclusion proof, leaf's sibling first)
 *
 *   <the signed checkpoint, verbatim>
 *
 * Verifying it needs only the log's verifier key (and witnesses' keys for a quorum).
 */
import { decodeBase64Strict, encodeBase64 } from './base64.ts';
import { openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { cosignaturesOf, type CosignatureVerifier, type VerifiedCosignature } from './cosignature.ts';
import { tlogError } from './errors.ts';
import { hashSize } from './hash.ts';
import { tlogLimits } from './limits.ts';
import { parseNote, type NoteVerifier } from './note.ts';
import { verifyInclusion } from './proof.ts';

const header = 'c2sp.org/tlog-proof@v1';

export interface TlogProof {
  readonly index: number;
  /** Inclusion proof hashes, leaf's sibling first. */
  readonly inclusionProof: readonly Buffer[];
  /** The signed checkpoint note the proof is against, verbatim. */
  readonly checkpointNote: string;
  /** Opaque application data; not authenticated by anything in the proof. */
  readonly extra?: Buffer;
}

function malformed(message: string): Error {
  return tlogError('c2sp-tlog-proof', 'malformed_proof', `couldn't read tlog-proof: ${message}`);
}

export function formatTlogProof(proof: TlogProof): string {
  const { index, inclusionProof, checkpointNote, extra } = proof;
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`assertion failed: proof index must be a leaf index, got ${index}`);
  if (!inclusionProof.every((hash) => hash.length === hashSize)) throw new Error('assertion failed: proof hashes must be 32 bytes');
  parseNote(checkpointNote); // our own checkpoint must at least be a well-formed note
  const lines = [header];
  if (extra !== undefined && extra.length > 0) lines.push(`extra ${encodeBase64(extra)}`);
  lines.push(`index ${index}`, ...inclusionProof.map((hash) => encodeBase64(hash)));
  return `${lines.join('\n')}\n\n${checkpointNote}`;
}

function parseIndex(line: string | undefined): number {
  const match = line === undefined ? null : /^index (0|[1-9][0-9]*)$/.exec(line);
  const index = match === null ? Number.NaN : Number(match[1]);
  if (!Number.isSafeInteger(index)) throw malformed('expected "index <decimal>" without leading zeros');
  return index;
}

function parseExtra(line: string): Buffer {
  const extra = decodeBase64Strict(line.slice('extra '.length));
  // "If no extra data is present, this line is omitted" (tlog-proof): an empty one is not a spelling.
  if (extra === undefined || extra.length === 0) throw malformed('extra data must be non-empty base64');
  if (extra.length > tlogLimits.proofExtraBytesMax) throw malformed(`extra data is longer than ${tlogLimits.proofExtraBytesMax} bytes`);
  return extra;
}

function parseHash(line: string): Buffer {
  const hash = decodeBase64Strict(line);
  if (hash === undefined || hash.length !== hashSize) throw malformed(`a proof line must be base64 of ${hashSize} bytes`);
  return hash;
}

/** Reads a tlog-proof (format only: nothing is verified). */
export function parseTlogProof(text: string): TlogProof {
  if (Buffer.byteLength(text, 'utf8') > tlogLimits.noteBytesMax) throw malformed(`longer than ${tlogLimits.noteBytesMax} bytes`);
  // The proof lines are non-empty, so the first blank line ends them; the rest is the checkpoint.
  const split = text.indexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the checkpoint');
  const lines = text.slice(0, split).split('\n');
  const checkpointNote = text.slice(split + 2);
  if (lines[0] !== header) throw malformed(`the first line must be "${header}"`);
  let next = 1;
  const extra = lines[next]?.startsWith('extra ') ? parseExtra(lines[next++]!) : undefined;
  const index = parseIndex(lines[next++]);
  const hashLines = lines.slice(next);
  if (hashLines.length > tlogLimits.proofHashesMax) throw malformed(`more than ${tlogLimits.proofHashesMax} proof hashes`);
  const inclusionProof = hashLines.map(parseHash);
  return extra === undefined ? { index, inclusionProof, checkpointNote } : { index, inclusionProof, checkpointNote, extra };
}

export interface VerifiedTlogProof {
  readonly index: number;
  readonly checkpoint: Checkpoint;
  readonly cosignatures: readonly VerifiedCosignature[];
  readonly extra?: Buffer;
}

export interface TlogProofPolicy {
  /** Witnesses whose cosignatures count (type 0x04 keys). */
  readonly witnesses?: readonly CosignatureVerifier[];
  /** How many distinct witnesses must have cosigned the checkpoint; 0 trusts the log alone. */
  readonly witnessQuorum: number;
}

/**
 * Verifies a tlog-proof offline: the checkpoint is signed by the log (and by enough
 * witnesses), and the entry whose leaf hash is given sits at `index` of that tree.
 */
export function verifyTlogProof(text: string, leafHash: Uint8Array, logVerifier: NoteVerifier, policy: TlogProofPolicy = { witnessQuorum: 0 }): VerifiedTlogProof {
  const proof = parseTlogProof(text);
  const witnesses = policy.witnesses ?? [];
  const { checkpoint, note } = openCheckpoint(proof.checkpointNote, logVerifier, witnesses);
  const cosignatures = cosignaturesOf(note, witnesses);
  // Witnesses, not keys: one witness configured with two keys (a rotation) is one.
  const cosigners = new Set(cosignatures.map((cosignature) => cosignature.name)).size;
  if (cosigners < policy.witnessQuorum) {
    throw tlogError('c2sp-tlog-proof', 'witness_quorum', `couldn't verify tlog-proof: ${cosigners} of ${policy.witnessQuorum} required witnesses cosigned the checkpoint`);
  }
  if (!verifyInclusion(leafHash, proof.index, checkpoint.size, proof.inclusionProof, checkpoint.rootHash)) {
    throw tlogError('rfc-9162-proof', 'inclusion_failed', `couldn't verify tlog-proof: entry ${proof.index} is not included in the checkpoint of size ${checkpoint.size}`);
  }
  const verified = { index: proof.index, checkpoint, cosignatures };
  return proof.extra === undefined ? verified : { ...verified, extra: proof.extra };
}
