/**
 * Signed-note keys (C2SP signed-note, Go golang.org/x/mod/sumdb/note): key ids, the verifier
 * key text `name+hexid+base64(type || public key)`, the signer key text
 * `PRIVATE+KEY+name+hexid+base64(type || seed)`, and Ed25519 signers and verifiers (type 0x01).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { decodeBase64Strict, encodeBase64 } from './base64.ts';
import { ed25519KeySize, privateKeyFromSeed, publicKeyFromRaw, randomSeed, rawPublicKey, signEd25519, verifyEd25519 } from './ed25519.ts';
import { tlogError } from './errors.ts';

/** Signature type bytes assigned by C2SP signed-note. */
export const signatureTypes = { ed25519: 0x01, cosignatureV1: 0x04 } as const;

/** Checks one signature made over a note's text (the bytes after the 4-byte key id). */
export interface NoteVerifier {
  readonly name: string;
  /** uint32 key id, the first 4 bytes of each signature by this key. */
  readonly keyId: number;
  verify(text: Buffer, signature: Buffer): boolean;
}

/** Makes one signature over a note's text (without the key id, which signNote prepends). */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(text: Buffer): Buffer;
}

/** Key names are non-empty, without Unicode spaces or '+' (Go's isValidName). */
export function isValidKeyName(name: string): boolean {
  // Unicode White_Space, as Go's unicode.IsSpace: JavaScript's \s would also refuse U+FEFF.
  return name.length > 0 && !/[\p{White_Space}+]/u.test(name) && !/[\x00-\x1f]/.test(name) && !/\p{Cs}/u.test(name);
}

/** key id = SHA-256(name || 0x0A || type || public key)[:4], as a big-endian uint32. */
export function computeKeyId(name: string, type: number, publicKey: Uint8Array): number {
  const digest = createHash('sha256').update(name, 'utf8').update(Buffer.of(0x0a, type)).update(publicKey).digest();
  return digest.readUInt32BE(0);
}

export function formatKeyId(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

export interface DecodedKey {
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  /** The key material after the type byte: a public key, or a signer's seed. */
  readonly key: Buffer;
}

function keyError(message: string): Error {
  return tlogError('c2sp-signed-note', 'malformed_key', message);
}

/** Splits at the first `count` '+' only: base64 may contain '+' itself. */
function splitPlus(text: string, count: number): string[] | undefined {
  const parts: string[] = [];
  let rest = text;
  for (let i = 0; i < count; i++) {
    const at = rest.indexOf('+');
    if (at < 0) return undefined;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}

function decodeKeyParts(name: string, hexId: string, base64: string, what: string): DecodedKey {
  if (!isValidKeyName(name)) throw keyError(`couldn't read ${what}: invalid key name`);
  if (!/^[0-9a-fA-F]{8}$/.test(hexId)) throw keyError(`couldn't read ${what} "${name}": key id must be 8 hex digits`);
  const bytes = decodeBase64Strict(base64);
  if (bytes === undefined || bytes.length < 2) throw keyError(`couldn't read ${what} "${name}": key is not base64 of a type byte and key material`);
  return { name, keyId: Number.parseInt(hexId, 16), type: bytes[0]!, key: bytes.subarray(1) };
}

/** Reads `name+hexid+base64(type || public key)` of any signature type; checks only the syntax. */
export function decodeVerifierKey(verifierKey: string): DecodedKey {
  const parts = splitPlus(verifierKey, 2);
  if (parts === undefined) throw keyError('couldn\'t read verifier key: expected "name+hexid+base64"');
  const [name, hexId, base64] = parts as [string, string, string];
  return decodeKeyParts(name, hexId, base64, 'verifier key');
}

/** Reads `PRIVATE+KEY+name+hexid+base64(type || seed)`; checks only the syntax. */
export function decodeSignerKey(signerKey: string): DecodedKey {
  const parts = splitPlus(signerKey, 4);
  if (parts === undefined || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') throw keyError('couldn\'t read signer key: expected "PRIVATE+KEY+name+hexid+base64"');
  const [, , name, hexId, base64] = parts as [string, string, string, string, string];
  return decodeKeyParts(name, hexId, base64, 'signer key');
}

export function formatVerifierKey(name: string, publicKey: Uint8Array, type: number = signatureTypes.ed25519): string {
  if (!isValidKeyName(name)) throw keyError(`couldn't format verifier key: invalid key name "${name}"`);
  return `${name}+${formatKeyId(computeKeyId(name, type, publicKey))}+${encodeBase64(Buffer.concat([Buffer.of(type), publicKey]))}`;
}

export function formatSignerKey(name: string, seed: Uint8Array, type: number, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw keyError(`couldn't format signer key: invalid key name "${name}"`);
  return `PRIVATE+KEY+${name}+${formatKeyId(computeKeyId(name, type, publicKey))}+${encodeBase64(Buffer.concat([Buffer.of(type), seed]))}`;
}

/**
 * An Ed25519 key pair of the given type: the seed and public key behind a signer key, with
 * its key id checked against the name and public key (a mismatched id means the text was
 * edited or belongs to another key).
 */
export interface Ed25519KeyPair {
  readonly name: string;
  readonly keyId: number;
  readonly privateKey: KeyObject;
  readonly publicKey: Buffer;
}

export function ed25519KeyPairFromSignerKey(signerKey: string, type: number): Ed25519KeyPair {
  const decoded = decodeSignerKey(signerKey);
  if (decoded.type !== type || decoded.key.length !== ed25519KeySize) throw keyError(`couldn't read signer key "${decoded.name}": expected an Ed25519 key of type ${type}`);
  const privateKey = privateKeyFromSeed(decoded.key);
  const publicKey = rawPublicKey(privateKey);
  if (computeKeyId(decoded.name, type, publicKey) !== decoded.keyId) throw keyError(`couldn't read signer key "${decoded.name}": key id does not match the key`);
  return { name: decoded.name, keyId: decoded.keyId, privateKey, publicKey };
}

const signatureTypeNames: Readonly<Record<number, string>> = { [signatureTypes.ed25519]: 'Ed25519', [signatureTypes.cosignatureV1]: 'cosignature/v1' };

/** `0x04 (cosignature/v1)`: how a refusal names a signature type byte. */
function describeSignatureType(type: number): string {
  const name = signatureTypeNames[type];
  return `0x${type.toString(16).padStart(2, '0')}${name === undefined ? '' : ` (${name})`}`;
}

/**
 * A public Ed25519 key of one of the accepted types from a verifier key, with its key id
 * checked against the type written in the key: the id in a key text is always the one of its
 * own type byte, whatever the caller then uses the key for.
 */
export function ed25519PublicKeyFromVerifierKey(
  verifierKey: string,
  accepted: number | readonly number[],
): { name: string; keyId: number; type: number; publicKey: Buffer; keyObject: KeyObject } {
  const types = typeof accepted === 'number' ? [accepted] : accepted;
  const decoded = decodeVerifierKey(verifierKey);
  if (!types.includes(decoded.type)) {
    throw keyError(`couldn't read verifier key "${decoded.name}": expected signature type ${types.map(describeSignatureType).join(' or ')}, got ${describeSignatureType(decoded.type)}`);
  }
  if (decoded.key.length !== ed25519KeySize) throw keyError(`couldn't read verifier key "${decoded.name}": expected a ${ed25519KeySize}-byte Ed25519 public key, got ${decoded.key.length} bytes`);
  let keyObject;
  try {
    keyObject = publicKeyFromRaw(decoded.key);
  } catch (error) {
    // A weak key (ed25519.ts): said with the key's name, as every other refusal here is.
    throw tlogError('c2sp-signed-note', 'weak_key', `couldn't read verifier key "${decoded.name}": ${(error as Error).message}`);
  }
  if (keyObject === undefined) throw keyError(`couldn't read verifier key "${decoded.name}": not an Ed25519 public key`);
  if (computeKeyId(decoded.name, decoded.type, decoded.key) !== decoded.keyId) throw keyError(`couldn't read verifier key "${decoded.name}": key id does not match the key`);
  return { name: decoded.name, keyId: decoded.keyId, type: decoded.type, publicKey: Buffer.from(decoded.key), keyObject };
}

/** Generates a fresh Ed25519 key pair as signer and verifier key texts. */
export function generateKeyTexts(name: string, type: number): { signerKey: string; verifierKey: string } {
  const seed = randomSeed();
  const publicKey = rawPublicKey(privateKeyFromSeed(seed));
  return { signerKey: formatSignerKey(name, seed, type, publicKey), verifierKey: formatVerifierKey(name, publicKey, type) };
}

/** A note verifier for a plain Ed25519 key (type 0x01). */
export interface Ed25519NoteVerifier extends NoteVerifier {
  readonly publicKey: Buffer;
}

export function parseVerifierKey(verifierKey: string): Ed25519NoteVerifier {
  const { name, keyId, publicKey, keyObject } = ed25519PublicKeyFromVerifierKey(verifierKey, signatureTypes.ed25519);
  return { name, keyId, publicKey, verify: (text, signature) => verifyEd25519(keyObject, text, signature) };
}

/** A note signer for a plain Ed25519 key (type 0x01), with the verifier key to publish. */
export interface Ed25519NoteSigner extends NoteSigner {
  readonly verifierKey: string;
}

export function parseSignerKey(signerKey: string): Ed25519NoteSigner {
  const pair = ed25519KeyPairFromSignerKey(signerKey, signatureTypes.ed25519);
  return {
    name: pair.name,
    keyId: pair.keyId,
    verifierKey: formatVerifierKey(pair.name, pair.publicKey),
    sign: (text) => signEd25519(pair.privateKey, text),
  };
}

/** A new Ed25519 note key (type 0x01): keep signerKey secret, publish verifierKey. */
export function generateSignerKey(name: string): { signerKey: string; verifierKey: string } {
  return generateKeyTexts(name, signatureTypes.ed25519);
}
