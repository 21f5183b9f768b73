/**
 * How a ledger batch's transaction opens under the head lock, the ledger's global write lock:
 * reading the head and the stored answers (beginBatch), or only checking the head (openAtHeadSql),
 * with the bounds and settings every transaction that takes the lock runs under. Also the
 * head's shape and the SQLSTATEs a head refuses a batch with.
 */
import pg from 'pg';
import { limits } from '../core/limits.ts';
import { waitBoundsSql, type PoolClient } from './pool.ts';
import type { StoredAnswer } from './idempotency-answers.ts';

export interface LogHead {
  /** Events so far: the next event's seq. */
  size: number;
  /** RFC 6962 root over those events, as the transparency log last wrote it. */
  root: Buffer;
}

/**
 * A head as stored, with its seal (migration 060, ledger/log/head-seal.ts): null where none was
 * written (before 060, or by a process not given the log's key).
 */
export interface StoredHead extends LogHead {
  seal: Buffer | null;
}

/**
 * The head a batch is applied at: the log's, and the time of its newest event (log_head.at,
 * migration 031), before which no later event may be dated. The database keeps the time:
 * it moves with a batch's events only, so a head's size and root fix it.
 */
export interface BatchHead extends LogHead {
  /** ISO 8601, to the millisecond. */
  at: string;
}

/** SQLSTATE of log_head_event_times_rise (migration 031): a batch dated before the newest event, a bug of its writer's. */
export const eventTimeBackCode = 'CLH02';
/**
 * SQLSTATE of the same trigger (migration 047) when a batch is dated more than
 * limits.clockAheadOfDatabaseMsMax ahead of the database's clock: the writing server's clock
 * runs ahead. Its DETAIL is JSON: { batchAt, databaseAt, aheadMsMax }.
 */
export const clockAheadOfDatabaseCode = 'CLH03';

/**
 * Opens a batch's transaction, takes the ledger's global write lock and finds the head (with
 * its time) and the answers stored under the batch's idempotency keys, in one round trip.
 * The lock orders every writer, also across processes; statements after it see every batch
 * committed before.
 * The keys travel as one JSON literal (pg.escapeLiteral), like the batch's writes.
 */
export async function beginBatch(client: PoolClient, keys: Array<{ scope: string; key: string }> = [], lockWaitMs: number = limits.headLockWaitMsMax): Promise<{ head: BatchHead & StoredHead; stored: StoredAnswer[] }> {
  const lookup = keys.length === 0 ? '' : `;
    SELECT i.scope, i.key, i.request_hash, i.status, i.response
    FROM idempotency_keys i JOIN json_to_recordset(${pg.escapeLiteral(JSON.stringify(keys.map(({ scope, key }) => ({ scope, key }))))}::json) AS k(scope text, key text)
      ON i.scope = k.scope AND i.key = k.key`;
  // The wait for the lock is bounded (in the same round trip): a writer that hangs holding
  // it gets our callers a 503 (lock_not_available, refusals.ts) instead of no answer at all.
  const results = (await client.query(`${beginHeadLocked}; ${headLockBoundsSql(lockWaitMs)}; SELECT size, root, at, seal FROM log_head WHERE id = 1 FOR UPDATE${lookup}`)) as unknown as Array<{ rows: unknown[] }>;
  // The head's rows, then the stored answers' if the keys were looked up: the last results.
  const [headResult, storedResult] = keys.length === 0 ? [results.at(-1), undefined] : results.slice(-2);
  const head = headResult?.rows[0] as (BatchHead & StoredHead) | undefined;
  if (!head) throw new Error('log_head row is missing: the database was not migrated');
  return { head, stored: (storedResult?.rows ?? []) as StoredAnswer[] };
}

/**
 * How every transaction that takes the head lock opens. The lock orders the writers, and what
 * a transaction reads after it must be what the writer before it committed: READ COMMITTED
 * takes each statement's snapshot when the statement starts, so after the lock. Under the
 * session's default, were it repeatable read or serializable (default_transaction_isolation,
 * a database's or role's setting), the snapshot is the transaction's first, taken before the
 * lock: locking the head that another writer moved meanwhile then fails (40001, could not
 * serialize access), and with two servers a quarter of all writes were answered 503.
 */
export const beginHeadLocked = 'BEGIN ISOLATION LEVEL READ COMMITTED';

/**
 * The bounds and settings of every transaction that takes the head lock, sent before it in
 * the same text (no round trip of their own):
 * - how long it waits for the lock (`lockWaitMs`), and how long it may then sit idle between
 *   statements while holding it (limits.headLockIdleMsMax). Past the second, PostgreSQL ends
 *   the session (SQLSTATE 25P03), which rolls the transaction back and frees the lock for the
 *   other writers: a writer frozen holding it (a GC pause, SIGSTOP, a partition) stops them
 *   only that long. Crash note: the frozen writer's batch is then gone whole; it finds its
 *   connection closed when it wakes and answers its callers 'unavailable' (refusals.ts), to
 *   retry with their keys.
 * - how long each statement may run (limits.ledgerStatementMsMax).
 * - synchronous_commit at least 'local': a batch is answered once its COMMIT returns, and
 *   with synchronous_commit off (a database or role setting) that return comes before the
 *   WAL is on disk, so a PostgreSQL crash lost acknowledged commands and handed their ids
 *   out again. Raised only where it is off, as checkpoint signing does (tlog-tables.ts); a
 *   stronger setting (a synchronous standby) is the operator's and stays.
 */
export function headLockBoundsSql(lockWaitMs: number): string {
  return `${waitBoundsSql(lockWaitMs, 'locks')}; SET LOCAL idle_in_transaction_session_timeout = ${limits.headLockIdleMsMax}; `
    + `SET LOCAL statement_timeout = ${limits.ledgerStatementMsMax}; `
    + "SELECT set_config('synchronous_commit', 'local', true) WHERE current_setting('synchronous_commit') = 'off'";
}

/** A head about to be written into SQL text: a safe integer size and a 32-byte root, or a bug. */
export function assertLogHead(head: LogHead): void {
  if (!Number.isSafeInteger(head.size) || head.root.length !== 32) throw new Error('assertion failed: a log head is a safe integer size and a 32-byte root');
}

/** SQLSTATE of ledger_lock_expected_head (migrations 021, 061) when the head is not the expected one. */
export const headMovedCode = 'CLH01';

/**
 * The first statements of a batch sent ahead (ledger/batch-commit.ts, sendAhead): they open its
 * transaction and take the ledger's lock like beginBatch, but read nothing back. The batch
 * goes on only at the head it was applied at, its seal included (a key adopted since sealed
 * it: migration 061); at any other the function raises headMovedCode and nothing of the batch
 * runs. Its idempotency keys are not looked up: the batch inserts
 * each, so a key stored before fails it on the primary key instead. The head's time needs
 * no check of its own: it moves only with the head's size (migration 031).
 */
export function openAtHeadSql(head: StoredHead, lockWaitMs: number = limits.headLockWaitMsMax): string {
  assertLogHead(head);
  const seal = head.seal === null ? 'NULL' : `decode('${head.seal.toString('hex')}', 'hex')`;
  return `${beginHeadLocked}; ${headLockBoundsSql(lockWaitMs)}; SELECT ledger_lock_expected_head(${head.size}, decode('${head.root.toString('hex')}', 'hex'), ${seal})`;
}
