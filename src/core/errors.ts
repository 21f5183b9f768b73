/**
 * Operating errors: things that go wrong because of input or circumstances, each with a
 * stable code. Programmer errors are not modelled here: they are assertions that crash.
 *
 * The HTTP edge turns a DomainError into an RFC 9457 problem using the one table in
 * src/server/problem.ts; nothing else maps codes to statuses.
 */
export const errorCodes = [
  'invalid_input', // the request is malformed or a field is out of range
  'unauthenticated', // no valid bearer token
  'forbidden', // the token's role may not do this
  'not_found', // unknown id, or an id of another tenant (never say which)
  'conflict', // the state forbids it (wrong status, duplicate serial, ...)
  'insufficient_units', // a quantity rule refused it (invariants 1 and 2)
  'licence_not_valid', // invariant 3: licence not issued, expired, or does not name it
  'idempotency_mismatch', // same key, different body (invariant 6)
  'payload_too_large', // a named limit was hit
  'headers_too_large', // the request's header section is larger than the server reads
  'request_timeout', // the request did not arrive whole in time
  'too_many_requests', // one client (an organisation) is past its own share of a bound; retry later
  'overloaded', // a bounded queue is full; retry later
  'unavailable', // a dependency (the database) is not reachable
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class DomainError extends Error {
  readonly code: ErrorCode;
  /** The rule that refused it, e.g. "invariant-2" or "licence-status"; shown to the caller. */
  readonly rule: string | undefined;
  /** Machine-readable details: the numbers behind the refusal. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { rule?: string; details?: Record<string, unknown>; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainError';
    this.code = code;
    this.rule = options?.rule;
    this.details = options?.details;
  }

  toJSON(): { code: ErrorCode; message: string; rule?: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.rule === undefined ? {} : { rule: this.rule }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export function isDomainError(error: unknown): error is DomainError {
  return error instanceof DomainError;
}

/** A broken invariant of our own code: crash loudly, never handle. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** Formats an integer quantity for messages: 1200 -> "1,200". */
export function formatUnits(value: number | bigint): string {
  return value.toLocaleString('en-US');
}
