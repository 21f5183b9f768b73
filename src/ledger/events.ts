/**
 * An event's canonical bytes: RFC 8785 (JSON Canonicalization Scheme) of its body. These
 * bytes are what the transparency log hashes as a leaf, so they must be reproducible by
 * anyone from the event's JSON alone.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Actor } from './permissions.ts';

export interface EventBody {
  seq: number;
  at: string;
  kind: string;
  actor: { id: string; org: string; role: string };
  subject: string | null;
  input: unknown;
  effects: Record<string, unknown>;
}

export function eventBody(seq: number, at: string, kind: string, actor: Actor, subject: string | null, input: unknown, effects: Record<string, unknown>): EventBody {
  return { seq, at, kind, actor: { id: actor.id, org: actor.orgId, role: actor.role }, subject, input, effects };
}

export function canonicalBytes(value: unknown): Buffer {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('event body has no JSON form');
  return Buffer.from(text, 'utf8');
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
  return lines.sort();
}

/** SHA-256 over the lines, each ending in a newline: the bytes GET /v1/events/:seq/serials serves. */
export function linesDigest(lines: readonly string[]): string {
  const hash = createHash('sha256');
  for (const line of lines) hash.update(`${line}\n`);
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

