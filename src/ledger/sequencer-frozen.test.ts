/**
 * The write path while PostgreSQL is frozen (SIGSTOP of the postmaster and its backends) or
 * cut off (a partition): bytes stop moving, no error comes, and the server enforces none of
 * its own bounds (lock_timeout, idle_in_transaction_session_timeout, statement_timeout). The
 * ops review's POSTs waited as long as the freeze lasted (75 s, then 201; with no thaw, for
 * ever). Each round trip of a batch is bounded on the client side instead: the batch is
 * answered 'unavailable' within the bound, sent ahead or the classic way, its connection is
 * closed, and after the thaw the same key commits once. Through the outage the log says its
 * start once, without a stack, and its end once, with counts (the review counted 212 lines of
 * stacks for 10 s of PostgreSQL away, and the idle sweep's every 5 s).
 *
 * Frozen here by a TCP proxy in front of the test database that stops forwarding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { worldPerFile, expectOk, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { FreezingProxy } from '../../test/support/freezing-proxy.ts';
import { withTimeout } from '../core/timeout.ts';
import { createPool, type Pool, type PoolClient } from '../store/pool.ts';
import { queryTimeoutMessage } from '../store/query-timeout.ts';
import { systemActor } from './permissions.ts';
import { Sequencer } from './sequencer.ts';
import { TransparencyLog } from './log/transparency-log.ts';
import type { Answer } from './batch-apply.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, made2) => {
  world = made;
  database = made2;
});

/** The bound under test: far above a healthy round trip on a loaded machine, short for the test. */
const boundMs = 1_000;
/** Connections opened before a freeze: each failed batch closes one, and a new one would wait for connecting's own (10 s) bound. */
const warmConnections = 6;

let proxy: FreezingProxy;
let pool: Pool;

beforeAll(async () => {
  const through = await FreezingProxy.to(database.url);
  proxy = through.proxy;
  pool = createPool({ url: through.url, connectionsMax: warmConnections, applicationName: 'sequencer-frozen-test' });
});
afterAll(async () => {
  proxy?.thaw();
  await pool?.end().catch(() => {});
  await proxy?.close();
});

interface Said {
  errors: Array<{ error: unknown; context: string }>;
  recoveries: string[];
}

/** A COPY's own bound under test: longer than a plain round trip's, as limits.writeStreamTimeoutMs is. */
const streamBoundMs = 2 * boundMs;

/** A sequencer writing through the proxy, with the bounds under test and a logger spy. */
function sequencer(said: Said): Sequencer {
  return new Sequencer({
    pool, clock: world.clock, logAppender: new TransparencyLog(pool), headLockWaitMs: 300, queryTimeoutMs: boundMs, streamTimeoutMs: streamBoundMs,
    onError: (error, context) => said.errors.push({ error, context }),
    onRecovered: (message) => said.recoveries.push(message),
  });
}

const input = (serials: string[] = []) => ({
  exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
  units: Math.max(1, serials.length), deadline: '2026-06-01T00:00:00Z', ...(serials.length === 0 ? {} : { serials }),
});

/** The answer and how long it took; a hang fails here, long before the test's own timeout. */
async function timed(answer: Promise<Answer>): Promise<{ answer: Answer; ms: number }> {
  const started = Date.now();
  const answered = await withTimeout(answer, boundMs + 10_000, `no answer ${boundMs + 10_000} ms into the freeze`);
  return { answer: answered, ms: Date.now() - started };
}

async function warm(): Promise<void> {
  await Promise.all(Array.from({ length: warmConnections }, () => pool.query('SELECT pg_sleep(0.05)')));
  expect(pool.totalCount).toBe(warmConnections);
}

async function shipmentsBooked(): Promise<number> {
  return (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM shipments WHERE export_allocation_id = $1', [world.allocations.alphaExport])).rows[0]!.n;
}

/** A key's stored answer, if any: one row at most, whatever happened. */
async function storedStatus(key: string): Promise<number[]> {
  return (await database.pool.query<{ status: number }>('SELECT status FROM idempotency_keys WHERE key = $1', [key])).rows.map((row) => row.status);
}

/** Books with `key` while the database is frozen: 'unavailable' within the bound, the connection closed. */
async function bookFrozen(ledger: Sequencer, key: string): Promise<void> {
  await warm();
  proxy.freeze();
  let frozen: { answer: Answer; ms: number };
  try {
    frozen = await timed(ledger.submit('shipment.book', input(), world.actors.exporter, key));
    // The connection that waited was closed, not given back with the round trip still on it.
    expect(pool.totalCount).toBe(warmConnections - 1);
  } finally {
    proxy.thaw();
  }
  expect(frozen.answer.ok ? 'accepted' : frozen.answer.error.code).toBe('unavailable');
  // The answer claims nothing about the outcome: the COMMIT may have been on its way.
  if (!frozen.answer.ok) expect(frozen.answer.error.message).toMatch(/retry with the same Idempotency-Key/);
  expect(frozen.ms).toBeGreaterThanOrEqual(boundMs - 50);
  expect(frozen.ms).toBeLessThan(boundMs + 2_000);
}

/**
 * After the thaw: the retry with the same key is accepted, and the booking is committed once.
 * The retry may replay it: the text held at the freeze reaches the server at the thaw, and a
 * batch sent ahead carries its COMMIT, which may run before the server sees the connection
 * closed. That is why the answer said only that the outcome was unknown.
 */
async function retryCommitsOnce(ledger: Sequencer, key: string, shipmentsBefore: number, serials: string[] = []): Promise<void> {
  expectOk(await ledger.submit('shipment.book', input(serials), world.actors.exporter, key));
  expect(await ledger.submit('shipment.book', input(serials), world.actors.exporter, key)).toMatchObject({ ok: true, replayed: true });
  expect(await shipmentsBooked()).toBe(shipmentsBefore + 1);
  expect(await storedStatus(key)).toHaveLength(1);
  expect(await world.ledger.violations()).toEqual([]);
}

describe('a write while the database is frozen', () => {
  it('is answered unavailable within its bound the classic way (locking and reading first), and the key commits once after the thaw', async () => {
    const said: Said = { errors: [], recoveries: [] };
    const ledger = sequencer(said);
    try {
      const before = await shipmentsBooked();
      // A new sequencer has committed nothing: its first batch goes the classic way.
      await bookFrozen(ledger, 'frozen-classic');
      expect(ledger.stats.aheadBatches).toBe(0);
      await retryCommitsOnce(ledger, 'frozen-classic', before);
    } finally {
      await ledger.close();
    }
  });

  it('is answered unavailable within its bound when sent ahead (lock, writes and COMMIT in one text), and the key commits once after the thaw', async () => {
    const said: Said = { errors: [], recoveries: [] };
    const ledger = sequencer(said);
    try {
      // Two batches alone on the ledger: the next is applied from the row cache and sent ahead.
      for (let index = 0; index < 3; index += 1) expectOk(await ledger.submit('shipment.book', input(), world.actors.exporter));
      expect(ledger.stats.aheadBatches).toBeGreaterThan(0);
      const before = await shipmentsBooked();
      const aheadBefore = ledger.stats.aheadBatches;
      await bookFrozen(ledger, 'frozen-ahead');
      expect(ledger.stats.aheadBatches).toBe(aheadBefore);
      await retryCommitsOnce(ledger, 'frozen-ahead', before);
    } finally {
      await ledger.close();
    }
  });
});

describe('a big write while the database freezes in the middle of its COPY', () => {
  it('is answered unavailable within the COPY\'s own, longer bound, and the key commits once after the thaw', async () => {
    const said: Said = { errors: [], recoveries: [] };
    const ledger = sequencer(said);
    // From bulkRowsMin (256) rows a manifest's serials and units go by COPY (store/batch-writes.ts).
    const serials = Array.from({ length: 300 }, (_, index) => `COPY-FROZEN-${String(index).padStart(4, '0')}`);
    // The database freezes as the batch's first COPY is sent: its statements before went through.
    let freezeAtCopy = false;
    let frozeAtCopy = false;
    const connect = pool.connect.bind(pool) as (...args: unknown[]) => Promise<PoolClient> | undefined;
    (pool as { connect: (...args: unknown[]) => unknown }).connect = (...args: unknown[]) => {
      if (args.length > 0) return connect(...args);
      return connect()!.then((client) => {
        const query = client.query.bind(client) as (...queryArgs: unknown[]) => unknown;
        (client as unknown as { query: (...queryArgs: unknown[]) => unknown }).query = (...queryArgs: unknown[]) => {
          if (freezeAtCopy && typeof (queryArgs[0] as { submit?: unknown }).submit === 'function') {
            freezeAtCopy = false;
            frozeAtCopy = true;
            proxy.freeze();
          }
          return query(...queryArgs);
        };
        return client;
      });
    };
    try {
      const before = await shipmentsBooked();
      await warm();
      freezeAtCopy = true;
      let frozen: { answer: Answer; ms: number };
      try {
        frozen = await timed(ledger.submit('shipment.book', input(serials), world.actors.exporter, 'frozen-copy'));
      } finally {
        proxy.thaw();
      }
      expect(frozeAtCopy).toBe(true);
      expect(frozen.answer.ok ? 'accepted' : frozen.answer.error.code).toBe('unavailable');
      expect(frozen.ms).toBeGreaterThanOrEqual(streamBoundMs - 50);
      expect(frozen.ms).toBeLessThan(streamBoundMs + 2_000);
      await retryCommitsOnce(ledger, 'frozen-copy', before, serials);
    } finally {
      delete (pool as { connect?: unknown }).connect;
      await ledger.close();
    }
  });
});

describe('the log through an outage of the database', () => {
  it('says its first failed batch once, naming the sweep, without a stack; then its end once, with counts', async () => {
    const said: Said = { errors: [], recoveries: [] };
    const ledger = sequencer(said);
    try {
      expectOk(await ledger.submit('shipment.book', input(), world.actors.exporter));
      // PostgreSQL stopped: each batch fails at once (a connection lost, or refused).
      proxy.stop();
      const answers: Answer[] = [];
      try {
        // The idle server's sweep first, as every 5 s, then bookings: each batch fails.
        answers.push((await timed(ledger.submit('ledger.sweep', {}, systemActor))).answer);
        for (const key of ['outage-1', 'outage-2', 'outage-3']) answers.push((await timed(ledger.submit('shipment.book', input(), world.actors.exporter, key))).answer);
      } finally {
        proxy.start();
      }
      expect(answers.map((answer) => (answer.ok ? 'accepted' : answer.error.code))).toEqual(['unavailable', 'unavailable', 'unavailable', 'unavailable']);
      expect(said.errors.map((entry) => entry.context)).toEqual([
        "couldn't commit a batch of 1 command (ledger.sweep), answered 'unavailable': the database is slow or away (each reason is said once until a batch commits again)",
      ]);
      // Its cause, by message, without the frames (where pg noticed the loss says nothing).
      const cause = said.errors[0]!.error as Error;
      expect(cause.message).toMatch(/^Connection terminated/);
      expect(cause.stack).toBe(`Error: ${cause.message}`);
      expect(said.recoveries).toEqual([]);
      expectOk(await ledger.submit('shipment.book', input(), world.actors.exporter));
      expect(said.recoveries).toHaveLength(1);
      expect(said.recoveries[0]).toMatch(/^the ledger commits again, after 4 batches of 4 commands answered 'unavailable' over \d+\.\d s$/);
      // Said once: the next batch that commits says nothing more.
      expectOk(await ledger.submit('shipment.book', input(), world.actors.exporter));
      expect({ errors: said.errors.length, recoveries: said.recoveries.length }).toEqual({ errors: 1, recoveries: 1 });
    } finally {
      await ledger.close();
    }
  });

  it('says a frozen database the same way: once, by the bound that ran out', async () => {
    const said: Said = { errors: [], recoveries: [] };
    const ledger = sequencer(said);
    try {
      await bookFrozen(ledger, 'frozen-said-1');
      await bookFrozen(ledger, 'frozen-said-2');
      expect(said.errors.map((entry) => entry.context)).toEqual([
        "couldn't commit a batch of 1 command (shipment.book), answered 'unavailable': the database is slow or away (each reason is said once until a batch commits again)",
      ]);
      const cause = said.errors[0]!.error as Error;
      expect({ message: cause.message, stack: cause.stack }).toEqual({ message: queryTimeoutMessage, stack: `Error: ${queryTimeoutMessage}` });
      expectOk(await ledger.submit('shipment.book', input(), world.actors.exporter));
      expect(said.recoveries).toEqual([expect.stringMatching(/^the ledger commits again, after 2 batches of 2 commands answered 'unavailable' over \d+\.\d s$/)]);
    } finally {
      await ledger.close();
    }
  });
});
