/**
 * Raw Ed25519 public keys: every spelling of the eight points of small order (under which
 * anyone can sign) and every non-canonical y are refused, saying which key and why; the keys
 * keygen makes and the published vectors' keys are not.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../core/random.ts';
import { privateKeyFromSeed, publicKeyFromRaw, rawPublicKey } from './ed25519.ts';
import { decodeVerifierKey } from './note-key.ts';
import { hex, reason } from './test-support.ts';

/** The small-order encodings of libsodium's has_small_order, sign bit clear: y = 0, 1, p - 1 (as written, little-endian) and the two of order 8. */
const smallOrder = {
  'order 4 (y = 0)': '0000000000000000000000000000000000000000000000000000000000000000',
  'identity (y = 1)': '0100000000000000000000000000000000000000000000000000000000000000',
  'order 2 (y = p - 1)': 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'order 8 (y = 0x7a03…)': 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'order 8 (y = 0x05fc…)': '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'order 4 spelled y = p': 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'identity spelled y = p + 1': 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
};

/** `encoding` with bit 255, the sign of x, set: the other point of the same y (or "-0"). */
function withSignBit(encoding: string): Buffer {
  const bytes = hex(encoding);
  bytes[31] = bytes[31]! | 0x80;
  return bytes;
}

/** y = p + k, for k = 2 … 18: the only other values of y at or past p that 255 bits can write. */
function nonCanonical(k: number): Buffer {
  const bytes = hex(smallOrder['order 4 spelled y = p']);
  bytes[0] = 0xed + k;
  return bytes;
}

describe('publicKeyFromRaw', () => {
  it('refuses each of the eight small-order points, in every spelling, naming the key and why', () => {
    let refused = 0;
    for (const [what, encoding] of Object.entries(smallOrder)) {
      for (const bytes of [hex(encoding), withSignBit(encoding)]) {
        expect(reason(() => publicKeyFromRaw(bytes)), what).toBe('weak_key');
        expect(() => publicKeyFromRaw(bytes), what).toThrow(`refused the Ed25519 public key ${bytes.toString('hex')}: it is a point of small order`);
        refused += 1;
      }
    }
    expect(refused).toBe(14);
  });

  it('refuses a y coordinate at or past the field prime, with either sign', () => {
    for (let k = 2; k <= 18; k += 1) {
      for (const bytes of [nonCanonical(k), withSignBit(nonCanonical(k).toString('hex'))]) {
        expect(() => publicKeyFromRaw(bytes), `y = p + ${k}`).toThrow(`refused the Ed25519 public key ${bytes.toString('hex')}: it is not canonical`);
        expect(reason(() => publicKeyFromRaw(bytes))).toBe('weak_key');
      }
    }
  });

  it('takes the keys seeds make, and the published vectors\' keys', () => {
    const random = seededRandom(25519);
    for (let i = 0; i < 64; i += 1) {
      const seed = Buffer.from(Array.from({ length: 32 }, () => Math.floor(random() * 256)));
      const publicKey = rawPublicKey(privateKeyFromSeed(seed));
      expect(rawPublicKey(publicKeyFromRaw(publicKey)!)).toEqual(publicKey);
    }
    // data/tlog-vectors.md: PeterNeumann and EnochRoot (Go's x/mod/sumdb/note tests).
    for (const key of ['PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop']) {
      expect(publicKeyFromRaw(decodeVerifierKey(key).key), key).toBeDefined();
    }
  });

  it('says undefined, as before, for bytes of the wrong length', () => {
    expect(publicKeyFromRaw(Buffer.alloc(31, 9))).toBeUndefined();
    expect(publicKeyFromRaw(Buffer.alloc(33, 9))).toBeUndefined();
  });
});
