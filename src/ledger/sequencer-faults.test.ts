/**
 * The write path when PostgreSQL misbehaves in the middle of a batch. Faults are injected by
 * triggers that fire once per arming (a sequence, which a rollback does not undo, counts the
 * shots): the batch's own backend is terminated while its events are written, or at COMMIT
 * (a deferred trigger); and a COMMIT that succeeded loses its reply. After each: every caller
 * has an answer, retries with the same keys apply nothing twice, the next batch continues the
 * log at the head (gapless seq, no stale cached rows), and the log still proves.
 */
import { describe, expect, it } from 'vitest';
import { worldPerFile, expectOk, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { failAfterCommitReply } from '../../test/support/commit-reply.ts';
import { createPool, type PoolClient } from '../store/pool.ts';
import { requestHash } from './idempotency.ts';
import { Ledger, type Answer } from './ledger.ts';
import { testWriterRole } from '../../test/writer.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, made2) => {
  world = made;
  database = made2;
});

const faults = {
  /** The batch's backend dies while its events are written: before COMMIT. */
  events: 'AFTER INSERT ON events FOR EACH STATEMENT',
  /** It dies at COMMIT, in a deferred trigger: the client has sent COMMIT and hears nothing back. */
  commit: 'AFTER UPDATE ON log_head DEFERRABLE INITIALLY DEFERRED FOR EACH ROW',
} as const;
type Fault = keyof typeof faults;

async function installFaults(): Promise<void> {
  await database.pool.query(`CREATE FUNCTION test_fault_kill() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('test_fault_' || TG_ARGV[0]) = 1 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
        PERFORM pg_sleep(60); -- the termination interrupts it
      END IF;
      RETURN NULL;
    END $$`);
  for (const [fault, when] of Object.entries(faults)) {
    // The trigger runs as the ledger's writer, which takes the sequence's next value.
    await database.pool.query(`CREATE SEQUENCE test_fault_${fault} START 2; GRANT USAGE ON SEQUENCE test_fault_${fault} TO ${testWriterRole}`);
    await database.pool.query(`CREATE ${fault === 'commit' ? 'CONSTRAINT ' : ''}TRIGGER test_fault_${fault} ${when} EXECUTE FUNCTION test_fault_kill('${fault}')`);
  }
}

/** The next batch that reaches the fault's point loses its connection there; later ones pass. */
async function arm(fault: Fault): Promise<void> {
  await database.pool.query(`SELECT setval('test_fault_${fault}', 1, false)`);
}

const book = (key?: string): Promise<Answer> => world.ledger.submit('shipment.book', {
  exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
}, world.actors.exporter, key);

async function committed(): Promise<{ shipments: number; reserved: number; size: number }> {
  const row = (await database.pool.query<{ shipments: number; reserved: number; size: number }>(`SELECT
    (SELECT count(*)::int FROM shipments WHERE export_allocation_id = $1) AS shipments,
    (SELECT reserved_units FROM allocations WHERE id = $1) AS reserved,
    (SELECT size FROM log_head) AS size`, [world.allocations.alphaExport])).rows[0]!;
  return row;
}

/** Every invariant holds, and a second process starting on the database proves the log. */
async function expectSound(): Promise<void> {
  expect(await world.ledger.violations()).toEqual([]);
  const pool = createPool({ url: database.url, connectionsMax: 2, applicationName: 'sequencer-faults-check' });
  try {
    const fresh = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: world.clock });
    await fresh.close();
  } finally {
    await pool.end();
  }
}

/**
 * Sends `count` keyed bookings at once with the fault armed, then the same again: each
 * first answer is accepted or 'unavailable' (never a hang, never a 500), each retry is
 * accepted, and one booking per key is committed.
 */
async function bookThroughFault(fault: Fault | null, count: number, keyPrefix: string): Promise<void> {
  // Twice without a fault: the row cache then holds the rows, so the next batch is sent ahead.
  expectOk(await book());
  expectOk(await book());
  const before = await committed();
  if (fault) await arm(fault);
  const keys = Array.from({ length: count }, (_, index) => `${keyPrefix}-${index}`);
  const first = await Promise.all(keys.map((key) => book(key)));
  expect(first.filter((answer) => !answer.ok && answer.error.code !== 'unavailable')).toEqual([]);
  expect(first.some((answer) => !answer.ok)).toBe(true);
  const retried = await Promise.all(keys.map((key) => book(key)));
  for (const [index, answer] of retried.entries()) {
    const body = expectOk(answer);
    if (first[index]!.ok) expect({ body, replayed: answer.replayed }).toEqual({ body: expectOk(first[index]!), replayed: true });
  }
  const seqs = retried.map((answer) => (answer.ok ? answer.seq : -1)).sort((a, b) => a - b);
  expect(new Set(seqs).size).toBe(count);
  expect(seqs[0]).toBeGreaterThanOrEqual(before.size);
  // One booking per key: nothing the failed batch did survives in the rows, the row cache or the log.
  const after = await committed();
  expect({ shipments: after.shipments - before.shipments, reserved: after.reserved - before.reserved }).toEqual({ shipments: count, reserved: count });
  const next = expectOk(await book());
  expect(next.seq).toBe(after.size);
  await expectSound();
}

describe('the sequencer when a batch loses its connection', () => {
  it('keeps a checked-out connection\'s loss from crashing the process', async () => {
    // pg emits a lost connection as an 'error' event on the client, which pg-pool listens
    // for only while the client is idle: without a listener of ours, emit() throws, from a
    // socket callback, and the process dies with every queued command unanswered.
    const client = await database.pool.connect();
    try {
      expect(() => client.emit('error', new Error('Connection terminated unexpectedly'))).not.toThrow();
    } finally {
      client.release(true);
    }
  });

  it('answers every caller and continues at the head when the backend dies while the events are written', async () => {
    await installFaults();
    await bookThroughFault('events', 5, 'events-small');
  });

  it('does the same for a batch big enough to send its events by COPY', async () => {
    await bookThroughFault('events', 300, 'events-copy');
  });

  it('does the same when the backend dies at COMMIT', async () => {
    await bookThroughFault('commit', 5, 'commit');
  });
});

describe('the sequencer when a COMMIT succeeds but its reply is lost', () => {
  // Sent ahead: the batch's one text opens, writes and commits. The classic way (no row
  // cache) takes the lock in a round trip of its own first. A client that gives up on the
  // reply (node-postgres's query_timeout) keeps its connection: a ROLLBACK after it
  // succeeds, and must not be taken for proof that the batch did not commit.
  it.each([
    ['sent ahead', undefined, true, 'connection lost'],
    ['the classic way', 0, false, 'connection lost'],
    ['sent ahead, the client giving up on the reply', undefined, true, 'client gave up'],
  ] as const)('answers unavailable (%s), then learns the truth: the retried keys get the committed answers and the next batch follows them', async (way, rowCacheRows, oneRoundTrip, how) => {
    const pool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'sequencer-faults-commit' });
    let loseNextCommitReply = false;
    let lostText = '';
    // The sequencer connects without a callback; pool.query (migrations, checks) with one.
    const connect = pool.connect.bind(pool) as (...args: unknown[]) => Promise<PoolClient> | undefined;
    (pool as { connect: (...args: unknown[]) => unknown }).connect = (...args: unknown[]) => {
      if (args.length > 0) return connect(...args);
      return connect()!.then((client) => {
        if (loseNextCommitReply) {
          loseCommitReply(client, how, (text) => {
            loseNextCommitReply = false;
            lostText = text;
          });
        }
        return client;
      });
    };
    const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: world.clock, ...(rowCacheRows === undefined ? {} : { rowCacheRows }) });
    try {
      const input = { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z' };
      const submit = (key?: string) => ledger.submit('shipment.book', input, world.actors.exporter, key);
      expectOk(await submit());
      expectOk(await submit()); // the row cache now holds the allocations
      const before = await committed();
      loseNextCommitReply = true;
      const key = `lost-reply-${way}`;
      const lost = await submit(key);
      expect(lost.ok ? 'accepted' : lost.error.code).toBe('unavailable');
      expect(loseNextCommitReply).toBe(false);
      expect(lostText.startsWith('BEGIN ISOLATION LEVEL READ COMMITTED;') && lostText.includes('ledger_lock_expected_head')).toBe(oneRoundTrip);
      // It did commit.
      const after = await committed();
      expect(after).toEqual({ shipments: before.shipments + 1, reserved: before.reserved + 1, size: before.size + 1 });
      const retried = await submit(key);
      expect({ seq: expectOk(retried).seq, replayed: retried.replayed }).toEqual({ seq: before.size, replayed: true });
      // The next batch reads the head again rather than assume the batch rolled back: it
      // takes the next seq and books from the committed reservation.
      const next = await submit();
      expect(expectOk(next).seq).toBe(after.size);
      expect((await committed()).reserved).toBe(after.reserved + 1);
      await expectSound();
    } finally {
      await ledger.close();
      await pool.end();
    }
  });
});

/**
 * Lets the client's next text that ends in COMMIT run, then fails it as if its reply were
 * lost: the connection cut before the reply is read, or the client giving up on it while
 * the connection lives on (once: the client goes back to the pool).
 */
function loseCommitReply(client: PoolClient, how: 'connection lost' | 'client gave up', fired: (text: string) => void): void {
  failAfterCommitReply(client, (text) => {
    fired(text);
    if (how === 'client gave up') return new Error('Query read timeout');
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    return new Error('Connection terminated unexpectedly');
  });
}

describe('the sequencer when another writer holds the head lock', () => {
  it('answers unavailable once its wait bound passes, and books the same key once the lock is free', async () => {
    const holder = await database.pool.connect();
    const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, clock: world.clock, headLockWaitMs: 200 });
    try {
      const before = await committed();
      // Another process's batch that hangs holding the lock.
      await holder.query('BEGIN; SELECT size FROM log_head WHERE id = 1 FOR UPDATE');
      const input = { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z' };
      const waited = await ledger.submit('shipment.book', input, world.actors.exporter, 'held-lock');
      expect(waited.ok ? 'accepted' : waited.error.code).toBe('unavailable');
      expect(await committed()).toEqual(before);
      await holder.query('ROLLBACK');
      const retried = await ledger.submit('shipment.book', input, world.actors.exporter, 'held-lock');
      expect({ seq: expectOk(retried).seq, replayed: retried.replayed }).toEqual({ seq: before.size, replayed: false });
      await expectSound();
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
      await ledger.close();
    }
  });

  it('answers the commands still queued at once when it shuts down and the lock does not come, instead of one wait per batch', async () => {
    const holder = await database.pool.connect();
    const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, clock: world.clock, headLockWaitMs: 200, batchCommandsMax: 1 });
    try {
      const before = await committed();
      const failedBefore = ledger.sequencer.stats.failedBatches;
      await holder.query('BEGIN; SELECT size FROM log_head WHERE id = 1 FOR UPDATE');
      const input = { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z' };
      const answers = Promise.all(Array.from({ length: 4 }, (_, index) => ledger.submit('shipment.book', input, world.actors.exporter, `closing-${index}`)));
      await ledger.close();
      expect((await answers).map((answer) => (answer.ok ? 'accepted' : answer.error.code))).toEqual(['unavailable', 'unavailable', 'unavailable', 'unavailable']);
      // One batch of one command waited for the lock; the other three were not tried.
      expect(ledger.sequencer.stats.failedBatches - failedBefore).toBe(1);
      await holder.query('ROLLBACK');
      expect(await committed()).toEqual(before);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
      await ledger.close();
    }
  });
});

/**
 * A uniqueness only the database holds, so that it refuses a command on its own: a test index on
 * shipments.reference, which no check in code compares (the world's bookings have none, and NULLs
 * never collide). A GPU UUID another unit holds was one until the ledger refused it in code.
 */
async function referencesOnce(): Promise<void> {
  await database.pool.query('CREATE UNIQUE INDEX IF NOT EXISTS test_shipments_reference_once ON shipments (reference)');
}

/** A one-unit booking, the exporter to alpha, with the reference. */
const referenced = (reference: string, serial: string) => ({
  exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
  reference, serials: [serial],
});

describe('a command the database refuses on its own', () => {
  it('is remembered under its idempotency key like any refusal: a retry replays it (invariant 6)', async () => {
    await referencesOnce();
    const input = (serial: string) => referenced('REF-CLASH', serial);
    expectOk(await world.ledger.submit('shipment.book', input('REF-FIRST'), world.actors.exporter));
    // Another booking with the same reference: only the test's unique index knows.
    const refused = await world.ledger.submit('shipment.book', input('REF-SECOND'), world.actors.exporter, 'reference-clash');
    expect(refused.ok ? 'accepted' : refused.error.code).toBe('conflict');
    const retried = await world.ledger.submit('shipment.book', input('REF-SECOND'), world.actors.exporter, 'reference-clash');
    expect(retried).toMatchObject({ ok: false, replayed: true, error: { code: 'conflict', message: refused.ok ? '' : refused.error.message } });
    // The same key with another body is refused as for any remembered key.
    const other = await world.ledger.submit('shipment.book', input('REF-THIRD'), world.actors.exporter, 'reference-clash');
    expect(other.ok ? 'accepted' : other.error.code).toBe('idempotency_mismatch');
    await expectSound();
  });
});

describe('a refusal the write path must not remember as the command\'s answer', () => {
  const clash = (serial: string, gpuUuid: string) => ({
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    serials: [{ serial, gpuUuid }],
  });
  /** A one-shot fault: the next `when` on `table` raises `errcode` (with `constraint`, if any); later ones pass. */
  async function oneShot(name: string, when: string, errcode: string, constraint?: string): Promise<void> {
    await database.pool.query(`CREATE SEQUENCE test_shot_${name} START 1; GRANT USAGE ON SEQUENCE test_shot_${name} TO ${testWriterRole}`);
    await database.pool.query(`CREATE FUNCTION test_shot_${name}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('test_shot_${name}') = 1 THEN
          RAISE EXCEPTION 'injected fault' USING ERRCODE = '${errcode}'${constraint ? `, CONSTRAINT = '${constraint}'` : ''};
        END IF;
        RETURN NULL;
      END $$`);
    await database.pool.query(`CREATE TRIGGER test_shot_${name} ${when} EXECUTE FUNCTION test_shot_${name}()`);
  }

  it('a fault of the log\'s own tables (a tile write refused) is not stored: the retry with the same key runs again', async () => {
    await oneShot('tiles', 'AFTER INSERT OR UPDATE ON tlog_tiles FOR EACH STATEMENT', '23514', 'tlog_tiles_only_grow');
    const input = clash('TILE-FAULT-1', 'GPU-7a1e0000-0000-0000-0000-000000000001');
    const first = await world.ledger.submit('shipment.book', input, world.actors.exporter, 'tile-fault');
    expect(first.ok ? 'accepted' : first.error.code).toBe('conflict');
    const retried = await world.ledger.submit('shipment.book', input, world.actors.exporter, 'tile-fault');
    expect({ ok: retried.ok, replayed: retried.replayed }).toEqual({ ok: true, replayed: false });
    await expectSound();
  });

  it('a refusal that cannot be stored goes out as unavailable, and the retry stores and then replays it', async () => {
    await referencesOnce();
    expectOk(await world.ledger.submit('shipment.book', referenced('STORE-FAULT', 'STORE-FAULT-1'), world.actors.exporter));
    await oneShot('keys', 'BEFORE INSERT ON idempotency_keys FOR EACH STATEMENT', 'XX001');
    const input = referenced('STORE-FAULT', 'STORE-FAULT-2');
    const answers = [];
    for (let attempt = 0; attempt < 3; attempt += 1) answers.push(await world.ledger.submit('shipment.book', input, world.actors.exporter, 'store-fault'));
    expect(answers.map((answer) => [answer.ok ? 'accepted' : answer.error.code, answer.replayed])).toEqual([['unavailable', false], ['conflict', false], ['conflict', true]]);
    await expectSound();
  });
});

describe('a database refusal racing another process for the same key', () => {
  /**
   * A booking the database refuses (its reference is another booking's, referencesOnce), sent under `key` while
   * another process's batch holds an answer stored under the same key, for the request whose
   * hash is `storedHash`, not yet committed: our refusal's row waits on theirs, then theirs
   * commits. Returns our answer.
   */
  async function refusalRacing(name: string, key: string, storedFor: (input: Record<string, unknown>) => Record<string, unknown>, storedSeq: number): Promise<unknown> {
    await referencesOnce();
    const input = referenced(name, `${name}-2`);
    expectOk(await world.ledger.submit('shipment.book', referenced(name, `${name}-1`), world.actors.exporter));
    const holder = await database.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) VALUES ($1, $2, $3, 1, $4, now())`,
        [world.actors.exporter.orgId, key, requestHash('shipment.book', storedFor(input)), JSON.stringify({ ok: true, seq: storedSeq, body: { seq: storedSeq, shipmentId: `S-${storedSeq}` } })]);
      const pending = world.ledger.submit('shipment.book', input, world.actors.exporter, key);
      for (;;) {
        const waiting = await database.pool.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO idempotency_keys%'`);
        if (waiting.rowCount! > 0) break;
        await new Promise((resume) => setTimeout(resume, 5));
      }
      await holder.query('COMMIT');
      return await pending;
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  }

  it('replays the answer the other process stored first, never its own (one key, one answer)', async () => {
    expect(await refusalRacing('RACE', 'race-key', (input) => input, 4242)).toMatchObject({ ok: true, seq: 4242, replayed: true });
  });

  it('refuses with idempotency_mismatch when the other process stored another request under the key, never replays its answer', async () => {
    // The other process's answer is to another body (another deadline).
    expect(await refusalRacing('RACE-OTHER', 'race-other-key', (input) => ({ ...input, deadline: '2026-07-01T00:00:00Z' }), 4343))
      .toMatchObject({ ok: false, replayed: false, error: { code: 'idempotency_mismatch', rule: 'invariant-6' } });
  });
});
