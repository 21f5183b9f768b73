/**
 * A full audit of a tiled log in one pass: every entry is hashed, every tree node is
 * recomputed, and each is compared with what the log stores or signed:
 * - leaf hashes with the level-0 tiles,
 * - every node at a tile level (tree level 8k) with the stored tile at level k,
 * - the root at each checkpoint size with the checkpoint's root.
 * It is pure (feed it entries in order); the storage and HTTP sides drive it. The first
 * disagreement is reported with where it is, which is what an auditor needs to act on.
 */
import { leafHash } from './hash.ts';
import { MerkleAppender } from './tree.ts';
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

export class TreeAuditor {
  private readonly appender = new MerkleAppender();
  private readonly rootsWanted: Map<number, Buffer>;
  failure: AuditFailure | undefined;
  hashes = 0;

  /**
   * `roots`: size -> root that must hold there (checkpoints, the head). `innerNodes`, if
   * given, receives the nodes inside level-0 tiles that the audit computes anyway, for a
   * caller that keeps them (proofs then need no hashing).
   */
  constructor(private readonly stored: StoredHashLookup, roots: ReadonlyMap<number, Buffer>, private readonly innerNodes?: InnerNodeSink) {
    this.rootsWanted = new Map(roots);
    if (this.rootsWanted.has(0)) this.checkRoot();
  }

  /**
   * More roots that must hold, for a caller that learns them as the entries come (the
   * stored-log audit asks for each chunk's: a log's every checkpoint at once outgrows the
   * heap). None may be at a size the entries have passed, which would go unchecked; one at
   * the current size is checked now.
   */
  wantRoots(roots: Iterable<readonly [number, Buffer]>): void {
    for (const [size, root] of roots) {
      if (size < this.appender.size) throw new Error(`assertion failed: a root at size ${size} was wanted after the audit passed it (at ${this.appender.size})`);
      this.rootsWanted.set(size, root);
    }
    if (!this.failure && this.rootsWanted.has(this.appender.size)) this.checkRoot();
  }

  get size(): number {
    return this.appender.size;
  }

  /** Adds the next entries; stops at the first failure (see `failure`). */
  addEntries(entries: readonly Uint8Array[]): void {
    for (const entry of entries) {
      if (this.failure) return;
      const nodes = this.appender.append(leafHash(entry));
      this.hashes += nodes.length;
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
          return;
        }
      }
      this.checkRoot();
    }
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

  /** Call after the last entry: sizes that were wanted but never reached fail too. */
  finish(): AuditFailure | undefined {
    if (!this.failure && this.rootsWanted.size > 0) {
      const missing = Math.min(...this.rootsWanted.keys());
      this.failure = { kind: 'checkpoint', message: `a root was signed at size ${missing}, but the log has only ${this.appender.size} entries` };
    }
    return this.failure;
  }
}
