/**
 * A read that meets the write path's "not now" (isTransientDatabaseError) is answered as the
 * write path answers it: 503 `unavailable` with Retry-After, not 500 `internal` logged as a
 * bug. First for real: the operator's lock_timeout (ALTER DATABASE … SET lock_timeout, here
 * the connection's own) while a table is held under ACCESS EXCLUSIVE, as a migration, a
 * VACUUM FULL or an ALTER TABLE holds it. Then each other SQLSTATE, from a pool that fails
 * every read with it; a SQLSTATE that says a bug is still 500.
 */
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { systemActor } from '../ledger/permissions.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { buildServer } from './app.ts';

/** The operator's lock_timeout under test: short, so the test is. */
const lockTimeoutMs = 200;

let database: TestDatabase;
let world: World;
let auditorSecret: string;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  const made = await world.run('token.create', { organisationId: world.actors.auditor.orgId, role: 'auditor', label: 'read-lock-errors' }, systemActor);
  auditorSecret = String(made.secret);
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

/** A server on `pool`, and the lines it logs at error level (50) or above. */
async function serverOn(pool: Pool): Promise<{ app: FastifyInstance; errors: string[] }> {
  const errors: string[] = [];
  const lines = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '' && (JSON.parse(line) as { level: number }).level >= 50) errors.push(line);
      done();
    },
  });
  const app = await buildServer({ ledger: world.ledger, pool, logger: pino({ level: 'warn' }, lines) });
  return { app, errors };
}

function expectUnavailable(response: LightMyRequestResponse, code: string): void {
  expect(response.statusCode, response.body).toBe(503);
  expect(response.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  expect(response.json()).toMatchObject({ status: 503, code: 'unavailable' });
  expect(response.json().detail).toContain(`SQLSTATE ${code}`);
}

describe('reads under a table lock, with an operator\'s lock_timeout (55P03)', () => {
  let pool: Pool;
  let server: { app: FastifyInstance; errors: string[] };
  let locker: pg.Client;

  beforeAll(async () => {
    const url = new URL(database.url);
    url.searchParams.set('options', `-c lock_timeout=${lockTimeoutMs}`);
    pool = createPool({ url: url.toString(), connectionsMax: 4, applicationName: 'read-lock-errors' });
    server = await serverOn(pool);
    locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
  });
  afterAll(async () => {
    await locker?.end().catch(() => {});
    await server?.app.close();
    await pool?.end();
  });

  it('answers 503 unavailable with Retry-After while the lock is held, logs no error, and answers again once it is let go', async () => {
    const licence = { method: 'GET' as const, url: `/v1/licences/${world.exportLicenceId}`, headers: { authorization: `Bearer ${auditorSecret}` } };
    // The token is checked (and cached) before the lock: only the reads meet it.
    expect((await server.app.inject(licence)).statusCode).toBe(200);
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE licences, tlog_checkpoints IN ACCESS EXCLUSIVE MODE');
    try {
      expectUnavailable(await server.app.inject(licence), '55P03');
      expectUnavailable(await server.app.inject({ method: 'GET', url: '/v1/log/checkpoint' }), '55P03');
    } finally {
      await locker.query('ROLLBACK');
    }
    expect(server.errors).toEqual([]);
    expect((await server.app.inject(licence)).statusCode).toBe(200);
  });
});

/** The pool, except that every query fails as PostgreSQL fails a statement with `code`. */
function failingWith(pool: Pool, code: string, message: string): Pool {
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'query') return () => Promise.reject(Object.assign(new Error(message), { code, severity: 'ERROR' }));
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('reads that fail with another "not now" of the write path', () => {
  it.each([
    ['40P01', 'deadlock detected'],
    ['40001', 'could not serialize access due to concurrent update'],
    ['25P03', 'terminating connection due to idle-in-transaction timeout'],
    ['53100', 'could not extend file "base/16384/16385": No space left on device'],
    ['53200', 'out of memory'],
    ['57014', 'canceling statement due to user request'],
  ])('%s (%s): 503 unavailable with Retry-After, nothing logged as an error', async (code, message) => {
    const server = await serverOn(failingWith(database.pool, code, message));
    try {
      const response = await server.app.inject({ method: 'GET', url: '/v1/log/checkpoint' });
      expectUnavailable(response, code);
      // PostgreSQL's own words stay in the server: a full disk's name a file on it.
      expect(response.body).not.toContain('base/16384');
      expect(server.errors).toEqual([]);
    } finally {
      await server.app.close();
    }
  });

  it('a SQLSTATE that says a bug (42P01, a table not there) is still 500 internal, and logged', async () => {
    const server = await serverOn(failingWith(database.pool, '42P01', 'relation "tlog_checkpoints" does not exist'));
    try {
      const response = await server.app.inject({ method: 'GET', url: '/v1/log/checkpoint' });
      expect(response.statusCode, response.body).toBe(500);
      expect(response.json()).toMatchObject({ status: 500, code: 'internal' });
      expect(server.errors).toHaveLength(1);
    } finally {
      await server.app.close();
    }
  });
});
