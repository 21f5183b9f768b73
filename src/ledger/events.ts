/**
 * An event's canonical bytes: RFC 8785 (JSON Canonicalization Scheme) of its body. These
 * bytes are what the transparency log hashes as a leaf, so they must be reproducible by
 * anyone from the event's JSON alone.
 */
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
