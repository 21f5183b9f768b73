/**
 * The OpenAPI 3.1 document, generated from the same tables the routes are registered
 * from (commandRoutes, queryRoutes), the ledger's zod schemas for what comes in and
 * src/server/wire.ts for what goes out, so it cannot drift from what the server does.
 * /v1/docs renders it as one self-contained HTML page.
 */
import { z } from 'zod';
import { commandRoles } from '../ledger/permissions.ts';
import { commandSchemas, serial as serialSchema, tokenSecretPrefix } from '../ledger/schemas.ts';
import { commandRoutes, loaderOnlyFields } from './commands.ts';
import { errorCodes } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { httpOnlyCodes, problemCodes, problemContentType } from './problem.ts';
import { queryRoutes } from './queries.ts';
import { commandAnswers, resources } from './wire.ts';
import { eventBodies } from './wire-events.ts';

type JsonSchema = Record<string, unknown>;

/** A zod schema as JSON Schema: as a client sends it (input) or as the server answers (output). */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'input'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

const resourceRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });

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

/** The body schema without the fields a client does not send (the path's id, loader-only fields). */
function withoutFields(schema: JsonSchema, fields: ReadonlyArray<string | undefined>): JsonSchema {
  const properties = { ...(schema.properties as Record<string, unknown>) };
  for (const field of fields) if (field !== undefined) delete properties[field];
  const required = ((schema.required as string[] | undefined) ?? []).filter((name) => name in properties);
  return { ...schema, properties, required };
}

function bodyOf(route: (typeof commandRoutes)[number]) {
  const schema = withoutFields(jsonSchemaOf(commandSchemas[route.kind]), [route.idField, ...loaderOnlyFields]);
  // A body is required when it has required fields; a sweep or a transition may send none.
  return { required: (schema.required as string[]).length > 0, content: { 'application/json': { schema } } };
}

/** '/v1/licences/:id' -> '/v1/licences/{id}' */
const openApiPath = (path: string): string => path.replace(/:([A-Za-z]+)/g, '{$1}');

const problemRef = { $ref: '#/components/responses/Problem' };
/** A command's problem: a refusal remembered under its Idempotency-Key comes again, marked. */
const replayableProblemRef = { $ref: '#/components/responses/ReplayableProblem' };
const replayedHeaderRef = { $ref: '#/components/headers/Idempotent-Replayed' };
/** 503: nothing committed or the outcome unknown (never remembered under an Idempotency-Key); Retry-After says when to come back. */
const unavailableRef = { $ref: '#/components/responses/Unavailable' };
/** 401: no token, or one that is not (or no longer) valid; WWW-Authenticate names the scheme. */
const unauthorizedRef = { $ref: '#/components/responses/Unauthorized' };
/** Every answer fastify gives carries the request's id (app.ts requestIdHeader). */
const requestIdHeaders = { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' } };
const problemHeaders = { 'Cache-Control': { $ref: '#/components/headers/Cache-Control-No-Store' }, ...requestIdHeaders };
/**
 * The statuses an operation answers with a problem, and `default` for the rest that any route
 * may send: 500 (a bug), 408 (a request too slow to arrive), 431 (headers too large) and 503
 * (overloaded, the database unreachable, the server shutting down), each application/problem+json.
 */
const errorResponses = (statuses: number[], problem: { $ref: string } = problemRef) => ({
  ...Object.fromEntries(statuses.map((status) => [String(status), status === 503 ? unavailableRef : status === 401 ? unauthorizedRef : problem])),
  default: problem,
});

const pathParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string', maxLength: limits.referenceLengthMax } };
/** A unit is named by its serial (which may hold '/', sent as %2F), not by an id. */
const serialPathParameter = { ...pathParameter, description: 'the serial number', schema: jsonSchemaOf(serialSchema) };
const seqPathParameter = { name: 'seq', in: 'path', required: true, description: "the event's sequence number (= leaf index)", schema: { type: 'integer', minimum: 0 } };
const idempotencyParameter = {
  name: 'Idempotency-Key', in: 'header', required: true,
  description: `A new random value per request, the same on retries. The same key with a different body is refused (422). Keys are kept in plain text, for good: one that starts with ${tokenSecretPrefix}, as a token's secret does, is refused (400, rule idempotency-key-secret) before the body is read, without being quoted, and nothing is stored; if it was a secret, revoke its token.`,
  schema: { type: 'string', minLength: 1, maxLength: limits.idempotencyKeyLengthMax, pattern: `^(?!${tokenSecretPrefix})[\\x21-\\x7E]+$` },
};

/** A problem answer whose refusal, made by the ledger, is remembered under the Idempotency-Key. */
const replayableProblem = {
  description: 'A problem (RFC 9457). A refusal by the ledger is remembered under the Idempotency-Key: a retry gets it again, with Idempotent-Replayed: true.',
  headers: { ...problemHeaders, 'Idempotent-Replayed': replayedHeaderRef },
  content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } },
};

/**
 * What the document says of an answer where a command's differs from the others'. token.create:
 * the secret is never stored (ledger/idempotency.ts toStored), so a retry cannot be given the
 * first 201 again; it is told which token the first request made, so that the caller can
 * revoke it if that answer was lost.
 */
const answerNotes: Partial<Record<(typeof commandRoutes)[number]['kind'], { accepted: string; problems: Record<string, string> }>> = {
  'token.create': {
    accepted: 'Accepted: the ledger committed it; the secret is in this answer and nowhere else. A retry with the same Idempotency-Key never gets this answer again: it is answered 409 (see there).',
    problems: {
      '409': 'A problem (RFC 9457), code conflict: the organisation cannot hold a token of that role (rule token-role); or, marked Idempotent-Replayed: true, a retry of a request that made a token (rule invariant-6): the secret was shown once and is not kept, and the detail names the token the first request made (token TOK-12 was made by the first request with this idempotency key). If that first answer was lost, revoke that token (POST /v1/tokens/{id}/revoke) and create another with a new Idempotency-Key.',
    },
  },
};

function commandOperation(route: (typeof commandRoutes)[number]) {
  const roles = commandRoles[route.kind];
  const notes = answerNotes[route.kind];
  return {
    operationId: route.kind.replace(/[._]([a-z])/g, (_match, letter: string) => letter.toUpperCase()),
    summary: route.summary,
    description: `Ledger command \`${route.kind}\`. Roles: ${roles.join(', ')}.`,
    tags: [route.path.split('/')[2]],
    'x-command': route.kind,
    'x-roles': roles,
    parameters: [...(route.path.includes(':id') ? [pathParameter] : []), idempotencyParameter],
    requestBody: bodyOf(route),
    responses: {
      [route.creates ? '201' : '200']: {
        description: notes?.accepted ?? 'Accepted: the ledger committed it. A replayed answer carries Idempotent-Replayed: true.',
        headers: {
          'Idempotent-Replayed': replayedHeaderRef,
          ...(route.locatedBy === undefined ? {} : { Location: { description: `Where GET reads what was made: ${route.path}/{${route.locatedBy}}.`, required: true, schema: { type: 'string' } } }),
        },
        content: { 'application/json': { schema: jsonSchemaOf(commandAnswers[route.kind], 'output') } },
      },
      ...errorResponses([400, 401, 403, 404, 409, 413, 422, 503], replayableProblemRef),
      ...Object.fromEntries(Object.entries(notes?.problems ?? {}).map(([status, description]) => [status, { ...replayableProblem, description }])),
    },
  };
}

function queryOperation(route: (typeof queryRoutes)[number]) {
  const query = jsonSchemaOf(route.query);
  const properties = (query.properties ?? {}) as Record<string, JsonSchema>;
  const parameters = [
    ...(route.path.includes(':id') ? [route.path === '/v1/units/:id' ? serialPathParameter : pathParameter] : []),
    ...(route.path.includes(':seq') ? [seqPathParameter] : []),
    ...Object.entries(properties).map(([name, schema]) => ({ name, in: 'query', required: false, schema })),
  ];
  const item = resourceRef(route.item);
  const schema = route.list
    ? {
      type: 'object',
      properties: { items: { type: 'array', items: item }, nextCursor: { type: ['string', 'null'], description: nextCursorDescription(route) } },
      required: ['items', 'nextCursor'],
      additionalProperties: false,
    }
    : item;
  return {
    operationId: `get${route.path.replace(/\/v1|:id|:seq/g, '').split(/[/-]/).filter(Boolean).map((part) => part[0]!.toUpperCase() + part.slice(1)).join('')}${route.path.endsWith(':id') ? 'ById' : ''}${route.path.endsWith(':seq') ? 'BySeq' : ''}`,
    summary: route.summary,
    tags: [route.path.split('/')[2]],
    parameters,
    responses: { '200': { description: 'OK', content: { 'application/json': { schema } } }, ...errorResponses([400, 401, 404, 503]) },
  };
}

/**
 * What a list's nextCursor says: how its pages follow one another (the route's order). Keyset
 * pages hold no snapshot: a client walking a list while it changes needs to know what a walk
 * can and cannot show.
 */
function nextCursorDescription(route: (typeof queryRoutes)[number]): string {
  const order = route.order;
  if (order === undefined) throw new Error(`the list ${route.path} declares no order for its document (queries.ts)`);
  const filters = order.filtersThatChange.map((name) => `?${name}=`).join(' or ');
  const fields = order.filtersThatChange.length === 1 ? 'a field that can change' : 'fields that can change';
  const missed = filters === '' ? '' : ` A walk under ${filters} (${fields}) can miss a row whose field changes during the walk: one that leaves the filter and comes back between two pages.`;
  return `Pass as ?cursor= for the next page; null on the last page. Items come ${order.by}; a row's key never changes, so a walk through the pages shows each row at most once.${missed}`;
}

/** The lists whose filters a row's changes move it in or out of, as the docs page names them: /v1/units?siteId=. */
function filtersThatChange(): string[] {
  return queryRoutes.flatMap((route) => (route.order?.filtersThatChange ?? []).map((name) => `${route.path}?${name}=`));
}

/** The transparency log's public endpoints (src/server/log-routes.ts), in the standard formats. */
function addLogOperations(add: (path: string, method: string, operation: unknown) => void, open: { security: unknown[] }): void {
  const text = (description: string) => ({ description, content: { 'text/plain': { schema: { type: 'string' } } } });
  const bytes = (description: string) => ({ description, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } });
  const integer = (name: string, description: string) => ({ name, in: 'query', required: true, description, schema: { type: 'integer', minimum: 0 } });
  const json = (name: string) => ({ description: 'OK', content: { 'application/json': { schema: resourceRef(name) } } });
  // 503: the database did not answer (as on every route that reads it).
  const errors = errorResponses([400, 404, 503]);
  add('/v1/log/key', 'get', { ...open, operationId: 'logKey', tags: ['log'], summary: "The log's verifier key (C2SP signed-note format name+hexid+base64)", responses: { '200': text('one line'), ...errors } });
  add('/v1/log/keys', 'get', { ...open, operationId: 'logKeys', tags: ['log'], summary: 'Every key the log used, each new one with the checkpoint that announced it', responses: { '200': json('LogKeys'), ...errorResponses([400, 503]) } });
  add('/v1/log/checkpoint', 'get', { ...open, operationId: 'logCheckpoint', tags: ['log'], summary: 'The newest C2SP tlog-checkpoint as a signed note, with witness cosignatures', responses: { '200': { ...text('signed note'), headers: { 'Cache-Control': { description: 'no-cache: a newer checkpoint comes every second while the log grows.', required: true, schema: { type: 'string', enum: ['no-cache'] } } } }, ...errors } });
  add('/v1/log/tile/{path}', 'get', {
    // Hash tiles need no token; entry bundles need one (an authority's or an auditor's).
    security: [{}, { bearer: [] }], operationId: 'logTile', tags: ['log'],
    summary: 'C2SP tlog-tiles: hash tiles <L>/<N>[.p/<W>] (public) and entry bundles entries/<N>[.p/<W>] (authorities and auditors, bearer token)',
    parameters: [{
      name: 'path', in: 'path', required: true,
      // OpenAPI has no path parameter that spans segments; this one does, so say how to send it.
      description: 'The rest of the path, several segments, sent as they are: e.g. 0/x001/234 or entries/000.p/17. Only the canonical C2SP spelling is served; a %2F is not a slash (one URL per tile, so caches are not split).',
      schema: { type: 'string', pattern: '^(?:entries|[0-9]{1,2})/(?:x[0-9]{3}/)*[0-9]{3}(?:\\.p/[0-9]{1,3})?$' },
    }],
    responses: {
      '200': { ...bytes('tile or entry bundle'), headers: { 'Cache-Control': { description: 'A tile never changes once served at its width: public, max-age=31536000, immutable (an entry bundle: private, the same otherwise, with Vary: Accept-Encoding).', required: true, schema: { type: 'string' } } } },
      ...errorResponses([400, 401, 403, 404, 503]),
    },
  });
  add('/v1/log/proof/inclusion', 'get', { ...open, operationId: 'logInclusionProof', tags: ['log'], summary: 'RFC 9162 inclusion proof', parameters: [integer('index', 'leaf index (= event seq)'), integer('size', 'tree size')], responses: { '200': json('InclusionProof'), ...errors } });
  add('/v1/log/proof/consistency', 'get', { ...open, operationId: 'logConsistencyProof', tags: ['log'], summary: 'RFC 9162 consistency proof', parameters: [integer('from', 'old tree size'), integer('to', 'new tree size')], responses: { '200': json('ConsistencyProof'), ...errors } });
  add('/v1/log/events/{seq}/proof', 'get', { ...open, operationId: 'logEventProof', tags: ['log'], summary: 'C2SP tlog-proof bundle for one event, verifiable offline', parameters: [seqPathParameter, { name: 'cosignatures', in: 'query', required: false, description: 'the newest checkpoint covering the event that this many configured witnesses cosigned (default 0: the newest checkpoint); 404 while none has', schema: { type: 'integer', minimum: 0, maximum: 999, default: 0 } }], responses: { '200': text('c2sp.org/tlog-proof@v1'), ...errors } });
  add('/v1/log/cosignatures', 'post', { ...open, operationId: 'logCosign', tags: ['log'], summary: "A witness posts one of our checkpoints with its cosignature (C2SP tlog-cosignature)", requestBody: { required: true, content: { 'text/plain': { schema: { type: 'string' } } } }, responses: { '201': { ...json('CosignaturesStored'), description: 'stored' }, ...errorResponses([400, 403, 404, 413, 503]) } });
}

/**
 * A GET's HEAD twin (RFC 9110 §9.3.2; fastify serves one for every GET route): the same
 * parameters and answers, their statuses, headers and content types, without the body.
 */
function headOperationOf(get: { operationId: string; summary?: string } & Record<string, unknown>): Record<string, unknown> {
  return { ...get, operationId: `${get.operationId}Head`, summary: `${get.summary ?? 'GET'}: the answer's status and headers, without its body` };
}

/** An operation whose answers written out here (not the problems by reference, which have it) say X-Request-Id. */
function withRequestIdHeader(operation: { responses: Record<string, Record<string, unknown>> }): void {
  operation.responses = Object.fromEntries(Object.entries(operation.responses).map(([status, response]) =>
    [status, '$ref' in response ? response : { ...response, headers: { ...(response.headers as Record<string, unknown> | undefined), ...requestIdHeaders } }]));
}

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const add = (path: string, method: string, operation: unknown) => {
    (paths[openApiPath(path)] ??= {})[method] = operation;
  };
  for (const route of commandRoutes) add(route.path, 'post', commandOperation(route));
  for (const route of queryRoutes) add(route.path, 'get', queryOperation(route));
  const open = { security: [] as unknown[] };
  add('/healthz', 'get', { ...open, operationId: 'health', summary: 'Readiness check: the database answers, migrated by no newer chipledger, and this server\'s clock and log key are current; 503 otherwise, the database away included, so not a liveness probe to restart on', responses: { '200': { description: 'OK', content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } }, required: ['status'], additionalProperties: false } } } }, ...errorResponses([503]) } });
  add('/metrics', 'get', { ...open, operationId: 'metrics', summary: 'Prometheus metrics', responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errorResponses([]) } });
  add('/v1/openapi.json', 'get', { ...open, operationId: 'openApi', summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, ...errorResponses([]) } });
  add('/v1/docs', 'get', { ...open, operationId: 'docs', summary: 'Human-readable API reference', responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } }, ...errorResponses([]) } });
  addLogOperations(add, open);
  add('/v1/events/{seq}/serials', 'get', {
    operationId: 'eventSerials', tags: ['events'],
    summary: 'The serial list an event records by its digest (input.serialsSha256): one line per entry, "serial" or "serial gpuUuid", sorted, each ending in a newline; its SHA-256 is the digest',
    parameters: [seqPathParameter],
    responses: { '200': { description: 'OK', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errorResponses([400, 401, 404, 503]) },
  });
  for (const methods of Object.values(paths)) {
    for (const operation of Object.values(methods)) withRequestIdHeader(operation as { responses: Record<string, Record<string, unknown>> });
    if (methods.get !== undefined) methods.head = headOperationOf(methods.get as Parameters<typeof headOperationOf>[0]);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'chipledger API',
      version: '1',
      description: 'System of record for export-controlled AI accelerators: licences, allocations, shipments, units, sites and the event log. Every GET also answers HEAD. A method a path does not take is answered 405 (method_not_allowed) with an Allow header.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token secret clt_<tokenId>_<random>, bound to one organisation and role.' } },
      schemas: {
        ...resourceSchemas(),
        Problem: {
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
        },
      },
      responses: {
        Problem: { description: 'A problem (RFC 9457)', headers: problemHeaders, content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } } },
        Unauthorized: {
          description: 'A problem (RFC 9457), code unauthenticated: no bearer token, or one that is not valid (unknown, revoked).',
          headers: { ...problemHeaders, 'WWW-Authenticate': { description: 'Bearer realm="chipledger" (RFC 6750)', required: true, schema: { type: 'string' } } },
          content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } },
        },
        ReplayableProblem: replayableProblem,
        Unavailable: {
          description: 'A problem (RFC 9457), code unavailable or overloaded: the server is overloaded or shutting down, or its database is not answering. Nothing was committed, or the outcome is unknown: send the same request again, with the same Idempotency-Key, after Retry-After.',
          headers: { ...problemHeaders, 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
          content: { [problemContentType]: { schema: { $ref: '#/components/schemas/Problem' } } },
        },
      },
      headers: {
        'Cache-Control-No-Store': {
          description: 'no-store: no cache keeps a problem (a tile not there yet will be).',
          required: true,
          schema: { type: 'string', enum: ['no-store'] },
        },
        'Retry-After': {
          description: 'Seconds to wait before sending the request again (RFC 9110 section 10.2.3).',
          required: true,
          schema: { type: 'integer', minimum: 1 },
        },
        'X-Request-Id': {
          description: 'The id of this request (a random UUID, never one a client sent), on every answer the server routes: the id its log lines carry, and the one a 500 names in its detail. Quote it when reporting a failure. The refusals of malformed HTTP (400, 408, 417, 431 before any request exists) carry none, and nothing is logged of them.',
          schema: { type: 'string', format: 'uuid' },
        },
        'Idempotent-Replayed': {
          description: 'true when this is the answer remembered under the request\'s Idempotency-Key from an earlier request: nothing was done again. Absent on a first answer.',
          schema: { type: 'string', enum: ['true'] },
        },
      },
    },
  };
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);

/**
 * Named schemas the docs page writes out once, in a section of their own, rather than in
 * every answer that holds them: an event's body is one schema per kind (large when written
 * out), and more than one operation answers events.
 */
const docsPageSections: Readonly<Record<string, { heading: string; anchor: string }>> = {
  EventBody: { heading: 'Event bodies', anchor: 'event-bodies' },
};

/** A schema with every named schema written out in place (those of docsPageSections: a pointer to their section). */
function writtenOut(schema: unknown, schemas: Record<string, unknown>): unknown {
  if (Array.isArray(schema)) return schema.map((item) => writtenOut(item, schemas));
  if (schema === null || typeof schema !== 'object') return schema;
  const ref = (schema as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
    const name = ref.slice('#/components/schemas/'.length);
    const { $ref: _ref, ...beside } = schema as Record<string, unknown>;
    const section = docsPageSections[name];
    if (section !== undefined) return { ...beside, title: name, description: `${String(beside.description ?? '')} Written out below, under ${section.heading}.`.trim() };
    return writtenOut({ ...(schemas[name] as Record<string, unknown>), ...beside }, schemas);
  }
  return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, writtenOut(value, schemas)]));
}

/** An operation's JSON answer on success, with named schemas written out in place. */
function answerSchemaOf(document: Record<string, unknown>, operation: { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }): unknown {
  const success = Object.entries(operation.responses ?? {}).find(([status]) => status.startsWith('2'))?.[1];
  const schema = success?.content?.['application/json']?.schema;
  if (schema === undefined) return undefined;
  return writtenOut(schema, (document.components as { schemas: Record<string, unknown> }).schemas);
}

/** The sections of docsPageSections: each a list of the schemas its oneOf names, written out. */
function docsSections(document: Record<string, unknown>): string {
  const schemas = (document.components as { schemas: Record<string, { description?: string; oneOf?: Array<{ $ref: string }> }> }).schemas;
  return Object.entries(docsPageSections).map(([name, section]) => {
    const items = (schemas[name]?.oneOf ?? []).map(({ $ref }) => {
      const part = $ref.slice('#/components/schemas/'.length);
      return `<details><summary><code>${escapeHtml(part)}</code></summary><pre>${escapeHtml(JSON.stringify(writtenOut(schemas[part], schemas), null, 2))}</pre></details>`;
    });
    return `<h2 id="${section.anchor}">${escapeHtml(section.heading)}</h2><p>${escapeHtml(schemas[name]?.description ?? '')}</p>\n${items.join('\n')}`;
  }).join('\n');
}

/** One page listing every operation, with what it takes and answers; no scripts, no external assets. */
export function renderDocsPage(document: Record<string, unknown>): string {
  const rows: string[] = [];
  for (const [path, methods] of Object.entries(document.paths as Record<string, Record<string, { summary?: string; 'x-roles'?: string[]; requestBody?: unknown; security?: unknown[] }>>)) {
    // A HEAD operation is its GET's twin: the page says so once, below.
    for (const [method, operation] of Object.entries(methods).filter(([name]) => name !== 'head')) {
      const security = operation.security as Array<Record<string, unknown>> | undefined;
      const roles = operation['x-roles'] ? operation['x-roles'].join(', ')
        : security?.length === 0 ? 'public'
          : security?.some((scheme) => Object.keys(scheme).length === 0) ? 'public; a token where the summary says'
            : 'any token (tenant-filtered)';
      const content = (operation.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined)?.content ?? {};
      const schema = content['application/json']?.schema ?? Object.values(content)[0]?.schema;
      const body = schema === undefined ? '' : `<details><summary>body</summary><pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre></details>`;
      const answer = answerSchemaOf(document, operation as { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> });
      const answered = answer === undefined ? '' : `<details><summary>answer</summary><pre>${escapeHtml(JSON.stringify(answer, null, 2))}</pre></details>`;
      rows.push(`<tr><td class="m ${method}">${method.toUpperCase()}</td><td><code>${escapeHtml(path)}</code>${body}${answered}</td><td>${escapeHtml(operation.summary ?? '')}</td><td>${escapeHtml(roles)}</td></tr>`);
    }
  }
  const info = document.info as { title: string; description: string };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(info.title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2330}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e6ec;padding:.4rem .6rem;text-align:left;vertical-align:top}
.m{font-weight:600;font-family:monospace}.get{color:#0a6b3d}.post{color:#1849a9}pre{background:#f5f6f8;padding:.5rem;overflow:auto;max-height:24rem}
</style></head><body>
<h1>${escapeHtml(info.title)}</h1><p>${escapeHtml(info.description)}</p>
<p>Authenticate with <code>Authorization: Bearer clt_…</code>. Every state-changing POST needs an <code>Idempotency-Key</code> header, except a witness's <code>POST /v1/log/cosignatures</code>: storing a cosignature again changes nothing.
A 503 (<code>unavailable</code> or <code>overloaded</code>) committed nothing or its outcome is unknown: send the same request again, with the same key, after its <code>Retry-After</code>.
Errors are <code>${problemContentType}</code> (RFC 9457) with a stable <code>code</code>. Lists take <code>?limit=</code> (at most ${limits.pageSizeMax}) and <code>?cursor=</code> and answer <code>{ items, nextCursor }</code>.
Each list is in a fixed order by a key that never changes (its answer's <code>nextCursor</code> says which), so a walk through its pages shows each row at most once;
pages are not a snapshot, and a walk under a filter on a field that can change (${filtersThatChange().map((filter) => `<code>${escapeHtml(filter)}</code>`).join(', ')}) can miss a row that leaves the filter and comes back between two pages.
Every GET also answers HEAD (status and headers, no body). The machine-readable document is <a href="/v1/openapi.json">/v1/openapi.json</a>.</p>
<table><thead><tr><th>method</th><th>path</th><th>what</th><th>who</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>
${docsSections(document)}
</body></html>
`;
}
