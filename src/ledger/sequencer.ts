/**
 * The sequencer: every change to the ledger goes through here.
 *
 * Callers submit commands from anywhere; the sequencer takes them off one bounded queue
 * in arrival order and commits them in batches (group commit): one transaction per
 * batch holds the state changes, the events and the idempotency answers together. Each
 * command still gets its own answer: accepted with its ids, or refused with the rule.
 *
 * Pipelining: when every row a batch needs is in the row cache (ledger/row-cache.ts), the
 * batch is applied at once against the cache, which already holds the changes of the
 * batch still committing, and its writes go out in one round trip guarded by the head it
 * was applied at; it waits in PostgreSQL for the ledger's lock while the batch before it
 * commits. So JavaScript for batch N+1 runs while PostgreSQL works on batch N. If the guard
 * finds another head (another process wrote, or batch N failed), nothing of N+1 was written
 * and its commands go back to the front of the queue to run the classic way: BEGIN and lock
 * first, then read, apply, write and COMMIT. Answers go out only after COMMIT either way.
 *
 * Crash notes, per step of a batch:
 * - before COMMIT: nothing of the batch exists; no caller was answered; clients retry
 *   with their idempotency keys.
 * - COMMIT sent, no reply (connection lost): the outcome is unknown to us, so callers get
 *   503 'unavailable'; a retry with the same key returns the stored answer if it did commit.
 * - after COMMIT: everything of the batch is durable; answers go out only now.
 */
import { DomainError, assert, isDomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Clock } from '../core/clock.ts';
import type { Pool, PoolClient } from '../store/pool.ts';
import type { TileRow } from '../store/tlog-tables.ts';
import { beginBatch, emptyKeys, findIdempotencyAnswers, loadBatchState, type LogHead, type StoredAnswer } from '../store/ledger-tables.ts';
import { headMovedCode, writeBatchAndCommit, type BatchWrites, type EventWrite, type IdempotencyWrite } from '../store/batch-writes.ts';
import type { BatchKeys, LoadedState } from '../store/ledger-tables.ts';
import { canonicalBytes, digestSerials, eventBody, redact } from './events.ts';
import { replay, requestHash, storedToAnswer, toStored } from './idempotency.ts';
import { invalidInput, isConstraintError, toRefusal } from './refusals.ts';
import { handlers } from './handlers/index.ts';
import type { Handler, Outcome } from './handler.ts';
import { mayRun, type Actor } from './permissions.ts';
import { commandSchemas, type CommandKind } from './schemas.ts';
import { BatchState } from './state.ts';
import { RowCache } from './row-cache.ts';

export const eventBytesMax = limits.eventBytesMax;

export type Answer =
  | { ok: true; seq: number; body: Record<string, unknown>; replayed: boolean }
  | { ok: false; error: DomainError; replayed: boolean };

/** What the transparency log does inside a batch's transaction (issue: tlog). */
export interface LogAppender {
  /**
   * Adds the batch's events as leaves and returns the tiles to write and the new root; the
   * batch writes both in its transaction, with its events. `head` is the log as committed
   * before this batch (read under the lock); the client is for reloading the right edge.
   */
  append(client: PoolClient, head: LogHead, leaves: Array<{ seq: number; canonical: Buffer }>): Promise<{ root: Buffer; tiles: TileRow[] }>;
  /** True if append() at this head needs no reload: only then may a batch run ahead. */
  isAt(head: LogHead): boolean;
}

export interface SequencerOptions {
  pool: Pool;
  clock: Clock;
  logAppender: LogAppender;
  batchCommandsMax?: number;
  queueMax?: number;
  /** Batches in flight at once (limits.pipelineDepth); 1 runs every batch the classic way. */
  pipelineDepth?: number;
  onError?: (error: unknown, context: string) => void;
}

/** A batch applied, ready to write: what it answers, writes and makes the log. */
interface Applied {
  answers: Answer[];
  writes: BatchWrites;
  tiles: TileRow[];
  /** The log head after the batch. */
  head: LogHead;
  state: BatchState;
}

/** Below this many queued commands a batch is not split in two to start the pipeline. */
const pipelineSplitMin = 16;

interface Pending {
  kind: CommandKind;
  input: unknown;
  actor: Actor;
  idempotency: { scope: string; key: string; hash: Buffer } | null;
  serials: number;
  resolve: (answer: Answer) => void;
  /** A bug, not a refusal: the caller answers 500 and the error is logged. */
  reject: (error: unknown) => void;
}

export interface SequencerStats {
  batches: number;
  commands: number;
  accepted: number;
  refused: number;
  replayed: number;
  failedBatches: number;
  /** Batches applied ahead from the row cache that the head guard sent back. */
  rerunBatches: number;
  /** Batches applied ahead from the row cache (the rest read under the lock). */
  aheadBatches: number;
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
    batches: 0, commands: 0, accepted: 0, refused: 0, replayed: 0, failedBatches: 0, rerunBatches: 0, aheadBatches: 0, queueDepth: 0, lastBatchSize: 0, commitSecondsTotal: 0,
  };
  private readonly batchMax: number;
  private readonly queueMax: number;
  private readonly depth: number;
  private readonly cache = new RowCache();
  /** Batches applied ahead whose COMMIT has not come back, oldest first. */
  private readonly inFlight: Array<{ done: Promise<void> }> = [];
  /** Commands taken off the queue and not answered yet (ahead or classic). */
  private commandsInFlight = 0;
  /** The head our last committed batch left; another head at the lock means another writer. */
  private lastCommitted: LogHead | null = null;
  /**
   * Run ahead only while no other writer is seen: off after a batch ahead was refused, on
   * again when a classic batch finds the head where our last commit left it.
   */
  private aheadAllowed = false;

  constructor(private readonly options: SequencerOptions) {
    this.batchMax = options.batchCommandsMax ?? limits.batchCommandsMax;
    this.queueMax = options.queueMax ?? limits.sequencerQueueMax;
    this.depth = options.pipelineDepth ?? limits.pipelineDepth;
  }

  /**
   * Checks a command's shape and the actor's role at once (those refusals change nothing
   * and are not remembered under the idempotency key), then queues it.
   */
  submit(kind: CommandKind, rawInput: unknown, actor: Actor, idempotencyKey?: string): Promise<Answer> {
    const refused = (error: DomainError): Promise<Answer> => Promise.resolve({ ok: false, error, replayed: false });
    if (this.closed) return refused(new DomainError('unavailable', 'the ledger is shutting down; retry on another server'));
    if (!mayRun(actor.role, kind)) return refused(new DomainError('forbidden', `a ${actor.role} token may not run ${kind}`));
    const parsed = commandSchemas[kind].safeParse(rawInput);
    if (!parsed.success) return refused(invalidInput(kind, parsed.error.issues));
    if (this.queue.length >= this.queueMax) {
      return refused(new DomainError('overloaded', `the ledger has ${this.queue.length} commands waiting; retry shortly`, { details: { queueDepth: this.queue.length } }));
    }
    const idempotency = idempotencyKey === undefined ? null : { scope: actor.orgId, key: idempotencyKey, hash: requestHash(kind, rawInput) };
    const serials = countSerials(parsed.data);
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, input: parsed.data, actor, idempotency, serials, resolve, reject });
      if (this.filling && this.queue.length >= this.filling.target) this.filling.wake();
      this.stats.queueDepth = this.queue.length;
      if (!this.running) void this.drain();
    });
  }

  /** Resolves when every queued command has been answered. */
  async flush(): Promise<void> {
    if (this.isIdle()) return;
    await new Promise<void>((done) => this.idle.push(done));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private isIdle(): boolean {
    return !this.running && this.queue.length === 0 && this.inFlight.length === 0;
  }

  private notifyIfIdle(): void {
    if (this.isIdle()) for (const done of this.idle.splice(0)) done();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        await this.waitToFill();
        if (this.inFlight.length >= this.depth) {
          await Promise.race(this.inFlight.map((entry) => entry.done));
          continue;
        }
        const batch = this.takeBatch(this.splitBound());
        const keys = batchKeys(batch);
        const loaded = this.aheadAllowed && this.depth > 1 ? this.cache.lookup(keys) : null;
        if (loaded) {
          await this.runAhead(batch, loaded);
        } else {
          while (this.inFlight.length > 0) await this.inFlight[0]!.done;
          await this.commitBatch(batch, keys);
        }
      }
    } finally {
      this.running = false;
      this.stats.queueDepth = this.queue.length;
      this.notifyIfIdle();
    }
  }

  /**
   * Group commit works when batches are full. Callers answered by the last batch send their
   * next command a moment later (a turn of the event loop in-process, a network round trip
   * over HTTP); without waiting, they split into two half batches that alternate, each
   * paying the whole commit. So wait until every caller in flight at the end of the last
   * batch, less those whose commands are still in flight, is queued again, for at most
   * limits.batchFillWaitMs.
   */
  private async waitToFill(): Promise<void> {
    const target = Math.min(this.batchMax, Math.max(1, this.fillTarget - this.commandsInFlight));
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
   * With nothing in flight and batches able to run ahead, take half the queue: the other
   * half follows at once, and from then on two groups of callers alternate, one applied
   * while the other commits.
   */
  private splitBound(): number {
    const split = this.aheadAllowed && this.depth > 1 && this.inFlight.length === 0 && this.queue.length >= pipelineSplitMin;
    return split ? Math.ceil(Math.min(this.queue.length, this.batchMax) / 2) : this.batchMax;
  }

  /** Up to `max` commands, and no more serials than one batch should write. */
  private takeBatch(max: number): Pending[] {
    let serials = 0;
    let count = 0;
    while (count < this.queue.length && count < max) {
      const next = this.queue[count]!;
      if (count > 0 && serials + next.serials > limits.batchSerialsMax) break;
      serials += next.serials;
      count += 1;
    }
    const batch = this.queue.splice(0, count);
    this.commandsInFlight += batch.length;
    this.stats.queueDepth = this.queue.length;
    return batch;
  }

  /** The batch's commands are done with (answered, or queued again): size the next fill. */
  private release(batch: Pending[]): void {
    this.fillTarget = this.queue.length + this.commandsInFlight;
    this.commandsInFlight -= batch.length;
  }

  private deliver(batch: Pending[], answers: Answer[], started: number): void {
    this.release(batch);
    this.stats.batches += 1;
    this.stats.lastBatchSize = batch.length;
    this.stats.commands += batch.length;
    this.stats.commitSecondsTotal += (performance.now() - started) / 1000;
    for (const answer of answers) {
      if (answer.replayed) this.stats.replayed += 1;
      else if (answer.ok) this.stats.accepted += 1;
      else this.stats.refused += 1;
    }
    batch.forEach((pending, index) => pending.resolve(answers[index]!));
  }

  /** Back to the front of the queue, in order, to run the classic way. */
  private requeue(batch: Pending[]): void {
    this.stats.rerunBatches += 1;
    this.queue.unshift(...batch);
    this.release(batch);
    this.stats.queueDepth = this.queue.length;
    if (!this.running) void this.drain();
  }

  /**
   * Applies the batch against the row cache now and sends it; its COMMIT comes back
   * later (inFlight). The client is taken here, in batch order, so that batches reach
   * PostgreSQL in the order they were applied.
   */
  private async runAhead(batch: Pending[], loaded: LoadedState): Promise<void> {
    const started = performance.now();
    const expect = this.cache.head!;
    const generation = this.cache.generation;
    let client: PoolClient | undefined;
    let applied: Applied;
    try {
      client = await this.options.pool.connect();
      // Whatever ran while we waited for the connection may have failed and cleared the cache.
      if (generation !== this.cache.generation || !this.options.logAppender.isAt(expect)) throw new AheadAbandoned();
      applied = await this.apply(client, batch, new BatchState(loaded), expect, []);
      if (generation !== this.cache.generation) throw new AheadAbandoned();
    } catch (error) {
      client?.release();
      this.cache.clear();
      if (error instanceof AheadAbandoned) return this.requeue(batch);
      return this.fail(batch, error);
    }
    this.cache.advance(applied.state, applied.head);
    this.stats.aheadBatches += 1;
    const entry = { done: this.commitAhead(client, batch, applied, expect, started) };
    this.inFlight.push(entry);
    void entry.done.then(() => {
      this.inFlight.splice(this.inFlight.indexOf(entry), 1);
      this.notifyIfIdle();
    });
  }

  /** Never rejects: every outcome is an answer, a requeue or a rejection of the batch. */
  private async commitAhead(client: PoolClient, batch: Pending[], applied: Applied, expect: LogHead, started: number): Promise<void> {
    let broken = false;
    try {
      await writeBatchAndCommit(client, applied.writes, applied.tiles, applied.head, expect);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      client.release(broken);
      this.cache.clear();
      this.aheadAllowed = false;
      const code = (error as { code?: unknown }).code;
      // The head moved (another writer, or our batch before this one failed), or the
      // database refused a row (say, a retried idempotency key this batch could not know
      // about): nothing was written; run it again reading under the lock.
      if (code === headMovedCode || isConstraintError(error)) return this.requeue(batch);
      return this.fail(batch, error);
    }
    client.release();
    this.lastCommitted = applied.head;
    this.deliver(batch, applied.answers, started);
  }

  private async commitBatch(batch: Pending[], keys: BatchKeys): Promise<void> {
    const started = performance.now();
    try {
      const answers = await this.runInTransaction(batch, keys);
      this.deliver(batch, answers, started);
    } catch (error) {
      this.cache.clear();
      if (batch.length > 1 && isConstraintError(error)) {
        // The database refused something our checks let through (say, a GPU UUID that
        // another unit already has). Run each command alone so only that one is refused.
        this.stats.failedBatches += 1;
        this.release(batch);
        for (const pending of batch) {
          this.commandsInFlight += 1;
          await this.commitBatch([pending], batchKeys([pending]));
        }
        return;
      }
      this.fail(batch, error);
    }
  }

  /** A batch that could not commit: each caller hears why, and the sequencer goes on. */
  private fail(batch: Pending[], error: unknown): void {
    this.stats.failedBatches += 1;
    this.release(batch);
    let refusal: DomainError;
    try {
      refusal = toRefusal(error);
    } catch {
      // A bug in a handler or the store: nothing of the batch was committed. Every caller
      // of the batch hears of it (500), and the sequencer goes on with the next batch.
      this.options.onError?.(error, `a batch of ${batch.length} commands failed`);
      for (const pending of batch) pending.reject(error);
      return;
    }
    if (refusal.code === 'unavailable') this.options.onError?.(error, `couldn't commit a batch of ${batch.length} commands`);
    for (const pending of batch) pending.resolve({ ok: false, error: refusal, replayed: false });
  }

  private async runInTransaction(batch: Pending[], keys: BatchKeys): Promise<Answer[]> {
    const client = await this.options.pool.connect();
    let broken = false;
    try {
      const head = await beginBatch(client);
      // Nobody else wrote since our last commit: the cache holds, and batches may run ahead.
      const alone = this.lastCommitted !== null && sameHead(this.lastCommitted, head);
      this.aheadAllowed = alone;
      if (!alone) this.cache.clear();
      const at = this.options.clock.now().toISOString();
      if (keys.dueAt !== null) keys.dueAt = at;
      const cached = alone ? this.cache.lookup(keys) : null;
      const loaded = cached ?? (await loadBatchState(client, keys));
      const stored = await findIdempotencyAnswers(client, batch.flatMap((pending) => (pending.idempotency ? [pending.idempotency] : [])));
      const applied = await this.apply(client, batch, new BatchState(loaded), head, stored, at);
      await writeBatchAndCommit(client, applied.writes, applied.tiles, applied.head);
      this.lastCommitted = applied.head;
      this.cache.remember(loaded, head);
      this.cache.advance(applied.state, applied.head);
      return applied.answers;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Checks and applies the batch against `state` (rows as of `head`), then appends its
   * events to the log. Writes nothing: the caller writes and commits.
   */
  private async apply(client: PoolClient, batch: Pending[], state: BatchState, head: LogHead, stored: StoredAnswer[], at = this.options.clock.now().toISOString()): Promise<Applied> {
    const size = head.size;
    const events: EventWrite[] = [];
    const remembered: IdempotencyWrite[] = [];
    const answered = new Map<string, { hash: Buffer; answer: Answer }>();
    for (const row of stored) answered.set(`${row.scope}\u0000${row.key}`, { hash: row.request_hash, answer: storedToAnswer(row) });
    const answers = batch.map((pending) => {
      const key = pending.idempotency && `${pending.idempotency.scope}\u0000${pending.idempotency.key}`;
      const earlier = key === null ? undefined : answered.get(key);
      if (earlier) return replay(earlier, pending.idempotency!);
      const answer = this.runOne(state, pending, size + events.length, at, events);
      if (pending.idempotency && key !== null) {
        const record = toStored(answer, pending.kind);
        answered.set(key, { hash: pending.idempotency.hash, answer: record.answer });
        remembered.push({ scope: pending.idempotency.scope, key: pending.idempotency.key, request_hash: pending.idempotency.hash, status: record.status, response: record.response, created_at: at });
      }
      return answer;
    });
    const writes: BatchWrites = {
      rows: state.changedRows(),
      endedShipments: state.endedShipments,
      custodyChanges: state.custodyChanges,
      replacedPartiesOf: [...new Set(state.replacedPartiesOf)],
      events,
      idempotency: remembered,
    };
    const leaves = events.map((event) => ({ seq: event.seq, canonical: event.canonical }));
    const log = events.length === 0 ? { root: head.root, tiles: [] } : await this.options.logAppender.append(client, head, leaves);
    return { answers, writes, tiles: log.tiles, head: { size: size + events.length, root: log.root }, state };
  }

  private runOne(state: BatchState, pending: Pending, seq: number, at: string, events: EventWrite[]): Answer {
    const handler = handlers[pending.kind] as Handler<CommandKind>;
    const context = { state, actor: pending.actor, at, seq };
    state.begin();
    let outcome: Outcome;
    try {
      outcome = handler.run(context, pending.input as never);
    } catch (error) {
      state.rollback();
      if (!isDomainError(error)) throw error; // a bug: fail the batch loudly
      return { ok: false, error, replayed: false };
    }
    const input = digestSerials(redact(pending.input, outcome.redact));
    const body = eventBody(seq, at, pending.kind, pending.actor, outcome.subjectId, input, outcome.effects);
    const canonical = canonicalBytes(body);
    if (canonical.length > eventBytesMax) {
      state.rollback();
      const error = new DomainError('payload_too_large', `the ${pending.kind} request would make a log entry of ${canonical.length} bytes; entries are at most ${eventBytesMax} bytes (shorten the texts)`, { rule: 'event-size' });
      return { ok: false, error, replayed: false };
    }
    events.push({ seq, at, kind: pending.kind, actor: pending.actor.id, subject_id: outcome.subjectId, org_ids: outcome.orgIds, canonical });
    assert(events.length === seq - events[0]!.seq + 1, 'event sequence numbers are gapless within a batch');
    return { ok: true, seq, body: { seq, ...outcome.answer }, replayed: false };
  }
}

/** Thrown when a batch applied ahead must not be sent after all: an earlier one failed. */
class AheadAbandoned extends Error {}

function sameHead(a: LogHead, b: LogHead): boolean {
  return a.size === b.size && a.root.equals(b.root);
}

/** The rows the batch's commands will read (handlers name them), plus each actor's organisation. */
function batchKeys(batch: Pending[]): BatchKeys {
  const keys = emptyKeys();
  for (const pending of batch) {
    keys.organisations.add(pending.actor.orgId);
    (handlers[pending.kind] as Handler<CommandKind>).keys(pending.input as never, keys, pending.actor);
  }
  return keys;
}

function countSerials(input: unknown): number {
  const serials = (input as { serials?: unknown[] }).serials;
  return Array.isArray(serials) ? serials.length : 0;
}

