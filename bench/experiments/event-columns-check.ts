/**
 * What migration 057's part of the re-check (ledger_check_event_columns) costs on N events
 * shaped as the ledger's (canonical JSON of about 400 bytes: actor, at, effects, input, kind,
 * nonce, seq, subject), against one plain read of every event's bytes: three runs each, median.
 *
 *   node --import tsx bench/experiments/event-columns-check.ts [events]
 */
import { migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';

const events = Number(process.argv[2] ?? 1_000_000);
const runs = 3;
const server = await startBenchServer('event-columns-check');
try {
  const pool = createPool({ url: await server.createDatabase('event_columns_check'), connectionsMax: 2, applicationName: 'event-columns-check' });
  await migrate(pool);
  let started = performance.now();
  await pool.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
    SELECT g, t, k, 'TOK-bench', s, '{ORG-1}', convert_to(json_build_object(
        'actor', json_build_object('id', 'TOK-bench', 'org', 'ORG-1', 'role', 'exporter'),
        'at', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'effects', json_build_object('exportAllocationId', 'A-7', 'importAllocationId', 'A-9', 'reserved', 7, 'status', 'booked'),
        'input', json_build_object('exportAllocationId', 'A-7', 'importAllocationId', 'A-9', 'productId', 'PRD-3', 'units', 7, 'deadline', '2027-01-01T00:00:00.000Z', 'reference', rpad('REF-', 40, 'x')),
        'kind', k, 'nonce', rpad(md5(g::text), 22, 'x'), 'seq', g, 'subject', s)::text, 'UTF8')
    FROM (SELECT g, timestamptz '2026-02-01T00:00:00Z' + g * interval '1 ms' AS t,
                 CASE WHEN g % 3 = 2 THEN 'shipment.ship' ELSE 'shipment.book' END AS k,
                 'S-' || CASE WHEN g % 3 = 2 THEN g - 2 ELSE g END AS s
          FROM generate_series(0, $1 - 1) g) AS e`, [events]);
  await pool.query('VACUUM (ANALYZE) events');
  const bytes = (await pool.query<{ mean: string }>('SELECT round(avg(length(canonical))) AS mean FROM events')).rows[0]!.mean;
  console.log(`${events.toLocaleString('en')} events (${bytes} bytes of canonical JSON each on average) written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const timed = async (sql: string): Promise<number> => {
    const times: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      started = performance.now();
      await pool.query(sql);
      times.push(performance.now() - started);
    }
    return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
  };
  const read = await timed('SELECT sum(length(canonical)) FROM events');
  const part = await timed('SELECT count(*) FROM ledger_check_event_columns()');
  const found = (await pool.query<{ n: string }>('SELECT count(*) AS n FROM ledger_check_event_columns()')).rows[0]!.n;
  console.log(`  read every event's bytes: ${(read / 1000).toFixed(2)} s (median of ${runs})`);
  console.log(`  ledger_check_event_columns(): ${(part / 1000).toFixed(2)} s (median of ${runs}), ${found} violations`);
  await pool.end();
} finally {
  await server.stop();
}
