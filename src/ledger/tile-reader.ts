/**
 * Reads tree nodes out of stored tiles, for roots and proofs at any size the log has
 * reached. Full tiles never change, so they are cached (bounded); partial tiles are read
 * again whenever a wider one is needed.
 */
import { limits } from '../core/limits.ts';
import { tileForNode, nodeFromTile, type NodeGetter, type NodeId } from '../tlog/index.ts';
import { readTiles, type TileRow } from '../store/tlog-tables.ts';
import type { Pool, PoolClient } from '../store/pool.ts';

export const tileCacheEntriesMax = limits.tileCacheEntriesMax;

const tileKey = (level: number, index: number): string => `${level}/${index}`;

export class TileReader {
  private readonly cache = new Map<string, TileRow>();

  constructor(private readonly db: Pool | PoolClient) {}

  /** Fetches what these nodes need (one query at most) and returns a getter over them. */
  async nodeGetter(nodes: readonly NodeId[], db: Pool | PoolClient = this.db): Promise<NodeGetter> {
    const needed = new Map<string, { level: number; index: number; width: number }>();
    for (const node of nodes) {
      const tile = tileForNode(node.level, node.index);
      const key = tileKey(tile.level, tile.index);
      const known = this.cache.get(key);
      if (known && known.width >= tile.width) continue;
      const want = needed.get(key);
      if (!want || want.width < tile.width) needed.set(key, { level: tile.level, index: tile.index, width: tile.width });
    }
    const fetched = await readTiles(db, [...needed.values()]);
    const local = new Map<string, TileRow>();
    for (const row of fetched) {
      local.set(tileKey(row.level, row.index), row);
      if (row.width === 256) this.remember(row);
    }
    for (const [key, want] of needed) {
      const row = local.get(key);
      if (!row || row.width < want.width) {
        throw new Error(`transparency log storage is missing tile ${key} (need width ${want.width}, have ${row?.width ?? 0})`);
      }
    }
    return (level, index) => {
      const tile = tileForNode(level, index);
      const key = tileKey(tile.level, tile.index);
      const row = local.get(key) ?? this.cache.get(key)!;
      return nodeFromTile(tile, row.hashes.subarray(0, tile.width * 32), level, index);
    };
  }

  /** The stored bytes of one tile, cut to `width` hashes; undefined if it is not that wide yet. */
  async tile(level: number, index: number, width: number): Promise<Buffer | undefined> {
    const key = tileKey(level, index);
    let row = this.cache.get(key);
    if (!row) {
      row = (await readTiles(this.db, [{ level, index }]))[0];
      if (row && row.width === 256) this.remember(row);
    }
    if (!row || row.width < width) return undefined;
    return row.hashes.subarray(0, width * 32);
  }

  private remember(row: TileRow): void {
    if (this.cache.size >= tileCacheEntriesMax) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(tileKey(row.level, row.index), row);
  }
}
