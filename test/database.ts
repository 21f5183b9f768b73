/**
 * Gives each test file its own migrated database on the run's PostgreSQL, so files can
 * run in parallel without seeing each other's rows.
 */
import { afterAll, beforeAll, inject } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { createPool, type Pool } from '../src/store/pool.ts';
import { migrate } from '../src/store/migrate.ts';
import { testWriterRole, testWriterUrl } from './writer.ts';

/**
 * The setting migration 047's trigger reads for how far ahead of the database's clock a batch
 * may be dated (limits.clockAheadOfDatabaseMsMax without it), from ALTER DATABASE … SET only (056). Tests date batches by clocks
 * they move freely (a world set to a licence's validTo, possibly after today), so every
 * database they make takes any time ahead (testClockAheadMsMax); the ledger never sets it.
 */
export const clockAheadSetting = 'chipledger.clock_ahead_of_database_ms_max';
/** A thousand years: any time a test's clock is set to. */
export const testClockAheadMsMax = 1000 * 365 * 24 * 60 * 60 * 1000;

/** Widens the bound ahead for every session of database `name` (a template's copies do not inherit it). */
export async function allowClocksAhead(admin: pg.Client, name: string): Promise<void> {
  await admin.query(`ALTER DATABASE ${name} SET ${clockAheadSetting} = '${testClockAheadMsMax}'`);
}

/**
 * Puts database `name` back at the bound the ledger runs under, for the tests of that bound: for
 * every session at once, as ledger_clock_ahead_ms_max() reads the database's own setting only
 * (migration 056).
 */
export async function productionClockAhead(pool: Pool, name: string): Promise<void> {
  await pool.query(`ALTER DATABASE ${name} RESET ${clockAheadSetting}`);
}

/** Runs `work` on a connection to the run's PostgreSQL as its superuser (CREATE and DROP DATABASE). */
export async function asServerAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The URL of database `name` on the run's PostgreSQL, as its superuser. */
export function databaseUrlOf(name: string): string {
  const url = new URL(inject('databaseUrl'));
  url.pathname = `/${name}`;
  return url.toString();
}

export interface TestDatabase {
  /** The owner's URL (a child `serve` given it as DATABASE_URL migrates and writes as the owner). */
  url: string;
  /** The test writer's URL, as `writerPool` logs in. */
  writerUrl: string;
  /**
   * Logs in as the tables' owner: for what a test does to the database by hand (reads, and
   * writes that play an attacker who may switch triggers off, or change the schema).
   */
  pool: Pool;
  /** Logs in as the test writer (test/writer.ts), as a server's pool does: what databasePerFile hands the ledger. */
  writerPool: Pool;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const baseUrl = inject('databaseUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await allowClocksAhead(admin, name);
  await admin.end();
  const database = handleOf(name, 20);
  await migrate(database.pool, { writer: { role: testWriterRole } });
  return database;
}

/** Database `name` of the run's server: its owner's and its writer's pools, and a drop that ends both and the database. */
function handleOf(name: string, connectionsMax: number): TestDatabase {
  const baseUrl = inject('databaseUrl');
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const writerUrl = testWriterUrl(baseUrl, name);
  const pool = createPool({ url: url.toString(), connectionsMax, applicationName: 'chipledger-test' });
  const writerPool = createPool({ url: writerUrl, connectionsMax, applicationName: 'chipledger-test-writer' });
  return {
    url: url.toString(),
    writerUrl,
    pool,
    writerPool,
    async drop() {
      await writerPool.end();
      await pool.end();
      const cleanup = new pg.Client({ connectionString: baseUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}

/**
 * A fresh database and what `make` builds on it (given the writer's pool, as a server's ledger
 * is), for one test file: made before its first
 * test, closed (then the database dropped) after its last. `ready` hands both to the file,
 * which keeps them in variables of its own.
 */
export function databasePerFile<T>(make: (pool: Pool) => Promise<T>, close: (made: T) => Promise<void>, ready: (made: T, database: TestDatabase) => void): void {
  let database: TestDatabase | undefined;
  let made: T | undefined;
  beforeAll(async () => {
    database = await createTestDatabase();
    made = await make(database.writerPool);
    ready(made, database);
  });
  afterAll(async () => {
    if (made !== undefined) await close(made);
    await database?.drop();
  });
}

/**
 * A backup of `source`, restorable as a database of its own: a copy made from it as a template
 * (PostgreSQL copies a database only while nothing else is connected to it, so its sessions,
 * idle in the pools, are ended first; the pools make new ones when next asked).
 */
export async function backupOf(source: TestDatabase): Promise<TestDatabase> {
  const admin = new pg.Client({ connectionString: inject('databaseUrl') });
  await admin.connect();
  const sourceName = new URL(source.url).pathname.slice(1);
  const name = `t_backup_${randomBytes(6).toString('hex')}`;
  try {
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [sourceName]);
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${sourceName}`);
    // The copy keeps its tables' grants, not the database's own (the writer makes no temporary tables).
    await admin.query(`REVOKE TEMPORARY ON DATABASE ${name} FROM PUBLIC`);
  } finally {
    await admin.end();
  }
  // The copy keeps the source's grants, so the test writer writes to it as to the source.
  return handleOf(name, 4);
}
