/**
 * An event's canonical bytes: RFC 8785 (JSON Canonicalization Scheme) of its body. These
 * bytes are what the transparency log hashes as a leaf, so they must be reproducible by
 * anyone from the event's JSON alone.
 *
 * The leaf hashes are public (the level-0 tiles need no token, so that anyone can verify
 * the log), so each body carries a nonce: without one, the hash would confirm a guess at an
 * event its guesser may not read, every other field being guessable from its own events.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.ts';
import type { Actor } from './permissions.ts';

export interface EventBody {
  seq: number;
  at: string;
  kind: string;
  actor: { id: string; org: string; role: string };
  subject: string | null;
  input: unknown;
  effects: Record<string, unknown>;
  /** 16 random bytes, unpadded base64url (22 characters): this event's alone (eventNonce). */
  nonce: string;
}

export function eventBody(seq: number, at: string, kind: string, actor: Actor, subject: string | null, input: unknown, effects: Record<string, unknown>): EventBody {
  return { seq, at, kind, actor: { id: actor.id, org: actor.orgId, role: actor.role }, subject, input, effects, nonce: eventNonce() };
}

/**
 * 128 bits: a leaf hash names its event only to someone who holds the event's bytes.
 * Whoever may read an event reads its nonce in them, so verifying is unchanged; anyone
 * else would have to guess 2^128 nonces for each guess at the rest.
 */
export const eventNonceBytes = 16;
/** Nonces drawn from one fill of the pool: one call into the CSPRNG per 256 events. */
const noncePoolNonces = 256;
const noncePool = Buffer.alloc(eventNonceBytes * noncePoolNonces);
let noncePoolOffset = noncePool.length; // spent: the first nonce fills it

/**
 * A fresh nonce from node:crypto's CSPRNG, unpadded base64url. The booking path makes
 * thousands of events a second, so the random bytes come in pooled fills (one call per 256
 * events, not one each), each byte given to one event only: taking a nonce is synchronous,
 * so no two callers take the same bytes.
 */
export function eventNonce(): string {
  if (noncePoolOffset === noncePool.length) {
    randomFillSync(noncePool);
    noncePoolOffset = 0;
  }
  const nonce = noncePool.toString('base64url', noncePoolOffset, noncePoolOffset + eventNonceBytes);
  noncePoolOffset += eventNonceBytes;
  return nonce;
}

/** RFC 8785 bytes of a JSON value (core/canonical-json.ts); throws on what has no canonical text (hashOfRefused relies on it). */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

/**
 * Serial lists (up to 100,000) are recorded in the event by their digest, not in full: a
 * log entry must stay small (C2SP entry bundles cap an entry at 65,535 bytes). The lines
 * the digest covers are stored beside the event (event_serials, migration 017) and served
 * as they were hashed (GET /v1/events/:seq/serials), so anyone who may read the event can
 * recompute its digest: which units a manifest listed, which were reported lost.
 */
export function recordSerials(input: unknown): { input: unknown; lines: string[] | null } {
  const serials = (input as { serials?: unknown })?.serials;
  if (!Array.isArray(serials)) return { input, lines: null };
  const { serials: _list, ...rest } = input as Record<string, unknown>;
  const lines = serialLines(serials);
  return { input: { ...rest, serialCount: serials.length, serialsSha256: linesDigest(lines) }, lines };
}

type SerialEntry = string | { serial: string; gpuUuid?: string | undefined };

/**
 * The lines a serial list is recorded as, sorted: "serial", or "serial gpuUuid" when the
 * entry gave a GPU UUID. Serials and UUIDs are ASCII (ledger/schemas.ts), so JavaScript's
 * sort and PostgreSQL's C collation order them alike.
 */
export function serialLines(serials: ReadonlyArray<SerialEntry>): string[] {
  const lines = serials.map((entry) => (typeof entry === 'string' ? entry : entry.gpuUuid ? `${entry.serial} ${entry.gpuUuid}` : entry.serial));
  // A manifest is mostly a file in serial order already: one pass finds that, where sort()
  // took 10-12 ms of a 100,000-serial manifest to find it (a pass, 1-2 ms). `<` compares
  // UTF-16 code units, as sort() does.
  return isSorted(lines) ? lines : lines.sort();
}

function isSorted(lines: readonly string[]): boolean {
  for (let index = 1; index < lines.length; index += 1) if (lines[index - 1]! > lines[index]!) return false;
  return true;
}

/**
 * SHA-256 over the lines, each ending in a newline: the bytes GET /v1/events/:seq/serials
 * serves. The lines go to the hash as one text: a call a line (and a string made for each)
 * took 20-29 ms of a 100,000-serial manifest, one text 7 ms.
 */
export function linesDigest(lines: readonly string[]): string {
  const hash = createHash('sha256');
  if (lines.length > 0) hash.update(`${lines.join('\n')}\n`);
  return hash.digest('hex');
}

/** The digest of a serial list as its event records it. */
export function serialsDigest(serials: ReadonlyArray<SerialEntry>): string {
  return linesDigest(serialLines(serials));
}

/** The input as recorded: without the fields a handler marks secret. */
export function redact(input: unknown, fields: string[] | undefined): unknown {
  if (!fields || typeof input !== 'object' || input === null) return input;
  const copy: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const field of fields) delete copy[field];
  return copy;
}

