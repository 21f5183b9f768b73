/**
 * The log's events read back as the commands that made them: what a replay submits again.
 *
 * Every part of a command's events records its kind, actor, time and input (events.ts
 * eventBody), so the first event of a command is enough to send it again. Two things of the
 * input are not in the event as it was given: a serial list, recorded by its count and digest
 * with the lines stored beside the event (recordSerials, event_serials), and the fields a
 * handler redacts (a token's secret, which the handler makes itself and the input never holds).
 */
import { canonicalJson } from '../../core/canonical-json.ts';
import type { Actor } from '../permissions.ts';
import type { Role } from '../rows.ts';
import { commandSchemas, type CommandKind } from '../schemas.ts';
import { eventNonceBytes, linesDigest, type EventBody } from '../events.ts';

/** An event as its canonical bytes say it (events.ts EventBody), with the seq its row is stored under. */
export interface RecordedEvent {
  seq: number;
  body: RecordedBody;
}

/** An event's body as read back: its nonce may be missing from bytes not written by the ledger. */
export type RecordedBody = Omit<EventBody, 'nonce'> & { nonce?: string };

/** The command an event's bytes record, to submit again, or why it cannot be sent again. */
export type RecordedCommand =
  | { ok: true; kind: CommandKind; input: unknown; actor: Actor; at: string }
  | { ok: false; problem: string };

/** A nonce as the ledger writes one: eventNonceBytes (16) bytes in unpadded base64url, 22 characters. */
const noncePattern = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((eventNonceBytes * 4) / 3)}}$`);

/** An instant as Date#toISOString writes it, the only way the ledger dates an event (batch-time.ts). */
const isoInstantPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Reads an event's canonical bytes; a problem comes back as text: not JSON, not the canonical
 * JSON of what they hold (a name given twice, which JSON.parse would read as its last value;
 * another spelling of a value; a number past a double's range), not an event's shape, or a
 * time the ledger never writes. The replay compares what it makes with what this reads, so
 * only bytes that say one thing are read.
 */
export function recordedBody(seq: number, canonical: Buffer): RecordedBody | string {
  let body: unknown;
  const text = canonical.toString('utf8');
  try {
    body = JSON.parse(text);
  } catch (error) {
    return `event ${seq}'s bytes are not JSON (${(error as Error).message})`;
  }
  let written: string;
  try {
    written = canonicalJson(body);
  } catch (error) {
    return `event ${seq}'s bytes hold what has no canonical JSON (${(error as Error).message})`;
  }
  // In bytes: bytes that are not UTF-8 read as U+FFFD, which canonical text may hold too.
  if (!Buffer.from(written, 'utf8').equals(canonical)) {
    return `event ${seq}'s bytes are not the canonical JSON (RFC 8785) of what they hold, as the ledger writes every event: a name given twice, or a value spelt otherwise`;
  }
  const event = body as Partial<RecordedBody> | null;
  const actor = event?.actor as Partial<RecordedBody['actor']> | undefined;
  const shaped = typeof event === 'object' && event !== null && typeof event.at === 'string' && typeof event.kind === 'string'
    && typeof actor === 'object' && actor !== null && typeof actor.id === 'string' && typeof actor.org === 'string' && typeof actor.role === 'string'
    && typeof event.effects === 'object' && event.effects !== null && 'input' in event;
  if (!shaped) return `event ${seq}'s bytes are JSON but not an event (at, kind, actor, input and effects)`;
  const at = event.at!;
  if (!isoInstantPattern.test(at) || Number.isNaN(Date.parse(at)) || new Date(at).toISOString() !== at) {
    return `event ${seq}'s time ${JSON.stringify(at)} is not an instant as the ledger writes one (ISO 8601 in UTC, to the millisecond)`;
  }
  // The ledger writes 16 random bytes in unpadded base64url (events.ts eventNonce); an event of
  // a release before nonces has none, and stays readable. Another nonce no ledger wrote: one
  // that guesses cannot be told from (a short or fixed one) is a forged event's mark.
  if (event.nonce !== undefined && (typeof event.nonce !== 'string' || !noncePattern.test(event.nonce))) {
    return `event ${seq}'s nonce ${JSON.stringify(event.nonce)} is not one the ledger writes (${eventNonceBytes} random bytes in unpadded base64url)`;
  }
  return event as RecordedBody;
}

/** Whether an event's input records a serial list by its digest, whose lines are stored beside it. */
export function recordsSerials(body: RecordedBody): boolean {
  return typeof body.input === 'object' && body.input !== null && !Array.isArray(body.input) && Object.hasOwn(body.input, 'serialsSha256');
}

/**
 * The command whose first event is `body`, its serial list (where its input records one by
 * digest) rebuilt from `lines`, the lines stored for the event. The lines are sorted
 * (events.ts serialLines), not in the order the caller sent them: no handler's outcome depends
 * on that order, only its refusals' wording.
 */
export function recordedCommand(body: RecordedBody, lines: readonly string[] | null): RecordedCommand {
  if (!Object.hasOwn(commandSchemas, body.kind)) return { ok: false, problem: `event ${body.seq} is of kind ${JSON.stringify(body.kind)}, which no command of this release makes` };
  if (body.input === null) {
    return { ok: false, problem: `event ${body.seq} records no input, so it is a further event of a command (one that told other readers its effects only), not the first: the command before it made fewer events when replayed than the log holds` };
  }
  const actor: Actor = { id: body.actor.id, orgId: body.actor.org, role: body.actor.role as Role };
  if (!recordsSerials(body)) return { ok: true, kind: body.kind as CommandKind, input: body.input, actor, at: body.at };
  const { serialCount, serialsSha256, ...rest } = body.input as Record<string, unknown>;
  if (lines === null) {
    return { ok: false, problem: `event ${body.seq} records its serial list by digest only, and no lines are stored for it (events before migration 017 kept none), so its command cannot be sent again` };
  }
  if (lines.length !== serialCount || linesDigest(lines) !== serialsSha256) {
    return { ok: false, problem: `event ${body.seq} records ${String(serialCount)} serials with digest ${String(serialsSha256)}, and the ${lines.length} lines stored for it hash to ${linesDigest(lines)}` };
  }
  const serials = lines.map((line) => {
    const space = line.indexOf(' ');
    return space === -1 ? line : { serial: line.slice(0, space), gpuUuid: line.slice(space + 1) };
  });
  return { ok: true, kind: body.kind as CommandKind, input: { ...rest, serials }, actor, at: body.at };
}

/** An event's bytes as a replay compares them: every field but the nonce, which is each event's own random draw. */
export function comparableText(body: RecordedBody): string {
  const { nonce: _nonce, ...rest } = body;
  return canonicalJson(rest);
}

/** Longest value shown in a difference; the rest is counted. */
const shownValueLengthMax = 240;

/** How two events differ, field by field (seq, at, kind, actor, subject, input, effects): for a replay's report. */
export function eventDifference(recorded: RecordedBody, replayed: RecordedBody): string {
  const fields = new Set([...Object.keys(recorded), ...Object.keys(replayed)]);
  fields.delete('nonce');
  const named: string[] = [];
  for (const field of [...fields].sort()) {
    const one = shown((recorded as unknown as Record<string, unknown>)[field]);
    const other = shown((replayed as unknown as Record<string, unknown>)[field]);
    if (one !== other) named.push(`${field}: the log records ${one}, the replay made ${other}`);
  }
  return named.join('; ');
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = canonicalJson(value);
  return text.length <= shownValueLengthMax ? text : `${text.slice(0, shownValueLengthMax)}… (${text.length} characters)`;
}
