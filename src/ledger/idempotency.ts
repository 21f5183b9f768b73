/**
 * Invariant 6: a retried request with the same idempotency key gets the same answer and
 * changes nothing twice; the same key with another request is refused. Keys are scoped to
 * the caller's organisation and stored with the batch that answered them.
 */
import { hash } from 'node:crypto';
import { DomainError } from '../core/errors.ts';
import type { StoredAnswer } from '../store/idempotency-answers.ts';
import { canonicalBytes } from './events.ts';
import type { CommandKind } from './schemas.ts';
import type { Answer } from './batch-apply.ts';

/** SHA-256 of the request as sent (kind and raw input, RFC 8785): what "the same request" means. */
export function requestHash(kind: string, rawInput: unknown): Buffer {
  return hash('sha256', canonicalBytes({ kind, input: rawInput ?? null }), 'buffer');
}

/**
 * The hash of a request our checks refused, as requestHash gives it, or an empty buffer when
 * it has none: an input of any shape may come here (a list nested deeper than
 * canonicalJsonDepthMax, 512, has no canonical form: core/canonical-json.ts refuses it). An answer stored under a key was stored for a request that
 * hashed, so such an input is another request, and the empty buffer equals no stored hash
 * (32 bytes): the caller hears idempotency_mismatch, as for any other request under the key.
 * The sequencer asks for it only once an answer is found under the key: most refused
 * requests have none, and a body may be megabytes.
 */
export function hashOfRefused(kind: string, rawInput: unknown): Buffer {
  try {
    return requestHash(kind, rawInput);
  } catch {
    return Buffer.alloc(0);
  }
}

/** The answer to a key seen before: the same one, or a refusal if the request differs. */
export function replay(earlier: { hash: Buffer; answer: Answer }, key: { key: string; hash: Buffer }): Answer {
  if (!earlier.hash.equals(key.hash)) {
    return {
      ok: false,
      replayed: false,
      error: new DomainError('idempotency_mismatch', `idempotency key ${key.key} was used before with a different request; use a new key for a new request`, { rule: 'invariant-6' }),
    };
  }
  return { ...earlier.answer, replayed: true };
}

/** What is remembered under an idempotency key; secrets are never stored. */
export function toStored(answer: Answer, kind: CommandKind): { status: number; response: unknown; answer: Answer } {
  if (!answer.ok) return { status: 0, response: { ok: false, error: answer.error.toJSON() }, answer };
  if (kind === 'token.create') {
    const error = new DomainError('conflict', `token ${String(answer.body.tokenId)} was made by the first request with this idempotency key; its secret is shown only once`, { rule: 'invariant-6' });
    return { status: 0, response: { ok: false, error: error.toJSON() }, answer: { ok: false, error, replayed: true } };
  }
  return { status: 1, response: { ok: true, seq: answer.seq, body: answer.body }, answer };
}

export function storedToAnswer(row: StoredAnswer): Answer {
  const response = row.response as { ok: boolean; seq?: number; body?: Record<string, unknown>; error?: { code: DomainError['code']; message: string; rule?: string; details?: Record<string, unknown> } };
  if (response.ok) return { ok: true, seq: response.seq!, body: response.body!, replayed: true };
  const stored = response.error!;
  return { ok: false, replayed: true, error: new DomainError(stored.code, stored.message, { ...(stored.rule ? { rule: stored.rule } : {}), ...(stored.details ? { details: stored.details } : {}) }) };
}
