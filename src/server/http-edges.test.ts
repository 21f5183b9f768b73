/**
 * The HTTP edge against odd or hostile input (src/server/http-edges.ts): requests that never
 * finish arriving, refusals that need no body, pipelined bytes that do not parse, body codings
 * and charsets the parsers do not read, query strings on writes, wrong methods, protocol
 * oddities Node answers itself, repeated singleton headers, and page sizes in odd spellings.
 * Most go over a real socket: inject cannot stall, pipeline, repeat a header or CONNECT.
 */
import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { limits } from '../core/limits.ts';
import { buildServer } from './app.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let api: ApiWorld;
let database: TestDatabase;
apiWorldPerFile((made, madeDatabase) => { api = made; database = madeDatabase; });

/** The test server's request timeout: short, so that a stalled request is answered within the test. */
const requestTimeoutMs = 400;
let server: FastifyInstance;
let port: number;

beforeAll(async () => {
  server = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false, requestTimeoutMs });
  await server.listen({ host: '127.0.0.1', port: 0 });
  port = (server.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await server?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The whole answers in `bytes`, in order (each has a Content-Length, which counts bytes: a body may hold UTF-8). */
function answersIn(bytes: Buffer): Answer[] {
  const answers: Answer[] = [];
  let rest = bytes;
  while (rest.subarray(0, 9).toString('latin1') === 'HTTP/1.1 ') {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) break;
    const [statusLine, ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length'] ?? 0);
    if (rest.length < end + 4 + length) break;
    answers.push({ status: Number(statusLine!.split(' ')[1]), headers, body: rest.subarray(end + 4, end + 4 + length).toString('utf8') });
    rest = rest.subarray(end + 4 + length);
  }
  return answers;
}

/**
 * Sends `request` (pieces written in turn) and collects what comes back until the server
 * closes, `wanted` answers have arrived, or `waitMs` passed.
 */
function talk(request: string | string[], options: { wanted?: number; waitMs?: number; port?: number } = {}): Promise<{ answers: Answer[]; closed: boolean; elapsedMs: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: options.port ?? port }, () => {
      for (const piece of [request].flat()) socket.write(piece);
    });
    let received = Buffer.alloc(0);
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answers: answersIn(received), closed, elapsedMs: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), options.waitMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (options.wanted !== undefined && answersIn(received).length >= options.wanted) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => {});
  });
}

const siteBody = (name: string) => JSON.stringify({ name, province: 'Zhejiang', city: 'Hangzhou', latitude: 30.3, longitude: 120.2, capacityUnits: 10 });
const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;
const sitesCount = async () => (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sites')).rows[0]!.n;

/** The bytes of request bodies the test server holds room for. */
async function reservedBytes(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^chipledger_http_request_bodies_in_flight_bytes (\S+)$/m.exec(text)?.[1]);
}

describe('a request that never finishes arriving', () => {
  it('is answered 408 within the request timeout, and its body\'s room comes back', async () => {
    const { answers, closed, elapsedMs } = await talk(head([
      'POST /v1/sites HTTP/1.1', 'Host: x', `Authorization: Bearer ${api.tokens.recipient}`, 'Idempotency-Key: stalled-1',
      'Content-Type: application/json', 'Content-Length: 1000',
    ]) + '{"name":', { waitMs: requestTimeoutMs * 10 });
    expect(answers.map((answer) => answer.status)).toEqual([408]);
    expect(answers[0]!.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'request_timeout', status: 408 });
    expect(closed).toBe(true);
    expect(elapsedMs).toBeGreaterThanOrEqual(requestTimeoutMs);
    for (let attempt = 0; attempt < 100 && (await reservedBytes()) !== 0; attempt += 1) await new Promise((resume) => setTimeout(resume, 10));
    expect(await reservedBytes()).toBe(0);
  });

  it('has a bound by default: limits.requestTimeoutMs', async () => {
    const app = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false });
    expect(app.server.requestTimeout).toBe(limits.requestTimeoutMs);
    await app.close();
  });
});

describe('a command refused whatever its body', () => {
  const manifestHead = (token: string, key: string | null) => head([
    `POST /v1/shipments/${api.shipments.own}/manifest HTTP/1.1`, 'Host: x', `Authorization: Bearer ${token}`,
    ...(key === null ? [] : [`Idempotency-Key: ${key}`]), 'Content-Type: application/json', `Content-Length: ${limits.serialListBodyBytesMax}`,
  ]);

  it('is answered before its body is read, holding no room: a role that may not run the command (403, the ledger\'s words)', async () => {
    const { answers } = await talk(manifestHead(api.tokens.auditor, 'early-403'), { wanted: 1, waitMs: requestTimeoutMs / 2 });
    expect(answers.map((answer) => answer.status)).toEqual([403]);
    const ledgerSays = await api.world.ledger.submit('manifest.attach', { shipmentId: api.shipments.own, serials: [] } as never, api.world.actors.auditor, 'early-403-ledger');
    expect(ledgerSays.ok).toBe(false);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'forbidden', status: 403, detail: ledgerSays.ok ? '' : ledgerSays.error.message });
    expect(await reservedBytes()).toBe(0);
  });

  it('is answered before its body is read, holding no room: no Idempotency-Key (400, as the route says)', async () => {
    const { answers } = await talk(manifestHead(api.tokens.exporter, null), { wanted: 1, waitMs: requestTimeoutMs / 2 });
    expect(answers.map((answer) => answer.status)).toEqual([400]);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'invalid_input', rule: 'idempotency-key-required' });
    expect(await reservedBytes()).toBe(0);
  });
});

describe('bytes that do not parse after a pipelined request', () => {
  it('wait for that request\'s answer, which comes first; then the 400, then the connection closes', async () => {
    const body = siteBody('Pipelined DC');
    const request = head([
      'POST /v1/sites HTTP/1.1', 'Host: x', `Authorization: Bearer ${api.tokens.recipient}`, 'Idempotency-Key: pipelined-1',
      'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`,
    ]) + body;
    const { answers, closed } = await talk([request, 'garbage\r\n\r\n']);
    expect(answers.map((answer) => answer.status)).toEqual([201, 400]);
    expect(JSON.parse(answers[1]!.body)).toMatchObject({ code: 'invalid_input', detail: 'the request is not well-formed HTTP/1.1', rule: 'http-syntax' });
    expect(closed).toBe(true);
    const retried = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, key: 'pipelined-1', body: JSON.parse(body) });
    expect(retried.statusCode).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBe('true');
  });
});

describe('a body in a coding or charset the parsers do not read', () => {
  const post = (headers: Record<string, string>, payload: string | Buffer) => api.request({
    method: 'POST', url: '/v1/sites', token: api.tokens.recipient, payload, headers: { 'content-type': 'application/json', ...headers },
  });

  it('is refused before it is read (415, rule content-type), and nothing is written', async () => {
    const before = await sitesCount();
    for (const [headers, payload, coding] of [
      [{ 'content-encoding': 'gzip' }, siteBody('Gzip DC'), true],
      [{ 'content-encoding': 'br, gzip' }, siteBody('Brotli DC'), true],
      [{ 'content-type': 'application/json; charset=iso-8859-1' }, Buffer.from(siteBody('Ã\u0083Â© DC'), 'latin1'), false],
      [{ 'content-type': 'application/json; charset="utf-16"' }, siteBody('UTF-16 DC'), false],
    ] as const) {
      const response = await post(headers, payload);
      expect(response.statusCode, JSON.stringify(headers)).toBe(415);
      expect(response.json(), JSON.stringify(headers)).toMatchObject({ code: 'unsupported_media_type', rule: 'content-type', detail: expect.stringMatching(/^send the request body as application\/json: /), details: { accepts: 'application/json' } });
      expect(response.headers['accept-post'], JSON.stringify(headers)).toBe('application/json');
      // A client that compresses its bodies learns to send this one as it is (RFC 7694 §3).
      expect(response.headers['accept-encoding'], JSON.stringify(headers)).toBe(coding ? 'identity' : undefined);
    }
    expect(await sitesCount()).toBe(before);
  });

  it('is refused in a transfer coding other than chunked', async () => {
    const { answers } = await talk(head([
      'POST /v1/sites HTTP/1.1', 'Host: x', `Authorization: Bearer ${api.tokens.recipient}`, 'Idempotency-Key: te-gzip',
      'Content-Type: application/json', 'Transfer-Encoding: gzip, chunked',
    ]) + '5\r\nhello\r\n0\r\n\r\n', { wanted: 1 });
    expect(answers.map((answer) => answer.status)).toEqual([415]);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'unsupported_media_type', rule: 'content-type', detail: expect.stringContaining('Transfer-Encoding gzip, chunked') });
  });

  it('is read in UTF-8, identity and chunked as before', async () => {
    const accepted: Array<Record<string, string>> = [{ 'content-type': 'application/json; charset=UTF-8' }, { 'content-type': 'application/json; charset="utf-8"' }, { 'content-type': 'application/json; charset=utf8' }, { 'content-encoding': 'identity' }];
    for (const headers of accepted) {
      expect((await post(headers, siteBody(`Plain DC ${JSON.stringify(headers)}`))).statusCode, JSON.stringify(headers)).toBe(201);
    }
  });
});

describe('the media type a refusal names', () => {
  it('is the route\'s: text/plain for a witness\'s cosignature', async () => {
    // A JSON string is JSON, not the note: the document says text/plain only.
    for (const [headers, payload] of [[{}, 'a note'], [{ 'content-type': 'application/x-www-form-urlencoded' }, 'a note'], [{ 'content-type': 'application/json' }, JSON.stringify('a note\n')]] as const) {
      const response = await api.app.inject({ method: 'POST', url: '/v1/log/cosignatures', payload, headers });
      expect(response.statusCode, JSON.stringify(headers)).toBe(415);
      expect(response.json(), JSON.stringify(headers)).toMatchObject({ code: 'unsupported_media_type', rule: 'content-type', detail: 'send the request body as text/plain' });
      expect(response.headers['accept-post'], JSON.stringify(headers)).toBe('text/plain');
    }
    const command = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, payload: 'name=x', headers: { 'content-type': 'text/plain' } });
    expect([command.statusCode, command.headers['accept-post']]).toEqual([415, 'application/json']);
    expect(command.json()).toMatchObject({ code: 'unsupported_media_type', rule: 'content-type', detail: 'send the request body as application/json' });
  });
});

describe('a query string on a state-changing POST', () => {
  it('is refused, and nothing is written', async () => {
    const before = await sitesCount();
    const response = await api.request({ method: 'POST', url: '/v1/sites?dryRun=true&validateOnly=1', token: api.tokens.recipient, body: JSON.parse(siteBody('Dry run DC')) });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'invalid_input', rule: 'query', details: { parameters: ['dryRun', 'validateOnly'] } });
    expect(await sitesCount()).toBe(before);
    const cosignature = await api.request({ method: 'POST', url: '/v1/log/cosignatures?x=1', payload: 'a note', key: null, headers: { 'content-type': 'text/plain' } });
    expect(cosignature.json()).toMatchObject({ status: 400, rule: 'query' });
  });
});

describe('a fragment in the request target', () => {
  // RFC 9112 §3.2 allows none; the router read one as a query, so "#dryRun=true" on a POST
  // passed the rule above and committed (the HTTP security review).
  it('is refused with 400 before anything is read or written, on a POST and a GET', async () => {
    const before = await sitesCount();
    const post = await talk(head([
      'POST /v1/sites#dryRun=true HTTP/1.1', 'Host: x', `Authorization: Bearer ${api.tokens.recipient}`, 'Idempotency-Key: fragment-1',
      'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(siteBody('Fragment DC'))}`, 'Connection: close',
    ]) + siteBody('Fragment DC'), { wanted: 1 });
    expect(post.answers.map((answer) => answer.status)).toEqual([400]);
    expect(JSON.parse(post.answers[0]!.body)).toMatchObject({ code: 'invalid_input', rule: 'request-target' });
    expect(await sitesCount()).toBe(before);
    const get = await talk(head(['GET /v1/sites#limit=1 HTTP/1.1', 'Host: x', `Authorization: Bearer ${api.tokens.recipient}`, 'Connection: close']), { wanted: 1 });
    expect(get.answers.map((answer) => answer.status)).toEqual([400]);
    expect(JSON.parse(get.answers[0]!.body).detail).toMatch(/^a request target holds no fragment .*: GET \/v1\/sites was sent with one/);
  });
});

describe('a Host that is not a host', () => {
  it('is refused with 400 (RFC 9112 §3.2), naming what came; host names, addresses and ports pass', async () => {
    for (const host of ['a b', '<script>@evil/x?y', 'x/y', 'a:b:c', '[zz::1]']) {
      const { answers } = await talk(head(['GET /healthz HTTP/1.1', `Host: ${host}`, 'Connection: close']), { wanted: 1 });
      expect(answers.map((answer) => answer.status), host).toEqual([400]);
      expect(JSON.parse(answers[0]!.body), host).toMatchObject({ code: 'invalid_input', rule: 'host', detail: `the Host header must be a host name or address and an optional port (RFC 9112 §3.2); got ${JSON.stringify(host)}` });
    }
    // A comma is a sub-delim, so "a,b" is a reg-name; an empty Host is allowed too.
    for (const host of ['example.org', 'example.org:8080', '127.0.0.1:80', '[::1]:8080', '[fe80::1%25eth0]', '[fe80::1%eth0]:8080', 'a,b', 'xn--fsqu00a.example', '']) {
      const { answers } = await talk(head(['GET /healthz HTTP/1.1', `Host: ${host}`, 'Connection: close']), { wanted: 1 });
      expect(answers.map((answer) => answer.status), host).toEqual([200]);
    }
  });
});

describe('a method a path does not take', () => {
  it('is answered 405 with Allow; a path nobody serves stays 404', async () => {
    for (const [method, url, allow] of [
      ['DELETE', `/v1/shipments/${api.shipments.own}`, 'GET, HEAD'],
      ['POST', `/v1/shipments/${api.shipments.own}`, 'GET, HEAD'],
      ['PUT', '/v1/shipments?limit=1', 'GET, HEAD, POST'],
      ['PATCH', `/v1/licences/${api.world.exportLicenceId}`, 'GET, HEAD'],
      ['GET', '/v1/ledger/sweep', 'POST'],
      ['OPTIONS', '/v1/log/tile/0/000', 'GET, HEAD'],
      // The router reads the path percent-decoded: GET /v1/%6Cicences is GET /v1/licences.
      ['DELETE', '/v1/%6Cicences', 'GET, HEAD, POST'],
      ['DELETE', `/v1/%73hipments/${api.shipments.own}`, 'GET, HEAD'],
    ] as const) {
      const response = await api.app.inject({ method, url, headers: { authorization: `Bearer ${api.tokens.auditor}` } });
      expect(response.statusCode, `${method} ${url}`).toBe(405);
      expect(response.headers.allow, `${method} ${url}`).toBe(allow);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: 'method_not_allowed', status: 405, title: 'Method not allowed' });
    }
    // An encoded slash stays inside its segment, as the router reads it: no route has this path.
    for (const url of ['/v1/nothing-here', `/v1/licences%2F${api.world.exportLicenceId}`, '/v1/licences%2f']) {
      const missing = await api.app.inject({ method: 'DELETE', url, headers: { authorization: `Bearer ${api.tokens.auditor}` } });
      expect(missing.statusCode, url).toBe(404);
      expect((await api.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${api.tokens.auditor}` } })).statusCode, url).toBe(404);
    }
  });

  it('is in the document: the code, and a HEAD operation beside every GET', async () => {
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    expect(document.components.schemas.Problem.properties.code.enum).toContain('method_not_allowed');
    expect(document.components.schemas.Problem['x-status-by-code']).toMatchObject({ method_not_allowed: 405 });
    const paths = Object.entries(document.paths as Record<string, Record<string, unknown>>);
    expect(paths.filter(([, methods]) => (methods.get === undefined) !== (methods.head === undefined)).map(([path]) => path)).toEqual([]);
    const answer = await api.request({ method: 'HEAD', url: '/v1/shipments', token: api.tokens.auditor });
    expect(answer.statusCode).toBe(200);
    expect(answer.body).toBe('');
  });
});

describe('protocol oddities Node answers itself', () => {
  it('answers each with problem+json', async () => {
    for (const [request, status, rule] of [
      ['GET /healthz HTTP/1.1\r\n\r\n', 400, 'host'],
      ['GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n', 417, undefined],
      ['GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n', 417, undefined],
      ['CONNECT x:80 HTTP/1.1\r\nHost: x:80\r\n\r\n', 405, undefined],
      ['GARBAGE\r\n\r\n', 400, undefined],
    ] as const) {
      const { answers } = await talk(request, { wanted: 1 });
      expect(answers.map((answer) => answer.status), request).toEqual([status]);
      expect(answers[0]!.headers['content-type'], request).toMatch(/^application\/problem\+json/);
      // As every problem: no cache may keep it.
      expect(answers[0]!.headers['cache-control'], request).toBe('no-store');
      expect(JSON.parse(answers[0]!.body), request).toMatchObject({ status, ...(rule === undefined ? {} : { rule }) });
    }
  });

  it('still serves an HTTP/1.0 request, which has no Host, and Expect: 100-continue', async () => {
    expect((await talk('GET /healthz HTTP/1.0\r\n\r\n', { wanted: 1 })).answers.map((answer) => answer.status)).toEqual([200]);
    expect((await talk('GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n', { wanted: 2 })).answers.map((answer) => answer.status)).toEqual([100, 200]);
  });
});

describe('a header that must come once, sent twice', () => {
  it('is refused with 400 naming it, whatever the copies say', async () => {
    for (const [lines, detail] of [
      [['GET /v1/shipments HTTP/1.1', 'Host: x', `Authorization: Bearer ${api.tokens.auditor}`, `Authorization: Bearer ${api.tokens.recipient}`], 'send one Authorization header, not several'],
      [['POST /v1/ledger/sweep HTTP/1.1', 'Host: x', `Authorization: Bearer ${api.tokens.authority_admin}`, 'Idempotency-Key: a1', 'Idempotency-Key: a2', 'Content-Length: 0'], 'send one Idempotency-Key header, not several'],
      [['GET /healthz HTTP/1.1', 'Host: x', 'Host: y'], 'send one Host header, not several'],
    ] as const) {
      const { answers } = await talk(head([...lines]), { wanted: 1 });
      expect(answers.map((answer) => answer.status), detail).toEqual([400]);
      expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'invalid_input', detail });
    }
  });
});

describe('a page size', () => {
  it('is read only in its canonical decimal spelling, as the log routes read numbers', async () => {
    for (const limit of ['0x10', '1e2', '2.0', '', '%20', '010', '+5', '-1', '0', '501', '9999999999']) {
      const response = await api.request({ method: 'GET', url: `/v1/shipments?limit=${limit}`, token: api.tokens.auditor });
      expect(response.statusCode, `limit=${limit}`).toBe(400);
      expect(response.json().detail, `limit=${limit}`).toMatch(/limit/);
    }
    const page = await api.request({ method: 'GET', url: '/v1/shipments?limit=2', token: api.tokens.auditor });
    expect(page.json().items.length).toBe(2);
  });

  it('past pageSizeMax, however many digits, is refused as too big, not as misspelt', async () => {
    for (const limit of [String(limits.pageSizeMax + 1), '99999999', '9'.repeat(400)]) {
      const response = await api.request({ method: 'GET', url: `/v1/shipments?limit=${limit}`, token: api.tokens.auditor });
      expect(response.statusCode, `limit=${limit.slice(0, 20)}`).toBe(400);
      expect(response.json().detail, `limit=${limit.slice(0, 20)}`).toMatch(new RegExp(`limit: Too big: expected number to be <=${limits.pageSizeMax}`));
    }
  });
});

/** An answer of every kind: a route's, refusals before any route, and those written straight onto the socket. */
const answerKinds: Array<[string, string, number]> = [
  ['an answer', head(['GET /healthz HTTP/1.1', 'Host: x', 'Connection: close']), 200],
  ['a malformed percent-escape (the router)', head(['GET /v1/licences/%zz HTTP/1.1', 'Host: x', 'Connection: close']), 400],
  ['a query string on a write (the first hooks)', head(['POST /v1/sites?dryRun=true HTTP/1.1', 'Host: x', 'Content-Length: 0', 'Connection: close']), 400],
  ['no such route', head(['GET /v1/nosuch HTTP/1.1', 'Host: x', 'Connection: close']), 404],
  ['a wrong method', head(['DELETE /v1/sites HTTP/1.1', 'Host: x', 'Connection: close']), 405],
  ['bytes that are not HTTP (the parser)', 'NOT HTTP AT ALL\r\n\r\n', 400],
  ['a header section over its bound (the parser)', head(['GET /healthz HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(20_000)}`]), 431],
  ['a request not whole in time (the parser)', 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 408],
  ['CONNECT', head(['CONNECT example.org:443 HTTP/1.1', 'Host: example.org:443']), 405],
  ['an odd Expect', head(['POST /v1/sites HTTP/1.1', 'Host: x', 'Expect: 200-ok', 'Content-Length: 2']), 417],
  ['a request without a token', head(['GET /v1/licences HTTP/1.1', 'Host: x', 'Connection: close']), 401],
  ['a log read (no key yet here)', head(['GET /v1/log/key HTTP/1.1', 'Host: x', 'Connection: close']), 404],
];

describe('every answer', () => {
  // A browser must never take an answer for more than it is: JSON and text quote what clients
  // wrote, and an entry bundle holds event bodies (security-headers.ts).
  it.each(answerKinds)('%s carries a request id, and the headers that keep a browser from sniffing, running, loading or framing it', async (_what, request, status) => {
    const { answers } = await talk(request, { wanted: 1 });
    expect(answers.map((answer) => answer.status)).toEqual([status]);
    expect(answers[0]!.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(answers[0]!.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      'referrer-policy': 'no-referrer',
    });
  });
});

describe('a demo server', () => {
  // Every answer marks demo data, also the refusals given before any route runs (the router's,
  // the first hooks') and those written straight onto the socket: a client must never take a
  // refusal by the demo for one by the real ledger.
  let demoServer: FastifyInstance;
  let demoPort: number;
  beforeAll(async () => {
    demoServer = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false, demo: true, requestTimeoutMs });
    await demoServer.listen({ host: '127.0.0.1', port: 0 });
    demoPort = (demoServer.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await demoServer?.close();
  });

  it.each(answerKinds)('marks %s as demo; a real server does not', async (_what, request, status) => {
    const demo = await talk(request, { port: demoPort, wanted: 1 });
    expect(demo.answers.map((answer) => answer.status)).toEqual([status]);
    expect(demo.answers[0]!.headers['x-chipledger-demo']).toBe('true');
    const real = await talk(request, { wanted: 1 });
    expect(real.answers.map((answer) => answer.status)).toEqual([status]);
    expect(real.answers[0]!.headers['x-chipledger-demo']).toBeUndefined();
  });
});

describe('a request no route takes', () => {
  it('is answered 404 or 405 before its body is read: no token, no room among the bodies in flight', async () => {
    // 7.5 MB announced, a few bytes sent: the answer must not wait for (or read) the rest.
    for (const [method, path, status] of [['PUT', '/v1/nothing', 404], ['POST', '/v1/nothing', 404], ['PUT', '/v1/sites', 405], ['DELETE', '/v1/log/key', 405]] as const) {
      const { answers, elapsedMs } = await talk(head([
        `${method} ${path} HTTP/1.1`, 'Host: x', 'Content-Type: application/json', 'Content-Length: 7500000',
      ]) + '{"a":', { wanted: 1, waitMs: 5_000 });
      expect(answers.map((answer) => answer.status), `${method} ${path}`).toEqual([status]);
      expect(JSON.parse(answers[0]!.body)).toMatchObject({ status, code: status === 404 ? 'not_found' : 'method_not_allowed' });
      if (status === 405) expect(answers[0]!.headers.allow, `${method} ${path}`).toMatch(/GET/);
      expect(elapsedMs, `${method} ${path}`).toBeLessThan(4_000);
    }
    expect(await reservedBytes()).toBe(0);
  });

  it('gets 404 or 405 whatever its body: a body that does not parse is not looked at', async () => {
    for (const [method, path, status] of [['PUT', '/v1/sites', 405], ['POST', '/v1/nothing', 404]] as const) {
      const { answers } = await talk(head([`${method} ${path} HTTP/1.1`, 'Host: x', 'Content-Type: application/json', 'Content-Length: 4', 'Connection: close']) + '{bad', { wanted: 1 });
      expect(answers.map((answer) => answer.status), `${method} ${path}`).toEqual([status]);
    }
  });
});
