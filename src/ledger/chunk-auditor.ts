/**
 * TreeAuditor fed the way the stored-log audit reads: the tiles above level 0 once, then
 * chunk by chunk each chunk's level-0 tiles with its packed entries. The same code runs in
 * this thread for small logs and in the audit worker for big ones (log-audit.ts).
 */
import { TreeAuditor, tileWidth, type AuditFailure } from '../tlog/index.ts';
import { unpackEntries } from '../store/tlog-tables.ts';

export interface AuditTile {
  level: number;
  index: number;
  width: number;
  hashes: Uint8Array;
}

export class ChunkAuditor {
  private level0 = new Map<number, AuditTile>();
  private readonly upper: Map<string, AuditTile>;
  private readonly auditor: TreeAuditor;

  constructor(upper: readonly AuditTile[], roots: ReadonlyMap<number, Buffer>) {
    this.upper = new Map(upper.map((tile) => [`${tile.level}/${tile.index}`, tile]));
    this.auditor = new TreeAuditor((tileLevel, index) => {
      const tileIndex = Math.floor(index / tileWidth);
      const tile = tileLevel === 0 ? this.level0.get(tileIndex) : this.upper.get(`${tileLevel}/${tileIndex}`);
      const offset = index - tileIndex * tileWidth;
      if (!tile || offset >= tile.width) return undefined;
      return Buffer.from(tile.hashes.buffer, tile.hashes.byteOffset + offset * 32, 32);
    }, roots);
  }

  /** The next chunk's level-0 tiles and entries; true once the audit has failed. */
  add(tiles: readonly AuditTile[], entries: { bytes: Uint8Array; count: number }): boolean {
    this.level0 = new Map(tiles.map((tile) => [tile.index, tile]));
    this.auditor.addEntries(unpackEntries(entries));
    return this.auditor.failure !== undefined;
  }

  finish(): { hashes: number; failure: AuditFailure | undefined } {
    return { hashes: this.auditor.hashes, failure: this.auditor.finish() };
  }
}
