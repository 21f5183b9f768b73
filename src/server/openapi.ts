/**
 * The OpenAPI 3.1 document, generated from the same tables the routes are registered
 * from (commandRoutes, queryRoutes), the ledger's zod schemas for what comes in and
 * src/server/wire.ts for what goes out, so it cannot drift from what the server does.
 * /v1/docs renders it as one self-contained HTML page (openapi-docs-page.ts); its shared
 * components are in openapi-components.ts, its operations in openapi-operations.ts.
 */
import { commandRoutes } from './commands.ts';
import { documentComponents, errorResponses, privateCacheControlHeaders, seqPathParameter } from './openapi-components.ts';
import { addLogOperations, commandOperation, headOperationOf, queryOperation, withRequestIdHeader } from './openapi-operations.ts';
import { queryRoutes } from './queries.ts';

/** '/v1/licences/:id' -> '/v1/licences/{id}' */
const openApiPath = (path: string): string => path.replace(/:([A-Za-z]+)/g, '{$1}');

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths = documentPaths();
  return {
    openapi: '3.1.0',
    info: {
      title: 'chipledger API',
      version: '1',
      description: 'System of record for export-controlled AI accelerators: licences, allocations, shipments, units, sites and the event log. Every GET also answers HEAD. A method a path does not take is answered 405 (method_not_allowed) with an Allow header. The transparency log\'s reads (GET and HEAD under /v1/log/) are open to web pages on any origin (CORS: Access-Control-Allow-Origin: *, no credentials; a preflight is answered 204, allowing the Authorization header that entry bundles need).',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    // Relative to the document's own URL, …/v1/openapi.json (OpenAPI 3.1 §4.8.5): the API's
    // base under whatever path prefix a proxy serves it at; '/' would leave the prefix.
    servers: [{ url: '..' }],
    security: [{ bearer: [] }],
    paths,
    components: documentComponents(),
  };
}

/**
 * Every operation by its path: the commands', the queries', the public routes' and the log's,
 * each answer saying X-Request-Id, and every GET's HEAD twin beside it.
 */
function documentPaths(): Record<string, Record<string, unknown>> {
  const paths: Record<string, Record<string, unknown>> = {};
  const add = (path: string, method: string, operation: unknown) => {
    (paths[openApiPath(path)] ??= {})[method] = operation;
  };
  for (const route of commandRoutes) add(route.path, 'post', commandOperation(route));
  for (const route of queryRoutes) add(route.path, 'get', queryOperation(route));
  const open = { security: [] as unknown[] };
  add('/healthz', 'get', { ...open, operationId: 'health', summary: 'Readiness check: the database answers, migrated by no newer chipledger, and this server\'s clock and log key are current; 503 otherwise, the database away included, so not a liveness probe to restart on', responses: { '200': { description: 'OK', content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } }, required: ['status'], additionalProperties: false } } } }, ...errorResponses([503]) } });
  add('/metrics', 'get', { ...open, operationId: 'metrics', summary: 'Prometheus metrics', responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errorResponses([]) } });
  add('/v1/openapi.json', 'get', { ...open, operationId: 'openApi', summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, ...errorResponses([400]) } });
  add('/v1/docs', 'get', { ...open, operationId: 'docs', summary: 'Human-readable API reference', responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } }, ...errorResponses([400]) } });
  addLogOperations(add, open);
  add('/v1/events/{seq}/serials', 'get', {
    operationId: 'eventSerials', tags: ['events'],
    summary: 'The serial list an event records by its digest (input.serialsSha256): one line per entry, "serial" or "serial gpuUuid", sorted, each ending in a newline; its SHA-256 is the digest',
    parameters: [seqPathParameter],
    responses: { '200': { description: 'OK', headers: privateCacheControlHeaders, content: { 'text/plain': { schema: { type: 'string' } } } }, ...errorResponses([400, 401, 404, 503]) },
  });
  for (const methods of Object.values(paths)) {
    for (const operation of Object.values(methods)) withRequestIdHeader(operation as { responses: Record<string, Record<string, unknown>> });
    if (methods.get !== undefined) methods.head = headOperationOf(methods.get as Parameters<typeof headOperationOf>[0]);
  }
  return paths;
}
