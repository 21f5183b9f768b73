/**
 * Experiment behind a BENCHMARKS.md suggestion: how a 100,000-serial manifest could be
 * written. Times, inside transactions that are rolled back, the statements the ledger
 * sends today (json_populate_recordset upserts) against scalar-array (unnest) inserts,
 * on a durable embedded PostgreSQL with the real schema and one booked shipment.
 *
 *   node --import tsx bench/experiments/manifest-sql.ts [runs]
 */
import type { PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { bookManifestShipment } from './manifest-shipment.ts';
import { median, round } from '../stats.ts';

const serialsCount = 100_000;
const runs = Number(process.argv[2] ?? 3);

const server = await startBenchServer('manifest-sql');
try {
  const { pool, productId, recipientOrgId, shipmentId, serials } = await bookManifestShipment(server, 'manifest-sql', serialsCount);
  const unitRows = serials.map((serial) => ({ serial, gpu_uuid: null, product_id: productId, recipient_org_id: recipientOrgId, custody: 'licensed', shipment_id: shipmentId, site_id: null, updated_seq: 1 }));
  const manifestRows = serials.map((serial) => ({ shipment_id: shipmentId, serial, live: true }));
  const unitColumns = 'serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq';
  const unitUpdates = 'gpu_uuid = EXCLUDED.gpu_uuid, product_id = EXCLUDED.product_id, recipient_org_id = EXCLUDED.recipient_org_id, custody = EXCLUDED.custody, shipment_id = EXCLUDED.shipment_id, site_id = EXCLUDED.site_id, updated_seq = EXCLUDED.updated_seq';

  type Variant = { name: string; run(client: PoolClient): Promise<unknown> };
  const variants: Variant[] = [
    { name: 'node: JSON.stringify of 100k unit rows + 100k manifest rows', run: async () => [JSON.stringify(unitRows), JSON.stringify(manifestRows)] },
    { name: 'today: units upsert via json_populate_recordset (JSON built in the timing)', run: (c) => c.query(`INSERT INTO units (${unitColumns}) SELECT ${unitColumns} FROM json_populate_recordset(NULL::units, $1::json) ON CONFLICT (serial) DO UPDATE SET ${unitUpdates}`, [JSON.stringify(unitRows)]) },
    { name: 'units upsert via unnest(text[]), constants as parameters', run: (c) => c.query(`INSERT INTO units (${unitColumns}) SELECT s, NULL, $2, $3, 'licensed', $4, NULL, $5 FROM unnest($1::text[]) AS s ON CONFLICT (serial) DO UPDATE SET ${unitUpdates}`, [serials, productId, recipientOrgId, shipmentId, 1]) },
    { name: 'units plain insert via unnest(text[]) (no ON CONFLICT: all new)', run: (c) => c.query(`INSERT INTO units (${unitColumns}) SELECT s, NULL, $2, $3, 'licensed', $4, NULL, $5 FROM unnest($1::text[]) AS s`, [serials, productId, recipientOrgId, shipmentId, 1]) },
    { name: 'units plain insert via unnest, foreign-key triggers off (lower bound)', run: async (c) => {
      await c.query('SET LOCAL session_replication_role = replica');
      return c.query(`INSERT INTO units (${unitColumns}) SELECT s, NULL, $2, $3, 'licensed', $4, NULL, $5 FROM unnest($1::text[]) AS s`, [serials, productId, recipientOrgId, shipmentId, 1]);
    } },
    { name: 'today: shipment_serials via json_populate_recordset', run: (c) => c.query('INSERT INTO shipment_serials (shipment_id, serial, live) SELECT shipment_id, serial, live FROM json_populate_recordset(NULL::shipment_serials, $1::json)', [JSON.stringify(manifestRows)]) },
    { name: 'shipment_serials via unnest(text[])', run: (c) => c.query('INSERT INTO shipment_serials (shipment_id, serial, live) SELECT $2, s, true FROM unnest($1::text[]) AS s', [serials, shipmentId]) },
    { name: 'today: load units WHERE serial = ANY($1) (none exist)', run: (c) => c.query('SELECT * FROM units WHERE serial = ANY($1)', [serials]) },
    { name: 'load units via JOIN unnest($1::text[])', run: (c) => c.query('SELECT u.* FROM units u JOIN unnest($1::text[]) AS s(serial) ON u.serial = s.serial', [serials]) },
    { name: 'today: load live manifest rows WHERE live AND serial = ANY($1)', run: (c) => c.query('SELECT * FROM shipment_serials WHERE live AND serial = ANY($1)', [serials]) },
  ];

  const client = await pool.connect();
  console.log(`manifest SQL experiment: ${serialsCount.toLocaleString('en-US')} serials, ${runs} runs each, rolled back; median (all runs)`);
  for (const variant of variants) {
    const times: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      await client.query('BEGIN');
      const started = performance.now();
      await variant.run(client);
      times.push(performance.now() - started);
      await client.query('ROLLBACK');
    }
    console.log(`  ${String(round(median(times), 0)).padStart(6)} ms  (${times.map((t) => round(t, 0)).join(', ')})  ${variant.name}`);
  }
  client.release();
  await pool.end();
} finally {
  await server.stop();
}
