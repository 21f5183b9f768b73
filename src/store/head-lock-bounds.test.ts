/**
 * Every transaction that takes the ledger's head lock bounds how long it may then sit idle
 * (limits.headLockIdleMsMax, idle_in_transaction_session_timeout): the classic batch
 * (beginBatch), the batch sent ahead (openAtHeadSql, still one text) and a refusal
 * remembered on its own (rememberAnswer). The setting is the transaction's alone. So do
 * its statement bound (limits.ledgerStatementMsMax, whatever the session's) and its durability: a
 * session whose synchronous_commit is off commits the ledger's batches with 'local'.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { limits } from '../core/limits.ts';
import { beginBatch, openAtHeadSql, type StoredHead } from './head-lock.ts';
import { rememberAnswer } from './idempotency-answers.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

const idleBound = `${limits.headLockIdleMsMax / 1000}s`;
const statementBound = `${limits.ledgerStatementMsMax / 60_000}min`;

async function setting(client: PoolClient, name: string): Promise<string> {
  return (await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!;
}

async function withClient<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await database.pool.connect();
  let broken = false;
  try {
    return await work(client);
  } finally {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    client.release(broken);
  }
}

describe('the idle bound of a transaction holding the head lock', () => {
  it('is set by beginBatch, with the lock wait, in its one round trip; the stored answers still come back', async () => {
    await database.pool.query(`INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) VALUES ('ORG-1', 'k-1', '\\x00', 200, '{}', now())`);
    await withClient(async (client) => {
      let texts = 0;
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        texts += 1;
        return query(...args);
      };
      const { head, stored } = await beginBatch(client, [{ scope: 'ORG-1', key: 'k-1' }, { scope: 'ORG-1', key: 'k-2' }], 250);
      expect(texts).toBe(1);
      expect(head.size).toBe(0);
      expect(stored.map((row) => row.key)).toEqual(['k-1']);
      expect({ idle: await setting(client, 'idle_in_transaction_session_timeout'), lock: await setting(client, 'lock_timeout') }).toEqual({ idle: idleBound, lock: '250ms' });
      await client.query('ROLLBACK');
      // SET LOCAL: the pooled session goes back to its own settings.
      expect(await setting(client, 'idle_in_transaction_session_timeout')).toBe('0');
    });
    await withClient(async (client) => {
      const { head, stored } = await beginBatch(client);
      expect({ size: head.size, stored }).toEqual({ size: 0, stored: [] });
      expect(await setting(client, 'idle_in_transaction_session_timeout')).toBe(idleBound);
    });
  });

  it('is set by the opening of a batch sent ahead, in the same text', async () => {
    const head = (await database.pool.query<StoredHead>('SELECT size, root, seal FROM log_head WHERE id = 1')).rows[0]!;
    const text = openAtHeadSql(head, 200);
    expect(text).toMatch(/^BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = 200; SET LOCAL idle_in_transaction_session_timeout = \d+; SET LOCAL statement_timeout = \d+; SELECT set_config\('synchronous_commit', 'local', true\) WHERE current_setting\('synchronous_commit'\) = 'off'; SELECT ledger_lock_expected_head\(/);
    await withClient(async (client) => {
      await client.query(text);
      expect(await setting(client, 'idle_in_transaction_session_timeout')).toBe(idleBound);
    });
  });

  it('is set by rememberAnswer while it holds the lock', async () => {
    const seen: string[] = [];
    const pool = database.pool;
    const connect = pool.connect.bind(pool) as (...args: unknown[]) => Promise<PoolClient> | undefined;
    (pool as { connect: (...args: unknown[]) => unknown }).connect = (...args: unknown[]) => {
      if (args.length > 0) return connect(...args);
      return connect()!.then(async (client) => {
        // The session's own settings, as a role or database setting would give them.
        await client.query("SELECT set_config('synchronous_commit', 'off', false), set_config('statement_timeout', '15ms', false)");
        const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
        (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
          const result = query(...args);
          if (typeof args[0] !== 'string' || !args[0].includes('FOR UPDATE')) return result;
          return result.then(async (value) => {
            seen.push(`${await setting(client, 'idle_in_transaction_session_timeout')} ${await setting(client, 'statement_timeout')} ${await setting(client, 'synchronous_commit')}`);
            return value;
          });
        };
        const release = client.release.bind(client);
        client.release = (...releaseArgs: Parameters<PoolClient['release']>) => {
          (client as unknown as { query: unknown }).query = query;
          client.release = release;
          // Back to the pool with the defaults, for the tests that follow.
          return void client.query('RESET synchronous_commit; RESET statement_timeout').finally(() => release(...releaseArgs));
        };
        return client;
      });
    };
    try {
      const earlier = await rememberAnswer(pool, { scope: 'ORG-1', key: 'k-remember', request_hash: Buffer.from([1]), status: 409, response: { ok: false }, created_at: '2026-02-01T00:00:00Z' });
      expect({ earlier, seen }).toEqual({ earlier: undefined, seen: [`${idleBound} ${statementBound} local`] });
    } finally {
      (pool as { connect: unknown }).connect = connect;
    }
  });

  it('ends the session of a transaction that idles past it holding the lock, which frees the lock for the next writer', async () => {
    await withClient(async (stalled) => {
      await beginBatch(stalled);
      const started = performance.now();
      const waited = await withClient(async (next) => {
        await beginBatch(next, [], limits.headLockIdleMsMax * 3);
        return performance.now() - started;
      });
      expect(waited).toBeGreaterThanOrEqual(limits.headLockIdleMsMax - 100);
      expect(waited).toBeLessThan(limits.headLockIdleMsMax * 2);
      // The stalled transaction is gone, rolled back: its session with it.
      await expect(stalled.query('SELECT 1')).rejects.toThrow();
    });
  }, 30_000);
});

describe("a ledger transaction's statement bound and durability", () => {
  const cases: Array<{ session: { synchronousCommit: string; statementTimeout: string }; inBatch: { synchronousCommit: string; statementTimeout: string } }> = [
    // Off (a role or database setting): raised, or a crash loses answered batches.
    { session: { synchronousCommit: 'off', statementTimeout: '15ms' }, inBatch: { synchronousCommit: 'local', statementTimeout: statementBound } },
    // Stronger than 'local' (a synchronous standby): the operator's, kept.
    { session: { synchronousCommit: 'remote_apply', statementTimeout: '0' }, inBatch: { synchronousCommit: 'remote_apply', statementTimeout: statementBound } },
    { session: { synchronousCommit: 'on', statementTimeout: '10min' }, inBatch: { synchronousCommit: 'on', statementTimeout: statementBound } },
  ];
  for (const { session, inBatch } of cases) {
    it(`makes synchronous_commit ${inBatch.synchronousCommit} of a session's ${session.synchronousCommit}, and bounds statements at ${statementBound} whatever the session's ${session.statementTimeout}, on both openings`, async () => {
      const head = (await database.pool.query<StoredHead>('SELECT size, root, seal FROM log_head WHERE id = 1')).rows[0]!;
      for (const open of [(client: PoolClient) => beginBatch(client), (client: PoolClient) => client.query(openAtHeadSql(head))]) {
        await withClient(async (client) => {
          await client.query('SELECT set_config($1, $2, false), set_config($3, $4, false)', ['synchronous_commit', session.synchronousCommit, 'statement_timeout', session.statementTimeout]);
          await open(client);
          expect({ synchronousCommit: await setting(client, 'synchronous_commit'), statementTimeout: await setting(client, 'statement_timeout') }).toEqual(inBatch);
          await client.query('ROLLBACK');
          expect(await setting(client, 'synchronous_commit')).toBe(session.synchronousCommit);
          await client.query('RESET synchronous_commit; RESET statement_timeout');
        });
      }
    });
  }
});
