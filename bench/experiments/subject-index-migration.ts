/**
 * What migration 053 costs a ledger that has events: its check's scan of every event (with
 * events locked against reads and writes) and the partial index's build (against writes),
 * on a database put back to before 053 (its check dropped, 044's full index made again)
 * holding N events: two of three book a shipment (subject SHP-<seq>), one of three ships an
 * earlier one, each with about 300 bytes of canonical JSON.
 *
 *   node --import tsx bench/experiments/subject-index-migration.ts [events]
 */
import { listMigrations, migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';

const events = Number(process.argv[2] ?? 1_000_000);
const server = await startBenchServer('subject-index-migration');
try {
  const pool = createPool({ url: await server.createDatabase('subject_index_migration'), connectionsMax: 2, applicationName: 'subject-index-migration' });
  await migrate(pool);
  await pool.query(`ALTER TABLE events DROP CONSTRAINT events_creation_subject_carries_seq;
    DROP INDEX events_subject; CREATE INDEX events_subject ON events (subject_id, seq)`);
  let started = performance.now();
  await pool.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
    SELECT g, '2026-02-01T00:00:00Z', CASE WHEN g % 3 = 2 THEN 'shipment.ship' ELSE 'shipment.book' END, 'TOK-bench',
           'SHP-' || CASE WHEN g % 3 = 2 THEN g - 2 ELSE g END, '{ORG-1}', convert_to(rpad('{"seq":' || g, 300, 'x'), 'UTF8')
    FROM generate_series(0, $1 - 1) g`, [events]);
  await pool.query('VACUUM (ANALYZE) events');
  await pool.query('CHECKPOINT');
  console.log(`${events.toLocaleString('en')} events written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const migration = listMigrations().find((candidate) => candidate.version === 53)!;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const timings: string[] = [];
    for (const statement of migration.sql.split(/;\s*\n/).map((text) => text.replace(/^(--.*\n)+/g, '').trim()).filter((text) => text.length > 0)) {
      started = performance.now();
      await client.query(statement);
      timings.push(`${((performance.now() - started) / 1000).toFixed(2)} s  ${statement.replace(/\s+/g, ' ').slice(0, 70)}`);
    }
    await client.query('COMMIT');
    for (const line of timings) console.log(`  ${line}`);
    const sizes = await client.query(`SELECT pg_size_pretty(pg_relation_size('events_subject')) AS index`);
    console.log(`  the index after: ${sizes.rows[0].index}`);
  } finally {
    client.release();
  }
  await pool.end();
} finally {
  await server.stop();
}
