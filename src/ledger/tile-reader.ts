/**
 * Reads tree nodes out of stored tiles, for roots and proofs at any size the log has
 * reached. A stored tile only grows and its first W hashes never change, so every tile
 * read is cached (bounded) and read again only when a wider one is needed; so is every
 * node computed inside a tile (a complete subtree's hash never changes either).
 */
import { limits } from '../core/limits.ts';
import { tileForNode, nodeFromTile, type NodeGetter, type NodeId } from '../tlog/index.ts';
import { readTiles, type TileRow } from '../store/tlog-tables.ts';
import type { Pool, PoolClient } from '../store/pool.ts';

export const tileCacheEntriesMax = limits.tileCacheEntriesMax;
/** Computed inner nodes kept: 64 Ki × 32 bytes = 2 MiB of hashes. */
export const nodeCacheEntriesMax = 65_536;

const tileKey = (level: number, index: number): string => `${level}/${index}`;

export class TileReader {
  private readonly cache = new Map<string, TileRow>();
  private readonly nodes = new Map<string, Buffer>();

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
      this.remember(row);
    }
    for (const [key, want] of needed) {
      const row = local.get(key);
      if (!row || row.width < want.width) {
        throw new Error(`transparency log storage is missing tile ${key} (need width ${want.width}, have ${row?.width ?? 0})`);
      }
    }
    return (level, index) => {
      const nodeKey = `${level}:${index}`;
      const known = this.nodes.get(nodeKey);
      if (known) return known;
      const tile = tileForNode(level, index);
      const key = tileKey(tile.level, tile.index);
      const row = local.get(key) ?? this.cache.get(key)!;
      const hash = nodeFromTile(tile, row.hashes.subarray(0, tile.width * 32), level, index);
      if (this.nodes.size >= nodeCacheEntriesMax) this.nodes.delete(this.nodes.keys().next().value!);
      this.nodes.set(nodeKey, hash);
      return hash;
    };
  }

  /** The stored bytes of one tile, cut to `width` hashes; undefined if it is not that wide yet. */
  async tile(level: number, index: number, width: number): Promise<Buffer | undefined> {
    const key = tileKey(level, index);
    let row = this.cache.get(key);
    if (!row || row.width < width) {
      row = (await readTiles(this.db, [{ level, index }]))[0];
      if (row) this.remember(row);
    }
    if (!row || row.width < width) return undefined;
    return row.hashes.subarray(0, width * 32);
  }

  /** Keeps the widest copy of each tile; the oldest entry goes when the cache is full. */
  private remember(row: TileRow): void {
    const key = tileKey(row.level, row.index);
    const known = this.cache.get(key);
    if (known && known.width >= row.width) return;
    this.cache.delete(key);
    if (this.cache.size >= tileCacheEntriesMax) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, row);
  }
}
