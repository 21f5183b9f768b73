/**
 * The Merkle tree of RFC 6962 §2.1 / RFC 9162 §2.1: a plain recursive root for reference and
 * tests, and the incremental appender the sequencer uses to hash leaves as they commit.
 *
 * Positions are (level, index): level 0 holds leaf hashes, and node (level, index) is the
 * root of the complete subtree over leaves [index × 2^level, (index + 1) × 2^level). Only
 * complete subtrees have stored hashes; every other hash (a root, a proof element over a
 * ragged right edge) is folded from them on demand. Sizes and indexes are numbers (exact
 * below 2^53), so the arithmetic here avoids 32-bit bitwise operators.
 */
import { assert } from '../core/errors.ts';
import { emptyRoot, hashSize, nodeHash } from './hash.ts';
import { tlogLimits } from './limits.ts';

export { tileHeight, tileWidth, tilePath, entriesPath, tileForNode } from './tile.ts';

/** A complete subtree's position. */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** A complete subtree's position and hash, as reported by the appender. */
export interface CompletedNode extends NodeId {
  readonly hash: Buffer;
}

/** Supplies the hash of the complete subtree at (level, index); the storage layer reads tiles. */
export type NodeGetter = (level: number, index: number) => Buffer;

export function assertTreeSize(size: number, what: string): void {
  assert(Number.isSafeInteger(size) && size >= 0 && size <= tlogLimits.treeSizeMax, `${what} must be a tree size, got ${size}`);
}

/** 2^exponent for exponent 0..52, exact. */
export function powerOfTwo(exponent: number): number {
  return 2 ** exponent;
}

/** Whether n is a power of two (1, 2, 4, ...). */
export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1 && largestPowerOfTwoAtMost(n) === n;
}

/** log2 of a power of two, checked: a level computed from a non-power would misplace a node. */
export function exactLog2(p: number): number {
  const exponent = Math.round(Math.log2(p));
  assert(powerOfTwo(exponent) === p, `${p} is not a power of two`);
  return exponent;
}

/** The largest power of two ≤ n (n ≥ 1); Math.log2 can be off by one near 2^k, so correct it. */
export function largestPowerOfTwoAtMost(n: number): number {
  assert(n >= 1, `largestPowerOfTwoAtMost needs n >= 1, got ${n}`);
  let p = powerOfTwo(Math.floor(Math.log2(n)));
  while (p > n) p /= 2;
  while (p * 2 <= n) p *= 2;
  return p;
}

/** The largest power of two strictly below n (n ≥ 2): where RFC 6962 splits a tree of n leaves. */
export function splitPoint(n: number): number {
  assert(n >= 2, `splitPoint needs n >= 2, got ${n}`);
  return largestPowerOfTwoAtMost(n - 1);
}

/**
 * MTH(D[0:n]) from RFC 6962 §2.1 by plain recursion over leaf hashes. O(n) hashes: the
 * reference that tests hold the fast paths against, not something to run on a live log.
 */
export function rootOf(leafHashes: readonly Buffer[]): Buffer {
  if (leafHashes.length === 0) return Buffer.from(emptyRoot);
  return rangeRoot(leafHashes, 0, leafHashes.length);
}

function rangeRoot(leafHashes: readonly Buffer[], start: number, end: number): Buffer {
  const count = end - start;
  if (count === 1) return leafHashes[start]!;
  const k = splitPoint(count);
  return nodeHash(rangeRoot(leafHashes, start, start + k), rangeRoot(leafHashes, start + k, end));
}

/**
 * The complete subtrees whose hashes make up MTH(D[start:end]), left to right, largest first.
 * `start` must be a multiple of the largest of them, which holds for every range RFC 6962
 * recursion produces (and for [0, n), the whole tree).
 */
export function rangeNodes(start: number, end: number): NodeId[] {
  assert(end > start && start >= 0, `rangeNodes needs a non-empty range, got [${start}, ${end})`);
  const nodes: NodeId[] = [];
  let position = start;
  while (position < end) {
    const width = largestPowerOfTwoAtMost(end - position);
    assert(position % width === 0, `range [${start}, ${end}) is not aligned at ${position}`);
    nodes.push({ level: exactLog2(width), index: position / width });
    position += width;
  }
  return nodes;
}

/** Folds complete-subtree hashes (left to right) into the MTH of the range they cover. */
export function foldNodes(nodes: readonly NodeId[], getNode: NodeGetter): Buffer {
  assert(nodes.length > 0, 'foldNodes needs at least one node');
  const last = nodes[nodes.length - 1]!;
  let hash = getNode(last.level, last.index);
  for (let i = nodes.length - 2; i >= 0; i--) {
    const node = nodes[i]!;
    hash = nodeHash(getNode(node.level, node.index), hash);
  }
  return hash;
}

/** The nodes rootFromNodes reads for a tree of `size` leaves (none for the empty tree). */
export function rootNodes(size: number): NodeId[] {
  assertTreeSize(size, 'tree size');
  return size === 0 ? [] : rangeNodes(0, size);
}

/** The root of the tree of `size` leaves from at most log2(size) complete-subtree hashes. */
export function rootFromNodes(size: number, getNode: NodeGetter): Buffer {
  const nodes = rootNodes(size);
  return nodes.length === 0 ? Buffer.from(emptyRoot) : foldNodes(nodes, getNode);
}

/**
 * Appends leaf hashes one by one, keeping only the right frontier: the hashes of the complete
 * subtrees that decompose [0, size), largest first (one per set bit of size). Each append
 * reports every node that became complete, so a storage layer can write tile hashes in the
 * same transaction as the leaf; nothing else about the tree is kept in memory.
 */
export class MerkleAppender {
  #size: number;
  readonly #frontier: Buffer[];

  /** Resumes at `size` from the frontier hashes (see rootNodes(size) for which ones). */
  constructor(size = 0, frontier: readonly Buffer[] = []) {
    assertTreeSize(size, 'appender size');
    assert(frontier.length === rootNodes(size).length, `a tree of ${size} leaves has ${rootNodes(size).length} frontier hashes, got ${frontier.length}`);
    for (const hash of frontier) assert(hash.length === hashSize, 'frontier hashes must be 32 bytes');
    this.#size = size;
    this.#frontier = frontier.map((hash) => Buffer.from(hash));
  }

  /** Resumes from stored complete-subtree hashes. */
  static fromNodes(size: number, getNode: NodeGetter): MerkleAppender {
    return new MerkleAppender(size, rootNodes(size).map((node) => getNode(node.level, node.index)));
  }

  get size(): number {
    return this.#size;
  }

  /** A copy of the frontier, for checkpointing the appender's state. */
  frontier(): Buffer[] {
    return this.#frontier.map((hash) => Buffer.from(hash));
  }

  /**
   * Adds a leaf hash and returns the nodes completed by it: the leaf itself at level 0, then
   * one node per level while the new leaf closes a subtree (as many as trailing one bits of
   * the old size).
   */
  append(leafHash: Buffer): CompletedNode[] {
    assert(leafHash.length === hashSize, `leaf hashes must be ${hashSize} bytes, got ${leafHash.length}`);
    // A copy: callers may hold on to (or scribble on) what they passed.
    return this.appendSubtree(0, Buffer.from(leafHash));
  }

  /**
   * Adds a complete subtree of 2^level leaves at once, given its hash (its root, computed by
   * the caller from its leaves), and returns the nodes completed: the subtree's own at
   * `level`, then one per level above while it closes a bigger subtree. The size must be a
   * multiple of 2^level: then the smallest frontier subtree is at least that big, and the
   * new one merges exactly as a leaf does one level down.
   */
  appendSubtree(level: number, hash: Buffer): CompletedNode[] {
    const span = 2 ** level;
    assert(Number.isSafeInteger(level) && level >= 0 && this.#size % span === 0, `a subtree of 2^${level} leaves cannot be appended at size ${this.#size}`);
    assert(hash.length === hashSize, `subtree hashes must be ${hashSize} bytes, got ${hash.length}`);
    assert(this.#size + span <= tlogLimits.treeSizeMax, 'the tree is full');
    let index = this.#size / span;
    const completed: CompletedNode[] = [{ level, index, hash }];
    while (index % 2 === 1) {
      hash = nodeHash(this.#frontier.pop()!, hash);
      level += 1;
      index = (index - 1) / 2;
      completed.push({ level, index, hash });
    }
    // The frontier keeps its own copy: callers may hold on to (or scribble on) what we report.
    this.#frontier.push(Buffer.from(hash));
    this.#size += span;
    return completed;
  }

  /** MTH of the leaves so far: the frontier folded right to left, O(log size). */
  root(): Buffer {
    if (this.#frontier.length === 0) return Buffer.from(emptyRoot);
    let hash = this.#frontier[this.#frontier.length - 1]!;
    for (let i = this.#frontier.length - 2; i >= 0; i--) hash = nodeHash(this.#frontier[i]!, hash);
    return Buffer.from(hash);
  }
}
