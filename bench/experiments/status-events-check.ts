/**
 * What migration 062's parts of the re-check (ledger_check_status_events,
 * ledger_check_allocation_events), 063's (ledger_check_kyc_events) and 068's
 * (ledger_check_shipment_bookings, ledger_check_shipped_manifests) cost on N events shaped
 * as the ledger's (two of three book a shipment, one ships one; canonical JSON of about 400
 * bytes) and their shipments, against one plain read of every event's bytes and 057's part
 * (which parses every event): three runs each, median.
 *
 *   node --import tsx bench/experiments/status-events-check.ts [events]
 */
import { migrate } from '../../src/store/migrate.ts';
import { createPool, inTransaction } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';

const events = Number(process.argv[2] ?? 1_000_000);
const runs = 3;
const server = await startBenchServer('status-events-check');
try {
  const pool = createPool({ url: await server.createDatabase('status_events_check'), connectionsMax: 2, applicationName: 'status-events-check' });
  await migrate(pool);
  let started = performance.now();
  await inTransaction(pool, 'BEGIN', async (client) => {
    // The rows only: the triggers and keys that tie them to organisations and allocations are not what is measured.
    await client.query("SET LOCAL session_replication_role = 'replica'");
    await client.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
      SELECT g, t, k, 'TOK-bench', s, '{ORG-1}', convert_to(json_build_object(
          'actor', json_build_object('id', 'TOK-bench', 'org', 'ORG-1', 'role', 'exporter'),
          'at', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'effects', CASE WHEN k = 'shipment.ship' THEN json_build_object('from', 'booked', 'to', 'shipped', 'units', 7, 'licencesExhausted', json_build_array())
                          ELSE json_build_object('shipmentId', s, 'recipientId', 'ORG-2', 'origin', 'US', 'destination', 'CN') END,
          'input', json_build_object('exportAllocationId', 'A-7', 'importAllocationId', 'A-9', 'productId', 'PRD-3', 'units', 7, 'deadline', '2027-01-01T00:00:00.000Z', 'reference', rpad('REF-', 40, 'x')),
          'kind', k, 'nonce', rpad(md5(g::text), 22, 'x'), 'seq', g, 'subject', s)::text, 'UTF8')
      FROM (SELECT g, timestamptz '2026-02-01T00:00:00Z' + g * interval '1 ms' AS t,
                   CASE WHEN g % 3 = 2 THEN 'shipment.ship' ELSE 'shipment.book' END AS k,
                   'S-' || CASE WHEN g % 3 = 2 THEN g - 2 ELSE g END AS s
            FROM generate_series(0, $1 - 1) g) AS e`, [events]);
    await client.query(`INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, created_seq, updated_seq)
      SELECT 'S-' || g, 'ORG-1', 'ORG-2', 'PRD-3', 'US', 'CN', 'A-7', 'A-9', 7, CASE WHEN g % 3 = 0 AND g + 2 < $1 THEN 'shipped' ELSE 'booked' END, '2026-02-02', '2027-01-01', g, g
      FROM generate_series(0, $1 - 1) g WHERE g % 3 <> 2`, [events]);
  });
  await pool.query('VACUUM (ANALYZE) events, shipments');
  console.log(`${events.toLocaleString('en')} events and their shipments written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const timed = async (sql: string): Promise<number> => {
    const times: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      started = performance.now();
      await pool.query(sql);
      times.push(performance.now() - started);
    }
    return median(times);
  };
  const read = await timed('SELECT sum(length(canonical)) FROM events');
  const columns = await timed('SELECT count(*) FROM ledger_check_event_columns()');
  const part = await timed('SELECT count(*) FROM ledger_check_status_events()');
  const allocations = await timed('SELECT count(*) FROM ledger_check_allocation_events()');
  const kyc = await timed('SELECT count(*) FROM ledger_check_kyc_events()');
  const bookings = await timed('SELECT count(*) FROM ledger_check_shipment_bookings()');
  const manifests = await timed('SELECT count(*) FROM ledger_check_shipped_manifests()');
  const found = (await pool.query<{ n: string }>('SELECT count(*) AS n FROM ledger_check_status_events()')).rows[0]!.n;
  console.log(`  read every event's bytes: ${(read / 1000).toFixed(2)} s (median of ${runs})`);
  console.log(`  ledger_check_event_columns() (057, parses every event): ${(columns / 1000).toFixed(2)} s (median of ${runs})`);
  console.log(`  ledger_check_status_events() (062): ${(part / 1000).toFixed(2)} s (median of ${runs}), ${found} violations`);
  console.log(`  ledger_check_allocation_events() (062, no allocation events among them: one pass over the events' kinds): ${(allocations / 1000).toFixed(2)} s (median of ${runs})`);
  console.log(`  ledger_check_kyc_events() (063, no organisation.set_kyc among them: one pass over the events' kinds): ${(kyc / 1000).toFixed(2)} s (median of ${runs})`);
  console.log(`  ledger_check_shipment_bookings() (068, parses each shipment's booking): ${(bookings / 1000).toFixed(2)} s (median of ${runs})`);
  console.log(`  ledger_check_shipped_manifests() (068, one pass over the shipments): ${(manifests / 1000).toFixed(2)} s (median of ${runs})`);
  await pool.end();
} finally {
  await server.stop();
}
