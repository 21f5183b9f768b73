/**
 * Reads tree nodes out of stored tiles, for roots and proofs at any size the log has
 * reached. A stored tile only grows and its first W hashes never change, so every tile
 * read is cached (bounded) and read again only when a wider one is needed; so is every
 * node computed inside a tile (a complete subtree's hash never changes either): for a full
 * tile all its inner nodes at once, in one buffer. At start the cache is filled with the
 * tiles the start-up check proved, inner nodes included (adopt), so proofs over the newest
 * entriesMax tiles (CHIPLEDGER_PROOF_CACHE_TILES) neither read PostgreSQL nor hash.
 *
 * That holds while the database's log only grows. One that went back under the process (a
 * failover to a replica without the newest commits, a restore) and took other entries holds
 * another history past the point it went back to; what was read before is then forgotten
 * (forget), by the log's reload (transparency-log.ts) and by a signing that finds it
 * (checkpointer.ts, LogWentBack).
 */
import { limits } from '../../core/limits.ts';
import { hashSize, innerNodeOffset, innerNodesOf, tileForNode, nodeFromTile, tileHeight, tileWidth, type NodeGetter, type NodeId } from '../../tlog/index.ts';
import { readTiles, type TileRow } from '../../store/tlog-tables.ts';
import type { Pool, PoolClient } from '../../store/pool.ts';

export const tileCacheEntriesMax = limits.tileCacheEntriesMax;

const tileKey = (level: number, index: number): string => `${level}/${index}`;

/** A cached tile; a full one carries its inner nodes (innerNodesOf) once a proof needed one, or from the start-up audit. */
export interface CachedTile extends TileRow {
  inner?: Buffer;
}

export class TileReader {
  private readonly cache = new Map<string, CachedTile>();
  private readonly nodes = new Map<string, Buffer>();
  /**
   * The least log size the kept tiles prove the database held when they were read: a tile at
   * level L, index i and width w stands for (256 i + w) nodes of level 8L, so at least
   * (256 i + w) 256^L entries. A committed log never shrinks, so a head smaller than this is
   * a database that went back.
   */
  private reach = 0;
  /**
   * How many times the kept tiles were forgotten: a getter made before a forget neither keeps
   * what it reads nor reads or keeps nodes, so a proof under way then puts nothing of the
   * forgotten history back. Also what the proof routes' size check goes by (log-routes.ts).
   */
  private forgotten = 0;

  /** `entriesMax`: tiles kept (16 KiB each with their inner nodes); limits.tileCacheEntriesMax by default. */
  constructor(private readonly db: Pool | PoolClient, readonly entriesMax: number = tileCacheEntriesMax) {}

  /** Fetches what these nodes need (one query at most) and returns a getter over them. */
  async nodeGetter(nodes: readonly NodeId[], db: Pool | PoolClient = this.db): Promise<NodeGetter> {
    // The rows this getter reads, held here: remembering a fetched tile may push a cached
    // one this proof also needs out of a full cache.
    const local = new Map<string, CachedTile>();
    const generation = this.forgotten;
    const needed = new Map<string, { level: number; index: number; width: number }>();
    for (const node of nodes) {
      const tile = tileForNode(node.level, node.index);
      const key = tileKey(tile.level, tile.index);
      const known = this.cache.get(key);
      if (known && known.width >= tile.width) {
        local.set(key, known);
        continue;
      }
      const want = needed.get(key);
      if (!want || want.width < tile.width) needed.set(key, { level: tile.level, index: tile.index, width: tile.width });
    }
    for (const row of await readTiles(db, [...needed.values()])) {
      local.set(tileKey(row.level, row.index), row);
      if (generation === this.forgotten) this.remember(row);
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
      const row = local.get(key);
      if (!row) throw new Error(`assertion failed: node ${level}/${index} was not among the nodes this getter was made for`);
      const height = level - tile.level * tileHeight;
      const offset = index * 2 ** height - tile.index * tileWidth;
      if (height === 0) return row.hashes.subarray(offset * hashSize, (offset + 1) * hashSize);
      if (row.width === tileWidth) {
        row.inner ??= innerNodesOf(row.hashes);
        const at = innerNodeOffset(height, offset >> height);
        return row.inner.subarray(at, at + hashSize);
      }
      const nodeKey = `${level}:${index}`;
      const current = generation === this.forgotten;
      const known = current ? this.nodes.get(nodeKey) : undefined;
      if (known) return known;
      const hash = nodeFromTile(tile, row.hashes.subarray(0, tile.width * 32), level, index);
      if (!current) return hash;
      if (this.nodes.size >= limits.nodeCacheEntriesMax) this.nodes.delete(this.nodes.keys().next().value!);
      this.nodes.set(nodeKey, hash);
      return hash;
    };
  }

  /**
   * The bytes of one tile as stored now, cut to `width` hashes; undefined if it is not that
   * wide yet. Always read from PostgreSQL, never from the cache: what the server serves as
   * a tile is what it stores, so a tile changed under a running server is caught by
   * `chipledger log verify`, while proofs come from the copies the start-up check proved.
   * `db`: where to read (the API passes its pool, whose reads are bounded).
   */
  async storedTile(level: number, index: number, width: number, db: Pool | PoolClient = this.db): Promise<Buffer | undefined> {
    const row = (await readTiles(db, [{ level, index }]))[0];
    if (!row || row.width < width) return undefined;
    return row.hashes.subarray(0, width * 32);
  }

  /** How many times the kept tiles were forgotten. */
  get generation(): number {
    return this.forgotten;
  }

  /** Whether the kept tiles show the log past `size` entries: the database went back, if its head is at `size`. */
  holdsPast(size: number): boolean {
    return this.reach > size;
  }

  /** Drops every tile and node kept: they may be of a history the database no longer holds. */
  forget(): void {
    this.cache.clear();
    this.nodes.clear();
    this.reach = 0;
    this.forgotten += 1;
  }

  /** Takes tiles already read and proved elsewhere (the start-up audit), oldest first. */
  adopt(rows: readonly CachedTile[]): void {
    for (const row of rows) this.remember(row);
  }

  /** Keeps the widest copy of each tile; the oldest entry goes when the cache is full. */
  private remember(row: CachedTile): void {
    const key = tileKey(row.level, row.index);
    const known = this.cache.get(key);
    if (known && known.width >= row.width) return;
    this.reach = Math.max(this.reach, (row.index * tileWidth + row.width) * tileWidth ** row.level);
    this.cache.delete(key);
    if (this.cache.size >= this.entriesMax) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, row);
  }
}
