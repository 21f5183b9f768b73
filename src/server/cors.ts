/**
 * CORS (the Fetch standard's CORS protocol) for the transparency log's reads, so that a web
 * page on any origin (a regulator's dashboard, a monitor, a page that checks a proof bundle
 * in the browser) can verify the log as the CLI does. Every GET and HEAD under /v1/log/
 * answers with Access-Control-Allow-Origin: *, problems included (a tile not there yet is a
 * 404 the page must read), and a preflight of such a path is answered 204.
 *
 * Entry bundles take a bearer token: a preflight allows the Authorization header. That is
 * safe for any origin because a bearer token is no ambient credential: a page can send only
 * a token it holds, the API sets no cookies, and Access-Control-Allow-Credentials is never
 * sent. The API's other routes send no CORS headers: their preflights stay 405, so a page on
 * another origin cannot send them a token.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { limits } from '../core/limits.ts';

/** The paths whose reads are open to every origin. */
export const publicReadPrefix = '/v1/log/';

/**
 * Headers a page's script may read besides the CORS-safelisted ones (Content-Type,
 * Cache-Control, Content-Length, ...): when to come back, the id to quote, the demo mark (a
 * verifier must not take demo data for the real log) and the 401's challenge.
 */
const exposedHeaders = 'Retry-After, X-Request-Id, X-Chipledger-Demo, WWW-Authenticate';

const publicReadHeaders: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': exposedHeaders,
};

/** Adds, to a scope holding only /v1/log/ routes, the CORS headers of every GET and HEAD answer. */
export function registerPublicReadCors(scope: FastifyInstance): void {
  scope.addHook('onSend', async (request, reply, payload) => {
    if (request.method === 'GET' || request.method === 'HEAD') reply.headers(publicReadHeaders);
    return payload;
  });
}

/**
 * The same headers on an answer given outside that scope to a GET or HEAD of a path under
 * /v1/log/: no route took it (404, 405), or the router refused its path (a malformed escape,
 * a parameter past its bound). A page must be able to read those problems too.
 */
export function addPublicReadCors(reply: FastifyReply, method: string, path: string): FastifyReply {
  return (method === 'GET' || method === 'HEAD') && path.startsWith(publicReadPrefix) ? reply.headers(publicReadHeaders) : reply;
}

/**
 * Whether the request is a CORS preflight (OPTIONS with Access-Control-Request-Method) of a
 * public read: a path under publicReadPrefix that takes GET (`allowed`: the methods it takes).
 */
export function isPublicReadPreflight(request: FastifyRequest, path: string, allowed: readonly string[]): boolean {
  return request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined
    && path.startsWith(publicReadPrefix) && allowed.includes('GET');
}

/** The answer to such a preflight: GET and HEAD, with a token if the page has one. */
export function answerPublicReadPreflight(reply: FastifyReply): FastifyReply {
  return reply.code(204).headers({
    ...publicReadHeaders,
    'access-control-allow-methods': 'GET, HEAD',
    'access-control-allow-headers': 'Authorization',
    'access-control-max-age': String(limits.preflightMaxAgeSeconds),
  }).send();
}
