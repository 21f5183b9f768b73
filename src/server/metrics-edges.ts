/**
 * The request counter for answers given outside fastify's hooks, where its onResponse hook
 * (which counts every other answer) never runs: the router's refusals (frameworkErrors: a
 * malformed percent-escape, an id too long), the HTTP parser's (clientErrorAnswerer: bytes
 * that are not HTTP, a header section too large, a request not whole in time) and the
 * protocol answers (answerProtocolRequests: an Expect not met, CONNECT). A monitor that
 * alerts on 4xx rates must see them too.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpMetrics } from './metrics.ts';
import { clientErrorProblem } from './problem.ts';

/** The route label of an answer no route gave; the unrouted 404 is counted under it too. */
export const unmatchedRoute = 'unmatched';
/** The method label of a request the parser refused before its method could be read. */
export const unparsedMethod = 'unknown';

type ClientErrorHandler = (error: Error & { code?: string }, socket: Duplex) => void;

/**
 * Counts `response` under the unmatched route once it has gone out, with the time since
 * `startedAtMs` (performance.now()); nothing when its connection went away first.
 */
export function countWhenFinished(metrics: HttpMetrics, method: string, response: ServerResponse, startedAtMs: number): void {
  const count = () => metrics.observe(method, unmatchedRoute, response.statusCode, (performance.now() - startedAtMs) / 1000);
  if (response.writableFinished) count();
  else response.once('finish', count);
}

/**
 * `answer` (clientErrorAnswerer), counting each connection's refusal once, under the status it
 * answers: Node reports an error again for each later byte of a connection, and
 * clientErrorAnswerer answers only the first, and not at all when the client has gone. The
 * request never parsed: no method, no time it started.
 */
export function countedClientErrors(metrics: HttpMetrics, answer: ClientErrorHandler): ClientErrorHandler {
  const counted = new WeakSet<Duplex>();
  return (error, socket) => {
    if (error.code !== 'ECONNRESET' && !socket.destroyed && !counted.has(socket)) {
      counted.add(socket);
      metrics.observe(unparsedMethod, unmatchedRoute, clientErrorProblem(error).status, 0);
    }
    answer(error, socket);
  };
}

/** Counts the answers answerProtocolRequests gives; registered after it, so its answer is under way. */
export function countProtocolAnswers(metrics: HttpMetrics, server: Server): void {
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => countWhenFinished(metrics, request.method ?? unparsedMethod, response, performance.now()));
  server.on('connect', (request: IncomingMessage) => metrics.observe(request.method ?? 'CONNECT', unmatchedRoute, 405, 0));
}
