/**
 * The HTTP API's reads are bounded (withQueryTimeout): while the database is frozen (a
 * SIGSTOP, a network cut: bytes stop moving and no error comes) a read fails within its bound
 * as "database unavailable", and its connection is closed, not left in use or handed on.
 * The database is frozen here by a TCP proxy in front of the test database that stops
 * forwarding (test/support/freezing-proxy.ts), as the ops review froze the postmaster with SIGSTOP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { FreezingProxy } from '../../test/support/freezing-proxy.ts';
import { limits } from '../core/limits.ts';
import { createPool, inTransaction, type Pool, type PoolClient } from './pool.ts';
import { isDatabaseUnavailable } from './database-unavailable.ts';
import { queryTimeoutMessage, queryWithin, serverStillWorks, withQueryTimeout } from './query-timeout.ts';
import { readEntriesPacked } from './tlog-tables.ts';

/** The bound under test: long enough for a healthy query on a loaded machine, short for the test. */
const boundMs = 400;

let database: TestDatabase;
let proxy: FreezingProxy;
let pool: Pool;
let bounded: Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  const through = await FreezingProxy.to(database.url);
  proxy = through.proxy;
  pool = createPool({ url: through.url, connectionsMax: 4, applicationName: 'chipledger-pool-bounds-test' });
  bounded = withQueryTimeout(pool, boundMs);
});
afterAll(async () => {
  proxy?.thaw();
  await pool?.end().catch(() => {});
  await proxy?.close();
  await database?.drop();
});

/** How long `work` took to fail, and with what. */
async function failure(work: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await work();
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('expected a failure');
}

async function whileFrozen<T>(work: () => Promise<T>): Promise<T> {
  // A connection made and idle first, so the freeze catches a query in flight, not a connect.
  await Promise.all([1, 2, 3].map(() => bounded.query('SELECT 1')));
  proxy.freeze();
  try {
    return await work();
  } finally {
    proxy.thaw();
  }
}

describe('a pool bounded for reads (withQueryTimeout)', () => {
  it('answers as usual while the database answers, through the pool and through a checked-out client', async () => {
    expect((await bounded.query<{ n: number }>('SELECT 41 + 1 AS n')).rows[0]!.n).toBe(42);
    expect((await bounded.query<{ n: number }>({ text: 'SELECT $1::int AS n', values: [7] })).rows[0]!.n).toBe(7);
    const rows = await inTransaction(bounded, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (client) => (await client.query<{ n: number }>('SELECT 2 AS n')).rows);
    expect(rows[0]!.n).toBe(2);
    expect(await readEntriesPacked(bounded, 0, 0)).toEqual({ bytes: Buffer.alloc(0), count: 0 });
    expect((bounded as unknown as { totalCount: number }).totalCount).toBe(pool.totalCount);
  });

  it('fails a read of a frozen database within its bound, as database unavailable, and closes the connection', async () => {
    const { error, ms } = await whileFrozen(() => failure(() => bounded.query('SELECT 1')));
    expect((error as Error).message).toBe(queryTimeoutMessage);
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(boundMs - 50);
    expect(ms).toBeLessThan(boundMs + 1_500);
    // Thawed: the pool answers again, and no connection kept the abandoned query.
    expect((await bounded.query<{ n: number }>('SELECT 5 AS n')).rows[0]!.n).toBe(5);
  });

  it('bounds a snapshot read (inTransaction) by one bound, not a second one for its ROLLBACK, and closes that connection', async () => {
    const { error, ms } = await whileFrozen(() => failure(() => inTransaction(bounded, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', (client) => client.query('SELECT 1'))));
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(ms).toBeLessThan(2 * boundMs);
    expect(pool.totalCount).toBeLessThanOrEqual(2); // of the three, the one that ran out is gone
    expect((await bounded.query<{ n: number }>('SELECT 6 AS n')).rows[0]!.n).toBe(6);
  });

  it('bounds a streamed read (COPY, which pg does not time) and closes its connection', async () => {
    const { error, ms } = await whileFrozen(() => failure(() => readEntriesPacked(bounded, 0, 1)));
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(ms).toBeLessThan(boundMs + 1_500);
    expect((await readEntriesPacked(bounded, 0, 0)).count).toBe(0);
  });

  it('gives a streamed query a bound of its own when asked (a batch\'s COPY), and every other query the plain one', async () => {
    const streamMs = boundMs * 3;
    const both = withQueryTimeout(pool, boundMs, streamMs);
    const streamed = await whileFrozen(() => failure(() => readEntriesPacked(both, 0, 1)));
    expect(isDatabaseUnavailable(streamed.error)).toBe(true);
    expect(streamed.ms).toBeGreaterThanOrEqual(streamMs - 50);
    expect(streamed.ms).toBeLessThan(streamMs + 1_500);
    const plain = await whileFrozen(() => failure(() => inTransaction(both, 'BEGIN', (client) => client.query('SELECT 1'))));
    expect((plain.error as Error).message).toBe(queryTimeoutMessage);
    expect(plain.ms).toBeLessThan(streamMs - 100);
    expect((await readEntriesPacked(both, 0, 0)).count).toBe(0);
  });

  it('a health check ping bounded by its own deadline gives its connection back when it runs out', async () => {
    const { error, ms } = await whileFrozen(async () => {
      const before = pool.totalCount;
      const failed = await failure(() => queryWithin(bounded, 'SELECT 1', 150));
      // The connection the ping held was closed, not left busy with the abandoned query.
      expect(pool.totalCount).toBe(before - 1);
      return failed;
    });
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(ms).toBeLessThan(boundMs);
  });

  it('leaves the pool it views unbounded for the long work on it (the start-up checks)', async () => {
    const slow = await pool.query<{ done: boolean }>(`SELECT pg_sleep(${(boundMs * 2) / 1000}) IS NOT NULL AS done`);
    expect(slow.rows[0]!.done).toBe(true);
    const { error } = await failure(() => bounded.query(`SELECT pg_sleep(${(boundMs * 2) / 1000})`));
    expect((error as Error).message).toBe(queryTimeoutMessage);
  });
});

describe('a pool bounded for writes, while the server still works on a round trip (whileServerWorks)', () => {
  // The ledger's batches: one text may hold many long statements, each bounded by the server.
  let writes: Pool;
  beforeAll(() => {
    writes = withQueryTimeout(pool, boundMs, boundMs, { whileServerWorks: true });
  });

  it('waits past its bound for a round trip the server is still running, several bounds over', async () => {
    const answered = await inTransaction(writes, 'BEGIN', async (client) =>
      (await client.query<{ done: boolean }>(`SELECT pg_sleep(${(boundMs * 3.5) / 1000}) IS NOT NULL AS done`)).rows[0]!.done);
    expect(answered).toBe(true);
    // A multi-statement text (a batch's steps in one round trip) counts as one, working throughout.
    await inTransaction(writes, 'BEGIN', async (client) => {
      await client.query(`SELECT pg_sleep(${(boundMs * 1.5) / 1000}); SELECT pg_sleep(${(boundMs * 1.5) / 1000})`);
    });
    // Without it, the same round trip is cut at its bound.
    const cut = await failure(() => inTransaction(withQueryTimeout(pool, boundMs), 'BEGIN', (client) => client.query(`SELECT pg_sleep(${(boundMs * 3.5) / 1000})`)));
    expect((cut.error as Error).message).toBe(queryTimeoutMessage);
  });

  it('still cuts a frozen database off, within its bound and one probe (which a frozen server never answers)', async () => {
    const { error, ms } = await whileFrozen(() => failure(() => inTransaction(writes, 'BEGIN', (client) => client.query('SELECT 1'))));
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(boundMs * 2 - 50); // the bound, then a probe of at most the bound
    expect(ms).toBeLessThan(boundMs * 2 + 1_500);
    expect((await writes.query<{ n: number }>('SELECT 8 AS n')).rows[0]!.n).toBe(8);
  });

  it('asks the server about the session itself: working while its query runs, not once it is idle or gone', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      // Idle in its transaction: a round trip whose reply was lost on the way looks like this.
      expect(await serverStillWorks(pool, client, boundMs)).toBe(false);
      const running = client.query(`SELECT pg_sleep(${(boundMs * 2) / 1000})`);
      await new Promise((resolve) => setTimeout(resolve, boundMs / 2));
      expect(await serverStillWorks(pool, client, boundMs)).toBe(true);
      await running;
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const gone = { processID: 2 ** 30 } as unknown as PoolClient;
    expect(await serverStillWorks(pool, gone, boundMs)).toBe(false);
  });

  it('says no for a session blocked writing to this very connection, as when its network path died while new connections get through', async () => {
    const client = await database.pool.connect();
    try {
      const pid = (client as unknown as { processID: number }).processID;
      // A reply far larger than the socket buffers, then this connection stops reading: the
      // backend stays 'active', blocked in ClientWrite, and no statement_timeout ends that.
      const big = client.query(`SELECT repeat('x', 1000000) FROM generate_series(1, 1000)`).catch(() => {});
      (client as unknown as { connection: { stream: { pause(): void } } }).connection.stream.pause();
      for (;;) {
        const { rows } = await database.pool.query<{ wait_event: string | null }>('SELECT wait_event FROM pg_stat_activity WHERE pid = $1', [pid]);
        if (rows[0]?.wait_event === 'ClientWrite') break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await serverStillWorks(database.pool, client, boundMs)).toBe(false);
      client.release(true);
      await big;
    } catch (error) {
      client.release(true);
      throw error;
    }
  });

  it('cuts a round trip the server keeps working on once its bound was extended stillWorkingExtensionsMax times', async () => {
    // Each extension's probe opens a connection within the bound itself (stillWorkingProbeMs
    // or less): at 100 ms one probe of eleven, on a loaded machine (the whole suite on two
    // cores), missed it and the round trip was cut after 459 ms, its fourth extension.
    const shortMs = 400;
    const briefly = withQueryTimeout(pool, shortMs, shortMs, { whileServerWorks: true });
    const { error, ms } = await failure(() => inTransaction(briefly, 'BEGIN', (client) => client.query('SELECT pg_sleep(30)')));
    expect((error as Error).message).toBe(queryTimeoutMessage);
    expect(ms).toBeGreaterThanOrEqual(shortMs * (limits.stillWorkingExtensionsMax + 1) - 50);
    expect(ms).toBeLessThan(shortMs * (limits.stillWorkingExtensionsMax + 1) * 4);
  });
});

describe('isDatabaseUnavailable', () => {
  const coded = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });
  it('says yes to a connection lost, refused or not had in time, a server going away, and a bound of ours running out', () => {
    for (const code of ['08006', '08001', '08P01', '57P01', '57P02', '57P03', '53300', '25006', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND']) expect(isDatabaseUnavailable(coded(code)), code).toBe(true);
    for (const message of ['timeout exceeded when trying to connect', 'Connection terminated unexpectedly', 'Connection terminated due to connection timeout', 'Connection terminated', queryTimeoutMessage]) expect(isDatabaseUnavailable(new Error(message)), message).toBe(true);
    expect(isDatabaseUnavailable(coded('57014', 'canceling statement due to statement timeout'))).toBe(true);
    expect(isDatabaseUnavailable(new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')]))).toBe(true);
  });
  it('says no to what a request or a bug caused, and to an operator cancelling a query', () => {
    for (const code of ['23505', '22P02', '42P01', '40001', '55P03']) expect(isDatabaseUnavailable(coded(code)), code).toBe(false);
    expect(isDatabaseUnavailable(coded('57014', 'canceling statement due to user request'))).toBe(false);
    expect(isDatabaseUnavailable(new Error('something else'))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError('x is undefined'))).toBe(false);
    expect(isDatabaseUnavailable('Connection terminated')).toBe(false);
  });
});
