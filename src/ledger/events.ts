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
 * log entry must stay small (C2SP entry bundles cap an entry at 65,535 bytes), and the
 * list itself is in the manifest tables, from which anyone can recompute the digest.
 */
export function digestSerials(input: unknown): unknown {
  const serials = (input as { serials?: unknown })?.serials;
  if (!Array.isArray(serials)) return input;
  const { serials: _list, ...rest } = input as Record<string, unknown>;
  return { ...rest, serialCount: serials.length, serialsSha256: serialsDigest(serials) };
}

/** SHA-256 over the sorted lines "serial" or "serial gpuUuid", each ending in a newline. */
export function serialsDigest(serials: ReadonlyArray<string | { serial: string; gpuUuid?: string | undefined }>): string {
  const lines = serials.map((entry) => (typeof entry === 'string' ? entry : entry.gpuUuid ? `${entry.serial} ${entry.gpuUuid}` : entry.serial));
  lines.sort();
  const hash = createHash('sha256');
  for (const line of lines) hash.update(`${line}\n`);
  return hash.digest('hex');
}

/** The input as recorded: without the fields a handler marks secret. */
export function redact(input: unknown, fields: string[] | undefined): unknown {
  if (!fields || typeof input !== 'object' || input === null) return input;
  const copy: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const field of fields) delete copy[field];
  return copy;
}

