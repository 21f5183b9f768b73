/**
 * TreeAuditor fed the way the stored-log audit reads: the tiles above level 0 once, then
 * chunk by chunk each chunk's level-0 tiles with its packed entries and the roots signed at
 * the sizes it reaches, and at the end the roots signed beyond the log (each one a failure).
 * The same code runs in this thread for small logs and in the audit worker for big ones
 * (audit.ts).
 */
import { TreeAuditor, innerNodeOffset, innerNodesBytes, tileWidth, type AuditFailure } from '../../tlog/index.ts';
import { unpackEntries } from '../../store/tlog-tables.ts';

export interface AuditTile {
  level: number;
  index: number;
  width: number;
  hashes: Uint8Array;
}

export interface ChunkResult {
  /** The audit has failed (see finish). */
  failed: boolean;
  /**
   * With keepInnerNodes: the inner nodes (innerNodesOf's layout) of each of the chunk's
   * tiles, innerNodesBytes apiece, in the order the tiles came; only full tiles' are whole.
   */
  inner: Buffer | undefined;
}

export class ChunkAuditor {
  private level0 = new Map<number, AuditTile>();
  private tiles: readonly AuditTile[] = [];
  private inner: Buffer | undefined;
  private readonly upper: Map<string, AuditTile>;
  private readonly auditor: TreeAuditor;

  constructor(upper: readonly AuditTile[], private readonly keepInnerNodes = false) {
    this.upper = new Map(upper.map((tile) => [`${tile.level}/${tile.index}`, tile]));
    this.auditor = new TreeAuditor((tileLevel, index) => {
      const tileIndex = Math.floor(index / tileWidth);
      const tile = tileLevel === 0 ? this.level0.get(tileIndex) : this.upper.get(`${tileLevel}/${tileIndex}`);
      const offset = index - tileIndex * tileWidth;
      if (!tile || offset >= tile.width) return undefined;
      return Buffer.from(tile.hashes.buffer, tile.hashes.byteOffset + offset * 32, 32);
    }, new Map(), keepInnerNodes ? (level, index, hash) => this.keepInner(level, index, hash) : undefined);
  }

  /**
   * The next chunk's level-0 tiles and entries, and the roots that must hold at the sizes
   * it reaches (and at size 0, with the first chunk).
   */
  add(tiles: readonly AuditTile[], entries: { bytes: Uint8Array; count: number }, roots: Iterable<readonly [number, Buffer]>): ChunkResult {
    this.auditor.wantRoots(roots);
    this.level0 = new Map(tiles.map((tile) => [tile.index, tile]));
    this.tiles = tiles;
    this.inner = this.keepInnerNodes ? Buffer.alloc(tiles.length * innerNodesBytes) : undefined;
    this.auditor.addEntries(unpackEntries(entries));
    return { failed: this.auditor.failure !== undefined, inner: this.inner };
  }

  private keepInner(level: number, index: number, hash: Buffer): void {
    const tileIndex = Math.floor(index / (tileWidth >> level));
    const slot = tileIndex - (this.tiles[0]?.index ?? 0);
    if (this.tiles[slot]?.index !== tileIndex) return;
    hash.copy(this.inner!, slot * innerNodesBytes + innerNodeOffset(level, index - tileIndex * (tileWidth >> level)));
  }

  /** After the last chunk, with the roots signed at sizes beyond it: the first fails the audit. */
  finish(rootsBeyond: Iterable<readonly [number, Buffer]>): { hashes: number; failure: AuditFailure | undefined } {
    this.auditor.wantRoots(rootsBeyond);
    return { hashes: this.auditor.hashes, failure: this.auditor.finish() };
  }
}
