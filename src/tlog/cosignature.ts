/**
 * C2SP tlog-cosignature/v1 with Ed25519 (signature type 0x04): a witness's statement that, at
 * a given time, this checkpoint was the largest consistent tree head it had seen for the log.
 * The signature is timestamp (u64 big-endian seconds) || Ed25519 signature over
 * "cosignature/v1\ntime <seconds>\n" followed by the whole checkpoint text. The message does
 * not name the cosigner, so each cosigner needs its own key.
 */
import { parseCheckpoint } from './checkpoint.ts';
import { ed25519SignatureSize, signEd25519, verifyEd25519 } from './ed25519.ts';
import { tlogError } from './errors.ts';
import {
  addSignatures,
  computeKeyId,
  ed25519KeyPairFromSignerKey,
  ed25519PublicKeyFromVerifierKey,
  formatVerifierKey,
  generateKeyTexts,
  parseNote,
  signatureTypes,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
} from './note.ts';

const timestampSize = 8;
/** "It MUST NOT exceed 2^63 - 1" (C2SP tlog-cosignature, timestamped_signature.timestamp). */
const timestampSpecMax = 2n ** 63n - 1n;
/**
 * Largest cosignature time we accept, in seconds since 1970: 2^53 - 1, about 285 million years
 * from now, so that a time handed to callers and stored (tlog_cosignatures.timestamp_s, compared
 * to keep the newest cosignature) is an exact JavaScript number. The spec lets verifiers refuse
 * times in the future, and every time above this is. We do not refuse against the clock here:
 * a proof bundle must verify the same on any machine, whatever its clock says.
 */
export const cosignatureTimeSecondsMax = Number.MAX_SAFE_INTEGER;

/** The signed message: header line, time line, then the checkpoint text with its final newline. */
export function cosignatureMessage(checkpointText: string, timestampSeconds: number | bigint): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestampSeconds}\n${checkpointText}`, 'utf8');
}

function assertTimestamp(timestampSeconds: number): void {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw new Error(`assertion failed: cosignature time must be whole seconds, got ${timestampSeconds}`);
}

/** A witness key: makes note signers bound to one timestamp. */
export interface Cosigner {
  readonly name: string;
  readonly keyId: number;
  /** The verifier key (type 0x04) that log clients configure. */
  readonly verifierKey: string;
  at(timestampSeconds: number): NoteSigner;
}

/** Reads `PRIVATE+KEY+name+hexid+base64(0x04 || seed)`. */
export function parseCosignerKey(signerKey: string): Cosigner {
  const pair = ed25519KeyPairFromSignerKey(signerKey, signatureTypes.cosignatureV1);
  return {
    name: pair.name,
    keyId: pair.keyId,
    verifierKey: formatVerifierKey(pair.name, pair.publicKey, signatureTypes.cosignatureV1),
    at(timestampSeconds) {
      assertTimestamp(timestampSeconds);
      return {
        name: pair.name,
        keyId: pair.keyId,
        sign(text) {
          const timestamp = Buffer.alloc(timestampSize);
          timestamp.writeBigUInt64BE(BigInt(timestampSeconds));
          return Buffer.concat([timestamp, signEd25519(pair.privateKey, cosignatureMessage(text.toString('utf8'), timestampSeconds))]);
        },
      };
    },
  };
}

export function generateCosignerKey(name: string): { signerKey: string; verifierKey: string } {
  return generateKeyTexts(name, signatureTypes.cosignatureV1);
}

/**
 * The timestamp of a cosignature (signature bytes after the key id), all 64 bits as written,
 * or undefined when the signature is not 8 + 64 bytes. A bigint: as a number, a time above
 * 2^53 would round, and the message rebuilt from it would not be the one that was signed.
 */
export function cosignatureTimestamp(signature: Uint8Array): bigint | undefined {
  if (signature.length !== timestampSize + ed25519SignatureSize) return undefined;
  return Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).readBigUInt64BE(0);
}

export interface CosignatureVerifier extends NoteVerifier {
  readonly publicKey: Buffer;
}

/**
 * Reads a witness verifier key `name+hexid+base64(0x04 || public key)`, or the same public key
 * written as a plain Ed25519 signed-note key `name+hexid+base64(0x01 || public key)`. The spec
 * configures a cosigner by name and public key, and only says Ed25519 keys MAY be written with
 * type 0x04; transparency-dev/formats (NewVerifierForCosignatureV1) takes a 0x01 key and treats
 * it as 0x04. The id written in the text is checked against the type written; the verifier then
 * carries the 0x04 id, which is the one cosignature lines carry ("MUST be computed as
 * SHA-256(<name> || "\n" || 0x04 || key)[:4]"). A plain note signature by the same key carries
 * the 0x01 id and so is ignored as unknown: it is not a cosignature.
 */
export function parseCosignatureVerifierKey(verifierKey: string): CosignatureVerifier {
  const { name, publicKey, keyObject } = ed25519PublicKeyFromVerifierKey(verifierKey, [signatureTypes.cosignatureV1, signatureTypes.ed25519]);
  return {
    name,
    keyId: computeKeyId(name, signatureTypes.cosignatureV1, publicKey),
    publicKey,
    // Verifies any 64-bit time, as Go's formats does: a correctly signed line is reported as
    // such, and a time out of bounds is refused for what it is by cosignaturesOf.
    verify(text, signature) {
      const timestampSeconds = cosignatureTimestamp(signature);
      if (timestampSeconds === undefined) return false;
      return verifyEd25519(keyObject, cosignatureMessage(text.toString('utf8'), timestampSeconds), signature.subarray(timestampSize));
    },
  };
}

/**
 * Adds a witness's cosignature to a signed checkpoint. Only the format is checked here: the
 * witness must already have verified the log's signature and the consistency with the last
 * checkpoint it cosigned, because the cosignature asserts exactly that.
 */
export function cosignCheckpoint(signedCheckpoint: string, cosigner: Cosigner, timestampSeconds: number): string {
  parseCheckpoint(parseNote(signedCheckpoint).text);
  return addSignatures(signedCheckpoint, cosigner.at(timestampSeconds));
}

export interface VerifiedCosignature {
  readonly name: string;
  readonly keyId: number;
  /** Exact: cosignaturesOf refuses times above cosignatureTimeSecondsMax (2^53 - 1). */
  readonly timestampSeconds: number;
}

/** A verified cosignature's time as an exact number of seconds, or a refusal that says why not. */
function boundedTimeSeconds(name: string, signature: Uint8Array): number {
  const timestamp = cosignatureTimestamp(signature);
  if (timestamp === undefined) {
    throw tlogError('c2sp-tlog-cosignature', 'malformed_cosignature', `couldn't read cosignature by "${name}": expected ${timestampSize + ed25519SignatureSize} bytes (time and Ed25519 signature), got ${signature.length}`);
  }
  if (timestamp > timestampSpecMax) {
    throw tlogError('c2sp-tlog-cosignature', 'malformed_cosignature', `couldn't read cosignature by "${name}": its time ${timestamp} exceeds 2^63 - 1 (${timestampSpecMax}), which C2SP tlog-cosignature forbids`);
  }
  if (timestamp > BigInt(cosignatureTimeSecondsMax)) {
    throw tlogError(
      'c2sp-tlog-cosignature',
      'future_timestamp',
      `couldn't accept cosignature by "${name}": its time ${timestamp} is in the future; a cosignature time may be at most ${cosignatureTimeSecondsMax} seconds since 1970 (2^53 - 1, cosignatureTimeSecondsMax), and C2SP tlog-cosignature lets verifiers refuse times in the future`,
    );
  }
  return Number(timestamp);
}

/**
 * The witnesses among a note's verified signatures, with the time each one cosigned. Throws
 * when a witness's line, though its signature verifies, has a time out of bounds.
 */
export function cosignaturesOf(opened: OpenedNote, witnesses: readonly CosignatureVerifier[]): VerifiedCosignature[] {
  const cosignatures: VerifiedCosignature[] = [];
  for (const signature of opened.verified) {
    const isWitness = witnesses.some((witness) => witness.name === signature.name && witness.keyId === signature.keyId);
    if (!isWitness) continue;
    cosignatures.push({ name: signature.name, keyId: signature.keyId, timestampSeconds: boundedTimeSeconds(signature.name, signature.signature) });
  }
  return cosignatures;
}
