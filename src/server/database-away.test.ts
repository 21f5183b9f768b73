/**
 * With its database away, the API says so: 503 `unavailable` with Retry-After, as the write
 * path does, not 500 `internal`. Here the API's read pool points at a port where nothing
 * listens (connections refused), while the ledger itself is healthy; the public log routes
 * need no token, so they reach the database with nothing cached in front of it. Then with
 * only the tile reads cut off: a tile or a proof that needs one is read through the API's
 * pool, not the ledger's unbounded one (which would have answered them 200 here).
 */
import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { readHead } from '../store/tlog-tables.ts';
import { buildServer } from './app.ts';

/** A local port nothing listens on: taken from the system, then let go. */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

describe('the API with its database away', () => {
  let database: TestDatabase;
  let world: World;
  let deadPool: Pool;
  let app: FastifyInstance;

  beforeAll(async () => {
    database = await createTestDatabase();
    world = await buildWorld(database.pool);
    deadPool = createPool({ url: `postgres://chipledger@127.0.0.1:${await refusedPort()}/chipledger`, connectionsMax: 2, applicationName: 'database-away' });
    app = await buildServer({ ledger: world.ledger, pool: deadPool, logger: false });
  });
  afterAll(async () => {
    await app?.close();
    await deadPool?.end();
    await world?.ledger.close();
    await database?.drop();
  });

  it.each(['/v1/log/checkpoint', '/v1/log/proof/inclusion?index=0&size=1', '/v1/log/tile/0/000.p/1', '/healthz'])('answers %s with 503 unavailable and Retry-After', async (url) => {
    const response = await app.inject({ method: 'GET', url });
    expect(response.statusCode, response.body).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(response.json()).toMatchObject({ status: 503, code: 'unavailable' });
  });
});

/** The pool, except that every read of tlog_tiles fails as a refused connection does. */
function withoutTileReads(pool: Pool): Pool {
  const refused = (): Promise<never> => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }));
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'query') {
        return (config: string | { text: string }, ...rest: unknown[]) =>
          (typeof config === 'string' ? config : config.text).includes('tlog_tiles') ? refused() : (target.query as (...args: unknown[]) => unknown)(config, ...rest);
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('the API with only its tile reads away', () => {
  let database: TestDatabase;
  let world: World;
  let app: FastifyInstance;
  let size: number;

  beforeAll(async () => {
    database = await createTestDatabase();
    world = await buildWorld(database.pool);
    size = (await readHead(database.pool)).size;
    app = await buildServer({ ledger: world.ledger, pool: withoutTileReads(database.pool), logger: false });
  });
  afterAll(async () => {
    await app?.close();
    await world?.ledger.close();
    await database?.drop();
  });

  it('reads tiles and the tiles of proofs through the API pool: 503, not an answer from another pool', async () => {
    // The world's events came after the ledger opened, so no tile of this size is cached.
    const tilePath = `/v1/log/tile/0/000${size % 256 === 0 ? '' : `.p/${size % 256}`}`;
    const urls = [tilePath, `/v1/log/proof/inclusion?index=0&size=${size}`, `/v1/log/proof/consistency?from=1&to=${size}`];
    for (const url of urls) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, `${url}: ${response.headers['content-type']}`).toBe(503);
      expect(response.json()).toMatchObject({ status: 503, code: 'unavailable' });
    }
    // The same requests with every read allowed are answered: only the tile reads failed.
    const whole = await buildServer({ ledger: world.ledger, pool: database.pool, logger: false });
    try {
      for (const url of urls) expect((await whole.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    } finally {
      await whole.close();
    }
  });
});
