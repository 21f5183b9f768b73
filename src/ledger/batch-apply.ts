/**
 * A batch applied in memory, before anything is written: each command checked and applied in
 * turn to the batch's rows by its handler (a refused one leaves them as they were), its events
 * made with their canonical bytes at consecutive seqs, its answer remembered under its
 * idempotency key, and the events appended to the log as leaves. The sequencer writes what
 * this returns and commits it (store/batch-writes.ts), or throws it away.
 */
import { DomainError, assert, isDomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { PoolClient } from '../store/pool.ts';
import type { TileRow } from '../store/tlog-tables.ts';
import { emptyKeys, type BatchKeys } from '../store/batch-keys.ts';
import type { StoredAnswer } from '../store/idempotency-answers.ts';
import type { BatchWrites, EventWrite, IdempotencyWrite, LogWrite } from '../store/batch-writes.ts';
import type { LogHead, StoredHead } from '../store/head-lock.ts';
import { bulkRowsMin } from '../store/batch-steps.ts';
import { canonicalBytes, eventBody, recordSerials, redact } from './events.ts';
import { replay, storedToAnswer, toStored } from './idempotency.ts';
import { handlers } from './handlers/index.ts';
import type { Handler, Outcome } from './handler.ts';
import { systemActor, tokenNotValid, type Actor } from './permissions.ts';
import type { CommandKind } from './schemas.ts';
import type { BatchState } from './state.ts';

const eventBytesMax = limits.eventBytesMax;

export type Answer =
  | { ok: true; seq: number; body: Record<string, unknown>; replayed: boolean }
  | { ok: false; error: DomainError; replayed: boolean };

/** What the transparency log does inside a batch's transaction (issue: tlog). */
export interface LogAppender {
  /**
   * Adds the batch's events as leaves and returns the tiles to write and the new root; the
   * batch writes both in its transaction, with its events. `head` is the log as committed
   * before this batch: read under the lock, or, for a batch sent ahead, the head our last
   * batch committed, which the batch's opening checks. The client is for reloading the
   * right edge.
   */
  append(client: PoolClient, head: LogHead, leaves: Array<{ seq: number; canonical: Buffer }>): Promise<{ root: Buffer; tiles: TileRow[]; seal: Buffer | null }>;
  /**
   * Makes ready to append at `head` (reading from the client if it must), so that a later
   * append reads nothing: a big batch appends while its events are being sent on the client.
   */
  prepare(client: PoolClient, head: LogHead): Promise<void>;
  /**
   * Throws unless a holder of the log's key vouches for `head` (log/head-seal.ts): called under
   * the lock for every head a batch is applied at that this process did not commit itself.
   * Without the key, only a log that has no key yet passes.
   */
  vouch(client: PoolClient, head: StoredHead): Promise<void>;
  /**
   * Whether the head's seal is one this process writes: none without the log's key, its key's
   * with it. A head our last batch left with another seal was sealed anew since (a key adopted
   * or rotated to: log/keys.ts), or was someone else's that a batch appending nothing kept.
   */
  sealIsOurs(head: StoredHead): boolean;
  /** Told after each COMMIT of a batch, also one that appended nothing, with the head it committed (TransparencyLog.committed). */
  committed?(head: LogHead): void;
}

/** A command waiting in the queue, checked for shape and role, with its caller's answer to give. */
export interface Pending {
  kind: CommandKind;
  input: unknown;
  actor: Actor;
  idempotency: { scope: string; key: string; hash: Buffer } | null;
  serials: number;
  resolve: (answer: Answer) => void;
  /** A bug, not a refusal: the caller answers 500 and the error is logged. */
  reject: (error: unknown) => void;
}

/** A batch applied, ready to write: what it answers and writes, and its leaves in the log. */
export interface Applied {
  answers: Answer[];
  writes: BatchWrites;
  /** The tiles and the head after the batch, or the function that appends the leaves and returns them. */
  log: LogWrite | (() => Promise<LogWrite>);
  state: BatchState;
}

/**
 * Checks and applies the batch against `state` (rows as of `head`); a small batch also
 * appends its events to the log now. Writes nothing: the caller writes and commits.
 */
export async function applyBatch(logAppender: LogAppender, client: PoolClient, batch: Pending[], state: BatchState, head: StoredHead, stored: StoredAnswer[], at: string): Promise<Applied> {
  const size = head.size;
  const events: EventWrite[] = [];
  const remembered: IdempotencyWrite[] = [];
  const answered = new Map<string, { hash: Buffer; answer: Answer }>();
  for (const row of stored) answered.set(`${row.scope}\u0000${row.key}`, { hash: row.request_hash, answer: storedToAnswer(row) });
  const answers = batch.map((pending) => {
    // First, before a stored answer is replayed: the door (server/auth.ts) refuses a revoked
    // token before anything else too. Not remembered under the key, as the door's refusal
    // is not: the key belongs to the organisation, whose other tokens may still send it.
    const refusal = tokenRefusal(state, pending.actor);
    if (refusal !== undefined) return { ok: false, error: refusal, replayed: false } satisfies Answer;
    const key = pending.idempotency && `${pending.idempotency.scope}\u0000${pending.idempotency.key}`;
    const earlier = key === null ? undefined : answered.get(key);
    if (earlier) return replay(earlier, pending.idempotency!);
    const answer = runOne(state, pending, size + events.length, at, events);
    if (pending.idempotency && key !== null) {
      const record = toStored(answer, pending.kind);
      answered.set(key, { hash: pending.idempotency.hash, answer: record.answer });
      remembered.push({ scope: pending.idempotency.scope, key: pending.idempotency.key, request_hash: pending.idempotency.hash, status: record.status, response: record.response, created_at: at });
    }
    return answer;
  });
  const writes: BatchWrites = {
    ...state.changedRows(),
    unitsChanges: state.unitsChanges,
    replacedPartiesOf: [...new Set(state.replacedPartiesOf)],
    events,
    idempotency: remembered,
  };
  const appendLeaves = async (): Promise<LogWrite> => {
    if (events.length === 0) return { tiles: [], head, seal: head.seal };
    const leaves = events.map((event) => ({ seq: event.seq, canonical: event.canonical }));
    const log = await logAppender.append(client, head, leaves);
    return { tiles: log.tiles, head: { size: size + events.length, root: log.root }, seal: log.seal };
  };
  // A big batch's events go by COPY in statements of their own: its leaves are hashed
  // while those travel (store/batch-writes.ts). A small batch sends everything in one
  // text, so it hashes now, before that text is sent.
  if (events.length < bulkRowsMin) return { answers, writes, log: await appendLeaves(), state };
  await logAppender.prepare(client, head);
  return { answers, writes, log: appendLeaves, state };
}

/**
 * The refusal of a command whose actor's token is revoked, or missing, as of this point in
 * commit order, or is another organisation's or role's than the actor says, or undefined
 * when it may run. The API checks the token when a request comes
 * in, but from a cache (up to limits.tokenCacheTtlMs old, and on another server process not
 * told of a revocation at all), and a command waits in the queue after that check: a token
 * revoked meanwhile would still write. Here the row is the one read under the ledger's lock
 * (or cached at the head that lock returned), with this batch's changes laid over it, so a
 * revocation earlier in the same batch counts too. The system actor (the admin CLI, the
 * demo loader's set-up, the sweep) has no token.
 */
function tokenRefusal(state: BatchState, actor: Actor): DomainError | undefined {
  // The actor is the token's own organisation and role: the API makes it from the token, so
  // only an actor made otherwise (a replay of a log whose events were rewritten, ledger/replay)
  // could differ, and it must not act as one organisation under another's token.
  if (actor.id === systemActor.id) return actor.orgId === systemActor.orgId && actor.role === systemActor.role ? undefined : tokenNotValid();
  const token = state.get('tokens', actor.id);
  if (token !== undefined && token.revoked_at === null && token.org_id === actor.orgId && token.role === actor.role) return undefined;
  return tokenNotValid();
}

function runOne(state: BatchState, pending: Pending, seq: number, at: string, events: EventWrite[]): Answer {
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
  // One event per part, at consecutive seqs from the command's own: each is a leaf of the
  // log and is read by its own part's organisations. Nothing is pushed until every part
  // fits, so a refused command leaves no event behind. Every part records the command's
  // input, so each stores the serial lines its digest covers, unless it is withoutInput.
  const recorded = recordSerials(redact(pending.input, outcome.redact));
  const made: EventWrite[] = [];
  for (const part of [outcome, ...(outcome.moreEvents ?? [])]) {
    const partSeq = seq + made.length;
    const { input, lines } = part.withoutInput ? { input: null, lines: null } : recorded;
    const canonical = canonicalBytes(eventBody(partSeq, at, pending.kind, pending.actor, part.subjectId, input, part.effects));
    if (canonical.length > eventBytesMax) {
      state.rollback();
      const error = new DomainError('payload_too_large', `the ${pending.kind} request would make a log entry of ${canonical.length} bytes; entries are at most ${eventBytesMax} bytes (shorten the texts)`, { rule: 'event-size' });
      return { ok: false, error, replayed: false };
    }
    const event: EventWrite = { seq: partSeq, at, kind: pending.kind, actor: pending.actor.id, subject_id: part.subjectId, org_ids: part.orgIds, canonical, serial_lines: lines };
    if (part.moreSubjectIds !== undefined) event.more_subject_ids = checkedMoreSubjects(part.subjectId, part.moreSubjectIds, pending.kind);
    made.push(event);
  }
  events.push(...made);
  assert(events[events.length - 1]!.seq - events[0]!.seq + 1 === events.length, 'event sequence numbers are gapless within a batch');
  // The answer names the command's first event.
  return { ok: true, seq, body: { seq, ...outcome.answer }, replayed: false };
}

/**
 * A part's further subjects as the handler must give them (EventPart.moreSubjectIds): some,
 * none twice, never the subject. A history lists an event once through either (read-queries.ts
 * listEvents), so a breach is a handler's bug: it fails the batch.
 */
function checkedMoreSubjects(subjectId: string | null, ids: string[], kind: CommandKind): string[] {
  assert(ids.length > 0, `a ${kind} event lists an empty set of further subjects; it leaves the field out instead`);
  assert(new Set(ids).size === ids.length && (subjectId === null || !ids.includes(subjectId)), `a ${kind} event lists a further subject twice, or its subject ${subjectId} again: ${ids.join(', ')}`);
  return ids;
}

/**
 * The rows the batch's commands will read (handlers name them), plus each actor's
 * organisation and token (tokenRefusal checks it; the system actor has none).
 */
export function batchKeys(batch: Pending[]): BatchKeys {
  const keys = emptyKeys();
  for (const pending of batch) {
    keys.organisations.add(pending.actor.orgId);
    if (pending.actor.id !== systemActor.id) keys.tokens.add(pending.actor.id);
    (handlers[pending.kind] as Handler<CommandKind>).keys(pending.input as never, keys, pending.actor);
  }
  return keys;
}
