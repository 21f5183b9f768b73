/**
 * What migration 064's parts of the re-check cost (ledger_check_unit_events,
 * ledger_check_token_events) at the demo's scale: 400,000 units, every one deployed or
 * returned by unit commands of 100 serials each (100,000 of them moved once more), among a
 * million other events, four of them manifests of 100,000 serials (lists the unit part must
 * not unpack). Three runs each, median.
 *
 *   node --import tsx bench/experiments/unit-events-check.ts
 */
import { migrate } from '../../src/store/migrate.ts';
import { createPool, inTransaction } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';

const runs = 3;
const server = await startBenchServer('unit-events-check');
try {
  const pool = createPool({ url: await server.createDatabase('unit_events_check'), connectionsMax: 2, applicationName: 'unit-events-check' });
  await migrate(pool);
  let started = performance.now();
  await inTransaction(pool, 'BEGIN', async (client) => {
    // The rows only: the triggers and keys that tie them to shipments, sites and products are not what is measured.
    await client.query("SET LOCAL session_replication_role = 'replica'");
    const events = (first: number, count: number, kind: string, subject: string) => client.query(
      `INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
       SELECT $1 + g, timestamptz '2026-02-01' + ($1 + g) * interval '1 ms', $3, 'TOK-1', ${subject}, '{ORG-1}', convert_to(repeat('x', 450), 'UTF8')
       FROM generate_series(0, $2 - 1) g`, [first, count, kind]);
    const lists = (first: number, count: number, firstUnit: number) => client.query(
      `INSERT INTO event_serials (seq, lines) SELECT $1 + g, ARRAY(SELECT 'U-' || ($3 + g * 100 + k) FROM generate_series(0, 99) k ORDER BY 1) FROM generate_series(0, $2 - 1) g`,
      [first, count, firstUnit]);
    await events(0, 1_000_000, 'shipment.book', "'S-' || g");
    await client.query(`INSERT INTO event_serials (seq, lines) SELECT s, ARRAY(SELECT 'M' || s || '-' || g FROM generate_series(1, 100000) g) FROM generate_series(10, 13) s`);
    // Units U-0..U-399,999 deployed 100 an event, to SITE-0..SITE-99 in turn; U-0..U-99,999
    // moved once more to the next site; U-390,000.. returned.
    await events(1_000_000, 4_000, 'units.deploy', "'SITE-' || (g % 100)");
    await lists(1_000_000, 4_000, 0);
    await events(1_004_000, 1_000, 'units.deploy', "'SITE-' || ((g % 100 + 1) % 100)");
    await lists(1_004_000, 1_000, 0);
    await events(1_005_000, 100, 'units.return', "'S-1'");
    await lists(1_005_000, 100, 390_000);
    await client.query(`INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq, ever_shipped)
      SELECT 'U-' || n, NULL, 'PRD-1', 'ORG-1', CASE WHEN n >= 390000 THEN 'returned' ELSE 'deployed' END, 'S-1',
        CASE WHEN n >= 390000 THEN NULL WHEN n < 100000 THEN 'SITE-' || (((n / 100) % 100 + 1) % 100) ELSE 'SITE-' || ((n / 100) % 100) END,
        CASE WHEN n >= 390000 THEN 1005000 + (n - 390000) / 100 WHEN n < 100000 THEN 1004000 + n / 100 ELSE 1000000 + n / 100 END, true
      FROM generate_series(0, 399999) n`);
    // 1,000 tokens, every tenth revoked by its event.
    await client.query(`INSERT INTO tokens (id, org_id, role, label, secret_hash, created_at, revoked_at)
      SELECT 'TOK-' || g, 'ORG-1', 'recipient', 'bench', sha256(g::text::bytea), '2026-02-01', CASE WHEN g % 10 = 0 THEN timestamptz '2026-02-01' + (1005100 + g) * interval '1 ms' END
      FROM generate_series(1, 1000) g`);
    await client.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
      SELECT 1005100 + g, timestamptz '2026-02-01' + (1005100 + g) * interval '1 ms', 'token.revoke', 'TOK-1', 'TOK-' || g, '{ORG-1}', '\\x7b7d'
      FROM generate_series(1, 1000) g WHERE g % 10 = 0`);
  });
  await pool.query('VACUUM (ANALYZE) events, event_serials, units, tokens');
  console.log(`1,005,200 events, 400,000 units and 1,000 tokens written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const timed = async (sql: string): Promise<{ ms: number; rows: number }> => {
    const times: number[] = [];
    let rows = 0;
    for (let run = 0; run < runs; run += 1) {
      started = performance.now();
      rows = (await pool.query(sql)).rowCount ?? 0;
      times.push(performance.now() - started);
    }
    return { ms: median(times), rows };
  };
  const units = await timed('SELECT * FROM ledger_check_unit_events()');
  const tokens = await timed('SELECT * FROM ledger_check_token_events()');
  const read = await timed('SELECT count(*) FROM units');
  console.log(`  read every unit: ${read.ms.toFixed(0)} ms (median of ${runs})`);
  console.log(`  ledger_check_unit_events() (064): ${units.ms.toFixed(0)} ms (median of ${runs}), ${units.rows} violations`);
  console.log(`  ledger_check_token_events() (064): ${tokens.ms.toFixed(0)} ms (median of ${runs}), ${tokens.rows} violations`);
  await pool.end();
} finally {
  await server.stop();
}
