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
/** Largest timestamp the spec allows is 2^63 - 1; ours must also be an exact number. */
const timestampMax = Number.MAX_SAFE_INTEGER;

/** The signed message: header line, time line, then the checkpoint text with its final newline. */
export function cosignatureMessage(checkpointText: string, timestampSeconds: number): Buffer {
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

/** The timestamp of a cosignature (signature bytes after the key id), or undefined if malformed. */
export function cosignatureTimestamp(signature: Uint8Array): number | undefined {
  if (signature.length !== timestampSize + ed25519SignatureSize) return undefined;
  const timestamp = Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).readBigUInt64BE(0);
  return timestamp <= BigInt(timestampMax) ? Number(timestamp) : undefined;
}

export interface CosignatureVerifier extends NoteVerifier {
  readonly publicKey: Buffer;
}

/** Reads a witness verifier key `name+hexid+base64(0x04 || public key)`. */
export function parseCosignatureVerifierKey(verifierKey: string): CosignatureVerifier {
  const { name, keyId, publicKey, keyObject } = ed25519PublicKeyFromVerifierKey(verifierKey, signatureTypes.cosignatureV1);
  return {
    name,
    keyId,
    publicKey,
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
  readonly timestampSeconds: number;
}

/** The witnesses among a note's verified signatures, with the time each one cosigned. */
export function cosignaturesOf(opened: OpenedNote, witnesses: readonly CosignatureVerifier[]): VerifiedCosignature[] {
  const cosignatures: VerifiedCosignature[] = [];
  for (const signature of opened.verified) {
    const isWitness = witnesses.some((witness) => witness.name === signature.name && witness.keyId === signature.keyId);
    const timestampSeconds = cosignatureTimestamp(signature.signature);
    if (!isWitness) continue;
    if (timestampSeconds === undefined) throw tlogError('c2sp-tlog-cosignature', 'malformed_cosignature', `couldn't read cosignature by "${signature.name}"`);
    cosignatures.push({ name: signature.name, keyId: signature.keyId, timestampSeconds });
  }
  return cosignatures;
}
