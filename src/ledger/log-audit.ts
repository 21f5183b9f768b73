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
  const fetchChunk = async (firstTile: number) => {
    const from = firstTile * tileWidth;
    const rows = await readTileRange(db, 0, firstTile, auditTilesPerChunk);
    return { rows, entries: await readEntries(db, from, Math.min(size, from + auditTilesPerChunk * tileWidth)) };
  };
  // On a pool the next chunk is read while this one is hashed; one client reads in turn.
  const prefetch = isPool(db);
  let next = size > 0 ? fetchChunk(0) : undefined;
  for (let firstTile = 0; next && !auditor.failure; firstTile += auditTilesPerChunk) {
    const chunk = await next;
    const following = firstTile + auditTilesPerChunk;
    next = following * tileWidth < size ? (prefetch ? fetchChunk(following) : undefined) : undefined;
    level0 = new Map(chunk.rows.map((row) => [row.index, row]));
    auditor.addEntries(chunk.entries);
    if (!prefetch && following * tileWidth < size) next = fetchChunk(following);
  }
  // Stopped at a failure with a read still in flight: its outcome no longer matters.
  next?.catch(() => {});
  return { size, hashes: auditor.hashes, failure: auditor.finish() };
}

function isPool(db: Pool | PoolClient): db is Pool {
  return 'totalCount' in db;
}
