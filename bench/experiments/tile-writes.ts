/**
 * The tile upsert of a 2,048-leaf batch (8 full level-0 tiles and the growing level-1 and
 * level-2 tiles), three ways, in turn batch by batch on fresh databases of one durable
 * embedded PostgreSQL: as hex inside JSON in the statement text (how small batches send
 * them, store/batch-writes.ts), as a bytea[] parameter (node-postgres sends it as hex
 * text), and as one binary parameter cut up in SQL (how big batches send them). Not part
 * of `npm run bench`.
 *
 *   node --import tsx bench/experiments/tile-writes.ts [batches]
 */
import { randomBytes } from 'node:crypto';
import { migrate } from '../../src/store/migrate.ts';
import { createPool, type PoolClient } from '../../src/store/pool.ts';
import type { TileRow } from '../../src/store/tlog-tables.ts';
import { startBenchServer } from '../database.ts';
import { percentile } from '../stats.ts';

const batches = Number(process.argv[2] ?? 300);
const upsert = 'ON CONFLICT (level, index) DO UPDATE SET width = EXCLUDED.width, hashes = EXCLUDED.hashes WHERE tlog_tiles.width < EXCLUDED.width';

/** The growing tiles' hashes: each write holds the ones before it (the trigger of migration 018 refuses a changed hash). */
const growing = randomBytes(256 * 32);

function tilesOfBatch(batch: number): TileRow[] {
  const tiles: TileRow[] = [];
  for (let i = 0; i < 8; i += 1) tiles.push({ level: 0, index: 8 * batch + i, width: 256, hashes: randomBytes(8192) });
  const level1 = 8 * batch + 8;
  tiles.push({ level: 1, index: Math.floor((level1 - 1) / 256), width: ((level1 - 1) % 256) + 1, hashes: growing.subarray(0, (((level1 - 1) % 256) + 1) * 32) });
  const level2 = Math.floor(level1 / 256);
  if (level2 > 0) tiles.push({ level: 2, index: 0, width: level2, hashes: growing.subarray(0, level2 * 32) });
  return tiles;
}

const ways: Record<string, (client: PoolClient, tiles: TileRow[]) => Promise<unknown>> = {
  'json, hex, inline': (client, tiles) => {
    const rows = tiles.map((tile) => ({ level: tile.level, index: tile.index, width: tile.width, hashes: tile.hashes.toString('hex') }));
    return client.query(`INSERT INTO tlog_tiles (level, index, width, hashes)
      SELECT level, index, width, decode(hashes, 'hex') FROM json_to_recordset($cl$${JSON.stringify(rows)}$cl$::json) AS t(level smallint, index bigint, width smallint, hashes text) ${upsert}`);
  },
  'values, hex literals, inline': (client, tiles) => client.query(`INSERT INTO tlog_tiles (level, index, width, hashes) VALUES ${
    tiles.map((tile) => `(${tile.level}, ${tile.index}, ${tile.width}, '\\x${tile.hashes.toString('hex')}'::bytea)`).join(', ')} ${upsert}`),
  'bytea[] (hex text)': (client, tiles) => client.query(
    `INSERT INTO tlog_tiles (level, index, width, hashes) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::smallint[], $4::bytea[]) ${upsert}`,
    [tiles.map((t) => t.level), tiles.map((t) => t.index), tiles.map((t) => t.width), tiles.map((t) => t.hashes)],
  ),
  'one binary bytea': (client, tiles) => {
    const starts: number[] = [];
    let at = 1;
    for (const tile of tiles) {
      starts.push(at);
      at += tile.hashes.length;
    }
    return client.query(
      `INSERT INTO tlog_tiles (level, index, width, hashes)
       SELECT t.level, t.index, t.width, substring($4::bytea FROM t.start FOR t.width * 32)
       FROM unnest($1::smallint[], $2::bigint[], $3::smallint[], $5::int[]) AS t(level, index, width, start) ${upsert}`,
      [tiles.map((t) => t.level), tiles.map((t) => t.index), tiles.map((t) => t.width), Buffer.concat(tiles.map((t) => t.hashes)), starts],
    );
  },
};

const server = await startBenchServer('tile-writes');
try {
  const pools = await Promise.all(Object.keys(ways).map(async (_, i) => {
    const pool = createPool({ url: await server.createDatabase(`tiles_${i}`), connectionsMax: 1, applicationName: 'tile-writes' });
    await migrate(pool);
    return pool;
  }));
  const clients = await Promise.all(pools.map((pool) => pool.connect()));
  const spent = Object.keys(ways).map(() => [] as number[]);
  for (let batch = 0; batch < batches; batch += 1) {
    const tiles = tilesOfBatch(batch);
    for (const [i, write] of Object.values(ways).entries()) {
      await clients[i]!.query('BEGIN');
      const started = performance.now();
      await write(clients[i]!, tiles);
      spent[i]!.push(performance.now() - started);
      await clients[i]!.query('COMMIT');
    }
  }
  for (const [i, name] of Object.keys(ways).entries()) {
    const sorted = Float64Array.from(spent[i]!).sort();
    console.log(`${name.padEnd(22)} per batch: p50 ${percentile(sorted, 50).toFixed(2)} ms, mean ${(spent[i]!.reduce((a, b) => a + b, 0) / batches).toFixed(2)} ms`);
  }
  for (const client of clients) client.release();
  await Promise.all(pools.map((pool) => pool.end()));
} finally {
  await server.stop();
}
