/**
 * The sequencer: every change to the ledger goes through here.
 *
 * Callers submit commands from anywhere; the sequencer takes them off one bounded queue
 * and commits them in batches (group commit): one transaction per batch holds the state
 * changes, the events and the idempotency answers together. Each command still gets its own
 * answer: accepted with its ids, or refused with the rule. Each organisation's commands are
 * taken in arrival order; another organisation's may pass them in the queue (takeBatch), so
 * that one organisation's large manifests, or its commands that keep failing their batches,
 * do not hold up everyone else's.
 *
 * How a batch reaches the database (what it reads, its one round trip while this process
 * writes alone, the time it is dated) is batch-commit.ts's job; which queued commands go in a
 * batch is batch-choice.ts's, and the queue's serials, each organisation's share among them,
 * queue-shares.ts's. This file queues commands, takes each batch out of the queue and answers
 * its callers, those of a failed batch included.
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
import { requestHash } from './idempotency.ts';
import { invalidInput, isCommandsOwnRefusal, isRefusedWrite } from './refusals.ts';
import { roleRefusal, type Actor } from './permissions.ts';
import { commandInputDropped, commandSchemas, type CommandKind } from './schemas.ts';
import { fastParse } from './schemas-fast.ts';
import type { Answer, LogAppender, Pending } from './batch-apply.ts';
import { BatchCommitter, type CommitStats } from './batch-commit.ts';
import { Culprits, describeAlone, describeBatch, describeRefusedWrite, isDatabaseFailure, refusalOrBug, unavailableReason, withoutStack } from './batch-failures.ts';
import { chooseBatch, takeOut } from './batch-choice.ts';
import { QueueShares, countSerials } from './queue-shares.ts';
import { answerRefusedAtOnce, rememberRefusal, type KeyedRefusalsContext } from './keyed-refusals.ts';
import { Outage } from './outage.ts';

export interface SequencerOptions {
  pool: Pool;
  clock: Clock;
  logAppender: LogAppender;
  batchCommandsMax?: number;
  queueMax?: number;
  /** Serials in the queued commands (limits.sequencerQueueSerialsMax). */
  queueSerialsMax?: number;
  /** Serials one organisation's commands hold from queued until answered (limits.sequencerQueueSerialsPerOrganisationMax). */
  queueSerialsPerOrganisationMax?: number;
  /** Serials written in one batch (limits.batchSerialsMax). */
  batchSerialsMax?: number;
  /** Serials from which other organisations' commands go ahead of a command once (limits.largeCommandSerialsMin). */
  largeCommandSerialsMin?: number;
  /** How long an organisation's commands run alone after one failed its batch (limits.culpritAloneMs). */
  culpritAloneMs?: number;
  /** A monotonic clock in ms for culpritAloneMs (performance.now unless a test steps it). */
  monotonicMs?: () => number;
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
  private readonly batchSerialsMax: number;
  private readonly largeCommandSerialsMin: number;
  private readonly monotonicMs: () => number;
  /** The serials of the queued commands, and each organisation's share of them until answered. */
  private readonly shares: QueueShares;
  /** Organisations whose commands run alone for now, having failed their batches (answerFailedBatch). */
  private readonly culprits: Culprits;
  /** The last batch passed a command that runs alone: the next batch is the first such command. */
  private aloneTurn = false;
  /** Large commands that other organisations' commands went ahead of: none goes ahead of them again. */
  private readonly passedOnce = new WeakSet<Pending>();
  /** The last batch was answered 'unavailable': the database (or its lock) did not answer. */
  private unavailable = false;
  /**
   * The caller's pool, each query of a batch bounded on the client side: a frozen or cut-off
   * database enforces no bound of its own (store/query-timeout.ts withQueryTimeout).
   */
  private readonly pool: Pool;
  /** Puts each batch into the database; keeps the row cache and the head our last batch left. */
  private readonly committer: BatchCommitter;
  /** What refusals outside a batch's writes are looked up and remembered with (keyed-refusals.ts). */
  private readonly keyed: KeyedRefusalsContext;
  /** Batches answered 'unavailable' since the last one committed, each reason said once (reportUnavailable). */
  private readonly outage = new Outage({
    again: 'the ledger commits again', failure: ['batch', 'batches'], part: ["command answered 'unavailable'", "commands answered 'unavailable'"],
  }, () => performance.now());

  constructor(private readonly options: SequencerOptions) {
    this.batchMax = options.batchCommandsMax ?? limits.batchCommandsMax;
    this.queueMax = options.queueMax ?? limits.sequencerQueueMax;
    this.shares = new QueueShares(
      options.queueSerialsMax ?? limits.sequencerQueueSerialsMax, options.queueSerialsPerOrganisationMax ?? limits.sequencerQueueSerialsPerOrganisationMax,
    );
    this.batchSerialsMax = options.batchSerialsMax ?? limits.batchSerialsMax;
    this.largeCommandSerialsMin = options.largeCommandSerialsMin ?? limits.largeCommandSerialsMin;
    this.culprits = new Culprits(options.culpritAloneMs ?? limits.culpritAloneMs);
    this.monotonicMs = options.monotonicMs ?? (() => performance.now());
    const queryTimeoutMs = options.queryTimeoutMs ?? limits.writeQueryTimeoutMs;
    const headLockWaitMs = options.headLockWaitMs ?? limits.headLockWaitMsMax;
    // A bound at or under the lock's wait would cut off healthy batches queued for the lock.
    assert(queryTimeoutMs > headLockWaitMs, 'a batch\'s round trip may wait longer than its wait for the head lock');
    this.pool = withQueryTimeout(options.pool, queryTimeoutMs, options.streamTimeoutMs ?? limits.writeStreamTimeoutMs, { whileServerWorks: true });
    this.committer = new BatchCommitter({
      pool: this.pool, clock: options.clock, logAppender: options.logAppender, rowCacheRows: options.rowCacheRows ?? limits.rowCacheRowsPerTableMax, headLockWaitMs, stats: this.stats,
    });
    this.keyed = {
      pool: this.pool, clock: options.clock, headLockWaitMs: options.headLockWaitMs, onError: options.onError, countAnswers: (answers) => this.countAnswers(answers),
    };
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
    // Serials are counted, and their bounds checked, before the input is parsed: an upload
    // refused for them then costs no parse of its 100,000 serials (50-200 ms of this event
    // loop, everyone's). The parse keeps every entry of the list, so the count holds after it.
    const serials = countSerials(rawInput);
    const serialsRefusal = this.shares.refusal(kind, actor.orgId, serials, this.queue.length);
    if (serialsRefusal !== undefined) return refused(serialsRefusal);
    const dropped = commandInputDropped(kind, rawInput);
    if (dropped.length > 0) return answerRefusedAtOnce(this.keyed, kind, rawInput, actor, idempotencyKey, invalidInput(kind, dropped, rawInput));
    // A manifest of bare serials is checked by the schema's own rule in a tenth of zod's time (schemas-fast.ts).
    const parsed = fastParse(kind, rawInput) ?? commandSchemas[kind].safeParse(rawInput);
    if (!parsed.success) return answerRefusedAtOnce(this.keyed, kind, rawInput, actor, idempotencyKey, invalidInput(kind, parsed.error.issues, rawInput));
    if (this.queue.length >= this.queueMax) {
      return refused(new DomainError('overloaded', `the ledger has ${this.queue.length} commands waiting, its bound is ${this.queueMax}; retry shortly`, {
        rule: 'sequencer-queue-commands', details: { queueDepth: this.queue.length, queueMax: this.queueMax },
      }));
    }
    const idempotency = idempotencyKey === undefined ? null : { scope: actor.orgId, key: idempotencyKey, hash: requestHash(kind, rawInput) };
    this.shares.countIn(actor.orgId, serials);
    return new Promise((resolve, reject) => {
      // Counted out as the command is answered, before its caller hears: a caller answered may
      // send its next command at once, and must find its share free.
      let counted = true;
      const countOut = (): void => {
        if (counted) this.shares.countOut(actor.orgId, serials);
        counted = false;
      };
      const answer = (given: Answer): void => {
        countOut();
        resolve(given);
      };
      const fail = (error: unknown): void => {
        countOut();
        reject(error);
      };
      this.queue.push({ kind, input: parsed.data, actor, idempotency, serials, resolve: answer, reject: fail });
      if (this.filling && this.queue.length >= this.filling.target) this.filling.wake();
      this.stats.queueDepth = this.queue.length;
      if (!this.running) void this.drain();
    });
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
    this.shares.emptied();
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
   * The next batch, taken out of the queue: which commands it holds is batch-choice.ts's
   * (chooseBatch says the rules); this keeps what the choice reads between batches.
   */
  private takeBatch(): Pending[] {
    const nowMs = this.monotonicMs();
    const choice = chooseBatch(this.queue, this.aloneTurn, {
      commandsMax: this.batchMax,
      serialsMax: this.batchSerialsMax,
      culprit: (organisationId) => this.culprits.runsAlone(organisationId, nowMs),
      large: (pending) => pending.serials >= this.largeCommandSerialsMin && !this.passedOnce.has(pending),
    });
    for (const pending of choice.passed) this.passedOnce.add(pending);
    this.aloneTurn = choice.aloneTurn;
    assert(choice.places.length > 0, 'a queue that holds commands gives a batch');
    const batch = takeOut(this.queue, choice.places);
    for (const pending of batch) this.shares.taken(pending.serials);
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
    const refusedWrite = isRefusedWrite(error);
    /** A write the database refused as a command's own, not the write path's bookkeeping (another writer's). */
    const ownRefusedWrite = refusedWrite && isCommandsOwnRefusal(error);
    /** A failure nobody recognises, in a batch nothing of which can have committed. */
    const unrecognised = refusal === null && !this.committer.mayHaveCommitted;
    const splits = batch.length > 1 && (refusedWrite || unrecognised);
    // The command a split came down to (or one alone already) fails of its own doing: its
    // organisation's commands run alone for a while (takeBatch), so that one repeated does
    // not fail its neighbours' batches again.
    if (batch.length === 1 && (ownRefusedWrite || unrecognised)) this.culprits.failed(batch[0]!.actor.orgId, this.monotonicMs());
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
    // Said once, for the command alone (a batch of more splits first): the caller's words are fixed.
    if (batch.length === 1 && refusedWrite) this.options.onError?.(withoutStack(error as Error), describeRefusedWrite(batch[0]!, refusal, error as Error));
    this.unavailable = refusal.code === 'unavailable';
    if (this.unavailable) this.reportUnavailable(batch, error);
    if (batch.length === 1 && ownRefusedWrite && batch[0]!.idempotency) {
      batch[0]!.resolve(await rememberRefusal(this.keyed, batch[0]!, refusal));
      return;
    }
    for (const pending of batch) pending.resolve({ ok: false, error: refusal, replayed: false });
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
