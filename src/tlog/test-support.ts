/**
 * Shared by the tlog tests only: the published 8-leaf inputs and a seeded random source, so
 * every "random" test replays the same way.
 */
import { isDomainError } from '../core/errors.ts';
import { seededRandom } from '../core/random.ts';
import { leafHash } from './hash.ts';
import { tileWidth } from './tile.ts';
import { rootOf } from './tree.ts';

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

/**
 * The hashes at each tile level of a log of these leaf hashes, recomputed plainly: level k's
 * hash j is the root of leaves [j·256^k, (j+1)·256^k), what the level-k tiles store.
 */
export function tileLevelsOf(leafHashes: readonly Buffer[]): Buffer[][] {
  const levels = [leafHashes.slice()];
  for (let below = levels[0]!; below.length >= tileWidth; ) {
    const above: Buffer[] = [];
    for (let at = 0; at + tileWidth <= below.length; at += tileWidth) above.push(rootOf(below.slice(at, at + tileWidth)));
    levels.push(above);
    below = above;
  }
  return levels;
}

/** A tile row as a log writes it (store's TileRow, without importing the store). */
export interface ReferenceTile {
  level: number;
  index: number;
  width: number;
  hashes: Buffer;
}

/**
 * The tiles a log growing from `before` to `after` leaves must write, from `levels`
 * (tileLevelsOf of at least `after` leaves): at each level, every tile that gained a hash,
 * as it stands after, by level and index.
 */
export function tilesGained(levels: readonly Buffer[][], before: number, after: number): ReferenceTile[] {
  const tiles: ReferenceTile[] = [];
  levels.forEach((hashes, level) => {
    const span = tileWidth ** level;
    const was = Math.floor(before / span);
    const now = Math.floor(after / span);
    for (let index = Math.floor(was / tileWidth); now > was && index * tileWidth < now; index += 1) {
      const width = Math.min(tileWidth, now - index * tileWidth);
      tiles.push({ level, index, width, hashes: Buffer.concat(hashes.slice(index * tileWidth, index * tileWidth + width)) });
    }
  });
  return tiles;
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
