import { createHash } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { DomainError, errorCodes } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import type { Pool } from '../store/pool.ts';
import { buildServer } from './app.ts';
import { TokenVerifier } from './auth.ts';
import { commandRoutes } from './commands.ts';
import { problemCodes } from './problem.ts';
import { queryRoutes } from './queries.ts';
import { answerChecker } from '../../test/support/openapi-check.ts';
import { buildApiWorld, inject, type ApiWorld } from '../../test/support/server.ts';
import { until } from '../../test/support/until.ts';

let database: TestDatabase;
let api: ApiWorld;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await buildApiWorld(database.pool, { demo: true });
});
afterAll(async () => {
  await api?.app.close();
  await api?.world.ledger.close();
  await database?.drop();
});

/** Follows nextCursor to the end; fails on a repeated key or a page over the limit. */
async function walk(url: string, token: string, limit: number, keyOf: (item: Record<string, unknown>) => string | number): Promise<Array<string | number>> {
  const keys: Array<string | number> = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1_000; pages += 1) {
    const separator = url.includes('?') ? '&' : '?';
    const response = await api.request({ method: 'GET', url: `${url}${separator}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, token });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json() as { items: Array<Record<string, unknown>>; nextCursor: string | null };
    expect(body.items.length).toBeLessThanOrEqual(limit);
    keys.push(...body.items.map(keyOf));
    cursor = body.nextCursor;
    if (cursor === null) break;
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
  }
  expect(new Set(keys).size).toBe(keys.length);
  return keys;
}

describe('pagination', () => {
  beforeAll(async () => {
    for (let index = 0; index < 23; index += 1) await api.shipment(index % 2 === 0 ? 'own' : 'other', 'booked', 4);
    const { run, actors, exportLicenceId } = api.world;
    for (let units = 90_001; units < 90_006; units += 1) await run('licence.amend', { licenceId: exportLicenceId, reason: 'calibration', authorisedUnits: units }, actors.bis);
  });

  it('walks every page of every list without duplicates, in order, for each role', async () => {
    const count = async (sql: string, params: unknown[] = []) => (await database.pool.query<{ n: number }>(sql, params)).rows[0]!.n;
    const bySeq = (item: Record<string, unknown>) => item.createdSeq as number;
    const admin = await walk('/v1/shipments', api.tokens.authority_admin, 7, bySeq);
    expect(admin.length).toBe(await count('SELECT count(*)::int AS n FROM shipments'));
    expect([...admin].sort((a, b) => Number(a) - Number(b))).toEqual(admin);
    const exporter = await walk('/v1/shipments', api.tokens.exporter, 5, bySeq);
    expect(exporter.length).toBe(await count('SELECT count(*)::int AS n FROM shipments WHERE exporter_org_id = $1', [api.orgs.exporter]));
    const units = await walk('/v1/units', api.tokens.recipient, 6, (item) => item.serial as string);
    expect(units.length).toBe(await count('SELECT count(*)::int AS n FROM units WHERE recipient_org_id = $1', [api.orgs.alpha]));
    expect([...units].sort()).toEqual(units);
    const events = await walk('/v1/events', api.tokens.auditor, 9, (item) => item.seq as number);
    expect(events).toEqual(Array.from({ length: await count('SELECT size::int AS n FROM log_head') }, (_, index) => index));
    const versions = await walk(`/v1/licences/${api.world.exportLicenceId}/versions`, api.tokens.exporter, 2, (item) => item.version as number);
    expect(versions).toEqual([1, 2, 3, 4, 5, 6]);
    const serials = await walk(`/v1/shipments/${api.shipments.own}/serials`, api.tokens.recipient, 2, (item) => item.serial as string);
    expect(serials.length).toBe(3);
    for (const url of ['/v1/organisations', '/v1/products', '/v1/licences', '/v1/allocations', '/v1/sites', '/v1/reports/utilisation']) {
      expect((await walk(url, api.tokens.authority_officer, 2, (item) => String(item.createdSeq ?? item.licenceId))).length).toBeGreaterThan(0);
    }
  });

  it('accepts exactly pageSizeMax and defaults to pageSizeDefault', async () => {
    const full = await api.request({ method: 'GET', url: `/v1/events?limit=${limits.pageSizeMax}`, token: api.tokens.auditor });
    expect(full.statusCode).toBe(200);
    expect(full.json().items.length).toBeLessThanOrEqual(limits.pageSizeMax);
    const plain = await api.request({ method: 'GET', url: '/v1/events', token: api.tokens.auditor });
    expect(plain.json().items.length).toBe(Math.min(limits.pageSizeDefault, (await database.pool.query('SELECT size FROM log_head')).rows[0].size));
  });
});

describe('presentation', () => {
  it('marks demo data on every row and in a header', async () => {
    // Rows are marked as demo by the loader, which submits to the ledger directly.
    const site = { name: 'Demo DC', province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10 };
    const siteId = String((await api.world.run('site.register', { ...site, demo: true }, api.world.actors.alpha)).siteId);
    const listed = await api.request({ method: 'GET', url: '/v1/sites', token: api.tokens.recipient });
    expect(listed.headers['x-chipledger-demo']).toBe('true');
    const sites = listed.json().items as Array<{ id: string; demo: boolean }>;
    expect(sites.find((row) => row.id === siteId)?.demo).toBe(true);
    expect(sites.every((row) => typeof row.demo === 'boolean')).toBe(true);
    for (const url of ['/v1/organisations', '/v1/products', '/v1/licences', '/v1/allocations', '/v1/shipments', '/v1/units', '/v1/events', '/v1/reports/utilisation']) {
      const items = (await api.request({ method: 'GET', url, token: api.tokens.auditor })).json().items as Array<{ demo: unknown }>;
      expect(items.length, url).toBeGreaterThan(0);
      expect(items.every((row) => typeof row.demo === 'boolean'), url).toBe(true);
    }
  });

  it('lets no client of the API mark its records as demo data', async () => {
    const site = { name: 'Not Demo DC', province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10 };
    for (const demo of [true, false]) {
      const refused = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, body: { ...site, demo } });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().detail).toMatch(/demo is set by the demo loader only/);
    }
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    const bodies = Object.values(document.paths as Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: object } }> } }>>)
      .flatMap((methods) => Object.values(methods)).flatMap((operation) => Object.values(operation.requestBody?.content ?? {}));
    expect(bodies.length).toBeGreaterThan(10);
    expect(bodies.filter((body) => 'demo' in (body.schema.properties ?? {}))).toEqual([]);
  });

  it('says where a made record is read, in Location, on the answer and on its replay', async () => {
    const site = { name: 'Located DC', province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10 };
    const post = { method: 'POST' as const, url: '/v1/sites', token: api.tokens.recipient, key: 'located-1', body: site };
    const [made, replayed] = [await api.request(post), await api.request(post)];
    expect(made.statusCode).toBe(201);
    // Relative to the request's URL, so it holds under any path prefix a proxy serves the API at.
    expect(made.headers.location).toBe(`sites/${made.json().siteId}`);
    expect(new URL(String(made.headers.location), 'https://proxy.example/chipledger/v1/sites').pathname).toBe(`/chipledger/v1/sites/${made.json().siteId}`);
    expect([replayed.headers['idempotent-replayed'], replayed.headers.location]).toEqual(['true', made.headers.location]);
    const read = await api.request({ method: 'GET', url: new URL(String(made.headers.location), 'http://server.test/v1/sites').pathname, token: api.tokens.recipient });
    expect([read.statusCode, read.json().id]).toEqual([200, made.json().siteId]);
    // The document says which answers carry it: those whose record has a GET of its own.
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    const located = Object.entries(document.paths as Record<string, { post?: { responses: Record<string, { headers?: Record<string, unknown> }> } }>)
      .filter(([, methods]) => methods.post?.responses['201']?.headers?.Location !== undefined).map(([path]) => path).sort();
    expect(located).toEqual(['/v1/allocations', '/v1/licences', '/v1/shipments', '/v1/sites']);
    for (const path of located) expect(document.paths[`${path}/{id}`]?.get, path).toBeDefined();
  });

  it("shows a licence version's terms under the names the licence is read with", async () => {
    const licence = (await api.request({ method: 'GET', url: `/v1/licences/${api.world.importLicenceId}`, token: api.tokens.authority_officer })).json();
    const versions = (await api.request({ method: 'GET', url: `/v1/licences/${api.world.importLicenceId}/versions`, token: api.tokens.authority_officer })).json().items;
    const newest = versions.find((version: { version: number }) => version.version === licence.version);
    expect(newest.terms).toMatchObject({
      holderId: licence.holderId, authorityId: licence.authorityId, productIds: licence.productIds, authorisedUnits: licence.authorisedUnits,
      validFrom: licence.validFrom, validTo: licence.validTo, conditions: licence.conditions, riders: licence.riders,
    });
    expect([...newest.terms.parties].sort((a: { organisationId: string }, b: { organisationId: string }) => a.organisationId.localeCompare(b.organisationId)))
      .toEqual([...licence.parties].sort((a: { organisationId: string }, b: { organisationId: string }) => a.organisationId.localeCompare(b.organisationId)));
    for (const stored of ['holderOrgId', 'authorityOrgId']) expect(newest.terms, stored).not.toHaveProperty(stored);
  });

  it('shows a licence with its parties, its visible allocations, and events with their canonical bytes', async () => {
    const licence = (await api.request({ method: 'GET', url: `/v1/licences/${api.world.importLicenceId}`, token: api.tokens.authority_officer })).json();
    expect(licence).toMatchObject({ id: api.world.importLicenceId, direction: 'import', holderId: api.orgs.alpha });
    expect(licence.parties).toEqual(expect.arrayContaining([{ organisationId: api.orgs.beta, role: 'consignee' }]));
    expect(licence.allocations.map((row: { recipientId: string }) => row.recipientId).sort()).toEqual([api.orgs.alpha, api.orgs.beta].sort());
    const event = (await api.request({ method: 'GET', url: '/v1/events?limit=1', token: api.tokens.auditor })).json().items[0];
    expect(event.leafIndex).toBe(event.seq);
    expect(JSON.parse(Buffer.from(event.canonical, 'base64').toString('utf8'))).toEqual(event.body);
    expect(Object.keys(licence).every((key) => !key.includes('_'))).toBe(true);
  });

  it('returns a token secret once, and a retry of the same request is told so', async () => {
    const request = { method: 'POST' as const, url: '/v1/tokens', token: api.tokens.authority_admin, key: 'token-key-1', body: { organisationId: api.orgs.exporter, role: 'exporter', label: 'ci' } };
    const first = await api.request(request);
    expect(first.statusCode).toBe(201);
    expect(first.json().secret).toMatch(/^clt_TOK-\d+_/);
    const retry = await api.request(request);
    expect(retry.statusCode).toBe(409);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).not.toContain(first.json().secret);
    expect((await api.request({ method: 'GET', url: '/v1/shipments', token: first.json().secret })).statusCode).toBe(200);
  });
});

describe('problems', () => {
  it('maps every error code to one status', () => {
    for (const code of errorCodes) expect(problemCodes[code].status).toBeGreaterThanOrEqual(400);
    expect(problemCodes.idempotency_mismatch.status).toBe(422);
    expect(problemCodes.payload_too_large.status).toBe(413);
  });

  it('answers overloaded and unavailable with 503 and Retry-After', async () => {
    for (const code of ['overloaded', 'unavailable'] as const) {
      const ledger = { submit: async () => ({ ok: false, replayed: false, error: new DomainError(code, `the ledger is ${code}`) }), sequencer: api.world.ledger.sequencer, log: api.world.ledger.log } as unknown as Ledger;
      const app = await buildServer({ ledger, pool: database.pool, logger: false });
      const response = await inject(app, { method: 'POST', url: '/v1/ledger/sweep', token: api.tokens.authority_admin });
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.json()).toMatchObject({ code, status: 503, title: problemCodes[code].title });
      await app.close();
    }
    // And the document says so: every operation's 503 carries Retry-After.
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    expect(document.components.responses.Unavailable.headers['Retry-After']).toEqual({ $ref: '#/components/headers/Retry-After' });
    expect(document.components.headers['Retry-After']).toMatchObject({ required: true, schema: { type: 'integer', minimum: 1 } });
    const operations = Object.values(document.paths as Record<string, Record<string, { responses: Record<string, { $ref?: string }> }>>).flatMap((methods) => Object.values(methods));
    const with503 = operations.filter((operation) => operation.responses['503'] !== undefined);
    expect(with503.length).toBeGreaterThan(operations.length / 2);
    for (const operation of with503) expect(operation.responses['503']).toEqual({ $ref: '#/components/responses/Unavailable' });
  });

  it('answers a request that arrives while the server closes with a 503 problem, Retry-After and Connection: close', async () => {
    // Two requests on one connection: the first holds the server open (its database call
    // waits at a gate) while close() begins; the second is sent after that.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    let atGate = false;
    const gated = new Proxy(database.pool, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver);
        return async (...args: unknown[]) => {
          atGate = true;
          await gate;
          return (target.query as (...a: unknown[]) => unknown)(...args);
        };
      },
    }) as Pool;
    const app = await buildServer({ ledger: api.world.ledger, pool: gated, logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const received: string[] = [];
    app.server.on('request', (request: { url?: string }) => received.push(String(request.url)));
    const { port } = app.server.address() as AddressInfo;
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (chunk) => { text += String(chunk); });
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // Each step waits for what the next needs, not a fixed pause: a worker stalled past a
    // pause (a long GC, a loaded host) had close() begin before the first request was read
    // (its idle connection closed at once), or the gate open before the second was read.
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('the first request waits at the gate', () => atGate, { withinMs: 10_000 });
    const closed = app.close();
    // The server stops listening once the preClose hooks (closing.ts's) have run.
    await until('the close has begun', () => !app.server.listening, { withinMs: 10_000 });
    socket.write(`GET /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${api.tokens.auditor}\r\n\r\n`);
    await until('the server has read the second request', () => received.includes('/v1/products'), { withinMs: 10_000 });
    release();
    await ended;
    await closed;
    const second = text.slice(text.indexOf('HTTP/1.1', 1));
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    expect(second).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    expect(second).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(second).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'unavailable', rule: 'server-closing', status: 503, instance: '/v1/products' });
  });

  it('answers what the HTTP parser refuses (a malformed request, headers over the bound) with problem+json, then closes', async () => {
    const app = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = app.server.address() as AddressInfo;
      const exchange = (request: string) => new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port }, () => socket.write(request));
        let text = '';
        socket.on('data', (chunk) => { text += String(chunk); });
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      for (const [request, status, code] of [
        ['NOT HTTP AT ALL\r\n\r\n', 400, 'invalid_input'],
        [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 431, 'headers_too_large'],
      ] as const) {
        const answer = await exchange(request);
        const [head, body] = answer.split('\r\n\r\n');
        expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
        expect(head).toMatch(/\r\nContent-Type: application\/problem\+json\r\n/);
        expect(JSON.parse(body!)).toMatchObject({ status, code, type: `https://chipledger.dev/problems/${code}` });
      }
    } finally {
      await app.close();
    }
  });

  it('answers an unknown failure with a plain 500, logs it, and never logs the token', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } }));
    const failing = new Proxy(database.pool, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver);
        return (text: string, ...rest: unknown[]) => (String(text).includes('FROM products') ? Promise.reject(new Error('disk on fire at /var/lib/secret')) : (target.query as (...args: unknown[]) => unknown)(text, ...rest));
      },
    }) as Pool;
    const app = await buildServer({ ledger: api.world.ledger, pool: failing, logger });
    const response = await inject(app, { method: 'GET', url: '/v1/products', token: api.tokens.auditor });
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ code: 'internal', status: 500 });
    expect(response.body).not.toContain('fire');
    expect(lines.join('')).toContain('disk on fire');
    expect(lines.join('')).not.toContain(api.tokens.auditor);
    await app.close();
  });

  it('reports an unreachable database on /healthz as 503', async () => {
    const broken = { query: () => Promise.reject(new Error('connection refused')) } as unknown as Pool;
    const app = await buildServer({ ledger: api.world.ledger, pool: broken, logger: false });
    const response = await inject(app, { method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(503);
    expect(response.json().code).toBe('unavailable');
    await app.close();
    expect((await api.request({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });
});

describe('documents', () => {
  it('serves an OpenAPI 3.1 document with every route, the problem schema and bearer auth', async () => {
    const response = await api.request({ method: 'GET', url: '/v1/openapi.json' });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.openapi).toBe('3.1.0');
    expect(document.info.title).toBeTruthy();
    expect(document.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(document.components.schemas.Problem.required).toEqual(expect.arrayContaining(['type', 'title', 'status', 'detail', 'code']));
    const path = (route: string) => route.replace(/:([A-Za-z]+)/g, '{$1}');
    for (const route of commandRoutes) {
      const operation = document.paths[path(route.path)]?.post;
      expect(operation, route.path).toBeDefined();
      expect(operation.parameters.some((parameter: { name: string }) => parameter.name === 'Idempotency-Key')).toBe(true);
      const schema = operation.requestBody.content['application/json'].schema;
      expect(schema.type).toBe('object');
      if (route.idField) expect(schema.properties[route.idField]).toBeUndefined();
    }
    for (const route of queryRoutes) expect(document.paths[path(route.path)]?.get, route.path).toBeDefined();
    expect(document.paths['/v1/shipments'].post.requestBody.content['application/json'].schema.properties.units).toMatchObject({ type: 'integer' });
    const operationIds = Object.values(document.paths).flatMap((methods) => Object.values(methods as Record<string, { operationId: string }>).map((operation) => operation.operationId));
    expect(new Set(operationIds).size).toBe(operationIds.length);
  });

  it('is a valid OpenAPI 3.1 document by the specification\'s own JSON Schema', async () => {
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    const result = await new Validator().validate(document);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it('gives every operation a default problem answer, for the statuses any route may send (500, 408, 431, 503)', async () => {
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    const resolve = (object: { $ref?: string }, kind: 'responses' | 'headers') => (object.$ref ? document.components[kind][object.$ref.split('/').pop()!] : object);
    const operations = Object.entries(document.paths as Record<string, Record<string, { responses: Record<string, { $ref?: string }> }>>)
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => [`${method} ${path}`, operation] as const));
    expect(operations.length).toBeGreaterThan(commandRoutes.length + queryRoutes.length);
    for (const [where, operation] of operations) {
      const fallback = operation.responses.default;
      expect(fallback, where).toBeDefined();
      expect(Object.keys(resolve(fallback!, 'responses').content), where).toEqual(['application/problem+json']);
    }
  });

  it('documents Idempotent-Replayed on every answer of a command, accepted or refused, as the server sends it', async () => {
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    const resolve = (object: { $ref?: string }, kind: 'responses' | 'headers') => (object.$ref ? document.components[kind][object.$ref.split('/').pop()!] : object);
    const replayedHeader = (response: { $ref?: string }) => {
      const header = resolve(response, 'responses').headers?.['Idempotent-Replayed'];
      return header === undefined ? undefined : resolve(header, 'headers');
    };
    const path = (route: string) => route.replace(/:([A-Za-z]+)/g, '{$1}');
    for (const route of commandRoutes) {
      const responses = document.paths[path(route.path)].post.responses as Record<string, { $ref?: string }>;
      for (const [status, response] of Object.entries(responses)) {
        // A 503 committed nothing, or did not learn the outcome, and a 401, a 415 (the body's
        // media type) and a 429 (the organisation's room) never reached the ledger: none is
        // remembered, so none is replayed.
        if (['503', '401', '415', '429'].includes(status)) {
          expect(replayedHeader(response), `${route.path} ${status}`).toBeUndefined();
          continue;
        }
        expect(replayedHeader(response), `${route.path} ${status}`).toMatchObject({ schema: { type: 'string', enum: ['true'] } });
      }
    }
    // A replayed refusal and a replayed acceptance, as the server answers them.
    const refused = { method: 'POST' as const, url: '/v1/tokens', token: api.tokens.authority_admin, key: 'openapi-replay-1', body: { organisationId: 'ORG-nonexistent', role: 'exporter', label: 'ci' } };
    const [first, again] = [await api.request(refused), await api.request(refused)];
    expect(first.statusCode).toBeGreaterThanOrEqual(400);
    expect([again.statusCode, again.headers['idempotent-replayed']]).toEqual([first.statusCode, 'true']);
    expect(replayedHeader(document.paths['/v1/tokens'].post.responses[String(again.statusCode)])).toBeDefined();
    const swept = { method: 'POST' as const, url: '/v1/ledger/sweep', token: api.tokens.authority_admin, key: 'openapi-replay-2' };
    const [sweep, sweepAgain] = [await api.request(swept), await api.request(swept)];
    expect([sweepAgain.statusCode, sweepAgain.headers['idempotent-replayed']]).toEqual([sweep.statusCode, 'true']);
    expect(replayedHeader(document.paths['/v1/ledger/sweep'].post.responses[String(sweep.statusCode)])).toBeDefined();
  });

  it('describes the answers of the routes outside /v1 too, and who may fetch a tile or an entry bundle', async () => {
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    const checker = answerChecker(document);
    for (const url of ['/healthz', '/v1/openapi.json', '/v1/docs', '/metrics']) {
      const real = await api.request({ method: 'GET', url });
      expect(real.statusCode, url).toBe(200);
      expect(checker.problemWith('GET', url, real), url).toBeNull();
    }
    // A body where the document describes none is caught.
    const answering = (body: string) => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body, json: () => JSON.parse(body) }) as unknown as Parameters<typeof checker.problemWith>[2];
    expect(checker.problemWith('GET', '/healthz', answering('{"status":"fine"}'))).toMatch(/must be equal to one of the allowed values/);
    const bare = structuredClone(document);
    delete bare.paths['/healthz'].get.responses['200'].content;
    expect(answerChecker(bare).problemWith('GET', '/healthz', answering('{"status":"ok"}'))).toMatch(/a body .* the document does not describe/);
    // A 401 says its scheme; no problem is cached.
    const unauthorized = document.components.responses.Unauthorized;
    expect(Object.keys(unauthorized.headers).sort()).toEqual(['Cache-Control', 'WWW-Authenticate', 'X-Request-Id']);
    for (const name of ['Problem', 'ReplayableProblem', 'Unavailable', 'Unauthorized']) expect(document.components.responses[name].headers['Cache-Control'], name).toBeDefined();
    // Every answer says its request's id (app.ts requestIdHeader): each one written out, and each problem by reference.
    for (const [name, response] of Object.entries(document.components.responses as Record<string, { headers: Record<string, unknown> }>)) expect(response.headers['X-Request-Id'], name).toBeDefined();
    for (const [path, methods] of Object.entries(document.paths as Record<string, Record<string, { responses: Record<string, { $ref?: string; headers?: Record<string, unknown> }> }>>)) {
      for (const [method, operation] of Object.entries(methods)) {
        for (const [status, response] of Object.entries(operation.responses)) expect(response.$ref ?? response.headers?.['X-Request-Id'], `${method} ${path} ${status}`).toBeDefined();
      }
    }
    const refused = await api.request({ method: 'GET', url: '/v1/licences' });
    expect([refused.statusCode, refused.headers['www-authenticate'], refused.headers['cache-control']]).toEqual([401, 'Bearer realm="chipledger"', 'no-store']);
    // Hash tiles are public, entry bundles need a token: both spelled out.
    expect(document.paths['/v1/log/tile/{path}'].get.security).toEqual([{}, { bearer: [] }]);
    // Only what the classifier gives.
    expect(document.components.schemas.Product.properties.eccn.enum).toEqual(['3A090.a', '3A090.b', 'not 3A090']);
  });

  it('describes the rules a request body must meet beyond its fields, so a body the document accepts is not refused for them', async () => {
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const bodySchema = (path: string) => document.paths[path].post.requestBody.content['application/json'].schema;
    const { world } = api;
    const site = { name: 'Doc DC', province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10 };
    const licence = {
      reference: 'DOC-1', direction: 'export', holderId: world.actors.exporter.orgId, productIds: [world.productId], origin: 'US', destination: 'CN',
      authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    };
    const allocation = { licenceId: world.exportLicenceId, recipientId: world.actors.alpha.orgId, units: 1 };
    const product = { model: 'Doc-1', vendor: 'Doc', parameters: { logicDieAreaMm2: 800, dramBandwidthGbS: 4800, designedForDatacenter: true } };
    const cases: Array<[string, string, string, Record<string, unknown>]> = [
      ['an empty name', '/v1/sites', api.tokens.recipient, { ...site, name: '' }],
      ['a blank name', '/v1/sites', api.tokens.recipient, { ...site, name: '   ' }],
      ['a value without its currency', '/v1/licences', api.tokens.authority_officer, { ...licence, valueMinor: 100 }],
      ['a period start without its end', '/v1/allocations', api.tokens.authority_officer, { ...allocation, periodStart: '2026-03-01' }],
      ['a datasheet with no rate', '/v1/products', api.tokens.authority_officer, product],
      ['a datasheet with both kinds of rate', '/v1/products', api.tokens.authority_officer, { ...product, parameters: { ...product.parameters, denseTops: 1000, bitLength: 8, denseRates: [{ denseTops: 1000, bitLength: 8 }] } }],
    ];
    for (const [what, path, token, body] of cases) {
      expect(ajv.validate(bodySchema(path), body), `${what}: the document accepts it`).toBe(false);
      const response = await api.request({ method: 'POST', url: path, token, key: `doc-rules-${what}`, body });
      expect(response.statusCode, `${what}: ${response.body}`).toBe(400);
    }
    // And the well-formed bodies pass the document.
    const rates = { ...product, parameters: { ...product.parameters, denseTops: 1000, bitLength: 8 } };
    for (const [path, body] of [['/v1/sites', site], ['/v1/licences', { ...licence, valueMinor: 100, currency: 'USD' }], ['/v1/allocations', { ...allocation, periodStart: '2026-03-01', periodEnd: '2026-03-31' }], ['/v1/products', rates]] as const) {
      expect(ajv.validate(bodySchema(path), body), `${path}: ${JSON.stringify(ajv.errors)}`).toBe(true);
    }
  });

  it('describes every answer field by field, so the check each API test runs can fail', async () => {
    const document = (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
    const checker = answerChecker(document);
    const real = await api.request({ method: 'GET', url: `/v1/shipments/${api.shipments.own}`, token: api.tokens.exporter });
    expect(checker.problemWith('GET', `/v1/shipments/${api.shipments.own}`, real)).toBeNull();
    const answering = (statusCode: number, body: unknown, contentType = 'application/json') =>
      ({ statusCode, headers: { 'content-type': contentType }, body: JSON.stringify(body), json: () => body }) as unknown as typeof real;
    const shipment = real.json();
    const { units: _units, ...missing } = shipment;
    const cases: Array<[string, ReturnType<typeof answering>, RegExp]> = [
      ['a field the document does not list', answering(200, { ...shipment, secretColumn: 1 }), /must NOT have additional properties/],
      ['a field missing', answering(200, missing), /must have required property 'units'/],
      ['a number as text', answering(200, { ...shipment, units: '5' }), /\/units must be integer/],
      ['a status outside its enum', answering(200, { ...shipment, status: 'lost' }), /\/status must be equal to one of the allowed values/],
      ['a status the operation does not list', answering(418, {}), /lists no 418 answer/],
      ['another content type', answering(200, shipment, 'text/html'), /answered text\/html/],
    ];
    for (const [what, response, message] of cases) expect(checker.problemWith('GET', `/v1/shipments/${api.shipments.own}`, response), what).toMatch(message);
    // A command's answer: the committed event's seq and what it made.
    expect(checker.problemWith('POST', '/v1/shipments', answering(201, { seq: 7, shipmentId: 'S-7', status: 'booked', units: 2, serialCount: 0 }))).toBeNull();
    expect(checker.problemWith('POST', '/v1/shipments', answering(201, { seq: 7, shipmentId: 'S-7', status: 'shipped', units: 2, serialCount: 0 }))).toMatch(/status must be equal to constant/);
    // A problem answer is checked against the problem schema.
    expect(checker.problemWith('POST', '/v1/shipments', answering(409, { title: 'x' }, 'application/problem+json'))).toMatch(/must have required property 'status'/);
  });

  it('serves a self-contained docs page listing the operations', async () => {
    const response = await api.request({ method: 'GET', url: '/v1/docs' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    for (const route of commandRoutes) expect(response.body).toContain(route.path.replace(/:([A-Za-z]+)/g, '{$1}'));
    // What each operation answers is written out, named schemas in place.
    const answers = [...response.body.matchAll(/<summary>answer<\/summary><pre>([^<]*)<\/pre>/g)].map((match) => match[1]!);
    expect(answers.length).toBe(commandRoutes.length + queryRoutes.length + 6); // and the log's keys, proofs and cosignatures, /healthz and the document itself
    expect(answers.some((answer) => answer.includes('&#34;nextCursor&#34;') && answer.includes('&#34;serialCount&#34;'))).toBe(true);
    expect(answers.join('')).not.toContain('$ref');
    expect(response.body).not.toMatch(/<script|<link|https?:\/\/(?!chipledger\.dev)/);
    // The one POST that takes no Idempotency-Key is named, and what a 503 means.
    expect(response.body).toMatch(/Idempotency-Key<\/code> header, except a witness's <code>POST \/v1\/log\/cosignatures/);
    expect(response.body).toContain('<code>Retry-After</code>');
  });

  it("lets the docs page apply its own style sheet and nothing else: the policy's hash is the served sheet's", async () => {
    const response = await api.request({ method: 'GET', url: '/v1/docs' });
    const sheets = [...response.body.matchAll(/<style>([^<]*)<\/style>/g)].map((match) => match[1]!);
    expect(sheets).toHaveLength(1);
    // A browser applies an inline sheet only if the SHA-256 of its text (as served) is in style-src.
    const allowed = `'sha256-${createHash('sha256').update(sheets[0]!).digest('base64')}'`;
    expect(response.headers['content-security-policy']).toBe(`default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; style-src ${allowed}`);
    // Style attributes need 'unsafe-hashes' and would be dropped: the page uses classes only.
    expect(response.body).not.toMatch(/\sstyle=/);
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });

  it('exposes Prometheus metrics for requests, the sequencer and the pool', async () => {
    await api.request({ method: 'GET', url: '/v1/shipments', token: api.tokens.exporter });
    const response = await api.request({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.body).toMatch(/chipledger_http_requests_total\{method="GET",route="\/v1\/shipments",status="200"\} \d+/);
    expect(response.body).toMatch(/chipledger_http_request_duration_seconds_bucket\{method="GET",route="\/v1\/shipments",le="\+Inf"\} \d+/);
    expect(response.body).toMatch(/chipledger_sequencer_batches_total \d+/);
    expect(response.body).toMatch(/chipledger_sequencer_cached_batches_total \d+/);
    expect(response.body).toMatch(/chipledger_pool_connections \d+/);
    for (const line of response.body.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [\d.e+-]+)$/);
  });
});

describe('token cache', () => {
  it('trusts a verified token for its TTL, then asks the database again', async () => {
    let now = 0;
    let lookups = 0;
    const counting = new Proxy(database.pool, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver);
        return (...args: unknown[]) => {
          lookups += 1;
          return (target.query as (...inner: unknown[]) => unknown)(...args);
        };
      },
    }) as Pool;
    const secret = String((await api.world.run('token.create', { organisationId: api.orgs.alpha, role: 'recipient', label: 'cache' }, systemActor)).secret);
    const verifier = new TokenVerifier(counting, { nowMs: () => now, ttlMs: 5_000, entriesMax: 2 });
    const actor = await verifier.verify(`Bearer ${secret}`);
    expect(actor).toMatchObject({ orgId: api.orgs.alpha, role: 'recipient' });
    await verifier.verify(`Bearer ${secret}`);
    expect(lookups).toBe(1);
    // Revoked by another process: still trusted within the TTL, refused after it.
    await api.world.run('token.revoke', { tokenId: actor.id }, systemActor);
    now = 4_999;
    await expect(verifier.verify(`Bearer ${secret}`)).resolves.toMatchObject({ id: actor.id });
    now = 5_001;
    await expect(verifier.verify(`Bearer ${secret}`)).rejects.toMatchObject({ code: 'unauthenticated' });
    // Bounded: the oldest entry goes first.
    for (const role of ['exporter', 'auditor'] as const) await verifier.verify(`Bearer ${api.tokens[role]}`);
    await verifier.verify(`Bearer ${api.tokens.recipient}`);
    expect(verifier.size).toBe(2);
  });
});

describe('history of one record', () => {
  it('lists the events of one shipment, in order, and only to those who may see it', async () => {
    const shipment = await api.shipment('own', 'delivered');
    const answer = await api.request({ method: 'GET', url: `/v1/events?subjectId=${shipment.id}`, token: api.tokens.exporter });
    expect(answer.statusCode).toBe(200);
    const kinds = (answer.json() as { items: Array<{ kind: string; subjectId: string }> }).items.map((item) => item.kind);
    expect(kinds).toEqual(['shipment.book', 'shipment.ship', 'shipment.clear', 'shipment.deliver']);
    const stranger = await api.request({ method: 'GET', url: `/v1/events?subjectId=${shipment.id}`, token: api.tokens.beta });
    expect((stranger.json() as { items: unknown[] }).items).toEqual([]);
    const bad = await api.request({ method: 'GET', url: '/v1/events?subjectId=%00', token: api.tokens.exporter });
    expect(bad.statusCode).toBe(400);
  });
});
