/**
 * The sequencer: every change to the ledger goes through here.
 *
 * Callers submit commands from anywhere; the sequencer takes them off one bounded queue
 * in arrival order and commits them in batches (group commit): one transaction per
 * batch holds the state changes, the events and the idempotency answers together. Each
 * command still gets its own answer: accepted with its ids, or refused with the rule.
 *
 * How a batch reaches the database (what it reads, its one round trip while this process
 * writes alone, the time it is dated) is batch-commit.ts's job; this file decides what goes
 * in a batch and answers its callers, those of a failed batch included.
 *
 * Crash notes, per step of a batch:
 * - before COMMIT: nothing of the batch exists; no caller was answered; clients retry
 *   with their idempotency keys.
 * - frozen before COMMIT (a GC pause, SIGSTOP, a partition) holding the head lock: past
 *   limits.headLockIdleMsMax idle, PostgreSQL ends the session and the batch with it; the
 *   other writers go on, and ours, when it wakes, answers its callers 'unavailable'.
 * - the database frozen or cut off (it answers nothing and enforces none of its bounds):
 *   each round trip of a batch waits at most limits.writeQueryTimeoutMs for its reply
 *   (writeStreamTimeoutMs for a COPY); then its connection is closed, never reused, and the
 *   batch is answered as below: the COMMIT may have been on its way.
 * - COMMIT sent, no reply (connection lost): the outcome is unknown to us, so callers get
 *   503 'unavailable'; a retry with the same key returns the stored answer if it did commit.
 * - after COMMIT: everything of the batch is durable; answers go out only now.
 */
import { DomainError, assert } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Clock } from '../core/clock.ts';
import type { Pool } from '../store/pool.ts';
import { withQueryTimeout } from '../store/query-timeout.ts';
import { rememberAnswer, storedAnswer, type StoredAnswer } from '../store/idempotency-answers.ts';
import { hashOfRefused, replay, requestHash, storedToAnswer, toStored } from './idempotency.ts';
import { invalidInput, isCommandsOwnRefusal, isRefusedWrite, toRefusal } from './refusals.ts';
import { roleRefusal, type Actor } from './permissions.ts';
import { commandSchemas, type CommandKind } from './schemas.ts';
import type { Answer, LogAppender, Pending } from './batch-apply.ts';
import { BatchCommitter, type CommitStats } from './batch-commit.ts';
import { describeBatch, isDatabaseFailure, unavailableReason, withoutStack } from './batch-failures.ts';
import { Outage } from './outage.ts';

export interface SequencerOptions {
  pool: Pool;
  clock: Clock;
  logAppender: LogAppender;
  batchCommandsMax?: number;
  queueMax?: number;
  /** Serials in the queued commands (limits.sequencerQueueSerialsMax). */
  queueSerialsMax?: number;
  /** Rows per table kept between batches (limits.rowCacheRowsPerTableMax); 0 reads every batch's rows. */
  rowCacheRows?: number;
  /** How long a batch waits for the head lock (limits.headLockWaitMsMax). */
  headLockWaitMs?: number;
  /** How long a batch's round trip waits for its reply (limits.writeQueryTimeoutMs); more than headLockWaitMs. */
  queryTimeoutMs?: number;
  /** The same for a round trip that streams rows by COPY (limits.writeStreamTimeoutMs). */
  streamTimeoutMs?: number;
  /**
   * Told of a bug (in full), and of batches answered 'unavailable' once an outage for each
   * reason, the first, with the database's failures said without their stacks: a database away
   * for a minute would otherwise log a stack for every batch (the sweep's every few seconds).
   */
  onError?: (error: unknown, context: string) => void;
  /** Told once when a batch commits after batches answered 'unavailable', saying how many and for how long. */
  onRecovered?: (message: string) => void;
}

export interface SequencerStats extends CommitStats {
  batches: number;
  commands: number;
  accepted: number;
  refused: number;
  replayed: number;
  failedBatches: number;
  queueDepth: number;
  lastBatchSize: number;
  commitSecondsTotal: number;
}

export class Sequencer {
  private readonly queue: Pending[] = [];
  private running = false;
  /** Set while the loop waits for the queue to fill; submit() wakes it. */
  private filling: { target: number; wake: () => void } | null = null;
  /**
   * Callers in flight at the end of the last batch: those it answered (who send again
   * shortly) and those already waiting. The next batch waits (briefly) to hold them all.
   */
  private fillTarget = 1;
  private closed = false;
  private idle: Array<() => void> = [];
  readonly stats: SequencerStats = {
    batches: 0, commands: 0, accepted: 0, refused: 0, replayed: 0, failedBatches: 0, cachedBatches: 0, aheadBatches: 0, aheadMisses: 0, queueDepth: 0, lastBatchSize: 0, logSize: 0, commitSecondsTotal: 0,
  };
  private readonly batchMax: number;
  private readonly queueMax: number;
  private readonly queueSerialsMax: number;
  /** Serials in the commands queued now: each holds its parsed input until its batch takes it. */
  private queuedSerials = 0;
  /** The last batch was answered 'unavailable': the database (or its lock) did not answer. */
  private unavailable = false;
  /**
   * The caller's pool, each query of a batch bounded on the client side: a frozen or cut-off
   * database enforces no bound of its own (store/query-timeout.ts withQueryTimeout).
   */
  private readonly pool: Pool;
  /** Puts each batch into the database; keeps the row cache and the head our last batch left. */
  private readonly committer: BatchCommitter;
  /** Batches answered 'unavailable' since the last one committed, each reason said once (reportUnavailable). */
  private readonly outage = new Outage({
    again: 'the ledger commits again', failure: ['batch', 'batches'], part: ["command answered 'unavailable'", "commands answered 'unavailable'"],
  }, () => performance.now());

  constructor(private readonly options: SequencerOptions) {
    this.batchMax = options.batchCommandsMax ?? limits.batchCommandsMax;
    this.queueMax = options.queueMax ?? limits.sequencerQueueMax;
    this.queueSerialsMax = options.queueSerialsMax ?? limits.sequencerQueueSerialsMax;
    const queryTimeoutMs = options.queryTimeoutMs ?? limits.writeQueryTimeoutMs;
    const headLockWaitMs = options.headLockWaitMs ?? limits.headLockWaitMsMax;
    // A bound at or under the lock's wait would cut off healthy batches queued for the lock.
    assert(queryTimeoutMs > headLockWaitMs, 'a batch\'s round trip may wait longer than its wait for the head lock');
    this.pool = withQueryTimeout(options.pool, queryTimeoutMs, options.streamTimeoutMs ?? limits.writeStreamTimeoutMs, { whileServerWorks: true });
    this.committer = new BatchCommitter({
      pool: this.pool, clock: options.clock, logAppender: options.logAppender, rowCacheRows: options.rowCacheRows ?? limits.rowCacheRowsPerTableMax, headLockWaitMs, stats: this.stats,
    });
  }

  /**
   * Checks a command's shape and the actor's role at once (those refusals change nothing
   * and are not remembered under the idempotency key; an answer stored under the key for a
   * shape an earlier release took is still replayed, answerRefusedAtOnce), then queues it.
   */
  submit(kind: CommandKind, rawInput: unknown, actor: Actor, idempotencyKey?: string): Promise<Answer> {
    const refused = (error: DomainError): Promise<Answer> => Promise.resolve({ ok: false, error, replayed: false });
    if (this.closed) return refused(new DomainError('unavailable', 'the ledger is shutting down; retry on another server'));
    const forbidden = roleRefusal(actor, kind);
    // A role refused is refused, key or not: a token that may not run the command gets no
    // answer stored for it, though its organisation's key and body would find one (least privilege).
    if (forbidden !== undefined) return refused(forbidden);
    const parsed = commandSchemas[kind].safeParse(rawInput);
    if (!parsed.success) return this.answerRefusedAtOnce(kind, rawInput, actor, idempotencyKey, invalidInput(kind, parsed.error.issues));
    if (this.queue.length >= this.queueMax) {
      return refused(new DomainError('overloaded', `the ledger has ${this.queue.length} commands waiting; retry shortly`, { details: { queueDepth: this.queue.length } }));
    }
    const idempotency = idempotencyKey === undefined ? null : { scope: actor.orgId, key: idempotencyKey, hash: requestHash(kind, rawInput) };
    const serials = countSerials(parsed.data);
    // Bounded by serials too: the count alone let thousands of 100,000-serial inputs wait in
    // memory. A command without serials is bounded by the count only, and one with serials
    // always fits a queue that holds none: otherwise a bound under its size would refuse it
    // for ever.
    if (serials > 0 && this.queuedSerials > 0 && this.queuedSerials + serials > this.queueSerialsMax) {
      return refused(new DomainError('overloaded', `the ledger has ${this.queuedSerials} serials waiting in ${this.queue.length} commands, its bound is ${this.queueSerialsMax}; this ${kind} carries ${serials}; retry shortly`, {
        rule: 'sequencer-queue-serials', details: { queuedSerials: this.queuedSerials, queueSerialsMax: this.queueSerialsMax, serials },
      }));
    }
    this.queuedSerials += serials;
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, input: parsed.data, actor, idempotency, serials, resolve, reject });
      if (this.filling && this.queue.length >= this.filling.target) this.filling.wake();
      this.stats.queueDepth = this.queue.length;
      if (!this.running) void this.drain();
    });
  }

  /**
   * A command whose input's shape our checks refuse before it is queued. Such a refusal
   * changes nothing and is not stored. But a request sent with a key may have been answered
   * before, by an earlier release whose schema took it (a rule tightened since: GPU UUIDs in
   * full, ISO country codes), and committed: its retry gets that
   * answer, as it would from a batch (invariant 6; keys are kept for ever), not a refusal
   * saying the committed command was never taken. So the key is looked up, on this path only;
   * a command that passes the checks is looked up with its batch, as before.
   * - An answer stored under the key: replayed as a batch replays it (the same request), or
   *   idempotency_mismatch (another request).
   * - None: the refusal.
   * - The lookup failed (the database away, or slower than the pool's bound): 'unavailable',
   *   not the refusal. Whether an answer is stored is then unknown, and a final-looking 400 or
   *   403 could tell a client to give up on a command that was committed, the very fault this
   *   lookup is for; a retry with the same key, once the database answers, gets one or the other.
   */
  private async answerRefusedAtOnce(kind: CommandKind, rawInput: unknown, actor: Actor, key: string | undefined, refusal: DomainError): Promise<Answer> {
    if (key === undefined) return { ok: false, error: refusal, replayed: false };
    let earlier: StoredAnswer | undefined;
    try {
      // By the table's key, without the ledger's head lock: waiting for it would put a refusal in
      // line behind every batch, and holding it would make this process's next batch miss its
      // short wait (limits.aheadLockWaitMsMax). A batch of another process not yet committed
      // under the same key is seen as no answer: the refusal stands, is not stored, and a retry
      // once that batch has committed gets its answer.
      earlier = await storedAnswer(this.pool, actor.orgId, key);
    } catch (error) {
      // A bug is told in full. The database's own failures are not, for each refused request:
      // the batches say an outage once (reportUnavailable), and the caller hears it here.
      if (!isDatabaseFailure(error)) this.options.onError?.(error, `couldn't look up idempotency key ${key} for a ${kind} refused before its batch`);
      const message = `couldn't tell whether an answer is stored under idempotency key ${key}: the database did not answer; retry with the same Idempotency-Key. Unless one is stored, ${kind} is refused as sent: ${refusal.message}`;
      return { ok: false, error: new DomainError('unavailable', message), replayed: false };
    }
    if (earlier === undefined) return { ok: false, error: refusal, replayed: false };
    const answer = replay({ hash: earlier.request_hash, answer: storedToAnswer(earlier) }, { key, hash: hashOfRefused(kind, rawInput) });
    this.countAnswers([answer]);
    return answer;
  }

  /** Resolves when every queued command has been answered. */
  async flush(): Promise<void> {
    if (!this.running && this.queue.length === 0) return;
    await new Promise<void>((done) => this.idle.push(done));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        await this.waitToFill();
        const batch = this.takeBatch();
        await this.commitBatch(batch);
        this.fillTarget = batch.length + this.queue.length;
        if (this.closed && this.unavailable) this.answerQueueUnavailable();
      }
    } finally {
      this.running = false;
      this.stats.queueDepth = 0;
      for (const done of this.idle.splice(0)) done();
    }
  }

  /**
   * Shutting down, and the last batch could not reach the database (or the ledger's lock):
   * the commands still queued are answered at once, to retry on another server, instead of
   * each batch waiting out the same bounds (a connection's, the lock's) before close() returns.
   */
  private answerQueueUnavailable(): void {
    this.answerUnavailable(this.queue.splice(0));
    this.queuedSerials = 0;
    this.stats.queueDepth = 0;
  }

  private answerUnavailable(commands: Pending[]): void {
    const error = new DomainError('unavailable', 'the ledger is shutting down and could not commit the batch before this one; retry on another server with the same Idempotency-Key');
    for (const pending of commands) pending.resolve({ ok: false, error, replayed: false });
  }

  /**
   * Group commit works when batches are full. Callers answered by the last batch send their
   * next command a moment later (a turn of the event loop in-process, a network round trip
   * over HTTP); without waiting, they split into two half batches that alternate, each
   * paying the whole commit. So wait until every caller in flight at the end of the last
   * batch is queued again, for at most limits.batchFillWaitMs.
   */
  private async waitToFill(): Promise<void> {
    const target = Math.min(this.batchMax, this.fillTarget);
    if (this.queue.length >= target || this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((wake) => {
      this.filling = { target, wake };
      timer = setTimeout(wake, limits.batchFillWaitMs);
    });
    clearTimeout(timer);
    this.filling = null;
  }

  /**
   * Up to batchCommandsMax commands, and no more serials than one batch should write. A sweep
   * starts a batch: it finds what is due as the batch is loaded (store/sweep-due.ts,
   * loadDue), from the database as the batches before left it, so commands before it in its
   * batch (a licence revoked, its bookings now due) would go unseen, and its answer would
   * depend on how commands happened to be batched. Sweeps come every few seconds: the batch
   * cut costs nothing measurable.
   */
  private takeBatch(): Pending[] {
    let serials = 0;
    let count = 0;
    while (count < this.queue.length && count < this.batchMax) {
      const next = this.queue[count]!;
      if (count > 0 && next.kind === 'ledger.sweep') break;
      if (count > 0 && serials + next.serials > limits.batchSerialsMax) break;
      serials += next.serials;
      count += 1;
    }
    const batch = this.queue.splice(0, count);
    this.queuedSerials -= serials;
    this.stats.queueDepth = this.queue.length;
    return batch;
  }

  /** `half`: the batch is a half of one that failed (answerFailedBatch). */
  private async commitBatch(batch: Pending[], half = false): Promise<void> {
    const started = performance.now();
    this.unavailable = false;
    let answers: Answer[];
    try {
      answers = await this.committer.commit(batch);
    } catch (error) {
      this.stats.failedBatches += 1;
      await this.answerFailedBatch(batch, error, half);
      return;
    }
    this.countAnswers(answers);
    this.reportCommitted();
    batch.forEach((pending, index) => pending.resolve(answers[index]!));
    this.stats.batches += 1;
    this.stats.lastBatchSize = batch.length;
    this.stats.commitSecondsTotal += (performance.now() - started) / 1000;
  }

  /**
   * A batch that failed as a whole. What one command did must not fail the others (other
   * organisations' bookings among them): a write the database refused, or a failure we do
   * not recognise (a bug in a handler, an error of the database's we have no refusal for),
   * runs the batch again in halves, down to the command that causes it, which alone is
   * refused or, for the unrecognised failure, alone gets the 500. Only when nothing of the
   * batch can have committed: a failure after its COMMIT was sent, without the server's word
   * that it rolled back, is answered as it is, never run twice. A failure that says "not
   * now" (the database or its lock not there) is answered 'unavailable' for the whole
   * batch: each half would wait for it again.
   */
  private async answerFailedBatch(batch: Pending[], error: unknown, half: boolean): Promise<void> {
    const refusal = refusalOrBug(error);
    const splits = batch.length > 1 && (isRefusedWrite(error) || (refusal === null && !this.committer.mayHaveCommitted));
    if (splits) {
      // The database refused something our checks let through (say, a GPU UUID that
      // another unit already has, or a model name over its index's row limit), or a trigger
      // saw the batch's end state where a command had counted on the state before a later
      // one in the batch (a unit returned and listed again, KYC withdrawn after bookings
      // that needed it). Commit the halves in order: a half without the culprit commits
      // whole, the other splits again, down to the culprit alone, which is then refused
      // or, alone, accepted. About 2·log2(n) transactions; running every command alone
      // took one each (402 for 400 bookings behind one such pair). An unrecognised failure
      // is logged here too, once (not again for each half): the halves may both pass, and
      // the bug would go unseen.
      if (refusal === null && !half) this.options.onError?.(error, `a batch of ${batch.length} commands failed; running it again in halves to find the command that fails`);
      const middle = Math.ceil(batch.length / 2);
      await this.commitBatch(batch.slice(0, middle), true);
      if (this.closed && this.unavailable) this.answerUnavailable(batch.slice(middle));
      else await this.commitBatch(batch.slice(middle), true);
      return;
    }
    if (refusal === null) {
      // A bug in a handler or the store, in a batch that cannot be split (one command, or
      // its outcome unknown). Every caller of the batch hears of it (500), and the
      // sequencer goes on with the next batch.
      this.options.onError?.(error, batch.length === 1 ? `${describeAlone(batch[0]!)} failed, alone in its batch` : `a batch of ${batch.length} commands failed after its COMMIT was sent`);
      for (const pending of batch) pending.reject(error);
      return;
    }
    this.unavailable = refusal.code === 'unavailable';
    if (this.unavailable) this.reportUnavailable(batch, error);
    if (batch.length === 1 && isRefusedWrite(error) && isCommandsOwnRefusal(error) && batch[0]!.idempotency) {
      batch[0]!.resolve(await this.rememberRefusal(batch[0]!, refusal));
      return;
    }
    for (const pending of batch) pending.resolve({ ok: false, error: refusal, replayed: false });
  }

  /**
   * A command the database refused on its own (its batch split down to it) is remembered
   * under its idempotency key, as a refusal of our checks is in its batch: a retry gets the
   * same answer (invariant 6), not a second try that may pass once the state has changed.
   * Nothing else of it exists to write.
   * - Stored under the head lock (store/idempotency-answers.ts rememberAnswer): an answer another
   *   process stored first under the key wins and is replayed.
   * - If the row cannot be stored, the caller hears 'unavailable' (retry with the same key):
   *   a final-looking refusal that was not remembered could be followed by an acceptance.
   */
  private async rememberRefusal(pending: Pending, refusal: DomainError): Promise<Answer> {
    const answer: Answer = { ok: false, error: refusal, replayed: false };
    const { scope, key, hash } = pending.idempotency!;
    const record = toStored(answer, pending.kind);
    try {
      const earlier = await rememberAnswer(this.pool, {
        scope, key, request_hash: hash, status: record.status, response: record.response, created_at: this.options.clock.now().toISOString(),
      }, this.options.headLockWaitMs);
      return earlier === undefined ? answer : replay({ hash: earlier.request_hash, answer: storedToAnswer(earlier) }, pending.idempotency!);
    } catch (error) {
      this.options.onError?.(error, `couldn't remember the refusal of ${pending.kind} under its idempotency key`);
      return { ok: false, error: new DomainError('unavailable', 'the database did not confirm the answer; retry with the same Idempotency-Key'), replayed: false };
    }
  }

  /**
   * A batch answered 'unavailable'. Said once an outage for each reason (the first batch that
   * fails so, and one that fails for another reason while it lasts), not for every batch: a
   * database away for 10 s under 32 clients logged 212 lines of stacks, and the idle sweep
   * one every 5 s. The database's own failures are said by their code and message: their
   * stacks say only where pg noticed the loss. Anything else is said as it is, stack and all.
   */
  private reportUnavailable(batch: Pending[], error: unknown): void {
    const reason = unavailableReason(error);
    const news = this.outage.failed(reason, batch.length);
    if (news === 'nothing new') return;
    const what = `couldn't commit ${describeBatch(batch)}, answered 'unavailable': ${reason}`;
    const said = isDatabaseFailure(error) ? withoutStack(error as Error) : error;
    const another = news === 'new reason' ? ', another reason in the same outage' : '';
    this.options.onError?.(said, `${what}${another} (each reason is said once until a batch commits again)`);
  }

  /** A batch committed: an outage, if one was said, is said to be over, with its counts. */
  private reportCommitted(): void {
    const recovery = this.outage.recovered();
    if (recovery !== undefined) this.options.onRecovered?.(recovery);
  }

  /** Counted when answers go out, so a batch that failed and ran again counts once. */
  private countAnswers(answers: Answer[]): void {
    this.stats.commands += answers.length;
    for (const answer of answers) {
      if (answer.replayed) this.stats.replayed += 1;
      else if (answer.ok) this.stats.accepted += 1;
      else this.stats.refused += 1;
    }
  }
}

/** The refusal a failure is answered with, or null for a bug (toRefusal rethrows those). */
function refusalOrBug(error: unknown): DomainError | null {
  try {
    return toRefusal(error);
  } catch {
    return null;
  }
}

function countSerials(input: unknown): number {
  const serials = (input as { serials?: unknown[] }).serials;
  return Array.isArray(serials) ? serials.length : 0;
}

/**
 * The command a failing batch came down to, as its line names it: its kind, its organisation
 * and its Idempotency-Key, which the client that got the 500 knows (a token secret never
 * reaches here as a key: the API refuses one before the body is read, server/commands.ts).
 */
function describeAlone(pending: Pending): string {
  const key = pending.idempotency === null ? '' : `, Idempotency-Key ${pending.idempotency.key}`;
  return `${pending.kind} (organisation ${pending.actor.orgId}${key})`;
}
