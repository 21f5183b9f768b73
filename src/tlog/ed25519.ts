/**
 * Raw Ed25519 keys (RFC 8032: 32-byte seed, 32-byte public key) as node:crypto KeyObjects.
 * node:crypto only imports DER, so the raw bytes are wrapped in the fixed PKCS#8 and SPKI
 * prefixes for the Ed25519 OID 1.3.101.112.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { tlogError } from './errors.ts';

export const ed25519KeySize = 32;
export const ed25519SignatureSize = 64;

const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== ed25519KeySize) throw new Error(`assertion failed: Ed25519 seeds are ${ed25519KeySize} bytes, got ${seed.length}`);
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' });
}

/** The field prime of edwards25519, 2^255 - 19. */
const fieldPrime = 2n ** 255n - 19n;

/**
 * The y coordinates of the eight points of small order (order 1, 2, 4 or 8), each with both
 * signs of x: 1 (the identity), p - 1 (order 2), 0 (order 4) and the two of order 8. The list
 * of libsodium's has_small_order (ed25519_ref10.c), which also lists 0 and 1 spelled y + p.
 */
const smallOrderYs: ReadonlySet<bigint> = new Set([
  0n,
  1n,
  fieldPrime - 1n,
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
  0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n,
]);

/**
 * Why a public key that OpenSSL would take is refused, or undefined. OpenSSL's check is
 * cofactorless and has neither of libsodium's key checks: under a key of small order, the
 * signature of the identity point and S = 0 verifies for every message (order 1) or for one
 * in eight (order 8), so anyone, not only the key's holder, signs or cosigns in its name.
 * A y at or past p is a second spelling of a smaller y: one key would have two key ids.
 */
function weakPublicKeyReason(publicKey: Uint8Array): string | undefined {
  // Little-endian, with bit 255 (the sign of x) cleared: the point's y as written.
  const y = BigInt(`0x${Buffer.from(publicKey).reverse().toString('hex')}`) & (2n ** 255n - 1n);
  if (smallOrderYs.has(y % fieldPrime)) {
    return 'it is a point of small order (the identity or a point of order 2, 4 or 8), under which anyone can make signatures that verify';
  }
  if (y >= fieldPrime) return 'it is not canonical: its y coordinate is not below the field prime 2^255 - 19';
  return undefined;
}

/**
 * Returns undefined for bytes OpenSSL will not take as a public key (wrong size, not a
 * point), and throws for a key of small order or a non-canonical one (weakPublicKeyReason),
 * saying which key and why: every key read from outside (a note key, a witness key, a key
 * the log announced) comes through here.
 */
export function publicKeyFromRaw(publicKey: Uint8Array): KeyObject | undefined {
  if (publicKey.length !== ed25519KeySize) return undefined;
  const weak = weakPublicKeyReason(publicKey);
  if (weak !== undefined) throw tlogError('c2sp-signed-note', 'weak_key', `refused the Ed25519 public key ${Buffer.from(publicKey).toString('hex')}: ${weak}`);
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
