/**
 * Whether a sustained append's rate depends on PostgreSQL making new WAL segment files (a
 * fresh cluster has two; the first runs create and zero-fill 16 MiB segments, later runs
 * reuse the ones a checkpoint recycled). Runs `runs` appends of `leaves` leaves, each on a
 * fresh database of one embedded server, and prints each run's rate beside the number of
 * files in pg_wal before and after it.
 *
 *   node --import tsx bench/experiments/wal-segments.ts [runs] [leaves]
 */
import pg from 'pg';
import { createPool } from '../../src/store/pool.ts';
import { generateSignerKey } from '../../src/tlog/index.ts';
import { startBenchServer } from '../database.ts';
import { sustainedAppends } from '../tlog-append.ts';

const runs = Number(process.argv[2] ?? 4);
const leaves = Number(process.argv[3] ?? 1_000_000);
const server = await startBenchServer('wal-segments');
const admin = new pg.Client({ connectionString: await server.createDatabase('wal_segments_admin') });
await admin.connect();
const walFiles = async (): Promise<number> => Number((await admin.query<{ files: string }>('SELECT count(*)::text AS files FROM pg_ls_waldir()')).rows[0]!.files);
try {
  for (let run = 1; run <= runs; run += 1) {
    const url = await server.createDatabase(`wal_segments_${run}`);
    const before = await walFiles();
    const pool = createPool({ url, connectionsMax: 8, applicationName: 'wal-segments' });
    try {
      const result = await sustainedAppends(pool, generateSignerKey('bench/wal-segments').signerKey, leaves, 2_048, () => {});
      console.log(`run ${run}: ${Math.round(result.leavesPerSecond).toLocaleString('en')} leaves/s; files in pg_wal ${before} → ${await walFiles()}`);
    } finally {
      await pool.end();
    }
  }
} finally {
  await admin.end();
  await server.stop();
}
