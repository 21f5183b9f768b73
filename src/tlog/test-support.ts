/**
 * Shared by the tlog tests only: the published 8-leaf inputs and a seeded random source, so
 * every "random" test replays the same way.
 */
import { isDomainError } from '../core/errors.ts';
import { seededRandom } from '../core/random.ts';
import { leafHash } from './hash.ts';

/** Leaf inputs of the 8-leaf tree in data/tlog-vectors.md (transparency-dev/merkle tests). */
export const vectorLeafInputs: readonly Buffer[] = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((hex) =>
  Buffer.from(hex, 'hex'),
);

export const vectorLeafHashes: readonly Buffer[] = vectorLeafInputs.map(leafHash);

export function hex(text: string): Buffer {
  return Buffer.from(text.replaceAll(/\s/g, ''), 'hex');
}

export function toHex(hashes: readonly Uint8Array[]): string[] {
  return hashes.map((hash) => Buffer.from(hash).toString('hex'));
}

export { seededRandom };

/** `count` leaf hashes of seeded random data of 0..63 bytes each. */
export function seededLeafHashes(seed: number, count: number): Buffer[] {
  const random = seededRandom(seed);
  const leaves: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const data = Buffer.alloc(Math.floor(random() * 64));
    for (let j = 0; j < data.length; j++) data[j] = Math.floor(random() * 256);
    leaves.push(leafHash(data));
  }
  return leaves;
}

/** A copy of `bytes` with one bit flipped. */
export function flipBit(bytes: Uint8Array, bit = 0): Buffer {
  const copy = Buffer.from(bytes);
  copy[Math.floor(bit / 8) % copy.length]! ^= 1 << (bit % 8);
  return copy;
}

/** The reason a refusal names (details.reason of the DomainError), or undefined if none was thrown. */
export function reason(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (isDomainError(error)) return String(error.details?.['reason']);
    throw error;
  }
  return undefined;
}
