import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { emptyRoot, leafHash, nodeHash } from './hash.ts';

function sha256(...parts: Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

describe('RFC 6962 hashing', () => {
  it('matches the published vectors', () => {
    expect(emptyRoot.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(leafHash(Buffer.alloc(0)).toString('hex')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(leafHash(Buffer.from('L123456')).toString('hex')).toBe('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56');
  });

  it('hashes a node as in the published vector and over 32-byte children', () => {
    expect(nodeHash(Buffer.from('N123'), Buffer.from('N456')).toString('hex')).toBe('aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb');
    const left = randomBytes(32);
    const right = randomBytes(32);
    expect(nodeHash(left, right).toString('hex')).toBe(sha256(Buffer.of(1), left, right));
    expect(nodeHash(left, right).equals(nodeHash(right, left))).toBe(false);
  });

  it('hashes leaves of every size, including ones beyond the scratch buffer', () => {
    for (const size of [0, 1, 31, 32, 33, 65, 4096, 64 * 1024, 64 * 1024 + 1, 300_000]) {
      const data = randomBytes(size);
      expect(leafHash(data).toString('hex'), `size ${size}`).toBe(sha256(Buffer.of(0), data));
    }
  });

  it('returns independent buffers (the scratch buffer never leaks)', () => {
    const a = leafHash(Buffer.from('a'));
    const copy = Buffer.from(a);
    leafHash(Buffer.from('b'));
    nodeHash(a, a);
    expect(a.equals(copy)).toBe(true);
  });
});
