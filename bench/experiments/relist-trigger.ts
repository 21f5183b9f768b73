/**
 * What migration 075's line trigger (units_leave_manifest_line, one INSERT a unit that moves)
 * adds to listing a whole shipment's units again: 100,000 units of a cancelled booking moved
 * into another booking in one UPDATE, with the trigger and with it disabled, in transactions
 * rolled back, alternated. The rest of the UPDATE is units_keep_identity's checks, a row each.
 * The second booking is a copy of the first's row, written with triggers off.
 *
 *   node --import tsx bench/experiments/relist-trigger.ts [runs]
 */
import { startBenchServer } from '../database.ts';
import { bookManifestShipment } from './manifest-shipment.ts';
import { median } from '../stats.ts';

const runs = Number(process.argv[2] ?? 5);
const server = await startBenchServer('relist-trigger');
try {
  const { pool, productId, recipientOrgId, shipmentId, serials } = await bookManifestShipment(server, 'relist-trigger', 100_000);
  const client = await pool.connect();
  await client.query(`INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq) SELECT s, NULL, $2, $3, 'licensed', $4, NULL, 1 FROM unnest($1::text[]) s`, [serials, productId, recipientOrgId, shipmentId]);
  const other = 'S-OTHER';
  await client.query(`SET session_replication_role = replica`);
  await client.query(`INSERT INTO shipments SELECT (jsonb_populate_record(s, '{"id": "S-OTHER", "created_seq": 999999}'::jsonb)).* FROM shipments s WHERE id = $1`, [shipmentId]);
  await client.query(`UPDATE shipments SET status = 'cancelled' WHERE id = $1`, [shipmentId]);
  await client.query(`SET session_replication_role = origin`);
  await client.query('VACUUM ANALYZE units');
  const times: Record<string, number[]> = { with: [], without: [] };
  for (let run = 0; run < runs; run += 1) for (const mode of ['with', 'without']) {
    await client.query('BEGIN');
    if (mode === 'without') await client.query('ALTER TABLE units DISABLE TRIGGER units_leave_manifest_line');
    const t = performance.now();
    await client.query(`UPDATE units SET shipment_id = $1, updated_seq = 2 WHERE shipment_id = $2`, [other, shipmentId]);
    times[mode]!.push(performance.now() - t);
    await client.query('ROLLBACK');
  }
  console.log(`100,000 units moved in one UPDATE: with the line trigger ${median(times.with!).toFixed(0)} ms (${times.with!.map(Math.round).join(', ')}), without ${median(times.without!).toFixed(0)} ms (${times.without!.map(Math.round).join(', ')})`);
  client.release(); await pool.end();
} finally { await server.stop(); }
