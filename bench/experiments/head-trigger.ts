/**
 * What migration 031's trigger costs a batch: the head's update after N events, with the
 * trigger and without it, alternating, in rolled-back transactions on a migrated database.
 * node --import tsx bench/experiments/head-trigger.ts [events per batch] [rounds]
 */
import { migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';

const events = Number(process.argv[2] ?? 50);
const rounds = Number(process.argv[3] ?? 200);
const server = await startBenchServer('head-trigger');
try {
  const pool = createPool({ url: await server.createDatabase('head_trigger'), connectionsMax: 1, applicationName: 'head-trigger' });
  await migrate(pool);
  const client = await pool.connect();
  const timings: Record<'with' | 'without', number[]> = { with: [], without: [] };
  const at = new Date().toISOString();
  for (let round = 0; round < rounds; round += 1) {
    for (const side of ['with', 'without'] as const) {
      await client.query('BEGIN');
      if (side === 'without') await client.query('ALTER TABLE log_head DISABLE TRIGGER log_head_event_times_rise');
      await client.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
        SELECT g, '${at}', 'site.register', 'TOK-x', NULL, '{}', '\\x7b7d'::bytea FROM generate_series(0, ${events - 1}) g`);
      const started = performance.now();
      await client.query(`UPDATE log_head SET size = ${events} WHERE id = 1`);
      timings[side].push(performance.now() - started);
      await client.query('ROLLBACK');
    }
  }
  client.release();
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(`${events} events a batch, ${rounds} rounds: head update with 031's trigger ${median(timings.with).toFixed(3)} ms, without ${median(timings.without).toFixed(3)} ms (medians, send to reply)`);
  await pool.end();
} finally {
  await server.stop();
}
