/**
 * The full audit of the stored log, driven from the database: events and level-0 tiles
 * are streamed in chunks, the (few) higher tiles are read once. Used at start and by
 * operators; `chipledger log verify` runs the same TreeAuditor over HTTP.
 */
import { TreeAuditor, tileHeight, tileWidth, type AuditFailure } from '../tlog/index.ts';
import type { Pool, PoolClient } from '../store/pool.ts';
import { readEntries, readTileRange, type TileRow } from '../store/tlog-tables.ts';

/** Level-0 tiles per round trip: 64 × 256 = 16,384 entries. */
export const auditTilesPerChunk = 64;

export interface AuditResult {
  size: number;
  hashes: number;
  failure: AuditFailure | undefined;
}

export async function auditStoredLog(db: Pool | PoolClient, size: number, roots: ReadonlyMap<number, Buffer>): Promise<AuditResult> {
  const upper = new Map<string, TileRow>();
  for (let level = 1; Math.floor(size / 2 ** (tileHeight * level)) > 0; level += 1) {
    for (const row of await readTileRange(db, level, 0, Number.MAX_SAFE_INTEGER)) upper.set(`${level}/${row.index}`, row);
  }
  let level0 = new Map<number, TileRow>();
  const stored = (tileLevel: number, index: number): Buffer | undefined => {
    const tileIndex = Math.floor(index / tileWidth);
    const row = tileLevel === 0 ? level0.get(tileIndex) : upper.get(`${tileLevel}/${tileIndex}`);
    const offset = index - tileIndex * tileWidth;
    if (!row || offset >= row.width) return undefined;
    return row.hashes.subarray(offset * 32, offset * 32 + 32);
  };
  const auditor = new TreeAuditor(stored, roots);
  for (let firstTile = 0; firstTile * tileWidth < size && !auditor.failure; firstTile += auditTilesPerChunk) {
    const rows = await readTileRange(db, 0, firstTile, auditTilesPerChunk);
    level0 = new Map(rows.map((row) => [row.index, row]));
    const from = firstTile * tileWidth;
    auditor.addEntries(await readEntries(db, from, Math.min(size, from + auditTilesPerChunk * tileWidth)));
  }
  return { size, hashes: auditor.hashes, failure: auditor.finish() };
}
