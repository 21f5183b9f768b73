/**
 * What PostgreSQL's WAL settings do to a sustained append: leaves/s, the WAL written (and how
 * much of it is full-page images, written for a page's first change after a checkpoint) and
 * the checkpoints started during the appends, for the server as configured and with the
 * settings given, in turn on one server (reloaded, not restarted: only settings a reload
 * changes), each run on a fresh database after a CHECKPOINT so every run starts alike.
 *
 *   node --import tsx bench/experiments/append-wal.ts [leaves] [pairs] [name=value ...]
 *   node --import tsx bench/experiments/append-wal.ts 1000000 2 max_wal_size=8GB
 */
import pg from 'pg';
import { createPool } from '../../src/store/pool.ts';
import { generateSignerKey } from '../../src/tlog/index.ts';
import { startBenchServer } from '../database.ts';
import { sustainedAppends } from '../tlog-append.ts';

const leaves = Number(process.argv[2] ?? 1_000_000);
const pairs = Number(process.argv[3] ?? 2);
const settings = process.argv.slice(4).map((pair) => {
  const [name, value] = pair.split('=');
  if (!name || value === undefined || !/^[a-z_]+$/.test(name)) throw new Error(`a setting is name=value, got ${pair}`);
  return { name, value };
});
if (settings.length === 0) throw new Error('name at least one setting to compare with the server as configured (name=value)');

// It changes the server's settings with ALTER SYSTEM, and resets them to the file's: only
// on an embedded server of its own, never on one BENCH_DATABASE_URL names.
if (process.env.BENCH_DATABASE_URL !== undefined) throw new Error('append-wal.ts changes server settings (ALTER SYSTEM): unset BENCH_DATABASE_URL; it runs on an embedded server of its own');
const server = await startBenchServer('append-wal');
const admin = new pg.Client({ connectionString: await server.createDatabase('append_wal_admin') });
await admin.connect();

/** The server's WAL and checkpoint counters (PostgreSQL 17's pg_stat_checkpointer). */
async function counters(): Promise<{ walBytes: number; fullPageImages: number; requested: number; timed: number }> {
  const wal = await admin.query<{ wal_bytes: string; wal_fpi: string }>('SELECT wal_bytes::text, wal_fpi::text FROM pg_stat_wal');
  const checkpoints = await admin.query<{ num_requested: string; num_timed: string }>('SELECT num_requested::text, num_timed::text FROM pg_stat_checkpointer');
  return {
    walBytes: Number(wal.rows[0]!.wal_bytes), fullPageImages: Number(wal.rows[0]!.wal_fpi),
    requested: Number(checkpoints.rows[0]!.num_requested), timed: Number(checkpoints.rows[0]!.num_timed),
  };
}

async function run(changed: boolean, index: number): Promise<void> {
  for (const { name } of settings) await admin.query(`ALTER SYSTEM RESET ${name}`);
  if (changed) for (const { name, value } of settings) await admin.query(`ALTER SYSTEM SET ${name} = ${pg.escapeLiteral(value)}`);
  await admin.query('SELECT pg_reload_conf()');
  await new Promise((done) => setTimeout(done, 200)); // the reload reaches every process
  const url = await server.createDatabase(`append_wal_${index}`);
  await admin.query('CHECKPOINT');
  const pool = createPool({ url, connectionsMax: 8, applicationName: 'append-wal' });
  const before = await counters();
  const result = await sustainedAppends(pool, generateSignerKey('bench/append-wal').signerKey, leaves, 2_048, () => {});
  const after = await counters();
  await pool.end();
  const shown: string[] = [];
  for (const { name } of settings) shown.push(`${name} ${(await admin.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]}`);
  console.log(
    `${changed ? 'changed' : 'as configured'} (${shown.join(', ')}): ${Math.round(result.leavesPerSecond).toLocaleString('en')} leaves/s; WAL ${((after.walBytes - before.walBytes) / 2 ** 20).toFixed(0)} MiB, `
    + `${(after.fullPageImages - before.fullPageImages).toLocaleString('en')} full-page images; checkpoints started: ${after.requested - before.requested} requested, ${after.timed - before.timed} timed`,
  );
}

try {
  for (let pair = 0; pair < pairs; pair += 1) {
    const order = pair % 2 === 0 ? [false, true] : [true, false];
    for (const [offset, changed] of order.entries()) await run(changed, 2 * pair + offset);
  }
} finally {
  await admin.end();
  await server.stop();
}
