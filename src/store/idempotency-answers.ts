/**
 * Idempotency answers outside a batch: storing one under the head lock (rememberAnswer) and
 * reading one back by its key (storedAnswer). A batch stores its own with its writes
 * (batch-writes.ts) and looks them up as it opens (head-lock.ts beginBatch).
 */
import { limits } from '../core/limits.ts';
import { inTransaction, type Pool, type PoolClient } from './pool.ts';
import type { IdempotencyWrite } from './batch-writes.ts';
import { beginHeadLocked, headLockBoundsSql } from './head-lock.ts';

export interface StoredAnswer {
  scope: string;
  key: string;
  request_hash: Buffer;
  status: number;
  response: unknown;
}

/**
 * Stores one idempotency answer outside a batch, under the head lock as every batch writes
 * its answers: another process's batch holding the same key is then committed or gone,
 * never in flight. Returns undefined when this answer was stored, or the answer stored
 * before it under the key (read in its own statement, so that it sees that commit).
 */
export function rememberAnswer(pool: Pool, row: IdempotencyWrite, lockWaitMs: number = limits.headLockWaitMsMax): Promise<StoredAnswer | undefined> {
  return inTransaction(pool, beginHeadLocked, async (client) => {
    await client.query(`${headLockBoundsSql(lockWaitMs)}; SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE`);
    const inserted = await client.query(
      `INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope, key) DO NOTHING`,
      [row.scope, row.key, row.request_hash, row.status, JSON.stringify(row.response), row.created_at],
    );
    if (inserted.rowCount === 1) return undefined;
    return storedAnswer(client, row.scope, row.key);
  });
}

/**
 * The answer stored under a key, if any, by the table's primary key: read back by
 * rememberAnswer, and read on its own for a request refused before it is queued
 * (ledger/keyed-refusals.ts answerRefusedAtOnce), which no batch looks up.
 */
export async function storedAnswer(db: Pool | PoolClient, scope: string, key: string): Promise<StoredAnswer | undefined> {
  return (await db.query<StoredAnswer>('SELECT scope, key, request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2', [scope, key])).rows[0];
}
