/**
 * A server whose database a newer chipledger migrated says so on /healthz (503, in the words
 * `chipledger check` and every start use), so that a load balancer stops sending it writes
 * that could break rules it has never heard of. Before, /healthz answered 200 and the server
 * took bookings (the observability review, migration 47 recorded by hand).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { listMigrations, migrate, MigrationRefused } from '../store/migrate.ts';
import { buildServer } from './app.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => { world = made; database = madeDatabase; });

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildServer({ ledger: world.ledger, pool: database.pool, logger: false });
});
afterAll(async () => {
  await app?.close();
});

describe('/healthz after a newer chipledger migrated the database', () => {
  it('is 503 with the refusal migrate gives, and 200 again once the database is one this build knows', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const newer = listMigrations().at(-1)!.version + 1;
    await database.pool.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [newer, `${newer}_newer_release.sql`, 'x']);
    try {
      const refused = await migrate(database.pool).then(() => undefined, (error: unknown) => error);
      expect(refused).toBeInstanceOf(MigrationRefused);
      const health = await app.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ code: 'unavailable', detail: (refused as MigrationRefused).message });
      expect(health.json().detail).toContain(`it has migration ${newer} (${newer}_newer_release.sql)`);
    } finally {
      await database.pool.query('DELETE FROM schema_migrations WHERE version = $1', [newer]);
    }
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});
