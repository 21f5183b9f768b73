/**
 * Adopting the log key at start takes the log signing lock with the checkpointer's bounds:
 * a start that cannot get it in time fails in one line naming the session that holds it, and
 * a holder that sits idle in its transaction (a process frozen or cut off in it) is cut off
 * by PostgreSQL, so every other server's checkpoints go on. Before, adoptLogKey waited and
 * held without any bound: one start frozen inside it stopped the log's checkpoints for good.
 * Small bounds here; the real ones are in limits.ts.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { limits } from '../../core/limits.ts';
import { withTimeout } from '../../core/timeout.ts';
import { inLogSigningTransaction, listLogKeys, logSigningLockKey } from '../../store/tlog-tables.ts';
import { generateSignerKey, parseSignerKey } from '../../tlog/index.ts';
import { adoptLogKey, LogKeyError, LogSigningLockBusy } from './keys.ts';

let database: TestDatabase;
const logKey = generateSignerKey('log.keys-lock.test');

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

/** Well above every bound below: without them the waits never end, and the test says so instead of timing out. */
const hangMs = 8_000;

describe('adopting the log key while another process holds the log signing lock', () => {
  it('waits at most its bound, then fails in one line naming the session that holds the lock', async () => {
    const holder = new pg.Client({ connectionString: database.url, application_name: 'frozen-chipledger' });
    await holder.connect();
    try {
      await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${logSigningLockKey})`);
      const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const started = performance.now();
      const refusal = await withTimeout(adoptLogKey(database.pool, parseSignerKey(logKey.signerKey), undefined, 500), hangMs, 'adoptLogKey waited for the lock without a bound')
        .then(() => expect.fail('adopted the key while another session held the signing lock'), (error: unknown) => error);
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(refusal).toBeInstanceOf(LogSigningLockBusy);
      // What serve and the CLI already say in one line, without a stack (cli/program.ts).
      expect(refusal).toBeInstanceOf(LogKeyError);
      expect((refusal as Error).message).toMatch(new RegExp(`^couldn't adopt the log key ${logKey.verifierKey.replace(/[+.]/g, '\\$&')}: waited 500 ms for the log signing lock, which another chipledger holds \\(PostgreSQL session ${pid} \\(frozen-chipledger, idle in transaction for \\d+ s\\)\\); a holder that is frozen or cut off loses it after 10 s idle, so run this again; if it keeps failing, stop the process that holds it or end its session \\(SELECT pg_terminate_backend\\(${pid}\\)\\)$`));
    } finally {
      await holder.end();
    }
    // Once the lock is free the same start adopts the key.
    expect(await adoptLogKey(database.pool, parseSignerKey(logKey.signerKey), undefined, 500)).toBe(false);
    expect((await listLogKeys(database.pool)).map((key) => key.verifier_key)).toEqual([logKey.verifierKey]);
  });

  it('gets the lock once PostgreSQL cuts off a holder idle in its signing transaction (a process frozen in it)', async () => {
    let holderEnded: unknown;
    // A signing transaction whose process stopped right after it took the lock: its session
    // sits idle in the transaction, which only the idle bound ends.
    let frozen!: () => void;
    const locked = new Promise<void>((resolve) => (frozen = resolve));
    let thaw!: () => void;
    const thawed = new Promise<void>((resolve) => (thaw = resolve));
    const holder = inLogSigningTransaction(database.pool, async (client) => {
      frozen();
      await thawed;
      await client.query('SELECT 1');
    }, undefined, 300).then(() => (holderEnded = 'committed'), (error: unknown) => (holderEnded = error));
    await locked;
    const started = performance.now();
    try {
      expect(await withTimeout(adoptLogKey(database.pool, parseSignerKey(logKey.signerKey), undefined, 5_000), hangMs, 'the idle holder kept the signing lock')).toBe(false);
      expect(performance.now() - started).toBeLessThan(3_000);
    } finally {
      thaw();
      await holder;
    }
    // The holder's session was ended under it: nothing of its transaction committed.
    expect(holderEnded).toBeInstanceOf(Error);
  }, 15_000);

  it('always bounds the time a holder sits idle: by the idle bound, or by the wait bound where that is smaller', async () => {
    const idleOf = (waitMs?: number) => inLogSigningTransaction(database.pool, async (client) => (await client.query('SHOW idle_in_transaction_session_timeout')).rows[0].idle_in_transaction_session_timeout as string, waitMs);
    expect(await idleOf()).toBe(`${limits.logSigningIdleMsMax / 1_000}s`);
    expect(await idleOf(limits.logKeyAdoptionWaitMsMax)).toBe(`${limits.logSigningIdleMsMax / 1_000}s`);
    expect(await idleOf(2_000)).toBe('2s');
  });
});
