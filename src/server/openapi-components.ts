/**
 * The OpenAPI document's shared parts: zod schemas as JSON Schema, the resources' and events'
 * components, and the parameters, problem answers and headers that operations name by reference.
 */
import { z } from 'zod';
import { serial as serialSchema, tokenSecretPrefix } from '../ledger/schemas.ts';
import { errorCodes } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { httpOnlyCodes, problemCodes, problemContentType } from './problem.ts';
import { resources } from './wire.ts';
import { eventBodies } from './wire-events.ts';

export type JsonSchema = Record<string, unknown>;

/** A zod schema as JSON Schema: as a client sends it (input) or as the server answers (output). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'input'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

export const resourceRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * What a transform answers, for the document: the schema of what it took. The ledger's
 * transforms only normalise (an instant to UTC, a GPU UUID to lower case), so an event's
 * recorded input is what the request schema says, not the "anything" a transform's output
 * would otherwise be written as.
 */
function transformAsTaken(context: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  const def = (context.zodSchema as { _zod: { def: { type: string; in?: z.ZodType; out?: { _zod: { def: { type: string } } } } } })._zod.def;
  if (def.type !== 'pipe' || def.out?._zod.def.type !== 'transform') return;
  Object.assign(context.jsonSchema, jsonSchemaOf(def.in!));
}

/** '<kind>' → its component's name: 'units.report_lost' → UnitsReportLostEvent. */
const eventComponentName = (kind: string): string => `${kind.split(/[._]/).map((word) => word[0]!.toUpperCase() + word.slice(1)).join('')}Event`;

/**
 * An event's body, one component per kind (its parts as a oneOf where the command writes
 * further events), and EventBody: a oneOf of them, discriminated by `kind`.
 */
function eventBodySchemas(): Record<string, JsonSchema> {
  const partSchema = (part: z.ZodType): JsonSchema => {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(part, { io: 'output', unrepresentable: 'any', override: transformAsTaken }) as JsonSchema;
    return rest;
  };
  const components: Record<string, JsonSchema> = {};
  const mapping: Record<string, string> = {};
  for (const [kind, parts] of Object.entries(eventBodies) as Array<[string, readonly z.ZodType[]]>) {
    const name = eventComponentName(kind);
    components[name] = parts.length === 1
      ? partSchema(parts[0]!)
      : { description: `The events of ${kind}: the command's own, then the further ones it may write, in this order.`, oneOf: parts.map(partSchema) };
    mapping[kind] = resourceRef(name).$ref;
  }
  components.EventBody = {
    description: "An event's body (its canonical bytes, parsed): seq, at, kind, actor, subject, input (the command's input as recorded, or null), effects (what the command did) and nonce (16 random bytes, base64url, that keep the event's public leaf hash from confirming a guess at it; absent on events written before it), one shape per kind.",
    oneOf: Object.values(mapping).map(($ref) => ({ $ref })),
    discriminator: { propertyName: 'kind', mapping },
  };
  return components;
}

/** The resources, with an event's body by reference to EventBody (not written out in every place). */
function resourceSchemas(): Record<string, JsonSchema> {
  const schemas: Record<string, JsonSchema> = Object.fromEntries(Object.entries(resources).map(([name, schema]) => [name, jsonSchemaOf(schema, 'output')]));
  const event = schemas.Event!;
  const properties = event.properties as Record<string, JsonSchema>;
  properties.body = { description: properties.body!.description, $ref: resourceRef('EventBody').$ref };
  return { ...schemas, ...eventBodySchemas() };
}

const problemRef = { $ref: '#/components/responses/Problem' };
/** A command's problem: a refusal remembered under its Idempotency-Key comes again, marked. */
export const replayableProblemRef = { $ref: '#/components/responses/ReplayableProblem' };
export const replayedHeaderRef = { $ref: '#/components/headers/Idempotent-Replayed' };
/** 503: nothing committed or the outcome unknown (never remembered under an Idempotency-Key); Retry-After says when to come back. */
const unavailableRef = { $ref: '#/components/responses/Unavailable' };
/** 401: no token, or one that is not (or no longer) valid; WWW-Authenticate names the scheme. */
const unauthorizedRef = { $ref: '#/components/responses/Unauthorized' };
/** 415: a body in a media type, charset or coding the route does not read; Accept-Post names the one it does. */
const unsupportedMediaTypeRef = { $ref: '#/components/responses/UnsupportedMediaType' };
/** 429: the organisation's share of the bodies in flight, or of the serials queued for the ledger, is full; Retry-After says when to come back. */
const tooManyRequestsRef = { $ref: '#/components/responses/TooManyRequests' };
/** What each status answers by reference, where it differs from the operation's problem. */
const problemRefByStatus: Readonly<Record<number, { $ref: string }>> = { 401: unauthorizedRef, 415: unsupportedMediaTypeRef, 429: tooManyRequestsRef, 503: unavailableRef };
/** Every answer fastify gives carries the request's id (app.ts requestIdHeader). */
export const requestIdHeaders = { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' } };
const problemHeaders = { 'Cache-Control': { $ref: '#/components/headers/Cache-Control-No-Store' }, ...requestIdHeaders };
/**
 * The statuses an operation answers with a problem, and `default` for the rest that any route
 * may send: 500 (a bug), 408 (a request too slow to arrive), 431 (headers too large) and 503
 * (overloaded, the database unreachable, the server shutting down), each application/problem+json.
 */
export const errorResponses = (statuses: number[], problem: { $ref: string } = problemRef) => ({
  ...Object.fromEntries(statuses.map((status) => [String(status), problemRefByStatus[status] ?? problem])),
  default: problem,
});

/** The Cache-Control of an answer a bearer token was needed for (app.ts authenticatedCacheControl), by reference. */
export const privateCacheControlHeaders = { 'Cache-Control': { $ref: '#/components/headers/Cache-Control-Private' } };

export const pathParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string', maxLength: limits.referenceLengthMax } };
/** A unit is named by its serial (which may hold '/', sent as %2F), not by an id. */
export const serialPathParameter = { ...pathParameter, description: 'the serial number', schema: jsonSchemaOf(serialSchema) };
export const seqPathParameter = { name: 'seq', in: 'path', required: true, description: "the event's sequence number (= leaf index)", schema: { type: 'integer', minimum: 0 } };
export const idempotencyParameter = {
  name: 'Idempotency-Key', in: 'header', required: true,
  description: `A new random value per request, the same on retries. The same key with a different body is refused (422). Keys are kept in plain text, for good: one that starts with ${tokenSecretPrefix}, as a token's secret does, is refused (400, rule idempotency-key-secret) before the body is read, without being quoted, and nothing is stored; if it was a secret, revoke its token.`,
  schema: { type: 'string', minLength: 1, maxLength: limits.idempotencyKeyLengthMax, pattern: `^(?!${tokenSecretPrefix})[\\x21-\\x7E]+$` },
};

/** A problem answer whose refusal, made by the ledger, is remembered under the Idempotency-Key. */
export const replayableProblem = {
  description: 'A problem (RFC 9457). A refusal by the ledger is remembered under the Idempotency-Key: a retry gets it again, with Idempotent-Replayed: true.',
  headers: { ...problemHeaders, 'Idempotent-Replayed': replayedHeaderRef },
  content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } },
};

/** Problem: the RFC 9457 body every refusal and error is answered with, and the status of each code. */
function problemSchema(): JsonSchema {
  return {
    type: 'object',
    description: 'RFC 9457 problem details.',
    properties: {
      type: { type: 'string', format: 'uri' },
      title: { type: 'string' },
      status: { type: 'integer' },
      detail: { type: 'string' },
      code: { type: 'string', enum: [...errorCodes, ...httpOnlyCodes, 'internal'] },
      rule: { type: 'string', description: 'The rule that refused the request, e.g. invariant-2.' },
      details: { type: 'object', description: 'The numbers behind the refusal.' },
      instance: { type: 'string' },
    },
    required: ['type', 'title', 'status', 'detail', 'code'],
    'x-status-by-code': Object.fromEntries(Object.entries(problemCodes).map(([code, rule]) => [code, rule.status])),
  };
}

/** The problem answers operations name by reference, each with the headers its status carries. */
function problemResponses(): Record<string, unknown> {
  return {
    Problem: { description: 'A problem (RFC 9457)', headers: problemHeaders, content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } } },
    Unauthorized: {
      description: 'A problem (RFC 9457), code unauthenticated: no bearer token, or one that is not valid (unknown, revoked).',
      headers: { ...problemHeaders, 'WWW-Authenticate': { description: 'Bearer realm="chipledger" (RFC 6750), with error="invalid_token" when a bearer token was sent and refused (RFC 6750 section 3.1).', required: true, schema: { type: 'string', enum: ['Bearer realm="chipledger"', 'Bearer realm="chipledger", error="invalid_token"'] } } },
      content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } },
    },
    ReplayableProblem: replayableProblem,
    UnsupportedMediaType: {
      description: 'A problem (RFC 9457), code unsupported_media_type (rule content-type): the body is in a media type, charset, content coding or transfer coding the route does not read. details.accepts and Accept-Post name the media type it reads; a refused content coding also gets Accept-Encoding: identity (RFC 7694): send the body uncompressed.',
      headers: {
        ...problemHeaders,
        'Accept-Post': { description: 'The media type the route reads: application/json (text/plain on POST /v1/log/cosignatures).', required: true, schema: { type: 'string' } },
        'Accept-Encoding': { description: 'identity, when the content coding was refused.', schema: { type: 'string', enum: ['identity'] } },
      },
      content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } },
    },
    TooManyRequests: {
      description: 'A problem (RFC 9457), code too_many_requests (RFC 6585): the request bodies the organisation\'s requests hold at once would pass its share of the server\'s room (the body was not read), or the serials its commands hold in the ledger\'s queue would pass its share (rule sequencer-queue-serials-organisation). Nothing was done: send the same request again, with the same Idempotency-Key, after Retry-After.',
      headers: { ...problemHeaders, 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
      content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } },
    },
    Unavailable: {
      description: 'A problem (RFC 9457), code unavailable or overloaded: the server is overloaded or shutting down, or its database is not answering. Nothing was committed, or the outcome is unknown: send the same request again, with the same Idempotency-Key, after Retry-After.',
      headers: { ...problemHeaders, 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
      content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } },
    },
  };
}

/** The headers the answers name by reference. */
function componentHeaders(): Record<string, unknown> {
  return {
    'Cache-Control-No-Store': {
      description: 'no-store: no cache keeps a problem (a tile not there yet will be).',
      required: true,
      schema: { type: 'string', enum: ['no-store'] },
    },
    'Cache-Control-Private': {
      description: 'private, no-store: what a token was shown is kept by no cache, so that a cache keyed by URL alone never serves it to another organisation.',
      required: true,
      schema: { type: 'string', enum: ['private, no-store'] },
    },
    'Retry-After': {
      description: 'Seconds to wait before sending the request again (RFC 9110 section 10.2.3).',
      required: true,
      schema: { type: 'integer', minimum: 1 },
    },
    'X-Request-Id': {
      description: 'The id of this request (a random UUID, never one a client sent), on every answer the server routes: the id its log lines carry, and the one a 500 names in its detail. Quote it when reporting a failure. The refusals of malformed HTTP (400, 408, 431 before any request exists) carry none; a 417 carries one of its own, under which nothing is logged.',
      schema: { type: 'string', format: 'uuid' },
    },
    'Idempotent-Replayed': {
      description: 'true when this is the answer remembered under the request\'s Idempotency-Key from an earlier request: nothing was done again. Absent on a first answer.',
      schema: { type: 'string', enum: ['true'] },
    },
  };
}

/**
 * The document's components: the bearer scheme, the resources' and events' schemas and
 * Problem, and the problem answers and headers the operations name by reference.
 */
export function documentComponents(): Record<string, unknown> {
  return {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token secret clt_<tokenId>_<random>, bound to one organisation and role.' } },
    schemas: { ...resourceSchemas(), Problem: problemSchema() },
    responses: problemResponses(),
    headers: componentHeaders(),
  };
}
