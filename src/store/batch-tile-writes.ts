/**
 * The log tiles a ledger batch widened, as one statement: hex inside the batch's round trip
 * when small, one binary parameter when big.
 */
import { inline, json, type Step } from './batch-steps.ts';
import type { TileRow } from './tlog-tables.ts';

/**
 * From this many bytes of tile hashes (two full tiles) a batch sends them as one binary
 * parameter, at the cost of a round trip of its own: as hex inside the batch's text, the
 * tiles of a 2,048-leaf batch (8 full tiles and two partial ones, 82 KiB) took 6.5 ms to
 * write, as binary 1.3 ms (bench/experiments/tile-writes.ts): about 60 µs a KiB, so at
 * 16 KiB binary saves about 1 ms against a local round trip of 0.1–0.3 ms. A small
 * batch's partial tiles stay in its one round trip.
 */
const binaryTileBytesMin = 16 * 1024;

/**
 * A tile the batch widened is rewritten whole. The trigger of migration 018 refuses a
 * rewrite that would narrow it or change a hash it holds, so a row changed behind our back
 * fails the batch instead of being kept (or silently skipped, as a conditional upsert did).
 */
const tileUpsert = 'ON CONFLICT (level, index) DO UPDATE SET width = EXCLUDED.width, hashes = EXCLUDED.hashes';

export function tileStep(tiles: TileRow[]): Step {
  if (tiles.reduce((bytes, tile) => bytes + tile.hashes.length, 0) >= binaryTileBytesMin) {
    const hashes = packed(tiles.map((tile) => tile.hashes));
    return {
      text: `INSERT INTO tlog_tiles (level, index, width, hashes)
        SELECT t.level, t.index, t.width, substring($4::bytea FROM t.start FOR t.width * 32)
        FROM unnest($1::smallint[], $2::bigint[], $3::smallint[], $5::int[]) AS t(level, index, width, start) ${tileUpsert}`,
      values: [tiles.map((tile) => tile.level), tiles.map((tile) => tile.index), tiles.map((tile) => tile.width), hashes.bytes, hashes.starts],
    };
  }
  const rows = tiles.map((tile) => ({ level: tile.level, index: tile.index, width: tile.width, hashes: tile.hashes.toString('hex') }));
  return inline(`INSERT INTO tlog_tiles (level, index, width, hashes)
    SELECT level, index, width, decode(hashes, 'hex') FROM json_to_recordset(${json(rows)}) AS t(level smallint, index bigint, width smallint, hashes text) ${tileUpsert}`);
}

/**
 * Byte strings as one binary parameter: node-postgres sends a Buffer as binary, but a
 * Buffer[] as hex text. SQL cuts each one out with substring(bytes FROM start FOR length);
 * substring counts from 1.
 */
export function packed(parts: Buffer[]): { bytes: Buffer; starts: number[]; lengths: number[] } {
  const starts: number[] = [];
  const lengths: number[] = [];
  let at = 1;
  for (const part of parts) {
    starts.push(at);
    lengths.push(part.length);
    at += part.length;
  }
  return { bytes: Buffer.concat(parts), starts, lengths };
}

