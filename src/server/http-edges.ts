/**
 * The HTTP edge's own rules: what a request must look like before any route reads its body
 * (one of each singleton header, a Host, a body in the coding and charset the route reads, no
 * query string on a POST), and the answers Node would otherwise give itself (a request line
 * that does not parse, one that did not arrive in time, an Expect it cannot meet, CONNECT),
 * each as problem+json. The method index answers a path's other methods (405 with Allow).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { DomainError } from '../core/errors.ts';
import type { CommandKind } from '../ledger/schemas.ts';
import { clientErrorProblem, contentTypeRefusal, defaultBodyMediaType, httpOnlyProblem, problemContentType, type Problem } from './problem.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The ledger command a POST route runs: its role and Idempotency-Key are checked before the body is read. */
    command?: CommandKind;
    /** The media type the route reads its body as; absent: application/json. */
    accepts?: string;
  }
}

/**
 * Header fields a request may carry once, with the refusal of a second. Node keeps the first
 * Host and Authorization and drops the rest, and joins Idempotency-Keys with ", ": a second
 * identity or a second key would be decided on silently, so the raw headers are counted.
 */
const singletonHeaders: ReadonlyMap<string, () => DomainError> = new Map([
  ['host', () => new DomainError('invalid_input', 'send one Host header, not several', { rule: 'host' })],
  ['authorization', () => new DomainError('invalid_input', 'send one Authorization header, not several', { rule: 'authorization' })],
  ['idempotency-key', () => new DomainError('invalid_input', 'send one Idempotency-Key header, not several', { rule: 'idempotency-key-required' })],
]);

/** Query parameters a POST refusal names. */
const namedParametersMax = 20;

/**
 * A Host field value (RFC 9112 §3.2: uri-host [":" port], RFC 3986 §3.2.2): an IP literal in
 * brackets, or a reg-name of unreserved characters, percent-escapes and sub-delims (an IPv4
 * address is one, and so is the empty name); an IPv6 zone with its '%' escaped or not (Node's
 * own http.request sends [fe80::1%eth0]). Nothing here reads Host (links and Location are
 * relative), but a proxy in front may route on it, and RFC 9112 says a server MUST refuse a
 * request whose Host is not one.
 */
const hostValue = /^(?:\[(?:[0-9A-Fa-f:.]+(?:%(?:25)?[A-Za-z0-9._~-]+)?|v[0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+)\]|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?$/;

/** Characters of a Host value quoted in its refusal. */
const quotedHostLengthMax = 100;

/** Refuses, before the body is read, a request whose headers or query the API does not take. */
export function refuseOddRequest(request: FastifyRequest): void {
  refuseRepeatedHeaders(request.raw.rawHeaders);
  // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host (HTTP/1.0 has none).
  if (request.headers.host === undefined && request.raw.httpVersion !== '1.0') {
    throw new DomainError('invalid_input', 'an HTTP/1.1 request needs a Host header', { rule: 'host' });
  }
  if (request.headers.host !== undefined && !hostValue.test(request.headers.host)) {
    throw new DomainError('invalid_input', `the Host header must be a host name or address and an optional port (RFC 9112 §3.2); got ${JSON.stringify(request.headers.host.slice(0, quotedHostLengthMax))}`, { rule: 'host' });
  }
  // RFC 9112 §3.2: a request target has no fragment. The router would read one as a query
  // (find-my-way ends the path at "#" as at "?"), which a POST must not have (below).
  if (request.url.includes('#')) {
    throw new DomainError('invalid_input', `a request target holds no fragment (RFC 9112 §3.2): ${request.method} ${request.url.split('#', 1)[0]!.split('?', 1)[0]} was sent with one; send it without the "#" and what follows`, { rule: 'request-target' });
  }
  // A POST changes the ledger as its body says: a parameter such as ?dryRun=true must not
  // be ignored while the write is committed.
  if (request.method === 'POST' && queryString(request.url) !== '') {
    const names = Object.keys(request.query as Record<string, unknown>).slice(0, namedParametersMax);
    throw new DomainError('invalid_input', `couldn't read the query string: ${request.method} ${request.url.split('?', 1)[0]} takes no query parameters${names.length === 0 ? '' : ` (got ${names.join(', ')})`}`, {
      rule: 'query', details: { parameters: names },
    });
  }
  if (declaresBody(request)) refuseBodyEncoding(request, request.routeOptions.config.accepts ?? defaultBodyMediaType);
}

function refuseRepeatedHeaders(rawHeaders: readonly string[]): void {
  const seen = new Set<string>();
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]!.toLowerCase();
    const refusal = singletonHeaders.get(name);
    if (refusal === undefined) continue;
    if (seen.has(name)) throw refusal();
    seen.add(name);
  }
}

/**
 * The path of a request target as sent, in origin form: an absolute-form target
 * (`GET http://host/v1/log/checkpoint`, which RFC 9112 §3.2.2 says a server MUST accept) less
 * its scheme and authority; the query is left on. Nothing is decoded.
 */
export function originForm(url: string): string {
  const rest = url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
}

/** The path of a request target as sent, in origin form and without its query: what routes and refusals name. */
export function targetPath(url: string): string {
  return originForm(url).split('?', 1)[0]!;
}

const queryString = (url: string): string => {
  const start = url.indexOf('?');
  return start === -1 ? '' : url.slice(start + 1);
};

/** Whether the request says a body follows: a Content-Length above 0, or chunks. */
function declaresBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The body parsers read bytes as UTF-8 text in no coding: a body HTTP says is compressed,
 * chunked after another coding, or in another charset would be stored as other text than
 * the one sent. Refused before it is read, naming the media type the route takes.
 */
function refuseBodyEncoding(request: FastifyRequest, accepts: string): void {
  const contentCodings = listOf(request.headers['content-encoding']);
  if (contentCodings.some((coding) => coding !== 'identity')) {
    throw contentTypeRefusal(accepts, `Content-Encoding ${contentCodings.join(', ')} is not read here; send the body without a content coding`, { contentCoding: true });
  }
  const transferCodings = listOf(request.headers['transfer-encoding']);
  if (transferCodings.some((coding) => coding !== 'chunked')) {
    throw contentTypeRefusal(accepts, `Transfer-Encoding ${transferCodings.join(', ')} is not read here; send the body as it is, or chunked`);
  }
  const charset = charsetOf(request.headers['content-type']);
  // "utf8" is the same charset under an alias many clients write (RFC 8259 defines none).
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw contentTypeRefusal(accepts, `charset=${charset.slice(0, 40)} is not read here; send UTF-8 (charset=utf-8, or no charset)`);
  }
}

/** A comma-separated header's members, lowercased, empty ones left out. */
const listOf = (header: string | string[] | undefined): string[] =>
  [header ?? []].flat().join(',').split(',').map((member) => member.trim().toLowerCase()).filter((member) => member !== '');

/** The charset parameter of a Content-Type, lowercased and unquoted; undefined when none is given. */
function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  for (const parameter of contentType.split(';').slice(1)) {
    const [name, ...value] = parameter.split('=');
    if (name!.trim().toLowerCase() === 'charset') return value.join('=').trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return undefined;
}

/**
 * The methods each registered path takes (fastify's onRoute feeds it), for the answer to a
 * method a path does not take: 405 with Allow (RFC 9110 §15.5.6), not "there is no route".
 */
export class RouteMethods {
  private readonly routes: Array<{ method: string; pattern: RegExp }> = [];

  add(methods: string | readonly string[], url: string): void {
    // ':id' is one segment, '*' the rest of the path, as fastify's router reads them.
    const pattern = new RegExp(`^${url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+').replace(/\*/g, '.*')}$`);
    for (const method of [methods].flat()) this.routes.push({ method, pattern });
  }

  /** The methods the path takes, sorted; empty when no route has the path. */
  allowed(path: string): string[] {
    return [...new Set(this.routes.filter((route) => route.pattern.test(path)).map((route) => route.method))].sort();
  }
}

export function methodNotAllowedProblem(method: string, path: string, allowed: readonly string[], instance: string): Problem {
  return httpOnlyProblem('method_not_allowed', `${path} does not take ${method}; it takes ${allowed.join(', ')}`, instance);
}

/**
 * Headers every answer of a server carries, also those given before any route or outside a
 * request (the demo mark: a client must never take a refusal of demo data for the real one).
 */
export type ServerHeaders = Readonly<Record<string, string>>;

/** An Expect that asks for 100 Continue, as Node's parser reads it. */
const expectsContinue = /(?:^|\W)100-continue(?:$|\W)/i;

/**
 * A preParsing hook: the 100 Continue of a request that asked for one (Expect: 100-continue),
 * sent when the body is about to be read: every onRequest hook has passed (the token, the
 * role, the Idempotency-Key, the room among the bodies in flight), so a request refused by
 * any of them was refused before its client sent the body. A body declared larger than the
 * route reads gets no 100 either: the parser refuses it (413) without reading it. A request
 * answered without its 100 has its connection closed after the answer (Node), the body unsent.
 */
export function continueOnceAccepted(bodyLimitBytes: number): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    // HTTP/1.1 only, as Node reads Expect: an HTTP/1.0 client is never sent a 1xx (RFC 9110 §15.2).
    if (request.raw.httpVersion !== '1.1' || !expectsContinue.test(request.headers.expect ?? '') || reply.raw.headersSent) return;
    const declared = Number(request.headers['content-length']);
    if (declared > (request.routeOptions.bodyLimit ?? bodyLimitBytes)) return;
    reply.raw.writeContinue();
  };
}

/**
 * Writes a problem straight onto a socket, for the answers given outside any request (the
 * HTTP parser's refusals, CONNECT). The connection closes after it.
 */
function writeRawProblem(socket: Duplex, problem: Problem, headers: ServerHeaders = {}): void {
  const body = JSON.stringify(problem);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  // No cache keeps a problem (sendProblem says why); these are problems like any other. Date:
  // RFC 9110 §6.6.1, as on every other answer (a client reads clock skew from it). An id, as
  // on every answer, so a client that reads one from each answer finds one here too (nothing
  // is logged under it: there was no request).
  socket.write(`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nDate: ${new Date().toUTCString()}\r\nContent-Type: ${problemContentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nX-Request-Id: ${randomUUID()}\r\n${extra}Connection: close\r\n\r\n${body}`);
}

/** Sockets whose client error is being answered: Node reports each later byte's failure again. */
const answering = new WeakSet<Duplex>();

/**
 * Answers what Node's HTTP parser refuses (bytes that are not HTTP/1.1, a header section over
 * the bound, a request not whole within limits.requestTimeoutMs) with problem+json, then
 * closes the connection, whose byte stream can no longer be trusted. When a request before
 * the bad bytes is still being answered on the connection (pipelining), its answer goes
 * first: that request may commit, and a client that read only "400" would take it as refused.
 * `headers`: those every answer of the server carries (ServerHeaders).
 */
export function clientErrorAnswerer(headers: ServerHeaders = {}): (error: Error & { code?: string }, socket: Duplex) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    if (answering.has(socket)) return;
    answering.add(socket);
    answerOnceIdle(error, socket, headers);
  };
}

function answerOnceIdle(error: Error & { code?: string }, socket: Duplex, headers: ServerHeaders): void {
  if (socket.destroyed) return;
  const pending = responseInFlight(socket);
  if (pending !== undefined) {
    // 'close' fires once the response has finished (the next pipelined one, if any, is on the
    // socket by then) or its connection went away.
    pending.once('close', () => answerOnceIdle(error, socket, headers));
    return;
  }
  if (socket.writable) writeRawProblem(socket, clientErrorProblem(error), headers);
  socket.destroy(error);
}

/**
 * The response on the socket whose request arrived whole and that has not finished: one
 * being answered. A response whose request is still arriving is the one the error is about
 * (it timed out, or its bytes broke off).
 */
function responseInFlight(socket: Duplex): ServerResponse | undefined {
  const response = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (response === undefined || response === null || response.writableFinished) return undefined;
  return response.req.complete ? response : undefined;
}

/**
 * The protocol answers Node gives itself without these listeners: 417 with an empty chunked
 * body for an Expect other than 100-continue, no answer at all to CONNECT, and 100 Continue
 * as soon as a request's headers are in. Each refusal carries the server's `headers`.
 */
export function answerProtocolRequests(server: Server, headers: ServerHeaders = {}): void {
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const problem = httpOnlyProblem('expectation_failed', `this server meets no expectation but 100-continue; got Expect: ${String(request.headers.expect).slice(0, 100)}`, request.url?.split('?', 1)[0]);
    const body = JSON.stringify(problem);
    // An id, as on every answer fastify gives (nothing is logged of this refusal).
    response.writeHead(problem.status, { ...headers, 'x-request-id': randomUUID(), 'content-type': problemContentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', connection: 'close' });
    response.end(body);
  });
  // Expect: 100-continue is served as any request: its 100 is sent by continueOnceAccepted,
  // once everything that refuses it whatever its body has passed. Node's own 100 goes out
  // as the headers come in, so a client told to go ahead uploads the body of a request
  // then refused for its token, role, key or room (RFC 9110 §10.1.1 allows either).
  server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => server.emit('request', request, response));
  server.on('connect', (_request: IncomingMessage, socket: Duplex) => {
    // An origin server, not a proxy: no resource here takes CONNECT (an empty Allow says so).
    // The socket is ours now, Node's error listener gone: a reset must not throw.
    socket.on('error', () => {});
    writeRawProblem(socket, httpOnlyProblem('method_not_allowed', 'this server is not a proxy: it does not take CONNECT'), { ...headers, Allow: '' });
    socket.destroy();
  });
}
