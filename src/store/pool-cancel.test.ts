/**
 * A read cut off by its client-side bound (withQueryTimeout) while it waits for a table lock
 * ends on the server too. Closing the connection alone left the backend waiting for the lock
 * (it reads nothing from its socket meanwhile), holding a connection slot: a lock held for two
 * minutes (a migration, a VACUUM FULL) filled max_connections with such backends. Here a table
 * is held under ACCESS EXCLUSIVE for the whole test, as those would hold it, and each way a
 * bounded read can run out is tried: its backend must be gone within a second or two, with
 * the lock still held.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { cancelServerStatement, createPool, inTransaction, isDatabaseUnavailable, queryTimeoutMessage, withQueryTimeout, type Pool } from './pool.ts';

/** The bound under test: short, so the test is; the lock is held far longer. */
const boundMs = 300;
/** How long a backend cut off may take to go: the cancel is one round trip, its exit another. */
const goneWithinMs = 2_000;
const applicationName = 'chipledger-pool-cancel-test';

let database: TestDatabase;
let pool: Pool;
let bounded: Pool;
let locker: pg.Client;

beforeAll(async () => {
  database = await createTestDatabase();
  await database.pool.query('CREATE TABLE cancel_probe (n int)');
  pool = createPool({ url: database.url, connectionsMax: 4, applicationName });
  bounded = withQueryTimeout(pool, boundMs);
  locker = new pg.Client({ connectionString: database.url });
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE cancel_probe IN ACCESS EXCLUSIVE MODE');
});
afterAll(async () => {
  await locker?.query('COMMIT').catch(() => {});
  await locker?.end().catch(() => {});
  await pool?.end().catch(() => {});
  await database?.drop();
});

/** Backends of the pool under test, on this database, waiting for a lock. */
async function waitingOnLock(): Promise<number> {
  const found = await database.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'",
    [applicationName],
  );
  return found.rows[0]!.n;
}

/**
 * How many backends of the pool wait on the lock once `cut` (a read cut off) is done and they
 * had `goneWithinMs` to go: as many as before it, if its backend went.
 */
async function waitingAfter(cut: () => Promise<void>): Promise<{ before: number; after: number }> {
  const before = await waitingOnLock();
  await cut();
  const deadline = Date.now() + goneWithinMs;
  for (;;) {
    const after = await waitingOnLock();
    if (after <= before || Date.now() >= deadline) return { before, after };
    await new Promise((done) => setTimeout(done, 50));
  }
}

async function failureOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

describe('a bounded read cut off while it waits for a lock', () => {
  it('through the pool: its backend is gone from pg_stat_activity, the lock still held', async () => {
    const { before, after } = await waitingAfter(async () => {
      const error = await failureOf(() => bounded.query('SELECT * FROM cancel_probe'));
      expect((error as Error).message).toBe(queryTimeoutMessage);
      expect(isDatabaseUnavailable(error)).toBe(true);
    });
    expect(after).toBe(before);
  });

  it("with values, and a shorter bound of its own (a health check's): cut off the same way", async () => {
    const { before, after } = await waitingAfter(async () => {
      const started = Date.now();
      const error = await failureOf(() => bounded.query({ text: 'SELECT * FROM cancel_probe WHERE n = $1', values: [1], query_timeout: 100 } as pg.QueryConfig));
      expect((error as Error).message).toBe(queryTimeoutMessage);
      expect(Date.now() - started).toBeLessThan(boundMs);
    });
    expect(after).toBe(before);
  });

  it('in a snapshot read (a checked-out client, inTransaction)', async () => {
    const { before, after } = await waitingAfter(async () => {
      const error = await failureOf(() => inTransaction(bounded, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', (client) => client.query('SELECT * FROM cancel_probe')));
      expect((error as Error).message).toBe(queryTimeoutMessage);
    });
    expect(after).toBe(before);
  });

  it('in a streamed read (a COPY)', async () => {
    const { before, after } = await waitingAfter(async () => {
      const client = await bounded.connect();
      try {
        const error = await failureOf(() => pipeline(client.query(copyTo('COPY cancel_probe TO STDOUT')), new Writable({ write: (_chunk, _encoding, done) => done() })));
        expect((error as Error).message).toBe(queryTimeoutMessage);
      } finally {
        client.release();
      }
    });
    expect(after).toBe(before);
  });

  it('leaves the pool answering reads of other tables meanwhile', async () => {
    expect((await bounded.query<{ n: number }>('SELECT 3 AS n')).rows[0]!.n).toBe(3);
  });
});

describe('cancelServerStatement', () => {
  it('asks nothing of a server it cannot reach, and throws nothing', () => {
    const client = new pg.Client({ host: '127.0.0.1', port: 1 });
    Object.assign(client, { processID: 1, secretKey: 2 });
    expect(() => cancelServerStatement(client)).not.toThrow();
    // A client never connected has no backend to name: nothing is sent.
    expect(() => cancelServerStatement(new pg.Client({ host: '/nowhere', port: 5432 }))).not.toThrow();
  });
});
