/**
 * The API as standard clients, proxies, caches and browsers read its HTTP (the semantics
 * review): CORS on the log's public reads, absolute-form request targets, links that hold
 * behind a path prefix, Expect: 100-continue answered only once the request is accepted, the
 * 401's challenge, and no cache keeping what a token was shown. What needs a socket (an
 * absolute-form target, Expect, the parser's refusals) goes over one.
 */
import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';
import { limits } from '../core/limits.ts';
import { readHead } from '../store/tlog-tables.ts';
import { buildServer } from './app.ts';
import { originForm } from './http-edges.ts';
import { renderDocsPage } from './openapi-docs-page.ts';
import { buildOpenApiDocument } from './openapi.ts';

let api: ApiWorld;
let database: TestDatabase;
apiWorldPerFile((made, madeDatabase) => { api = made; database = madeDatabase; });

let server: FastifyInstance;
let port: number;
/** A hash tile the log has: the first one, partial at the log's size (or full). */
let hashTile: string;
let entryBundle: string;

beforeAll(async () => {
  server = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false });
  await server.listen({ host: '127.0.0.1', port: 0 });
  port = (server.server.address() as AddressInfo).port;
  const { size } = await readHead(database.pool);
  const width = Math.min(size, 256);
  hashTile = width === 256 ? '/v1/log/tile/0/000' : `/v1/log/tile/0/000.p/${width}`;
  entryBundle = width === 256 ? '/v1/log/tile/entries/000' : `/v1/log/tile/entries/000.p/${width}`;
});
afterAll(async () => {
  await server?.close();
});

/**
 * Sends `head` (then `body`, once `sendBodyWhen` is seen in what came back, or at once) and
 * collects what comes back until the server closes or `waitMs` passed.
 */
function exchange(head: string, options: { body?: string; sendBodyWhen?: string; until?: (text: string) => boolean; waitMs?: number } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    let bodySent = false;
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write(head);
      if (options.body !== undefined && options.sendBodyWhen === undefined) socket.write(options.body);
    });
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), options.waitMs ?? 5_000);
    socket.on('data', (chunk) => {
      text += String(chunk);
      if (!bodySent && options.body !== undefined && options.sendBodyWhen !== undefined && text.includes(options.sendBodyWhen)) {
        bodySent = true;
        socket.write(options.body);
      }
      if (options.until?.(text) === true) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => {});
  });
}

const lines = (...parts: string[]) => `${parts.join('\r\n')}\r\n\r\n`;
/** The status codes of the answers in `text`, in order (a 100 included). */
const statusesIn = (text: string) => [...text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((match) => Number(match[1]));
/** A header of the first answer in `text` whose status is `status`. */
function headerIn(text: string, status: number, name: string): string | undefined {
  const start = text.indexOf(`HTTP/1.1 ${status} `);
  if (start === -1) return undefined;
  const head = text.slice(start, text.indexOf('\r\n\r\n', start));
  return new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1]?.trim();
}
const siteBody = JSON.stringify({ name: 'Continue DC', province: 'Zhejiang', city: 'Hangzhou', latitude: 30.3, longitude: 120.2, capacityUnits: 10 });
const origin = 'https://verifier.example';

describe("the log's reads from a page on another origin (CORS)", () => {
  it('carry Access-Control-Allow-Origin: * on every GET and HEAD, problems included, and never allow credentials', async () => {
    const reads = [
      { method: 'GET' as const, url: hashTile, status: 200 },
      { method: 'HEAD' as const, url: hashTile, status: 200 },
      { method: 'GET' as const, url: '/v1/log/proof/inclusion?index=0&size=1', status: 200 },
      { method: 'GET' as const, url: '/v1/log/keys', status: 200 },
      // A tile not there yet: the page must read the 404 to know to come back.
      { method: 'GET' as const, url: '/v1/log/tile/0/999', status: 404 },
      // This test server has no log key: the checkpoint's 404 is read like any answer.
      { method: 'GET' as const, url: '/v1/log/checkpoint', status: 404 },
      { method: 'GET' as const, url: '/v1/log/proof/inclusion?index=x', status: 400 },
      // An entry bundle: with the token the page holds, and refused without one.
      { method: 'GET' as const, url: entryBundle, token: api.tokens.auditor, status: 200 },
      { method: 'GET' as const, url: entryBundle, status: 401 },
      // Answered outside the log's routes (the HTTP security review): no route takes the path,
      // or not that method, or the router refuses its path.
      { method: 'GET' as const, url: '/v1/log/nope', status: 404 },
      { method: 'HEAD' as const, url: '/v1/log/nope', status: 404 },
      { method: 'GET' as const, url: '/v1/log/cosignatures', status: 405 },
      { method: 'GET' as const, url: '/v1/log/tile/%ZZ', status: 400 },
      { method: 'GET' as const, url: `/v1/log/events/${'9'.repeat(200)}/proof`, status: 400 },
    ];
    for (const read of reads) {
      const response = await api.request({ ...read, headers: { origin } });
      const where = `${read.method} ${read.url}`;
      expect(response.statusCode, where).toBe(read.status);
      expect(response.headers['access-control-allow-origin'], where).toBe('*');
      expect(String(response.headers['access-control-expose-headers']).split(', '), where).toEqual(expect.arrayContaining(['Retry-After', 'X-Request-Id', 'X-Chipledger-Demo']));
      expect(response.headers['access-control-allow-credentials'], where).toBeUndefined();
    }
  });

  it('answers a preflight of a log path 204, allowing GET, HEAD and a bearer token; an OPTIONS that is no preflight stays 405', async () => {
    for (const url of [entryBundle, hashTile, '/v1/log/checkpoint', '/v1/log/proof/consistency?from=1&to=2', '/v1/log/events/0/proof']) {
      const preflight = await api.app.inject({ method: 'OPTIONS', url, headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
      expect(preflight.statusCode, url).toBe(204);
      expect(preflight.headers, url).toMatchObject({ 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, HEAD', 'access-control-allow-headers': 'Authorization' });
      expect(preflight.headers['access-control-allow-credentials'], url).toBeUndefined();
      expect(preflight.headers['x-request-id'], url).toBeDefined();
      expect(preflight.body, url).toBe('');
    }
    const plain = await api.app.inject({ method: 'OPTIONS', url: '/v1/log/checkpoint' });
    expect([plain.statusCode, plain.headers.allow]).toEqual([405, 'GET, HEAD']);
  });

  it('are the only ones: the authenticated API sends no CORS header, and its preflights (and a witness\'s POST\'s) stay 405', async () => {
    const read = await api.request({ method: 'GET', url: '/v1/licences', token: api.tokens.auditor, headers: { origin } });
    expect(read.statusCode).toBe(200);
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
    for (const url of ['/v1/licences', '/v1/sites', '/v1/log/cosignatures', '/v1/nothing-here', '/healthz']) {
      const preflight = await api.app.inject({ method: 'OPTIONS', url, headers: { origin, 'access-control-request-method': 'POST' } });
      expect(preflight.statusCode, url).toBe(url === '/v1/nothing-here' ? 404 : 405);
      expect(preflight.headers['access-control-allow-origin'], url).toBeUndefined();
    }
    const witness = await api.app.inject({ method: 'POST', url: '/v1/log/cosignatures', payload: 'a note', headers: { 'content-type': 'text/plain', origin } });
    expect(witness.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('an absolute-form request target (RFC 9112 §3.2.2)', () => {
  it('is served as its path: a tile, an entry bundle, a 405 with Allow, a 404', async () => {
    const absolute = (method: string, path: string, ...headers: string[]) => exchange(lines(`${method} http://127.0.0.1:${port}${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close', ...headers));
    const origin = await exchange(lines(`GET ${hashTile} HTTP/1.1`, 'Host: x', 'Connection: close'));
    const tile = await absolute('GET', hashTile);
    expect(statusesIn(tile.text), tile.text.slice(0, 300)).toEqual([200]);
    expect(tile.text.slice(tile.text.indexOf('\r\n\r\n'))).toBe(origin.text.slice(origin.text.indexOf('\r\n\r\n')));
    expect(statusesIn((await absolute('GET', entryBundle, `Authorization: Bearer ${api.tokens.auditor}`)).text)).toEqual([200]);
    const wrongMethod = await absolute('PUT', '/v1/licences');
    expect(statusesIn(wrongMethod.text)).toEqual([405]);
    expect(headerIn(wrongMethod.text, 405, 'allow')).toBe('GET, HEAD, POST');
    expect(statusesIn((await absolute('GET', '/v1/nothing-here')).text)).toEqual([404]);
  });

  it('loses only its scheme and authority: the path and the query are kept as sent', () => {
    expect(originForm('http://127.0.0.1:8080/v1/log/tile/0/%30%30%30?x=1')).toBe('/v1/log/tile/0/%30%30%30?x=1');
    expect(originForm('HTTPS://user@host/v1/licences')).toBe('/v1/licences');
    expect(originForm('http://host')).toBe('/');
    expect(originForm('http://host?x=1')).toBe('/?x=1');
    expect(originForm('/v1/licences?limit=1')).toBe('/v1/licences?limit=1');
    expect(originForm('*')).toBe('*');
  });
});

describe('behind a path prefix', () => {
  it('the document\'s server and the docs page\'s link resolve under the prefix', () => {
    const document = buildOpenApiDocument() as { servers: Array<{ url: string }> };
    expect(document.servers.map((entry) => new URL(entry.url, 'https://proxy.example/chipledger/v1/openapi.json').href)).toEqual(['https://proxy.example/chipledger/']);
    const page = renderDocsPage(document);
    const links = [...page.matchAll(/href="([^"]*)"/g)].map((match) => match[1]!);
    expect(links).toContain('openapi.json');
    for (const link of links) expect(new URL(link, 'https://proxy.example/chipledger/v1/docs').pathname, link).toMatch(/^\/chipledger\//);
  });
});

describe('Expect: 100-continue', () => {
  const upload = (token: string, ...headers: string[]) => lines(
    'POST /v1/sites HTTP/1.1', 'Host: x', `Authorization: Bearer ${token}`, 'Content-Type: application/json', 'Expect: 100-continue', ...headers,
  );

  it('is answered with the refusal, not 100, when the token, the role, the key or the size refuses the request', async () => {
    const unknownToken = `clt_TOK-99_${'A'.repeat(43)}`;
    for (const [head, status] of [
      [upload(unknownToken, 'Idempotency-Key: continue-1', `Content-Length: ${siteBody.length}`), 401],
      [upload(api.tokens.auditor, 'Idempotency-Key: continue-2', `Content-Length: ${siteBody.length}`), 403],
      [upload(api.tokens.recipient, `Content-Length: ${siteBody.length}`), 400],
      [upload(api.tokens.recipient, 'Idempotency-Key: continue-3', `Content-Length: ${limits.requestBodyBytesMax + 1}`), 413],
    ] as const) {
      // The body is never sent: a server that said 100 first would wait for it.
      const { text, closed } = await exchange(head, { until: (seen) => statusesIn(seen).some((code) => code >= 200) && seen.includes('}') });
      expect(statusesIn(text), text.slice(0, 200)).toEqual([status]);
      expect(closed || text.includes('Connection: close') || text.includes('connection: close'), text.slice(0, 300)).toBe(true);
    }
  });

  it('is answered 100 once the request is accepted, and the body then read', async () => {
    const { text } = await exchange(upload(api.tokens.recipient, 'Idempotency-Key: continue-ok', `Content-Length: ${siteBody.length}`), {
      body: siteBody, sendBodyWhen: '100 Continue', until: (seen) => statusesIn(seen).includes(201) && seen.trimEnd().endsWith('}'),
    });
    expect(statusesIn(text)).toEqual([100, 201]);
    // HTTP/1.0 has no 1xx: such a client is answered, never told to continue.
    const { text: older } = await exchange(lines('POST /v1/sites HTTP/1.0', `Authorization: Bearer ${api.tokens.recipient}`, 'Idempotency-Key: continue-1.0', 'Content-Type: application/json', 'Expect: 100-continue', `Content-Length: ${siteBody.length}`), { body: siteBody });
    expect([...older.matchAll(/^HTTP\/1\.[01] (\d{3}) /gm)].map((match) => Number(match[1]))).toEqual([201]);
  });
});

describe('answers written straight to the socket', () => {
  it('carry Date (RFC 9110 §6.6.1); the 417 also an X-Request-Id', async () => {
    for (const request of ['GARBAGE\r\n\r\n', 'CONNECT x:80 HTTP/1.1\r\nHost: x:80\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n']) {
      const { text } = await exchange(request, { until: (seen) => seen.includes('}') });
      const status = statusesIn(text)[0]!;
      const date = Date.parse(headerIn(text, status, 'date') ?? '');
      expect(Math.abs(date - Date.now()), request).toBeLessThan(60_000);
      if (status === 417) expect(headerIn(text, 417, 'x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
  });
});

describe("the 401's challenge", () => {
  it('says error="invalid_token" when a bearer token was sent and refused, and nothing more otherwise (RFC 6750 §3.1)', async () => {
    for (const [authorization, challenge] of [
      [undefined, 'Bearer realm="chipledger"'],
      ['Basic dXNlcjpwYXNz', 'Bearer realm="chipledger"'],
      ['Bearer not-a-token', 'Bearer realm="chipledger", error="invalid_token"'],
      [`bearer clt_TOK-99_${'A'.repeat(43)}`, 'Bearer realm="chipledger", error="invalid_token"'],
    ] as const) {
      const response = await api.request({ method: 'GET', url: '/v1/licences', headers: authorization === undefined ? {} : { authorization } });
      expect(response.statusCode, authorization).toBe(401);
      expect(response.headers['www-authenticate'], authorization).toBe(challenge);
    }
  });
});

describe('what a token was shown', () => {
  it('is kept by no cache (private, no-store); the log keeps its own cache headers, problems their no-store', async () => {
    for (const url of ['/v1/licences', `/v1/licences/${api.world.exportLicenceId}`, '/v1/sites', '/v1/events?limit=1']) {
      const response = await api.request({ method: 'GET', url, token: api.tokens.auditor });
      expect([response.statusCode, response.headers['cache-control']], url).toEqual([200, 'private, no-store']);
    }
    const made = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, body: JSON.parse(siteBody) });
    expect([made.statusCode, made.headers['cache-control']]).toEqual([201, 'private, no-store']);
    const refused = await api.request({ method: 'GET', url: '/v1/licences/L-nothing', token: api.tokens.auditor });
    expect([refused.statusCode, refused.headers['cache-control']]).toEqual([404, 'no-store']);
    expect((await api.request({ method: 'GET', url: entryBundle, token: api.tokens.auditor })).headers['cache-control']).toBe('private, max-age=31536000, immutable');
    expect((await api.request({ method: 'GET', url: hashTile })).headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });
});
