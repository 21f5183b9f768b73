/**
 * RFC 9457 problem details: the one shape of every error the API answers, and the one
 * table from error code to HTTP status (STYLE.md habit 4). Nothing else in the server
 * picks a status for an error.
 */
import type { FastifyReply } from 'fastify';
import { DomainError, isDomainError, type ErrorCode } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { clockBehindLedgerRule } from '../ledger/batch-time.ts';
import { clockAheadOfDatabaseRule } from '../ledger/refusals.ts';
import { withoutSecrets } from './log-redaction.ts';

export const problemContentType = 'application/problem+json';
export const problemTypeBase = 'https://chipledger.dev/problems/';

const clockRules: ReadonlySet<string> = new Set([clockBehindLedgerRule, clockAheadOfDatabaseRule]);

/**
 * Codes only the HTTP edge gives: what a request's method, protocol or body's media type
 * asked for that this server does not do. The ledger never raises them, so they are not
 * DomainError codes (EdgeRefusal).
 */
export const httpOnlyCodes = ['method_not_allowed', 'expectation_failed', 'unsupported_media_type'] as const;
export type HttpOnlyCode = (typeof httpOnlyCodes)[number];
export type ProblemCode = ErrorCode | HttpOnlyCode | 'internal';

/**
 * A refusal the HTTP edge makes with one of its own codes (httpOnlyCodes), thrown from a hook
 * or a route like a DomainError and answered by the same error handler, through the same table.
 */
export class EdgeRefusal extends Error {
  readonly rule: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(readonly code: HttpOnlyCode, message: string, options?: { rule?: string; details?: Record<string, unknown> }) {
    super(message);
    this.name = 'EdgeRefusal';
    this.rule = options?.rule;
    this.details = options?.details;
  }
}

interface CodeRule {
  status: number;
  title: string;
}

/**
 * Every code, its status and its title. invalid_input is always 400 (malformed JSON and
 * schema refusals alike); licence_not_valid is 409 because the request was fine and the
 * licence's state refused it.
 */
export const problemCodes: Record<ProblemCode, CodeRule> = {
  invalid_input: { status: 400, title: 'Invalid input' },
  unauthenticated: { status: 401, title: 'Not authenticated' },
  forbidden: { status: 403, title: 'Forbidden' },
  not_found: { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict with the current state' },
  insufficient_units: { status: 409, title: 'Not enough units' },
  licence_not_valid: { status: 409, title: 'Licence does not cover this' },
  idempotency_mismatch: { status: 422, title: 'Idempotency key reused with a different request' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  headers_too_large: { status: 431, title: 'Request header fields too large' },
  request_timeout: { status: 408, title: 'Request timeout' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  expectation_failed: { status: 417, title: 'Expectation failed' },
  too_many_requests: { status: 429, title: 'Too many requests' },
  overloaded: { status: 503, title: 'Overloaded' },
  unavailable: { status: 503, title: 'Unavailable' },
  internal: { status: 500, title: 'Internal server error' },
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  rule?: string;
  details?: Record<string, unknown>;
  instance?: string;
}

/**
 * A problem quotes what the request said (an id in its path, the path itself, its URL), and a
 * token secret pasted where an id goes would come back whole, to the client and to anything
 * that keeps answers (proxies, logs): every string of a problem is given without secrets.
 */
function withoutSecretsIn<T>(value: T): T {
  if (typeof value === 'string') return withoutSecrets(value) as T;
  if (Array.isArray(value)) return value.map(withoutSecretsIn) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, withoutSecretsIn(inner)])) as T;
  return value;
}

export function problemOf(error: DomainError | EdgeRefusal, instance?: string): Problem {
  const rule = problemCodes[error.code];
  return withoutSecretsIn({
    type: `${problemTypeBase}${error.code}`,
    title: rule.title,
    status: rule.status,
    detail: error.message,
    code: error.code,
    ...(error.rule === undefined ? {} : { rule: error.rule }),
    ...(error.details === undefined ? {} : { details: error.details }),
    ...(instance === undefined ? {} : { instance }),
  });
}

/** A problem of the HTTP edge alone (a method or an expectation this server does not serve). */
export function httpOnlyProblem(code: HttpOnlyCode, detail: string, instance?: string): Problem {
  return problemOf(new EdgeRefusal(code, detail), instance);
}

/**
 * The plain 500: nothing of the error's internals reaches the client, only the id of the
 * request (also its X-Request-Id) the failure was logged under, for the client to quote.
 */
export function internalProblem(requestId: string, instance?: string): Problem {
  return withoutSecretsIn({
    type: `${problemTypeBase}internal`,
    title: problemCodes.internal.title,
    status: 500,
    detail: `the server failed to answer this request; the failure was logged under request id ${requestId}`,
    code: 'internal',
    details: { requestId },
    ...(instance === undefined ? {} : { instance }),
  });
}

/**
 * Fields of a PostgreSQL error that may quote the rows its statement touched: `detail`
 * ("Failing row contains (…)", "Key (name)=(…) already exists"), `where` (the PL/pgSQL
 * context, which may quote a trigger's statement and its values) and `internalQuery`.
 */
const rowQuotingFields: ReadonlySet<string> = new Set(['detail', 'where', 'internalQuery']);

/**
 * `error` as a log line may hold it: a PostgreSQL error without the fields that quote rows
 * (pino writes every enumerable field of an error, and row values are organisations' names,
 * addresses and identifiers); its code, constraint, table and message say what failed. The
 * error itself is left as it is (its caller may still read them); anything else is returned
 * as it is. Of an error's cause pino writes only the message and the stack.
 */
export function withoutRowValues(error: unknown): unknown {
  if (!(error instanceof Error) || ![...rowQuotingFields].some((field) => Object.hasOwn(error, field))) return error;
  const kept = Object.create(Object.getPrototypeOf(error) as object) as Record<string, unknown>;
  for (const [field, value] of Object.entries(error)) if (!rowQuotingFields.has(field)) kept[field] = value;
  // Own but not enumerable on an Error: copied as they are.
  for (const field of ['message', 'stack', 'cause'] as const) {
    if (Object.hasOwn(error, field)) Object.defineProperty(kept, field, { value: error[field], writable: true, configurable: true });
  }
  return kept;
}

/** The challenge of every 401 (RFC 6750 §3). */
export const bearerChallenge = 'Bearer realm="chipledger"';

/**
 * Sends a problem with the headers its status needs. No cache keeps a problem: a 404 for a
 * log tile not there yet is heuristically cacheable by default (RFC 9111 §4.2.2), and the
 * tile would then stay "missing" behind a cache once it exists.
 */
export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  reply.header('cache-control', 'no-store');
  if (problem.status === 401) reply.header('www-authenticate', challengeFor(reply.request.headers.authorization));
  const retryAfter = retryAfterSecondsOf(problem);
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  if (problem.code === 'unsupported_media_type') reply.headers(acceptHeadersOf(problem.details as MediaTypeRefusalDetails | undefined));
  return reply.code(problem.status).type(problemContentType).send(problem);
}

/** The Retry-After of a problem to try again later (429, 503), by its rule; undefined for any other. */
function retryAfterSecondsOf(problem: Pick<Problem, 'status' | 'rule'>): number | undefined {
  if (problem.status !== 503 && problem.status !== 429) return undefined;
  if (problem.rule !== undefined && clockRules.has(problem.rule)) return limits.clockRetryAfterSeconds;
  // Every 429 is one organisation past its share (of the sequencer's serials, or of the bodies
  // in flight), which frees as its earlier commands are answered: seconds for a large batch.
  if (problem.status === 429) return limits.organisationShareRetryAfterSeconds;
  return limits.retryAfterSeconds;
}

/**
 * The 401's challenge: with error="invalid_token" when a bearer token was sent and refused
 * (RFC 6750 §3.1), so that a client tells "log in" from "this token is dead"; without an
 * error when none was sent, or only another scheme's credentials (§3.1: no error code then).
 */
function challengeFor(authorization: string | undefined): string {
  return authorization !== undefined && /^bearer(?: |$)/i.test(authorization) ? `${bearerChallenge}, error="invalid_token"` : bearerChallenge;
}

/** What a media type refusal says would be read (details of unsupported_media_type). */
interface MediaTypeRefusalDetails {
  /** The media type the route reads. */
  accepts: string;
  /** Set when the content coding was refused: the one coding read. */
  acceptEncoding?: 'identity';
}

/**
 * The 415's headers: Accept-Post names the media type the route reads (RFC 9110 §15.5.16;
 * every route that reads a body is a POST), and Accept-Encoding: identity, on a refused
 * content coding, tells a client that compresses its bodies to send this one as it is (RFC 7694 §3).
 */
function acceptHeadersOf(details: MediaTypeRefusalDetails | undefined): Record<string, string> {
  if (details === undefined) return {};
  return { 'accept-post': details.accepts, ...(details.acceptEncoding === undefined ? {} : { 'accept-encoding': details.acceptEncoding }) };
}

/** The media type a route reads its body as, unless its config says another (the cosignature route's text/plain). */
export const defaultBodyMediaType = 'application/json';

/**
 * The refusal of a body in another media type, charset or coding than the route reads (415
 * unsupported_media_type); `why` says what was sent instead, `contentCoding` that it was the
 * content coding. Always rule content-type, naming the route's type in the detail, in
 * details.accepts and in Accept-Post.
 */
export function contentTypeRefusal(accepts: string, why?: string, options: { contentCoding?: boolean } = {}): EdgeRefusal {
  const details: MediaTypeRefusalDetails = { accepts, ...(options.contentCoding === true ? { acceptEncoding: 'identity' as const } : {}) };
  return new EdgeRefusal('unsupported_media_type', `send the request body as ${accepts}${why === undefined ? '' : `: ${why}`}`, { rule: 'content-type', details: { ...details } });
}

/**
 * Errors fastify raises before our handler runs (body too large, bad content type):
 * client errors become DomainErrors by status; anything else is not a client error.
 * `accepts` is the media type the route reads, named in a content-type refusal; `bodyLimitBytes`
 * the route's body bound, named in a size refusal.
 */
export function fromFrameworkError(error: unknown, accepts: string = defaultBodyMediaType, bodyLimitBytes?: number): DomainError | EdgeRefusal | null {
  if (isDomainError(error) || error instanceof EdgeRefusal) return error;
  const candidate = error as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof candidate.statusCode !== 'number' || candidate.statusCode < 400 || candidate.statusCode >= 500) return null;
  const message = typeof candidate.message === 'string' ? candidate.message : 'the request was refused';
  if (candidate.statusCode === 413) {
    const bound = bodyLimitBytes === undefined ? '' : ` (this route takes at most ${bodyLimitBytes.toLocaleString('en-US')} bytes)`;
    return new DomainError('payload_too_large', `the request body is larger than this server accepts${bound}: ${message}`, {
      rule: 'request-body-bytes-max', ...(bodyLimitBytes === undefined ? {} : { details: { bytesMax: bodyLimitBytes } }),
    });
  }
  if (candidate.statusCode === 415) return contentTypeRefusal(accepts);
  if (candidate.code === 'FST_ERR_MAX_PARAM_LENGTH') return new DomainError('invalid_input', 'an id in the path is longer than any this API gives out', { rule: 'path-parameter-length' });
  if (candidate.code === 'FST_ERR_BAD_URL') return new DomainError('invalid_input', 'the path is not a valid URL: a percent-escape in it is malformed', { rule: 'url' });
  // Every 400 names a rule; this one what the framework could not read, as it says.
  return new DomainError('invalid_input', `couldn't read the request: ${message}`, { rule: 'request' });
}

/**
 * Errors Node's HTTP parser raises before any request exists (a malformed request line, a
 * header section over the bound, a request that did not arrive in time): fastify's default
 * answers them with a JSON body of its own. This one answers problem+json like every other
 * error, then closes the connection, whose byte stream can no longer be trusted.
 */
export function clientErrorProblem(error: { code?: string }): Problem {
  if (error.code === 'HPE_HEADER_OVERFLOW') return problemOf(new DomainError('headers_too_large', 'the request\'s header section is larger than this server reads', { rule: 'header-bytes-max' }));
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return problemOf(new DomainError('request_timeout', 'the request did not arrive whole in time'));
  return problemOf(new DomainError('invalid_input', 'the request is not well-formed HTTP/1.1', { rule: 'http-syntax' }));
}
