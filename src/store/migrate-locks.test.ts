/**
 * migrate()'s waits are bounded and said: for another chipledger's migrations (a session-level
 * advisory lock, which a holder frozen or cut off keeps for as long as that lasts: no timeout
 * of PostgreSQL's ends an idle session), and for each table a migration changes (a DDL stuck
 * behind an idle transaction queues every reader and writer of the table behind it). Small
 * bounds here; the real ones are in limits.ts.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { withTimeout } from '../core/timeout.ts';
import { applyMigration, migrate, migratePoolConnections, MigrationRefused } from './migrate.ts';
import { createPool } from './pool.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => database?.drop());

/** Another session (another chipledger, frozen) that has run `sql` and then sits idle; returns it and its backend pid. */
async function idleSession(sql: string): Promise<{ session: pg.Client; pid: number }> {
  const session = new pg.Client({ connectionString: database.url, application_name: 'frozen-chipledger' });
  await session.connect();
  await session.query(sql);
  const pid = (await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return { session, pid };
}

/** Well above every bound below: without them the waits never end, and the test says so instead of timing out. */
const hangMs = 8_000;

describe("migrate's wait for another chipledger's migrations", () => {
  it('says after noticeAfterMs who holds the lock, and refuses in one line naming that session once lockWaitMs ran out', async () => {
    const { session, pid } = await idleSession('SELECT pg_advisory_lock(7201964011)');
    // One connection: the one that waited is the one looked at afterwards.
    const pool = createPool({ url: database.url, connectionsMax: 1, applicationName: 'migrate-locks' });
    try {
      const notices: string[] = [];
      const started = performance.now();
      const refusal = await withTimeout(migrate(pool, { lockWaitMs: 800, noticeAfterMs: 200, notice: (line) => notices.push(line) }), hangMs, 'migrate waited without a bound')
        .then(() => expect.fail('migrate ran while another session held its lock'), (error: unknown) => error);
      const waitedMs = performance.now() - started;
      expect(refusal).toBeInstanceOf(MigrationRefused);
      expect(refusal).toMatchObject({ reason: 'lock_busy', versions: [] });
      expect((refusal as Error).message).toMatch(new RegExp(`^couldn't check the database's schema: waited 800 ms for another chipledger's migrations, whose lock is still held by PostgreSQL session ${pid} \\(frozen-chipledger, idle for \\d+ s\\); run this command again once that process has finished, or if it is frozen or gone, stop it, or end its session \\(SELECT pg_terminate_backend\\(${pid}\\)\\)$`));
      expect((refusal as Error).message).not.toContain('\n');
      expect(waitedMs).toBeGreaterThanOrEqual(790);
      expect(waitedMs).toBeLessThan(3_000);
      expect(notices).toEqual([expect.stringMatching(new RegExp(`^waiting for another chipledger's migrations: its lock is held by PostgreSQL session ${pid} \\(frozen-chipledger, idle for \\d+ s\\); waiting at most 800 ms in all$`))]);
      // Once the holder is gone the lock is had; the waiting session's own bounds were left as
      // they were (each try is a transaction of its own).
      await session.end();
      expect(await migrate(pool)).toEqual([]);
      expect((await pool.query('SELECT current_setting($1) AS lock, current_setting($2) AS statement', ['lock_timeout', 'statement_timeout'])).rows[0]).toEqual({ lock: '0', statement: '0' });
    } finally {
      await session.end().catch(() => {});
      await pool.end();
    }
  });

  it('takes the lock as soon as its holder lets go, within the bound, and says nothing for a short wait', async () => {
    const { session } = await idleSession('SELECT pg_advisory_lock(7201964011)');
    const notices: string[] = [];
    const migrating = migrate(database.pool, { lockWaitMs: 5_000, noticeAfterMs: 2_000, notice: (line) => notices.push(line) });
    await new Promise((resume) => setTimeout(resume, 200));
    await session.end();
    expect(await withTimeout(migrating, hangMs)).toEqual([]);
    expect(notices).toEqual([]);
  });
});

describe("a migration's wait for a table", () => {
  it('is bounded by its lock_timeout, rolled back, and refused naming the migration, the table and the session that holds it', async () => {
    const { session, pid } = await idleSession('BEGIN; LOCK TABLE licences IN ACCESS SHARE MODE');
    const migration = { version: 990, name: '990_wait_for_licences.sql', sql: 'ALTER TABLE licences ADD COLUMN waited integer', checksum: 'x' };
    const notices: string[] = [];
    // A pool of the size chipledger migrates with (cli/database.ts): its one other connection looks at the wait.
    const pool = createPool({ url: database.url, connectionsMax: migratePoolConnections, applicationName: 'migrate-locks' });
    try {
      const client = await pool.connect();
      try {
        const refusal = await withTimeout(applyMigration(pool, client, migration, { lockWaitMs: 1_000, tableLockWaitMs: 800, noticeAfterMs: 150, notice: (line) => notices.push(line) }), hangMs, 'the migration waited without a bound')
          .then(() => expect.fail('the migration ran while its table was locked'), (error: unknown) => error);
        expect(refusal).toBeInstanceOf(MigrationRefused);
        expect(refusal).toMatchObject({ reason: 'table_locked', versions: [990] });
        expect((refusal as Error).message).toMatch(new RegExp(`^couldn't apply migration 990_wait_for_licences\\.sql: it waited 800 ms for a lock on table licences, held by PostgreSQL session ${pid} \\(frozen-chipledger, idle in transaction for \\d+ s\\), and nothing of it was applied; run this command again once that session's transaction has ended \\(or end it: SELECT pg_terminate_backend\\(${pid}\\)\\)$`));
        expect(notices).toEqual([expect.stringMatching(new RegExp(`^migration 990_wait_for_licences\\.sql waits for a lock on table licences, held by PostgreSQL session ${pid} \\(frozen-chipledger, idle in transaction for \\d+ s\\); it gives up after 800 ms$`))]);
      } finally {
        client.release();
      }
    } finally {
      await session.end();
      await pool.end();
    }
    const left = await database.pool.query("SELECT (SELECT count(*)::int FROM schema_migrations WHERE version = 990) AS recorded, (SELECT count(*)::int FROM information_schema.columns WHERE table_name = 'licences' AND column_name = 'waited') AS columns");
    expect(left.rows[0]).toEqual({ recorded: 0, columns: 0 });
  });
});
