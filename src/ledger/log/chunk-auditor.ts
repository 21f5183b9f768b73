/**
 * The audit of one chunk of the stored log: a TreeAuditor started at the chunk's first entry
 * with the frontier there, fed the chunk's level-0 tiles, entries and the roots signed at the
 * sizes it reaches. Chunks are whole aligned subtrees (a power of two of tiles, starting at a
 * multiple of it), so each can be audited on its own, in any thread, in parallel with the
 * others: the frontier at a chunk's start is made of complete subtrees of the chunks before
 * it, which chunkStart computes from the stored upper tiles.
 *
 * Those stored hashes are only as good as the chunks before: each one was compared, as the
 * node it is, by the chunk that completed it. audit.ts reports chunks in order and stops at
 * the first failure, so a chunk started from a frontier a wrong hash spoilt is never
 * reported: the earlier chunk that found the hash wrong is.
 *
 * This module is loaded by the audit's worker threads: it imports the tree code alone, not
 * the store (whose pg would cost each worker's start).
 */
import { TreeAuditor, type AuditFailure, type AuditStart } from '../../tlog/audit.ts';
import { innerNodeOffset, innerNodesBytes, nodeFromTile, tileHeight, tileWidth } from '../../tlog/tile.ts';
import { rootNodes } from '../../tlog/tree.ts';
import { unpackLeafInputs, type PackedEntries } from '../../store/packed-entries.ts';

export interface AuditTile {
  level: number;
  index: number;
  width: number;
  hashes: Uint8Array;
}

/** One chunk to audit. */
export interface ChunkInput {
  /** The size before the chunk's first entry, and the frontier there (chunkStart). */
  start: AuditStart;
  /** The size after the chunk's last entry: the log stores an entry for each index before it. */
  end: number;
  /** The chunk's level-0 tiles. */
  tiles: readonly AuditTile[];
  entries: PackedEntries;
  /** The roots that must hold at sizes the chunk reaches (and at size 0, with the first chunk). */
  roots: Iterable<readonly [number, Buffer]>;
}

export interface ChunkOutcome {
  failure: AuditFailure | undefined;
  /** Hashes the chunk's audit computed. */
  hashes: number;
  /** The frontier after the chunk's last entry (for the roots signed beyond the log). */
  frontier: Buffer[];
  /**
   * With keepInnerNodes: the inner nodes (innerNodesOf's layout) of each of the chunk's
   * tiles, innerNodesBytes apiece, in the order the tiles came; only full tiles' are whole.
   */
  inner: Buffer | undefined;
}

export class ChunkAuditor {
  private readonly upper: Map<string, AuditTile>;

  /** `upper`: every tile above level 0, kept for the whole audit (few: 1/256 of level 0's). */
  constructor(upper: readonly AuditTile[], private readonly keepInnerNodes = false) {
    this.upper = new Map(upper.map((tile) => [`${tile.level}/${tile.index}`, tile]));
  }

  audit(chunk: ChunkInput): ChunkOutcome {
    const level0 = new Map(chunk.tiles.map((tile) => [tile.index, tile]));
    const firstTile = chunk.tiles[0]?.index ?? 0;
    const inner = this.keepInnerNodes ? Buffer.alloc(chunk.tiles.length * innerNodesBytes) : undefined;
    const keepInner = (level: number, index: number, hash: Buffer) => {
      const tileIndex = Math.floor(index / (tileWidth >> level));
      const slot = tileIndex - firstTile;
      if (chunk.tiles[slot]?.index !== tileIndex) return;
      hash.copy(inner!, slot * innerNodesBytes + innerNodeOffset(level, index - tileIndex * (tileWidth >> level)));
    };
    const auditor = new TreeAuditor((tileLevel, index) => {
      const tileIndex = Math.floor(index / tileWidth);
      const tile = tileLevel === 0 ? level0.get(tileIndex) : this.upper.get(`${tileLevel}/${tileIndex}`);
      const offset = index - tileIndex * tileWidth;
      if (!tile || offset >= tile.width) return undefined;
      return Buffer.from(tile.hashes.buffer, tile.hashes.byteOffset + offset * 32, 32);
    }, new Map(), inner ? keepInner : undefined, { start: chunk.start });
    auditor.wantRoots(chunk.roots);
    if (!auditor.failure) auditor.addLeafInputs(unpackLeafInputs(chunk.entries));
    // Entries missing at the chunk's end would otherwise pass: the next chunk starts from the
    // stored tiles, not from where this one's entries ended.
    const failure = auditor.finish(chunk.end);
    return { failure, hashes: auditor.hashes, frontier: auditor.frontier(), inner };
  }

  /**
   * The frontier at `size`, the start of a chunk of `chunkLeaves` (a power of two of tiles,
   * `size` a multiple of it), from the stored upper tiles: each complete subtree before the
   * chunk hashed up from the highest tile level at or below its own. Undefined where a tile
   * it needs is missing or too narrow, which a chunk before this one has then failed on: each
   * chunk is held to all its entries (audit's finish), so the chunk that completed the
   * missing node compared it with the store and found it absent.
   */
  chunkStart(size: number, chunkLeaves: number): AuditStart | undefined {
    if (size % chunkLeaves !== 0 || chunkLeaves % tileWidth !== 0) throw new Error(`assertion failed: a chunk of ${chunkLeaves} leaves does not start at ${size}`);
    const frontier: Buffer[] = [];
    for (const node of rootNodes(size)) {
      const tileLevel = Math.floor(node.level / tileHeight);
      const span = 2 ** (node.level - tileLevel * tileHeight);
      const tile = this.upper.get(`${tileLevel}/${Math.floor((node.index * span) / tileWidth)}`);
      if (tile === undefined || (node.index * span) % tileWidth + span > tile.width) return undefined;
      frontier.push(nodeFromTile(tile, tile.hashes, node.level, node.index));
    }
    return { size, frontier };
  }
}
