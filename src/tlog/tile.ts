/**
 * Tile layout of C2SP tlog-tiles: the tree's hashes at every 8th level, served in tiles of
 * 256 hashes, and where each hash lives. A tile at tile level L holds the hashes at tree
 * level 8L; the seven levels inside a tile are recomputed from its hashes. Also the stored
 * hash index of Go's golang.org/x/mod/sumdb/tlog, for a storage layer that keeps every node.
 */
import { assert } from '../core/errors.ts';
import { hashSize, nodeHash } from './hash.ts';
import type { NodeGetter } from './tree.ts';

/** Tree levels per tile: a tile is a subtree of height 8 whose leaves are the stored hashes. */
export const tileHeight = 8;
/** Hashes in a full tile (8,192 bytes). */
export const tileWidth = 256;
/** Tile levels allowed by the path format (0..63). */
const tileLevelMax = 63;

/** A tile: its tile level, its index within the level, and how many hashes it holds (1..256). */
export interface Tile {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/** 256^level, the number of leaves under one hash of a tile at `level`. */
function leavesPerTileHash(level: number): number {
  return 2 ** (tileHeight * level);
}

function assertIndex(index: number, what: string): void {
  assert(Number.isSafeInteger(index) && index >= 0, `${what} must be a non-negative safe integer, got ${index}`);
}

/** Tile index as 3-digit path elements, all but the last prefixed with "x": 1234067 → x001/x234/067. */
export function formatTileIndex(index: number): string {
  assertIndex(index, 'tile index');
  const groups: string[] = [];
  let rest = index;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((group, i) => (i < groups.length - 1 ? `x${group}` : group)).join('/');
}

function widthSuffix(width: number): string {
  assert(Number.isInteger(width) && width >= 1 && width <= tileWidth, `tile width must be 1..${tileWidth}, got ${width}`);
  return width === tileWidth ? '' : `.p/${width}`;
}

/** `tile/<L>/<N>[.p/<W>]`: a full tile, or a partial one when width < 256. */
export function tilePath(level: number, index: number, width: number = tileWidth): string {
  assert(Number.isInteger(level) && level >= 0 && level <= tileLevelMax, `tile level must be 0..${tileLevelMax}, got ${level}`);
  return `tile/${level}/${formatTileIndex(index)}${widthSuffix(width)}`;
}

/** `tile/entries/<N>[.p/<W>]`: the entry bundle beside level-0 tile N. */
export function entriesPath(index: number, width: number = tileWidth): string {
  return `tile/entries/${formatTileIndex(index)}${widthSuffix(width)}`;
}

export type ParsedTilePath = { readonly kind: 'hashes'; readonly tile: Tile } | { readonly kind: 'entries'; readonly tile: Tile };

const tilePathPattern = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/**
 * Parses a tile or entry-bundle path (as it arrives in a URL) or returns undefined. Only the
 * one canonical spelling is accepted (no extra leading groups, no `.p/256`), so every tile
 * has one URL and caches cannot be split.
 */
export function parseTilePath(path: string): ParsedTilePath | undefined {
  const match = tilePathPattern.exec(path);
  if (match === null) return undefined;
  const [, levelText, indexText, widthText] = match as unknown as [string, string, string, string | undefined];
  const digits = indexText.replaceAll('x', '').replaceAll('/', '');
  if (digits.length > 15) return undefined; // beyond 2^53: no such tile in a log of ours
  const index = Number(digits);
  const width = widthText === undefined ? tileWidth : Number(widthText);
  // A partial tile is narrower than a full one: ".p/256" would be a second name for a full tile.
  if ((widthText !== undefined && width >= tileWidth) || formatTileIndex(index) !== indexText) return undefined;
  if (levelText === 'entries') return { kind: 'entries', tile: { level: 0, index, width } };
  const level = Number(levelText);
  if (level > tileLevelMax) return undefined;
  return { kind: 'hashes', tile: { level, index, width } };
}

/**
 * The smallest tile holding what it takes to compute node (level, index): the tile at level
 * floor(level / 8) whose hashes cover the node, cut at the node's right edge.
 */
export function tileForNode(level: number, index: number): Tile {
  assertIndex(level, 'node level');
  assertIndex(index, 'node index');
  const tileLevel = Math.floor(level / tileHeight);
  const levelInTile = level - tileLevel * tileHeight;
  const span = 2 ** levelInTile; // tile hashes under the node
  const first = index * span;
  const tileIndex = Math.floor(first / tileWidth);
  return { level: tileLevel, index: tileIndex, width: first + span - tileIndex * tileWidth };
}

/**
 * Computes node (level, index) from the bytes of `tile` (width × 32 bytes). Used to answer
 * getNode from stored tiles; the node must lie within the tile's width.
 */
export function nodeFromTile(tile: Tile, data: Uint8Array, level: number, index: number): Buffer {
  assert(data.length === tile.width * hashSize, `tile ${tilePath(tile.level, tile.index, tile.width)} must be ${tile.width * hashSize} bytes, got ${data.length}`);
  const levelInTile = level - tile.level * tileHeight;
  assert(levelInTile >= 0 && levelInTile <= tileHeight, `node level ${level} is not inside tile level ${tile.level}`);
  const span = 2 ** levelInTile;
  const start = index * span - tile.index * tileWidth;
  assert(start >= 0 && start + span <= tile.width, `node (${level}, ${index}) is not inside ${tilePath(tile.level, tile.index, tile.width)}`);
  let hashes: Buffer[] = [];
  for (let i = start; i < start + span; i++) hashes.push(Buffer.from(data.subarray(i * hashSize, (i + 1) * hashSize)));
  while (hashes.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < hashes.length; i += 2) next.push(nodeHash(hashes[i]!, hashes[i + 1]!));
    hashes = next;
  }
  return hashes[0]!;
}

/**
 * The inner nodes of a full tile: every node above its own 256 hashes and below the next
 * tile level (heights 1 to 7 inside the tile: 128 + 64 + … + 2 = 254 hashes), laid out
 * height by height, each height left to right, in one buffer of innerNodesBytes. With it a
 * proof reads any node inside the tile without hashing.
 */
export const innerNodesBytes = (tileWidth - 2) * hashSize;

const innerHeightOffsets = Array.from({ length: tileHeight }, (_, height) => {
  let nodes = 0;
  for (let below = 1; below < height; below += 1) nodes += tileWidth >> below;
  return nodes * hashSize;
});

/** Where the node `position` (from the left) at `height` (1..7) inside a tile sits in its inner-nodes buffer. */
export function innerNodeOffset(height: number, position: number): number {
  return innerHeightOffsets[height]! + position * hashSize;
}

/** The inner nodes of a full tile from its hashes (254 node hashes). */
export function innerNodesOf(hashes: Uint8Array): Buffer {
  assert(hashes.length === tileWidth * hashSize, `a full tile is ${tileWidth * hashSize} bytes, got ${hashes.length}`);
  const inner = Buffer.allocUnsafe(innerNodesBytes);
  let below: Uint8Array = hashes;
  for (let height = 1; height < tileHeight; height += 1) {
    for (let position = 0; position < tileWidth >> height; position += 1) {
      const left = below.subarray(2 * position * hashSize, (2 * position + 1) * hashSize);
      const right = below.subarray((2 * position + 1) * hashSize, (2 * position + 2) * hashSize);
      nodeHash(left, right).copy(inner, innerNodeOffset(height, position));
    }
    below = inner.subarray(innerNodeOffset(height, 0));
  }
  return inner;
}

/**
 * The hash of a full tile's subtree (tree level 8 above its hashes' level): the two top inner
 * nodes (innerNodesOf's) hashed together. A log appending a whole level-0 tile at once hashes
 * it so, level by level, and hands the result to MerkleAppender.appendSubtree.
 */
export function tileRootOf(hashes: Uint8Array): Buffer {
  const inner = innerNodesOf(hashes);
  const top = innerNodeOffset(tileHeight - 1, 0);
  return nodeHash(inner.subarray(top, top + hashSize), inner.subarray(top + hashSize, top + 2 * hashSize));
}

/** The bytes of a tile: the hashes at tree level 8 × tile.level, read through getNode. */
export function tileData(tile: Tile, getNode: NodeGetter): Buffer {
  const data = Buffer.allocUnsafe(tile.width * hashSize);
  const first = tile.index * tileWidth;
  for (let i = 0; i < tile.width; i++) getNode(tile.level * tileHeight, first + i).copy(data, i * hashSize);
  return data;
}

/** How many hashes tile (level, index) holds in a tree of treeSize leaves: 256, partial, or 0. */
export function tileWidthInTree(level: number, index: number, treeSize: number): number {
  const hashesAtLevel = Math.floor(treeSize / leavesPerTileHash(level));
  return Math.max(0, Math.min(tileWidth, hashesAtLevel - index * tileWidth));
}

/**
 * The tiles (and, at level 0, entry bundles) that a tree growing from oldSize to newSize
 * must write: every tile that became full, and the partial tile at each level for newSize.
 */
export function newTiles(oldSize: number, newSize: number): Tile[] {
  assert(oldSize >= 0 && oldSize <= newSize, `tree cannot shrink from ${oldSize} to ${newSize}`);
  const tiles: Tile[] = [];
  for (let level = 0; Math.floor(newSize / leavesPerTileHash(level)) > 0; level++) {
    const oldCount = Math.floor(oldSize / leavesPerTileHash(level));
    const newCount = Math.floor(newSize / leavesPerTileHash(level));
    if (oldCount === newCount) continue;
    const lastIndex = Math.floor(newCount / tileWidth);
    for (let index = Math.floor(oldCount / tileWidth); index < lastIndex; index++) tiles.push({ level, index, width: tileWidth });
    const partialWidth = newCount - lastIndex * tileWidth;
    if (partialWidth > 0) tiles.push({ level, index: lastIndex, width: partialWidth });
  }
  return tiles;
}

/**
 * Position of node (level, index) in a flat array holding every node in the order the tree
 * completes them (Go sumdb/tlog StoredHashIndex): append-only, so a log can store all its
 * hashes in one sequence.
 */
export function storedHashIndex(level: number, index: number): number {
  assertIndex(level, 'node level');
  assertIndex(index, 'node index');
  // The last leaf of node (level, index) is leaf (index + 1) × 2^level - 1; the node is stored
  // right after that leaf's storage position and the `level` nodes it completes before it.
  let n = (index + 1) * 2 ** level - 1;
  let position = 0;
  while (n > 0) {
    position += n;
    n = Math.floor(n / 2);
  }
  const result = position + level;
  assert(Number.isSafeInteger(result), `stored hash index of (${level}, ${index}) overflows`);
  return result;
}

/** Number of hashes stored for a tree of `size` leaves (Go sumdb/tlog StoredHashCount). */
export function storedHashCount(size: number): number {
  assertIndex(size, 'tree size');
  if (size === 0) return 0;
  let count = storedHashIndex(0, size - 1) + 1;
  // The last leaf also completes one node per trailing one bit of its index.
  for (let i = size - 1; i % 2 === 1; i = (i - 1) / 2) count += 1;
  return count;
}
