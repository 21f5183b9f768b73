/**
 * The log signing transaction: its rows are ordered as the lock orders them, and a holder
 * that sits idle in it is cut off, so one stalled process cannot keep every signer out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { inLogSigningTransaction, insertLogKey, listLogKeys, logSigningLockKey } from './tlog-tables.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describe('the log signing transaction', () => {
  it('orders log keys by when they were written under the lock, not by when their transaction began', async () => {
    // The first transaction begins, then waits while a second begins, writes and commits.
    let wrote!: () => void;
    const written = new Promise<void>((resolve) => (wrote = resolve));
    const early = database.pool.connect().then(async (client) => {
      try {
        await client.query('BEGIN');
        await client.query('SELECT now()'); // its now() is fixed here
        await written;
        await client.query(`SELECT pg_advisory_xact_lock(${logSigningLockKey})`);
        await insertLogKey(client, { key_id: 'bbbbbbbb', verifier_key: 'later+bbbbbbbb+x', first_size: 0, announced_size: null });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await inLogSigningTransaction(database.pool, (client) => insertLogKey(client, { key_id: 'aaaaaaaa', verifier_key: 'earlier+aaaaaaaa+x', first_size: 0, announced_size: null }));
    wrote();
    await early;
    // Written second, under the lock: the current key, whatever its transaction's start.
    expect((await listLogKeys(database.pool)).map((row) => row.key_id)).toEqual(['aaaaaaaa', 'bbbbbbbb']);
  });

  it('ends a holder that sits idle in it past the wait bound, and the next signer gets the lock', async () => {
    const waitMs = 300;
    const stalled = inLogSigningTransaction(database.pool, async (client) => {
      await new Promise((resolve) => setTimeout(resolve, 4 * waitMs)); // a process stopped while it holds the lock
      await client.query('SELECT 1');
    }, waitMs);
    await expect(stalled).rejects.toThrow(/connection|terminat/i);
    await expect(inLogSigningTransaction(database.pool, async (client) => (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, waitMs)).resolves.toBe(1);
  });
});
