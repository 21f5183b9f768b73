/**
 * The answers to refusals made outside a batch's own writes, under the command's idempotency
 * key: a command refused before it is queued looks up an answer stored under its key
 * (answerRefusedAtOnce), and one the database refused alone, its batch split down to it, is
 * remembered under its key (rememberRefusal). The sequencer (sequencer.ts) calls both.
 */
import { DomainError } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import type { Pool } from '../store/pool.ts';
import { rememberAnswer, storedAnswer, type StoredAnswer } from '../store/idempotency-answers.ts';
import { hashOfRefused, replay, storedToAnswer, toStored } from './idempotency.ts';
import type { Actor } from './permissions.ts';
import type { CommandKind } from './schemas.ts';
import type { Answer, Pending } from './batch-apply.ts';
import { isDatabaseFailure } from './batch-failures.ts';

/** What the answers are looked up and stored with: the sequencer's pool (its queries bounded), clock and options. */
export interface KeyedRefusalsContext {
  pool: Pool;
  clock: Clock;
  /** As SequencerOptions.headLockWaitMs: absent, rememberAnswer's own default. */
  headLockWaitMs: number | undefined;
  onError: ((error: unknown, context: string) => void) | undefined;
  /** Counts an answer replayed from the key in the sequencer's stats. */
  countAnswers: (answers: Answer[]) => void;
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
export async function answerRefusedAtOnce(
  context: KeyedRefusalsContext, kind: CommandKind, rawInput: unknown, actor: Actor, key: string | undefined, refusal: DomainError,
): Promise<Answer> {
  if (key === undefined) return { ok: false, error: refusal, replayed: false };
  let earlier: StoredAnswer | undefined;
  try {
    // By the table's key, without the ledger's head lock: waiting for it would put a refusal in
    // line behind every batch, and holding it would make this process's next batch miss its
    // short wait (limits.aheadLockWaitMsMax). A batch of another process not yet committed
    // under the same key is seen as no answer: the refusal stands, is not stored, and a retry
    // once that batch has committed gets its answer.
    earlier = await storedAnswer(context.pool, actor.orgId, key);
  } catch (error) {
    // A bug is told in full. The database's own failures are not, for each refused request:
    // the batches say an outage once (sequencer.ts reportUnavailable), and the caller hears it here.
    if (!isDatabaseFailure(error)) context.onError?.(error, `couldn't look up idempotency key ${key} for a ${kind} refused before its batch`);
    const message = `couldn't tell whether an answer is stored under idempotency key ${key}: the database did not answer; retry with the same Idempotency-Key. Unless one is stored, ${kind} is refused as sent: ${refusal.message}`;
    return { ok: false, error: new DomainError('unavailable', message), replayed: false };
  }
  if (earlier === undefined) return { ok: false, error: refusal, replayed: false };
  const answer = replay({ hash: earlier.request_hash, answer: storedToAnswer(earlier) }, { key, hash: hashOfRefused(kind, rawInput) });
  context.countAnswers([answer]);
  return answer;
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
export async function rememberRefusal(context: KeyedRefusalsContext, pending: Pending, refusal: DomainError): Promise<Answer> {
  const answer: Answer = { ok: false, error: refusal, replayed: false };
  const { scope, key, hash } = pending.idempotency!;
  const record = toStored(answer, pending.kind);
  try {
    const earlier = await rememberAnswer(context.pool, {
      scope, key, request_hash: hash, status: record.status, response: record.response, created_at: context.clock.now().toISOString(),
    }, context.headLockWaitMs);
    return earlier === undefined ? answer : replay({ hash: earlier.request_hash, answer: storedToAnswer(earlier) }, pending.idempotency!);
  } catch (error) {
    context.onError?.(error, `couldn't remember the refusal of ${pending.kind} under its idempotency key`);
    return { ok: false, error: new DomainError('unavailable', 'the database did not confirm the answer; retry with the same Idempotency-Key'), replayed: false };
  }
}
