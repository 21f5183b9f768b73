/**
 * What migration 031's trigger costs a batch: the head's update after N events of one time
 * (as the ledger dates a batch), with the trigger as migrated, as migration 052 left it, and
 * without it, in turn, in rolled-back transactions. Each way has a database of its own (052's
 * function put back there, committed), so no way's statements invalidate another's cached
 * function or plans.
 * node --import tsx bench/experiments/head-trigger.ts [events per batch] [rounds]
 */
import { listMigrations, migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';

const events = Number(process.argv[2] ?? 50);
const rounds = Number(process.argv[3] ?? 200);
const ways = ['with the trigger', 'as of 052', 'without'] as const;
const server = await startBenchServer('head-trigger');
try {
  const pools = await Promise.all(ways.map(async (way, index) => {
    const pool = createPool({ url: await server.createDatabase(`head_trigger_${index}`), connectionsMax: 1, applicationName: 'head-trigger' });
    await migrate(pool);
    if (way === 'as of 052') await pool.query(listMigrations().find((migration) => migration.version === 52)!.sql);
    if (way === 'without') await pool.query('ALTER TABLE log_head DISABLE TRIGGER log_head_event_times_rise');
    return pool;
  }));
  const clients = await Promise.all(pools.map((pool) => pool.connect()));
  const timings = ways.map(() => [] as number[]);
  const at = new Date().toISOString();
  for (let round = 0; round < rounds; round += 1) {
    for (const [index, client] of clients.entries()) {
      await client.query('BEGIN');
      await client.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
        SELECT g, '${at}', 'site.register', 'TOK-x', NULL, '{}', '\\x7b7d'::bytea FROM generate_series(0, ${events - 1}) g`);
      const started = performance.now();
      await client.query(`UPDATE log_head SET size = ${events} WHERE id = 1`);
      timings[index]!.push(performance.now() - started);
      await client.query('ROLLBACK');
    }
  }
  for (const client of clients) client.release();
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(`${events} events a batch, ${rounds} rounds, the head's update (medians, send to reply): ${ways.map((way, index) => `${way} ${median(timings[index]!).toFixed(3)} ms`).join(', ')}`);
  await Promise.all(pools.map((pool) => pool.end()));
} finally {
  await server.stop();
}
