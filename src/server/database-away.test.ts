/**
 * With its database away, the API says so: 503 `unavailable` with Retry-After, as the write
 * path does, not 500 `internal`. Here the API's read pool points at a port where nothing
 * listens (connections refused), while the ledger itself is healthy; the public log routes
 * need no token, so they reach the database with nothing cached in front of it.
 */
import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { createPool, type Pool } from '../store/pool.ts';
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
