/**
 * What reading the bound ahead of the database's clock (ledger_clock_ahead_ms_max, migrations
 * 056 and 065) costs the head's trigger once a batch: the function as 056 wrote it (LANGUAGE sql,
 * its query planned again on every call from PL/pgSQL) against the function as migrated, called
 * from PL/pgSQL as the trigger calls it, once a transaction, each way on a database of its own
 * (round trips included: the difference between the ways is the function's).
 * node --import tsx bench/experiments/clock-ahead-fn.ts [calls] [rounds]
 */
import { listMigrations, migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';

const calls = Number(process.argv[2] ?? 2_000);
const rounds = Number(process.argv[3] ?? 5);
const ways = ['as migrated', 'as of 056', 'a constant'] as const;
const server = await startBenchServer('clock-ahead-fn');
try {
  const pools = await Promise.all(ways.map(async (way, index) => {
    const pool = createPool({ url: await server.createDatabase(`clock_ahead_${index}`), connectionsMax: 1, applicationName: 'clock-ahead-fn' });
    await migrate(pool);
    if (way === 'as of 056') await pool.query(listMigrations().find((migration) => migration.version === 56)!.sql);
    // The head's trigger calls the function from PL/pgSQL; so does this probe.
    await pool.query(`CREATE FUNCTION clock_probe() RETURNS bigint LANGUAGE plpgsql AS $$ DECLARE bound bigint; BEGIN
      bound := ${way === 'a constant' ? '300000' : 'ledger_clock_ahead_ms_max()'}; RETURN bound; END $$`);
    return pool;
  }));
  // One session each, as the writer's connection keeps its cached plans between batches.
  const clients = await Promise.all(pools.map((pool) => pool.connect()));
  // A transaction of its own for each call, as each batch is: PL/pgSQL keeps a simple
  // expression's state, and a LANGUAGE sql function's plan in it, for one transaction only.
  const call = 'SELECT clock_probe()';
  const timings = ways.map(() => [] as number[]);
  for (let round = 0; round < rounds; round += 1) {
    for (const [index, client] of clients.entries()) {
      const started = performance.now();
      for (let made = 0; made < calls; made += 1) await client.query(call);
      timings[index]!.push(((performance.now() - started) * 1000) / calls);
    }
  }
  for (const client of clients) client.release();
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  for (const [index, way] of ways.entries()) {
    console.log(`${way.padEnd(12)} µs a call, median of ${rounds} rounds of ${calls}: ${median(timings[index]!).toFixed(2)} (${timings[index]!.map((value) => value.toFixed(2)).join(' / ')})`);
  }
  await Promise.all(pools.map((pool) => pool.end()));
} finally {
  await server.stop();
}
