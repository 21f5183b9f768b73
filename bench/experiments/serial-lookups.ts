/**
 * The look-up a 100,000-serial manifest makes before it writes (store/batch-state.ts
 * loadBatchState: the units those serials already have), as the units table grows. (Until
 * migration 075 it also looked up which were live in a shipment's manifest rows; a unit's
 * shipment now says so.) The new serials fall between existing ones, as
 * serials of several makers would. Rows are written straight into the tables with triggers
 * off. Median of 3 after a warm-up. Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/serial-lookups.ts
 */
import { migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';

const lookedUp = 100_000;
const sizes = [400_000, 2_000_000, 4_000_000];

const ways: Array<[string, string]> = [
  ['units, JOIN unnest (hash or merge join)', 'SELECT u.* FROM units u JOIN unnest($1::text[]) AS k(serial) ON u.serial = k.serial'],
  ['units, = ANY (index probes)', 'SELECT u.* FROM units u WHERE u.serial = ANY($1::text[])'],
  ['units, = ANY of a sub-select (unplanned array)', 'SELECT u.* FROM units u WHERE u.serial = ANY(ARRAY(SELECT unnest($1::text[])))'],
];

const server = await startBenchServer('serial-lookups');
try {
  const pool = createPool({ url: await server.createDatabase('serial_lookups'), connectionsMax: 1, applicationName: 'serial-lookups' });
  await migrate(pool);
  const client = await pool.connect();
  await client.query('SET session_replication_role = replica'); // no triggers: rows straight in
  let have = 0;
  for (const size of sizes) {
    await client.query(`INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq, ever_shipped)
      SELECT 'SN-' || lpad(i::text, 8, '0'), NULL, 'PRD-1', 'ORG-1', 'delivered', 'S-1', NULL, 1, true FROM generate_series(${have + 1}, ${size}) AS i`);
    have = size;
    await client.query('VACUUM ANALYZE');
    const step = Math.floor(size / lookedUp);
    const serials = Array.from({ length: lookedUp }, (_, i) => `SN-${String(i * step).padStart(8, '0')}X`);
    for (const [name, sql] of ways) {
      await client.query(sql, [serials]);
      const times: number[] = [];
      for (let run = 0; run < 3; run += 1) {
        const started = performance.now();
        await client.query(sql, [serials]);
        times.push(performance.now() - started);
      }
      console.log(`${size.toLocaleString('en-US').padStart(9)} units: ${name.padEnd(44)} ${median(times).toFixed(0).padStart(5)} ms`);
    }
  }
  client.release();
  await pool.end();
} finally {
  await server.stop();
}
