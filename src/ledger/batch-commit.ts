/**
 * Commits one batch of the sequencer's in one transaction, one of two ways, and keeps what
 * makes the short way possible: the row cache and the head our last batch committed. The
 * sequencer decides what goes in a batch and answers its callers (sequencer.ts); this puts
 * the batch into the database.
 *
 * Reads: a batch reads its rows under the lock, unless the head it finds there is the one
 * our last batch committed (no other process wrote since) and the row cache holds every
 * row it needs (ledger/row-cache.ts); then it reads nothing.
 *
 * One round trip: while this process is the only writer and the rows are cached, a batch
 * is applied in memory before its lock and sent whole, in one text that takes the lock and
 * goes on only at the head it was applied at (sendAhead). At any other head it rolls back
 * and runs again the classic way: lock and read, apply, write and commit.
 *
 * Time: a batch is dated by this process's clock, but never before the newest event
 * committed (log_head.at, migration 031), read with the head it is applied at. A clock that
 * lags another process's, or is stepped back, then dates and judges its batches (licence
 * validity, deadlines, the sweep) at the newest event's time instead, so event times never
 * go back in commit order; the database refuses a batch whose events would.
 */
import { limits } from '../core/limits.ts';
import type { Clock } from '../core/clock.ts';
import type { Pool } from '../store/pool.ts';
import { isQueryTimeout } from '../store/query-timeout.ts';
import { beginBatch, openAtHeadSql, type BatchHead, type StoredHead } from '../store/head-lock.ts';
import { loadBatchState } from '../store/batch-state.ts';
import { writeBatchAndCommit } from '../store/batch-writes.ts';
import { isLockTimeout, isWorthRunningAgain, provesNoCommit } from './refusals.ts';
import { BatchState } from './state.ts';
import { RowCache } from './row-cache.ts';
import { applyBatch, batchKeys, type Answer, type Applied, type LogAppender, type Pending } from './batch-apply.ts';
import { batchTime, headAfter } from './batch-time.ts';

/** The sequencer's counters that committing a batch keeps (SequencerStats holds them). */
export interface CommitStats {
  /** Batches that read nothing: every row came from the row cache. */
  cachedBatches: number;
  /** Of those, batches sent ahead that committed: applied before their lock, one round trip (BatchCommitter.sendAhead). */
  aheadBatches: number;
  /** Batches sent ahead that rolled back on a wrong guess (another writer, a key stored before, a refused row) or the head lock not had within their short wait, and ran the classic way. */
  aheadMisses: number;
  /** Events in the log as of our last commit (or the start-up check): what this server last saw committed. */
  logSize: number;
}

export interface BatchCommitterOptions {
  /** The sequencer's pool, each round trip bounded on the client side (store/query-timeout.ts withQueryTimeout). */
  pool: Pool;
  clock: Clock;
  logAppender: LogAppender;
  /** Rows per table kept between batches; 0 reads every batch's rows. */
  rowCacheRows: number;
  /** How long a batch waits for the head lock (limits.headLockWaitMsMax unless the sequencer says otherwise). */
  headLockWaitMs: number;
  /** Counted into as batches commit: the sequencer's own stats. */
  stats: CommitStats;
}

export class BatchCommitter {
  private readonly cache: RowCache;
  /**
   * The head our last committed batch left, with its seal; another head at the lock means
   * another writer, and so does another seal (a log key adopted since: log/keys.ts).
   */
  private lastCommitted: (BatchHead & StoredHead) | null = null;
  /** The last batch found the head it expected: sending the next one ahead is likely right. */
  private aheadWorthTrying = false;
  /**
   * The batch being committed sent its writes and COMMIT, and has no proof yet that they
   * rolled back: if it failed, it must not run again (the sequencer's answerFailedBatch).
   */
  private sentCommit = false;
  /**
   * Marks sentCommit as the batch's COMMIT joins its steps, and not before: a failure before
   * it (the log's append of a big batch, which runs while its rows travel; a bug in making
   * the steps) proves no commit, whatever it is, so the sequencer may split the batch to find
   * the command that fails instead of failing every caller in it.
   */
  private readonly commitQueued = (): void => {
    this.sentCommit = true;
  };

  constructor(private readonly options: BatchCommitterOptions) {
    this.cache = new RowCache(options.rowCacheRows);
  }

  /** Whether the batch being committed, or the last one, may have committed although it failed (sentCommit). */
  get mayHaveCommitted(): boolean {
    return this.sentCommit;
  }

  /** Commits the batch and returns its answers; throws what failed, mayHaveCommitted saying whether it may have committed. */
  async commit(batch: Pending[]): Promise<Answer[]> {
    this.sentCommit = false;
    return (await this.sendAhead(batch)) ?? (await this.runInTransaction(batch));
  }

  /**
   * The batch in one round trip, when the last batch found the head it expected (no other
   * writer), every row it needs is cached, and it sweeps nothing: applied in memory to the
   * cached rows, then sent with its opening (store/head-lock.ts openAtHeadSql), which
   * takes the lock and goes on only at the head our last batch committed, and with its
   * writes and COMMIT. The classic way (runInTransaction) costs a round trip more: it
   * takes the lock and looks up the idempotency keys before it writes.
   *
   * Returns null, having committed nothing, when the batch must go the classic way: rows
   * not cached, or the guess did not hold (another writer moved the head; a key was stored
   * before, which its insert meets on the primary key; the database refused a row; the
   * head lock not had within limits.aheadLockWaitMsMax), which the classic way runs again
   * from the database's rows, its time read under the lock. Anything else that failed is
   * thrown and answered as the classic way answers it: 'unavailable' when the outcome is
   * unknown (the connection lost, maybe after COMMIT) or the database is not there (no
   * connection), a bug as a bug.
   */
  private async sendAhead(batch: Pending[]): Promise<Answer[] | null> {
    const head = this.lastCommitted;
    if (!this.aheadWorthTrying || head === null) return null;
    const keys = batchKeys(batch);
    const rows = keys.dueAt === null ? this.cache.lookup(keys) : null;
    if (!rows) return null;
    let at: string;
    try {
      at = batchTime(this.options.clock, head);
    } catch {
      return null; // the classic way answers it, with the head read under the lock
    }
    const client = await this.options.pool.connect();
    let applied: Applied;
    try {
      // Dated no earlier than the head our last commit left, and the opening lets it commit
      // only at that head (whose time it fixes): event times never go back in commit order.
      applied = await applyBatch(this.options.logAppender, client, batch, new BatchState(rows), head, [], at);
    } catch {
      // Nothing was sent. The classic way applies it again, from the database's rows, and
      // meets the bug there, where it is answered.
      client.release();
      this.cache.clear();
      this.aheadWorthTrying = false;
      return null;
    }
    let committed: StoredHead;
    try {
      const lockWaitMs = Math.min(limits.aheadLockWaitMsMax, this.options.headLockWaitMs);
      committed = await writeBatchAndCommit(client, applied.writes, applied.log, openAtHeadSql(head, lockWaitMs), this.commitQueued);
    } catch (error) {
      // The rows and the log's edge may now hold what never committed.
      this.cache.clear();
      this.aheadWorthTrying = false;
      // A round trip that ran out of its bound (withQueryTimeout) left its connection closed,
      // or busy with the reply given up on, where a ROLLBACK would wait a bound more. The
      // connection is not used again; closing it rolls back just as well.
      const sessionLives = !isQueryTimeout(error) && (await client.query('ROLLBACK').then(() => true, () => false));
      client.release(!sessionLives);
      if (provesNoCommit(error, sessionLives)) this.sentCommit = false;
      // Nothing after COMMIT is inside this try: only what the text did can fail here.
      // A lock not had within the short wait runs again too: its events' time, read before
      // the wait, may trail the commit by no more than that wait.
      if (provesNoCommit(error, sessionLives) && (isWorthRunningAgain(error) || isLockTimeout(error))) {
        this.options.stats.aheadMisses += 1;
        return null;
      }
      throw error;
    }
    client.release();
    this.lastCommitted = { ...headAfter(head, committed, at), seal: committed.seal };
    this.options.logAppender.committed?.(this.lastCommitted);
    this.options.stats.logSize = committed.size;
    this.cache.advance(applied.state, committed);
    this.options.stats.cachedBatches += 1;
    this.options.stats.aheadBatches += 1;
    return applied.answers;
  }

  private async runInTransaction(batch: Pending[]): Promise<Answer[]> {
    const client = await this.options.pool.connect();
    let broken = false;
    try {
      const keys = batchKeys(batch);
      const { head, stored } = await beginBatch(client, batch.flatMap((pending) => (pending.idempotency ? [pending.idempotency] : [])), this.options.headLockWaitMs);
      // Nobody else wrote since our last commit: the cached rows are the rows. The head's seal
      // must be as we left it, and ours: a key adopted since seals the head without moving it,
      // and a batch that appends nothing keeps the seal it found, which may be another's.
      const alone = this.lastCommitted !== null && sameHead(this.lastCommitted, head) && this.options.logAppender.sealIsOurs(head);
      this.aheadWorthTrying = alone;
      if (!alone) this.cache.clear();
      // A head this process did not commit is applied at only once a holder of the log's key
      // vouches for it (log/head-seal.ts), also by a batch that appends nothing: its head
      // becomes the one our next batch is sent ahead at, where only the head's size, root and
      // seal are compared (migration 061).
      if (!alone) await this.options.logAppender.vouch(client, head);
      // The batch's time is read under the lock and is no earlier than the newest event's
      // (head.at): event times never go back in commit order, whatever this clock says.
      const at = batchTime(this.options.clock, head);
      if (keys.dueAt !== null) keys.dueAt = at;
      const cached = alone ? this.cache.lookup(keys) : null;
      const loaded = cached ?? (await loadBatchState(client, keys));
      const applied = await applyBatch(this.options.logAppender, client, batch, new BatchState(loaded), head, stored, at);
      if (cached) this.options.stats.cachedBatches += 1;
      else this.cache.remember(loaded, head);
      const committed = await writeBatchAndCommit(client, applied.writes, applied.log, undefined, this.commitQueued);
      this.lastCommitted = { ...headAfter(head, committed, at), seal: committed.seal };
      this.options.logAppender.committed?.(this.lastCommitted);
      this.options.stats.logSize = committed.size;
      this.cache.advance(applied.state, committed);
      return applied.answers;
    } catch (error) {
      this.cache.clear();
      // As in sendAhead: no ROLLBACK after a round trip that ran out; the connection is closed.
      if (isQueryTimeout(error)) broken = true;
      else {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
      }
      // The server refused a statement of the batch (an error at COMMIT rolls back too):
      // nothing of it committed. A failure after COMMIT, or a lost connection, proves nothing.
      if (provesNoCommit(error, !broken)) this.sentCommit = false;
      throw error;
    } finally {
      client.release(broken);
    }
  }
}

function sameHead(a: StoredHead, b: StoredHead): boolean {
  return a.size === b.size && a.root.equals(b.root) && (a.seal === null ? b.seal === null : b.seal !== null && a.seal.equals(b.seal));
}
