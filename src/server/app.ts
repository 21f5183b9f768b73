/**
 * The HTTP API: builds a fastify instance around a ledger and a pool; the caller listens
 * and closes (and owns the ledger and the pool).
 *
 * Every request goes: body limit and JSON parsing (UTF-8 and Unicode checked) → bearer
 * token (cached) → the route's pipeline (commands.ts, queries.ts) → presenters. Every
 * error, wherever it came from, leaves through the one error handler (error-handler.ts) as
 * problem+json.
 * Logging is quiet by default (warn): errors and slow requests, never secrets. Every answer
 * carries the request's id (X-Request-Id), the one its log lines carry.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type Logger } from 'pino';
import { DomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { withTimeout } from '../core/timeout.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Actor } from '../ledger/permissions.ts';
import type { Pool } from '../store/pool.ts';
import { withQueryTimeout } from '../store/query-timeout.ts';
import { listMigrations } from '../store/migrate.ts';
import { TokenVerifier } from './auth.ts';
import { BodyBudget } from './body-budget.ts';
import { ConnectionBounds } from './connections.ts';
import { parseJsonBody } from './body.ts';
import { commandRefusalBeforeBody, registerCommandRoutes } from './commands.ts';
import { clientErrorAnswerer, answerProtocolRequests, continueOnceAccepted, methodNotAllowedProblem, refuseOddRequest, RouteMethods, targetPath } from './http-edges.ts';
import { addPublicReadCors, answerPublicReadPreflight, isPublicReadPreflight } from './cors.ts';
import { DemoMark } from './demo-mark.ts';
import { registerClosing } from './closing.ts';
import { registerErrorHandler } from './error-handler.ts';
import { healthFault, readHealth } from './health.ts';
import { holdsDemo } from '../demo/load.ts';
import { HttpMetrics, lastSigningMetrics, logSeenMetrics } from './metrics.ts';
import { countedClientErrors, countProtocolAnswers, countWhenFinished, unmatchedRoute } from './metrics-edges.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { renderDocsPage } from './openapi-docs-page.ts';
import { docsPageContentSecurityPolicy, securityHeaders } from './security-headers.ts';
import { fromFrameworkError, internalProblem, problemOf, sendProblem, withoutRowValues } from './problem.ts';
import { registerQueryRoutes } from './queries.ts';
import { noQuery, readQueryString } from './query-string.ts';
import { registerLogRoutes } from './log-routes.ts';
import { registerEventSerialsRoute } from './event-serials.ts';
import { serverLoggerOptions } from './log-redaction.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, set by the bearer check on every /v1 route that needs one. */
    actor: Actor | null;
  }
}

export interface ServerOptions {
  ledger: Ledger;
  pool: Pool;
  /** A pino logger, or false for none; absent: pino at level 'warn' with secrets redacted. */
  logger?: Logger | false;
  /**
   * Serve demo data from the start: every response carries X-Chipledger-Demo: true and every
   * event is served as demo: true. Without it, the same from the first request that finds the
   * database holding the demo (asked at most once a second: demo-mark.ts).
   */
  demo?: boolean;
  /** Largest request body; defaults to limits.requestBodyBytesMax. */
  bodyLimitBytes?: number;
  /** Request bodies held at once; defaults to limits.requestBodiesInFlightBytesMax. */
  bodiesInFlightBytesMax?: number;
  /**
   * Of those, what one organisation's requests hold; defaults to
   * limits.requestBodiesInFlightPerOrganisationBytesMax, or the whole room if that is smaller.
   */
  bodiesInFlightPerOrganisationBytesMax?: number;
  /** Connections held open at once; defaults to limits.connectionsMax. */
  connectionsMax?: number;
  /** Of those, connections from one remote address; defaults to limits.connectionsPerAddressMax, or all of them if that is smaller. */
  connectionsPerAddressMax?: number;
  /** How long a request's headers may take, a new connection's first ones included; defaults to limits.requestHeadersTimeoutMs. */
  headersTimeoutMs?: number;
  /** Witness verifier keys whose cosignatures of our checkpoints are stored and served. */
  witnessKeys?: readonly string[];
  /** How long a request may take to arrive whole; defaults to limits.requestTimeoutMs. */
  requestTimeoutMs?: number;
  /** How long requests under way have to finish once the server closes; defaults to limits.closingGraceMsDefault. */
  closingGraceMs?: number;
}

/** The longest path parameter the router passes on: the longest id (serials are shorter). */
export const pathParameterLengthMax = Math.max(limits.referenceLengthMax, limits.serialLengthMax);

/** The header that marks every answer of a server whose database holds the demo. */
const demoHeader = 'x-chipledger-demo';

/**
 * The header that carries the request's id on every answer fastify gives, so that a client
 * can quote it and an operator find the log lines of that request (reqId).
 */
export const requestIdHeader = 'x-request-id';
/** The Cache-Control of every answer a bearer token was needed for (the log's entry bundles set their own). */
export const authenticatedCacheControl = 'private, no-store';

export function defaultLogger(): Logger {
  return pino(serverLoggerOptions('warn'));
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimitBytes ?? limits.requestBodyBytesMax;
  // Demo data is marked on every answer, refusals before any route and raw ones included. The
  // answerers outside the hooks read this one object at each answer, so a mark set later
  // (demoMark) reaches them as well.
  const serverHeaders: Record<string, string> = { ...securityHeaders, ...(options.demo === true ? { [demoHeader]: 'true' } : {}) };
  const demoPool = withQueryTimeout(options.pool, limits.demoCheckQueryTimeoutMs);
  const demoMark = new DemoMark({ marked: options.demo === true, holdsDemo: () => holdsDemo(demoPool), onMarked: () => (serverHeaders[demoHeader] = 'true') });
  const metrics = new HttpMetrics();
  const app = createFastify(options, bodyLimit, serverHeaders, metrics);
  const verifier = new TokenVerifier(options.pool);
  const bodiesInFlightBytesMax = options.bodiesInFlightBytesMax ?? limits.requestBodiesInFlightBytesMax;
  const bodies = new BodyBudget(bodiesInFlightBytesMax, options.bodiesInFlightPerOrganisationBytesMax ?? Math.min(limits.requestBodiesInFlightPerOrganisationBytesMax, bodiesInFlightBytesMax));
  const connectionsMax = options.connectionsMax ?? limits.connectionsMax;
  const connections = new ConnectionBounds(app.server, connectionsMax, options.connectionsPerAddressMax ?? Math.min(limits.connectionsPerAddressMax, connectionsMax));
  answerProtocolRequests(app.server, serverHeaders);
  countProtocolAnswers(metrics, app.server);
  const answerUnrouted = unroutedAnswerer(app);
  registerRequestHooks(app, serverHeaders, demoMark, answerUnrouted, options.closingGraceMs, bodyLimit);
  registerJsonBodies(app, bodyLimit);
  registerResponseMetrics(app, metrics);
  registerErrorHandler(app);
  app.setNotFoundHandler(answerUnrouted);

  registerPublicRoutes(app, options, metrics, verifier, bodies, connections);
  await registerLogRoutes(app, { ledger: options.ledger, pool: options.pool, verifier, witnessKeys: options.witnessKeys ?? [] });
  await registerTokenRoutes(app, options, verifier, bodies, demoMark, bodyLimit);
  return app;
}

/** The fastify instance with its options: body limit, request ids, time bounds, and the answers given before any hook runs. */
function createFastify(options: ServerOptions, bodyLimit: number, serverHeaders: Record<string, string>, metrics: HttpMetrics): FastifyInstance {
  const requestTimeoutMs = options.requestTimeoutMs ?? limits.requestTimeoutMs;
  // Node applies the shorter of the two to the headers and the longer to the whole request,
  // and refuses a headers bound above the request's.
  const headersTimeoutMs = Math.min(options.headersTimeoutMs ?? limits.requestHeadersTimeoutMs, requestTimeoutMs);
  const common = {
    // Requests that arrive while the server closes get our own 503 (closing.ts), a problem with
    // Retry-After; fastify's would be a JSON body of another shape.
    bodyLimit, logController: new LogController({ disableRequestLogging: true }), return503OnClosing: false,
    // A random UUID, not fastify's counter ("req-nz"), which starts again at every start and
    // repeats across servers: an id a client quotes finds one request in every server's logs.
    // A client's own X-Request-Id is not taken (requestIdHeader false): it could name another
    // client's request, or the same id twice, and the id the 500 quotes must find only this one.
    genReqId: () => randomUUID(), requestIdHeader: false as const,
    // A request not whole in time is answered 408 (clientErrorAnswerer) and its body's room
    // given back; so is a connection whose first request's headers have not come in time,
    // one that sends nothing included (Node counts those from the connection's opening). Node
    // looks for such requests every connectionsCheckingInterval: a tenth of the shorter bound
    // keeps each answer within 10% of its bound.
    requestTimeout: requestTimeoutMs,
    // A missing Host is refused by our first hook, as a problem; Node's own 400 has no body.
    http: {
      requireHostHeader: false, connectionsCheckingInterval: Math.max(1, Math.round(headersTimeoutMs / 10)),
      headersTimeout: headersTimeoutMs,
    },
    clientErrorHandler: countedClientErrors(metrics, clientErrorAnswerer(serverHeaders)),
    // A path parameter is an id or a serial: fastify's default (100) refused ids of 101 to
    // 128 characters that the schemas and the OpenAPI document accept.
    routerOptions: { maxParamLength: pathParameterLengthMax },
    // Errors the router raises before any route runs (a malformed percent-escape, a path
    // parameter too long) leave as problem+json like every other error.
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => {
      const refusal = fromFrameworkError(error);
      reply.headers(serverHeaders).header(requestIdHeader, request.id); // no hook runs before these, and none after: counted here
      addPublicReadCors(reply, request.method, targetPath(request.url));
      countWhenFinished(metrics, request.method, reply.raw, performance.now());
      if (refusal !== null) return sendProblem(reply, problemOf(refusal, request.url));
      request.log.error({ err: withoutRowValues(error), method: request.method }, 'unhandled error while routing a request');
      return sendProblem(reply, internalProblem(request.id, request.url));
    },
  };
  return (options.logger === false
    ? Fastify({ ...common, logger: false })
    : Fastify({ ...common, loggerInstance: options.logger ?? defaultLogger() })) as unknown as FastifyInstance;
}

type RouteAnswerer = (request: FastifyRequest, reply: FastifyReply) => FastifyReply;

/**
 * Records every route as it is added, and answers a request none takes: 404, or 405 with Allow
 * when the path takes other methods; a CORS preflight of a public read, 204 (cors.ts).
 */
function unroutedAnswerer(app: FastifyInstance): RouteAnswerer {
  const routeMethods = new RouteMethods();
  app.addHook('onRoute', (route) => routeMethods.add(route.method, route.url));
  return (request, reply) => {
    // The router matches an absolute-form target (http://host/v1/…) by its path: so does this.
    const path = targetPath(request.url);
    const allowed = routeMethods.allowed(routedPath(path));
    if (isPublicReadPreflight(request, path, allowed)) return answerPublicReadPreflight(reply);
    addPublicReadCors(reply, request.method, path);
    if (allowed.length === 0) return sendProblem(reply, problemOf(new DomainError('not_found', `there is no route ${request.method} ${path}`), request.url));
    return sendProblem(reply.header('allow', allowed.join(', ')), methodNotAllowedProblem(request.method, path, allowed, request.url));
  };
}

/**
 * The hooks every request passes before its route, in this order; then, before its body is read,
 * its 100 Continue. Those that never wait are callback hooks, not async ones: an async hook
 * costs a promise and a turn of the microtask queue on every request. Six of them are
 * callbacks since session 22 (these, closing.ts's, the token scope's onSend and the metrics'
 * onResponse): over HTTP seven of eight alternating pairs went to the change (docs/BENCHMARKS.md).
 */
function registerRequestHooks(app: FastifyInstance, serverHeaders: Record<string, string>, demoMark: DemoMark, answerUnrouted: RouteAnswerer, closingGraceMs: number | undefined, bodyLimit: number): void {
  // The first hook: every answer carries the server's headers and the request's id, the hooks'
  // refusals included.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(serverHeaders).header(requestIdHeader, request.id);
    done();
  });
  registerClosing(app, closingGraceMs);
  // The demo mark brought up to date, and set on this answer if it was just found. After the
  // closing check: a request that arrived before the close began is not refused for the
  // time it waited on the check.
  app.addHook('onRequest', (_request, reply, done) => {
    if (!demoMark.due()) return done();
    demoMark.refresh().then(() => {
      if (demoMark.demo) reply.headers(serverHeaders);
      done();
    }, done);
  });
  // A refusal it throws reaches the error handler as done(error) would: fastify's hook runner
  // catches what a callback hook throws.
  app.addHook('onRequest', (request, _reply, done) => {
    refuseOddRequest(request);
    done();
  });
  // A path or method no route takes is answered before its body is read: the not-found
  // route has no token check and no room among the bodies in flight, so an anonymous upload
  // to it would otherwise be read whole (and parsed) into memory, outside every bound.
  app.addHook('onRequest', (request, reply, done) => {
    // Answered here, the lifecycle ends without done(): fastify's way for a callback hook.
    if (request.is404) answerUnrouted(request, reply);
    else done();
  });
  // After every onRequest hook, the token scope's included (preParsing hooks run after all of them).
  app.addHook('preParsing', continueOnceAccepted(bodyLimit));
}

/** The caller's slot on every request, and JSON, the one body the /v1 routes read (UTF-8 and Unicode checked). */
function registerJsonBodies(app: FastifyInstance, bodyLimit: number): void {
  app.decorateRequest('actor', null);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

/** Each answer counted by route and status, and a slow one logged. */
function registerResponseMetrics(app: FastifyInstance, metrics: HttpMetrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const elapsedMs = reply.elapsedTime;
    metrics.observe(request.method, request.routeOptions.url ?? unmatchedRoute, reply.statusCode, elapsedMs / 1000);
    // Not for a 503: a slow one waited for a database that is away, which the sequencer and the
    // signer say once per outage, and every 503 is counted by route. Logged, a 15 s freeze
    // under load wrote a line for each request that waited (253), none saying why.
    if (elapsedMs > limits.slowRequestMs && reply.statusCode !== 503) request.log.warn({ method: request.method, route: request.routeOptions.url, status: reply.statusCode, elapsedMs }, 'slow request');
    done();
  });
}

/** The /v1 routes that take a bearer token: the commands, the queries and an event's serials. */
async function registerTokenRoutes(app: FastifyInstance, options: ServerOptions, verifier: TokenVerifier, bodies: BodyBudget, demoMark: DemoMark, bodyLimit: number): Promise<void> {
  await app.register(async (scope) => {
    // Authentication before the body is read: an anonymous 8 MB upload costs us nothing.
    // Then what else refuses a command whatever its body (the role, the Idempotency-Key):
    // a token that may not write must not hold room for a body either. Then the body's room
    // among those held at once, and among its organisation's, also before it is read.
    scope.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      request.actor = await verifier.verify(request.headers.authorization);
      const command = request.routeOptions.config.command;
      if (command !== undefined) commandRefusalBeforeBody(request.actor, command, request.headers['idempotency-key']);
      bodies.reserve(request, reply, request.actor.orgId, request.routeOptions.bodyLimit ?? bodyLimit);
    });
    // No cache keeps what one token was shown: a shared cache keyed by URL alone (nginx's
    // proxy_cache with proxy_cache_valid) would serve one organisation's answer to another's
    // request. Problems keep their no-store.
    scope.addHook('onSend', (_request, reply, payload, done) => {
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', authenticatedCacheControl);
      done(null, payload);
    });
    registerCommandRoutes(scope, options.ledger, verifier, bodies);
    // Read at each request: the demo mark may be set while the server runs.
    registerQueryRoutes(scope, { pool: options.pool, get demo() { return demoMark.demo; } });
    registerEventSerialsRoute(scope, options.pool);
  });
}

/**
 * A path as the router matches it: each segment percent-decoded (GET /v1/%6Cicences is served
 * as /v1/licences, so DELETE there is a 405, not a 404), except an encoded slash, which stays
 * inside its segment as the router keeps it. A segment that does not decode is left as sent
 * (the router refuses such a path before this is asked).
 */
function routedPath(path: string): string {
  return path.split('/').map((segment) => segment.split(/%2F/i).map(decodedOrAsSent).join('%2F')).join('/');
}

function decodedOrAsSent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The document, the docs page, the health check and the metrics. The document and the docs page
 * are under /v1, and refuse a query string as every GET there does (README): neither reads one,
 * and the page links the document without one. The health check and the metrics, outside /v1,
 * take any: each answer is the same whatever is appended, and they are polled by monitors (load
 * balancers' probes, uptime checkers' cache-busters, a Prometheus job's `params`) that would
 * read a refusal as the server being down.
 */
function registerPublicRoutes(app: FastifyInstance, options: ServerOptions, metrics: HttpMetrics, verifier: TokenVerifier, bodies: BodyBudget, connections: ConnectionBounds): void {
  const document = buildOpenApiDocument();
  const documentJson = JSON.stringify(document);
  const docsPage = renderDocsPage(document);
  app.get('/v1/openapi.json', async (request, reply: FastifyReply) => {
    readQueryString(noQuery, request.query);
    return reply.type('application/json').send(documentJson);
  });
  app.get('/v1/docs', async (request, reply: FastifyReply) => {
    readQueryString(noQuery, request.query);
    return reply.type('text/html; charset=utf-8').header('content-security-policy', docsPageContentSecurityPolicy).send(docsPage);
  });
  // Every read of the check is bounded like the ping: a frozen database must not hold the
  // health check's connection past its bound.
  const healthPool = withQueryTimeout(options.pool, limits.healthCheckTimeoutMs);
  const knownMigrationNewest = listMigrations().at(-1)?.version ?? 0;
  app.get('/healthz', async (_request, reply: FastifyReply) => {
    // The ping's own query_timeout ends the query and frees its connection when the database
    // hangs; withTimeout alone would answer in time but leave the slot in use.
    const health = await withTimeout(readHealth(options.ledger, healthPool, knownMigrationNewest, limits.healthCheckTimeoutMs), limits.healthCheckTimeoutMs).catch((error: unknown) => {
      throw new DomainError('unavailable', "the database did not answer the health check", { cause: error });
    });
    const fault = healthFault(options.ledger, health, knownMigrationNewest);
    if (fault !== undefined) throw fault;
    return reply.send({ status: 'ok' });
  });
  app.get('/metrics', async (_request, reply: FastifyReply) => {
    const pool = options.pool as unknown as { totalCount: number; idleCount: number; waitingCount: number; options: { max: number } };
    const { log, checkpointer } = options.ledger;
    const poolStats = { totalCount: pool.totalCount, idleCount: pool.idleCount, waitingCount: pool.waitingCount, connectionsMax: pool.options.max };
    const text = metrics.render(options.ledger.sequencer.stats, poolStats, [
      { name: 'chipledger_token_cache_entries', type: 'gauge', help: 'Bearer tokens whose verification this process holds in memory.', value: verifier.size },
      { name: 'chipledger_http_request_bodies_in_flight_bytes', type: 'gauge', help: 'Bytes of request bodies this process has room reserved for: accepted, and not yet answered or their command not yet answered by the ledger.', value: bodies.reserved },
      { name: 'chipledger_http_request_bodies_in_flight_bytes_max', type: 'gauge', help: 'The bound on those bytes; past it a request gets 503 before its body is read.', value: bodies.bytesMax },
      { name: 'chipledger_http_request_bodies_in_flight_per_organisation_bytes_max', type: 'gauge', help: 'What one organisation\'s requests may hold of those bytes; past it its request gets 429 before its body is read.', value: bodies.organisationBytesMax },
      { name: 'chipledger_http_connections_open', type: 'gauge', help: 'HTTP connections this process holds open.', value: connections.open },
      { name: 'chipledger_http_connections_max', type: 'gauge', help: 'The bound on open connections; past it a new connection is closed as it is accepted.', value: connections.connectionsMax },
      { name: 'chipledger_http_connections_refused_total', type: 'counter', help: 'Connections closed as they were accepted, this process holding its bound of open connections.', value: connections.refused },
      { name: 'chipledger_http_connections_refused_per_address_total', type: 'counter', help: 'Connections closed as they were accepted, their remote address holding its bound of open connections.', value: connections.refusedPerAddress },
      // Committed events, not the log's in-memory appender: that one runs ahead of the
      // database while a batch is applied and before it commits.
      { name: 'chipledger_log_size', type: 'gauge', help: 'Events in the transparency log, as committed: the size the start-up check proved, then each commit\'s.', value: options.ledger.sequencer.stats.logSize },
      { name: 'chipledger_log_leaves_appended_total', type: 'counter', help: 'Leaves this process appended to the transparency log.', value: log.stats.leaves },
      { name: 'chipledger_log_edge_reloads_total', type: 'counter', help: 'Times the log rebuilt its right edge from stored tiles: at its first append, after another process wrote, or after a failed batch.', value: log.stats.reloads },
      ...(checkpointer ? [
        { name: 'chipledger_checkpoints_signed_total', type: 'counter', help: 'Checkpoints this process signed.', value: checkpointer.stats.signed },
        { name: 'chipledger_checkpoint_size', type: 'gauge', help: 'Size of the last checkpoint this process signed.', value: checkpointer.stats.lastSize },
        { name: 'chipledger_checkpoint_ticks_skipped_total', type: 'counter', help: 'Signer ticks skipped because the signing before was still running (a slow or unreachable database, the signing lock held elsewhere).', value: checkpointer.stats.skippedTicks },
        { name: 'chipledger_checkpoint_ticks_failed_total', type: 'counter', help: 'Signer ticks that failed (the log says the first of an outage, and each different error after it).', value: checkpointer.stats.failedTicks },
        ...lastSigningMetrics(checkpointer.stats.lastSignedAtMs),
        ...logSeenMetrics(checkpointer.stats.logSeen),
      ] as const : []),
    ]);
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });
}
