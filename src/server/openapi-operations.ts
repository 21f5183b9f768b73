/**
 * The OpenAPI document's operations: one per command route and per query route, from the
 * same tables the routes are registered from, and the transparency log's public endpoints.
 */
import { commandRoles } from '../ledger/permissions.ts';
import { commandSchemas } from '../ledger/schemas.ts';
import { commandRoutes, loaderOnlyFields, locationOf } from './commands.ts';
import {
  errorResponses, idempotencyParameter, jsonSchemaOf, pathParameter, privateCacheControlHeaders, replayableProblem, replayableProblemRef, replayedHeaderRef, requestIdHeaders, resourceRef,
  serialPathParameter, seqPathParameter, type JsonSchema,
} from './openapi-components.ts';
import { queryRoutes } from './queries.ts';
import { commandAnswers } from './wire.ts';

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

export function commandOperation(route: (typeof commandRoutes)[number]) {
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
          ...privateCacheControlHeaders,
          'Idempotent-Replayed': replayedHeaderRef,
          ...(route.locatedBy === undefined ? {} : { Location: { description: `Where GET reads what was made: ${route.path}/{${route.locatedBy}}, given relative to the request's URL (${decodeURIComponent(locationOf(route, `{${route.locatedBy}}`))}), so that it resolves under any path prefix the API is served at.`, required: true, schema: { type: 'string' } } }),
        },
        content: { 'application/json': { schema: jsonSchemaOf(commandAnswers[route.kind], 'output') } },
      },
      ...errorResponses([400, 401, 403, 404, 409, 413, 415, 422, 429, 503], replayableProblemRef),
      ...Object.fromEntries(Object.entries(notes?.problems ?? {}).map(([status, description]) => [status, { ...replayableProblem, description }])),
    },
  };
}

export function queryOperation(route: (typeof queryRoutes)[number]) {
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
    responses: { '200': { description: 'OK', headers: privateCacheControlHeaders, content: { 'application/json': { schema } } }, ...errorResponses([400, 401, 404, 503]) },
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

/** The transparency log's public endpoints (src/server/log-routes.ts), in the standard formats. */
export function addLogOperations(add: (path: string, method: string, operation: unknown) => void, open: { security: unknown[] }): void {
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
  add('/v1/log/cosignatures', 'post', { ...open, operationId: 'logCosign', tags: ['log'], summary: "A witness posts one of our checkpoints with its cosignature (C2SP tlog-cosignature)", requestBody: { required: true, content: { 'text/plain': { schema: { type: 'string' } } } }, responses: { '201': { ...json('CosignaturesStored'), description: 'stored' }, ...errorResponses([400, 403, 404, 413, 415, 503]) } });
}

/**
 * A GET's HEAD twin (RFC 9110 §9.3.2; fastify serves one for every GET route): the same
 * parameters and answers, their statuses, headers and content types, without the body.
 */
export function headOperationOf(get: { operationId: string; summary?: string } & Record<string, unknown>): Record<string, unknown> {
  return { ...get, operationId: `${get.operationId}Head`, summary: `${get.summary ?? 'GET'}: the answer's status and headers, without its body` };
}

/** An operation whose answers written out here (not the problems by reference, which have it) say X-Request-Id. */
export function withRequestIdHeader(operation: { responses: Record<string, Record<string, unknown>> }): void {
  operation.responses = Object.fromEntries(Object.entries(operation.responses).map(([status, response]) =>
    [status, '$ref' in response ? response : { ...response, headers: { ...(response.headers as Record<string, unknown> | undefined), ...requestIdHeaders } }]));
}
