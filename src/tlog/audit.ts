/**
 * A full audit of a tiled log in one pass: every entry is hashed, every tree node is
 * recomputed, and each is compared with what the log stores or signed:
 * - leaf hashes with the level-0 tiles,
 * - every node at a tile level (tree level 8k) with the stored tile at level k,
 * - the root at each checkpoint size with the checkpoint's root.
 * It is pure (feed it entries in order); the storage and HTTP sides drive it. The first
 * disagreement is reported with where it is, which is what an auditor needs to act on.
 */
import { leafHash, leafHashOfInput, nodeHash } from './hash.ts';
import { MerkleAppender, type CompletedNode } from './tree.ts';
import { tileHeight, tileWidth } from './tile.ts';

export interface AuditFailure {
  /** What disagreed: an entry with its leaf, a stored tile hash, or a signed root. */
  kind: 'leaf' | 'tile' | 'checkpoint';
  message: string;
}

/** Stored hash at tree level 8 × tileLevel, index; undefined when the store lacks it. */
export type StoredHashLookup = (tileLevel: number, index: number) => Buffer | undefined;

/** Told each node the audit computed inside a level-0 tile (tree levels 1 to 7), once it is complete. */
export type InnerNodeSink = (level: number, index: number, hash: Buffer) => void;

/**
 * Where an audit of part of a log starts: the size the entries before it reach, and the
 * frontier there (MerkleAppender's: the complete subtrees rootNodes(size) names, left to
 * right). An audit from there checks what one from the start would check of the entries
 * it is given, so parts of a log can be audited apart (in parallel), provided each
 * frontier is the true one.
 */
export interface AuditStart {
  size: number;
  frontier: readonly Buffer[];
}

export interface AuditOptions {
  /** Audit from there, not from the empty log; roots below it cannot be checked, and are refused. */
  start?: AuditStart;
  /**
   * Hash whole level-0 tiles at once where that gives the same answer (default true); false
   * goes one entry at a time everywhere, the reference the tile path is tested against.
   */
  wholeTiles?: boolean;
}

export class TreeAuditor {
  private readonly appender: MerkleAppender;
  private readonly wholeTiles: boolean;
  private readonly rootsWanted: Map<number, Buffer>;
  /**
   * The sizes rootsWanted had, ascending, from `nextWanted` on (those before it passed): the
   * whole-tile path asks whether one lies inside a tile, a search, however many are wanted
   * (a quiet log signs a checkpoint about every entry).
   */
  private wantedSizes: number[] = [];
  private nextWanted = 0;
  failure: AuditFailure | undefined;
  hashes = 0;
  /** Level-0 tiles hashed whole (the fast path), for the tests that it runs. */
  wholeTilesHashed = 0;

  /**
   * `roots`: size -> root that must hold there (checkpoints, the head). `innerNodes`, if
   * given, receives the nodes inside level-0 tiles that the audit computes anyway, for a
   * caller that keeps them (proofs then need no hashing).
   */
  constructor(private readonly stored: StoredHashLookup, roots: ReadonlyMap<number, Buffer>, private readonly innerNodes?: InnerNodeSink, options: AuditOptions = {}) {
    this.appender = options.start === undefined ? new MerkleAppender() : new MerkleAppender(options.start.size, options.start.frontier);
    this.wholeTiles = options.wholeTiles ?? true;
    this.rootsWanted = new Map();
    this.wantRoots(roots);
  }

  /**
   * More roots that must hold, for a caller that learns them as the entries come (the
   * stored-log audit asks for each chunk's: a log's every checkpoint at once outgrows the
   * heap). None may be at a size the entries have passed, which would go unchecked; one at
   * the current size is checked now.
   */
  wantRoots(roots: Iterable<readonly [number, Buffer]>): void {
    const added: number[] = [];
    for (const [size, root] of roots) {
      if (size < this.appender.size) throw new Error(`assertion failed: a root at size ${size} was wanted after the audit passed it (at ${this.appender.size})`);
      this.rootsWanted.set(size, root);
      added.push(size);
    }
    if (added.length > 0) {
      this.wantedSizes = [...this.wantedSizes.slice(this.nextWanted), ...added].sort((a, b) => a - b);
      this.nextWanted = 0;
    }
    if (!this.failure && this.rootsWanted.has(this.appender.size)) this.checkRoot();
  }

  get size(): number {
    return this.appender.size;
  }

  /** The frontier at the current size (AuditStart's), for the audit of what comes next. */
  frontier(): Buffer[] {
    return this.appender.frontier();
  }

  /** Adds the next entries; stops at the first failure (see `failure`). */
  addEntries(entries: readonly Uint8Array[]): void {
    this.addLeaves(entries, leafHash);
  }

  /**
   * Adds the next entries given as leaf inputs, 0x00 || entry (unpackLeafInputs): hashed
   * where they lie, with no copy. Stops at the first failure.
   */
  addLeafInputs(inputs: readonly Uint8Array[]): void {
    this.addLeaves(inputs, leafHashOfInput);
  }

  private addLeaves(leaves: readonly Uint8Array[], hashLeaf: (leaf: Uint8Array) => Buffer): void {
    let at = 0;
    while (at < leaves.length && !this.failure) {
      if (this.wholeTiles && leaves.length - at >= tileWidth && this.addTile(leaves, at, hashLeaf)) {
        at += tileWidth;
      } else {
        this.addEntry(hashLeaf(leaves[at]!));
        at += 1;
      }
    }
  }

  /** One entry, by its leaf hash: the leaf and the nodes it completes, each compared where the log stores it. */
  private addEntry(leaf: Buffer): void {
    const nodes = this.appender.append(leaf);
    this.hashes += nodes.length;
    if (!this.compareNodes(nodes)) return;
    this.checkRoot();
  }

  /**
   * A whole level-0 tile's entries at once, where the log is at a tile boundary, the store
   * has the full tile and no root is wanted inside it: the same hashes and comparisons as
   * addEntry's, a level at a time, without the appender's per-leaf copies and lists (a
   * third of the audit's time beside the hashing). False where it does not apply, or where
   * a leaf disagrees: the caller then goes one entry at a time, and reports the failure
   * exactly as it would have without this path.
   */
  private addTile(leaves: readonly Uint8Array[], at: number, hashLeaf: (leaf: Uint8Array) => Buffer): boolean {
    const size = this.appender.size;
    if (size % tileWidth !== 0 || this.rootWantedWithin(size + 1, size + tileWidth - 1)) return false;
    let level: Buffer[] = new Array(tileWidth);
    for (let offset = 0; offset < tileWidth; offset += 1) {
      const leaf = hashLeaf(leaves[at + offset]!);
      const stored = this.stored(0, size + offset);
      if (stored === undefined || !stored.equals(leaf)) return false;
      level[offset] = leaf;
    }
    for (let height = 1; height <= tileHeight; height += 1) {
      const above: Buffer[] = new Array(level.length / 2);
      const first = size / 2 ** height;
      for (let i = 0; i < above.length; i += 1) {
        above[i] = nodeHash(level[2 * i]!, level[2 * i + 1]!);
        if (height < tileHeight) this.innerNodes?.(height, first + i, above[i]!);
      }
      level = above;
    }
    const nodes = this.appender.appendSubtree(tileHeight, level[0]!);
    this.hashes += 2 * tileWidth - 2 + nodes.length;
    this.wholeTilesHashed += 1;
    if (!this.compareNodes(nodes)) return true;
    this.checkRoot();
    return true;
  }

  /**
   * Compares each node at a tile level (8k) with the hash the log stores there, and hands
   * those inside a level-0 tile to innerNodes; false (with `failure` set) at the first that
   * disagrees.
   */
  private compareNodes(nodes: readonly CompletedNode[]): boolean {
    for (const node of nodes) {
      if (node.level % tileHeight !== 0) {
        if (node.level < tileHeight) this.innerNodes?.(node.level, node.index, node.hash);
        continue;
      }
      const tileLevel = node.level / tileHeight;
      const stored = this.stored(tileLevel, node.index);
      if (stored === undefined || !stored.equals(node.hash)) {
        const where = tileLevel === 0 ? `entry ${node.index}` : `tile level ${tileLevel} hash ${node.index} (tile ${Math.floor(node.index / tileWidth)})`;
        this.failure = {
          kind: tileLevel === 0 ? 'leaf' : 'tile',
          message: stored === undefined ? `the log stores no hash for ${where}` : `${where} hashes to ${node.hash.toString('hex')} but the log stores ${stored.toString('hex')}`,
        };
        return false;
      }
    }
    return true;
  }

  /** Whether a root is wanted at a size from `from` to `to`; `from` never goes back. */
  private rootWantedWithin(from: number, to: number): boolean {
    const sizes = this.wantedSizes;
    // Sizes below `from` are passed for good: skipped once, then never looked at again.
    while (this.nextWanted < sizes.length && sizes[this.nextWanted]! < from) this.nextWanted += 1;
    return this.nextWanted < sizes.length && sizes[this.nextWanted]! <= to;
  }

  private checkRoot(): void {
    const wanted = this.rootsWanted.get(this.appender.size);
    if (wanted === undefined) return;
    const root = this.appender.root();
    if (!root.equals(wanted)) {
      this.failure = { kind: 'checkpoint', message: `the entries give root ${root.toString('hex')} at size ${this.appender.size}, but ${wanted.toString('hex')} was signed or recorded there` };
    }
    this.rootsWanted.delete(this.appender.size);
  }

  /**
   * Call after the last entry, with the size the entries should have reached (the log's, a
   * chunk's end): an entry that never came fails, as do sizes wanted but never reached.
   */
  finish(expectedSize = this.appender.size): AuditFailure | undefined {
    if (!this.failure && this.appender.size < expectedSize) {
      // Entries before it all matched their stored leaves: the one missing is this one (a
      // gap further back would have shifted an entry onto a leaf that is not its own).
      this.failure = { kind: 'leaf', message: `the log stores no entry ${this.appender.size} (its entries end there, ${expectedSize - this.appender.size} short of ${expectedSize})` };
    }
    if (!this.failure && this.rootsWanted.size > 0) {
      const missing = Math.min(...this.rootsWanted.keys());
      this.failure = { kind: 'checkpoint', message: `a root was signed at size ${missing}, but the log has only ${this.appender.size} entries` };
    }
    return this.failure;
  }
}
