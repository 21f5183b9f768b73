/**
 * Every answer names its request (X-Request-Id: a random UUID, the reqId of its log lines), and
 * a 500 quotes it in its detail, so that a client's report finds the one line that says what
 * failed, in any server's log, after any restart (the observability review: a 500 said "the
 * failure was logged" and gave nothing to find it by; fastify's reqId "req-nz" restarts at every
 * start and was never sent). That line names the organisation and the Idempotency-Key, never
 * the token, and never the row values a PostgreSQL error's detail quotes.
 */
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import { systemActor } from '../ledger/permissions.ts';
import { buildServer, requestIdHeader } from './app.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => { world = made; database = madeDatabase; });

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** What the injected failure quotes, as PostgreSQL's "Failing row contains (…)" quotes a row. */
const rowValue = 'Jade Harbour Trading Co., 17 Quay Road';

let app: FastifyInstance;
let lines: Array<Record<string, unknown>>;
let secret: string;

beforeAll(async () => {
  lines = [];
  const logger = pino({ level: 'warn' }, new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }));
  app = await buildServer({ ledger: world.ledger, pool: database.pool, logger });
  secret = String(expectOk(await world.ledger.submit('token.create', { organisationId: world.actors.alpha.orgId, role: 'recipient', label: 'request-ids' }, systemActor)).secret);
});
afterAll(async () => {
  await app?.close();
});

describe('X-Request-Id', () => {
  it('is on every answer, a fresh random UUID each time: answers, problems, refusals before any route', async () => {
    const answers = await Promise.all([
      app.inject({ method: 'GET', url: '/healthz' }),
      app.inject({ method: 'GET', url: '/metrics' }),
      app.inject({ method: 'GET', url: '/v1/licences' }), // 401
      app.inject({ method: 'GET', url: '/v1/nowhere' }), // 404
      app.inject({ method: 'DELETE', url: '/v1/licences' }), // 405
      app.inject({ method: 'GET', url: '/v1/licences/%E0%A4%A' }), // the router's 400
      app.inject({ method: 'GET', url: '/v1/licences', headers: { authorization: `Bearer ${secret}` } }),
    ]);
    expect(answers.map((answer) => answer.statusCode)).toEqual([200, 200, 401, 404, 405, 400, 200]);
    const ids = answers.map((answer) => String(answer.headers[requestIdHeader]));
    for (const id of ids) expect(id).toMatch(uuid);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is never the one a client sends: the id a 500 quotes must find that request alone', async () => {
    const answer = await app.inject({ method: 'GET', url: '/healthz', headers: { [requestIdHeader]: 'the-same-for-everyone' } });
    expect(answer.headers[requestIdHeader]).toMatch(uuid);
  });
});

describe('a 500', () => {
  it('quotes the request id it was logged under; the line names the organisation and the Idempotency-Key, not the token, nor the row values of the PostgreSQL error', async () => {
    // A failure the ledger does not recognise (XX000), with a detail that quotes the row as
    // PostgreSQL's constraint errors do, and the PL/pgSQL context (where) of the trigger.
    await database.pool.query(`
      CREATE FUNCTION request_ids_boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.name = 'Boom DC' THEN
          RAISE EXCEPTION 'injected internal error' USING ERRCODE = 'XX000', TABLE = 'sites', CONSTRAINT = 'request_ids_boom',
            DETAIL = format('Failing row contains (%s)', ${"'" + rowValue + "'"});
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER request_ids_boom BEFORE INSERT ON sites FOR EACH ROW EXECUTE FUNCTION request_ids_boom()`);
    try {
      const answer = await app.inject({
        method: 'POST', url: '/v1/sites',
        headers: { authorization: `Bearer ${secret}`, 'idempotency-key': 'report-me-7', 'content-type': 'application/json' },
        payload: { name: 'Boom DC', province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10 },
      });
      expect(answer.statusCode, answer.body).toBe(500);
      const id = String(answer.headers[requestIdHeader]);
      expect(id).toMatch(uuid);
      expect(answer.json()).toMatchObject({ code: 'internal', detail: `the server failed to answer this request; the failure was logged under request id ${id}`, details: { requestId: id } });
      const logged = lines.filter((line) => line.reqId === id);
      expect(logged.map((line) => line.msg)).toEqual(['unhandled error while answering a request']);
      expect(logged[0]).toMatchObject({ organisationId: world.actors.alpha.orgId, idempotencyKey: 'report-me-7', route: '/v1/sites' });
      expect(logged[0]!.err).toMatchObject({ code: 'XX000', table: 'sites', constraint: 'request_ids_boom', message: 'injected internal error' });
      const text = JSON.stringify(logged);
      expect(text).not.toContain(secret);
      expect(text).not.toContain('Jade Harbour');
      expect(text).not.toContain('PL/pgSQL function');
    } finally {
      await database.pool.query('DROP TRIGGER request_ids_boom ON sites; DROP FUNCTION request_ids_boom()');
    }
  });

  it('logs a token secret sent as the Idempotency-Key of a read that fails cut, as in a URL (reads never look at the key)', async () => {
    const failing = new Proxy(database.pool, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver);
        return async () => { throw Object.assign(new Error('injected internal error'), { code: 'XX000' }); };
      },
    });
    const local: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write(chunk: Buffer, _encoding, done) { local.push(chunk.toString('utf8')); done(); } }));
    const failingApp = await buildServer({ ledger: world.ledger, pool: failing, logger });
    try {
      const sent = 'clt_TOK-1_aVerySecretValueThatIsAToken0123456789abcdef';
      const answer = await failingApp.inject({ method: 'GET', url: '/v1/log/keys', headers: { 'idempotency-key': sent } });
      expect(answer.statusCode).toBe(500);
      expect(local.join('')).toContain('"idempotencyKey":"clt_TOK-1_[redacted]"');
      expect(local.join('')).not.toContain(sent);
    } finally {
      await failingApp.close();
    }
  });
});
