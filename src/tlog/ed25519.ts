/**
 * Raw Ed25519 keys (RFC 8032: 32-byte seed, 32-byte public key) as node:crypto KeyObjects.
 * node:crypto only imports DER, so the raw bytes are wrapped in the fixed PKCS#8 and SPKI
 * prefixes for the Ed25519 OID 1.3.101.112.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

export const ed25519KeySize = 32;
export const ed25519SignatureSize = 64;

const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== ed25519KeySize) throw new Error(`assertion failed: Ed25519 seeds are ${ed25519KeySize} bytes, got ${seed.length}`);
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' });
}

/** Returns undefined for bytes OpenSSL will not take as a public key (wrong size, not a point). */
export function publicKeyFromRaw(publicKey: Uint8Array): KeyObject | undefined {
  if (publicKey.length !== ed25519KeySize) return undefined;
  try {
    return createPublicKey({ key: Buffer.concat([spkiPrefix, publicKey]), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.type === 'private' ? createPublicKey(key).export({ format: 'der', type: 'spki' }) : key.export({ format: 'der', type: 'spki' });
  return der.subarray(spkiPrefix.length);
}

export function randomSeed(): Buffer {
  return randomBytes(ed25519KeySize);
}

export function signEd25519(privateKey: KeyObject, message: Uint8Array): Buffer {
  return sign(null, message, privateKey);
}

export function verifyEd25519(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ed25519SignatureSize) return false;
  return verify(null, message, publicKey, signature);
}
