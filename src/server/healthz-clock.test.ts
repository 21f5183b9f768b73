/**
 * A server whose clock every write is refused for says so on /healthz (503, naming the rule),
 * and those refusals ask for a Retry-After that does not invite a retry every second: they
 * last until someone puts a clock right (s19, time review). Before, /healthz answered 200
 * while every POST got 503 with Retry-After: 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import { clockAheadSetting, productionClockAhead, testClockAheadMsMax, type TestDatabase } from '../../test/database.ts';
import { ManualClock } from '../core/clock.ts';
import { limits } from '../core/limits.ts';
import { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { ApiError, formatApiError } from '../cli/http.ts';
import { buildServer } from './app.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, db) => { world = made; database = db; });

const minuteMs = 60 * 1000;
const databaseName = () => new URL(database.url).pathname.slice(1);
const fromNow = (ms: number) => new Date(Date.now() + ms).toISOString();
let secret: string;

interface Served { app: FastifyInstance; ledger: Ledger; pool: Pool }

/** A server of its own on the test's database (under the production bound ahead: beforeAll), dated by `clock`. */
async function serve(clock: ManualClock): Promise<Served> {
  const pool = createPool({ url: database.writerUrl, connectionsMax: 4, applicationName: 'chipledger-test-healthz-clock' });
  const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock });
  return { pool, ledger, app: await buildServer({ ledger, pool, logger: false }) };
}

async function closed(served: Served): Promise<void> {
  await served.app.close();
  await served.ledger.close();
  await served.pool.end();
}

const registerSite = (app: FastifyInstance, key: string) => app.inject({
  method: 'POST', url: '/v1/sites',
  headers: { authorization: `Bearer ${secret}`, 'idempotency-key': key, 'content-type': 'application/json' },
  payload: { name: `DC ${key}`, province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10 },
});

beforeAll(async () => {
  await productionClockAhead(database.pool, databaseName());
  world.clock.set(fromNow(0));
  secret = String(expectOk(await world.ledger.submit('token.create', { organisationId: world.actors.alpha.orgId, role: 'recipient', label: 'healthz-clock' }, systemActor)).secret);
});

describe('/healthz and the clocks', () => {
  let served: Served | undefined;
  afterAll(async () => {
    if (served !== undefined) await closed(served);
  });

  it('is 200 with a clock within the drift taken', async () => {
    served = await serve(new ManualClock(fromNow(minuteMs)));
    const health = await served.app.inject({ method: 'GET', url: '/healthz' });
    expect([health.statusCode, health.json()]).toEqual([200, { status: 'ok' }]);
    expect((await registerSite(served.app, 'drift')).statusCode).toBe(201);
    await closed(served);
    served = undefined;
  });

  it('is 503 clock-behind-ledger for a clock 10 minutes behind the ledger, as every write is, with a Retry-After of its own', async () => {
    expectOk(await world.ledger.submit('site.register', { name: 'DC-now', province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10 }, world.actors.alpha));
    served = await serve(new ManualClock(fromNow(-10 * minuteMs)));
    const health = await served.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ code: 'unavailable', rule: 'clock-behind-ledger', details: { behindMsMax: limits.clockBehindLedgerMsMax } });
    expect(health.json().detail).toMatch(/^this server's clock \(\S+\) is \d+ s behind the ledger's newest event/);
    expect(health.headers['retry-after']).toBe(String(limits.clockRetryAfterSeconds));
    const post = await registerSite(served.app, 'behind');
    expect([post.statusCode, post.json().rule, post.headers['retry-after']]).toEqual([503, 'clock-behind-ledger', String(limits.clockRetryAfterSeconds)]);
    await closed(served);
    served = undefined;
  });

  it('is 503 clock-ahead-of-database for a clock a year ahead of the database\'s, as every write is; the CLI prints the detail in one line', async () => {
    served = await serve(new ManualClock(fromNow(365 * 24 * 60 * minuteMs)));
    const health = await served.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ code: 'unavailable', rule: 'clock-ahead-of-database', details: { aheadMsMax: limits.clockAheadOfDatabaseMsMax } });
    expect(health.json().detail).toMatch(/ahead of the database's clock .* fix this server's clock$/);
    expect(health.headers['retry-after']).toBe(String(limits.clockRetryAfterSeconds));
    const post = await registerSite(served.app, 'ahead');
    expect([post.statusCode, post.json().rule, post.headers['retry-after']]).toEqual([503, 'clock-ahead-of-database', String(limits.clockRetryAfterSeconds)]);
    const printed = formatApiError(new ApiError(503, post.json())).split('\n');
    expect(printed).toContain(`  ${post.json().detail}`);
    expect(post.json().detail).toMatch(/^the batch was dated \S+ \(by this server's clock, or by the ledger's newest event when that is later\), \d+ s ahead of the database's clock \(\S+\); .* nothing was written: check this server's clock/);
    await closed(served);
    served = undefined;
  });

  it('keeps the short Retry-After for other 503s', async () => {
    served = await serve(new ManualClock(fromNow(0)));
    await served.ledger.close(); // the sequencer closed: its commands are answered 'unavailable'
    const post = await registerSite(served.app, 'closed');
    expect(post.statusCode).toBe(503);
    expect(post.headers['retry-after']).toBe(String(limits.retryAfterSeconds));
    await served.pool.end();
    await served.app.close();
    served = undefined;
  });

  // Last: it dates the ledger ahead of the database's clock for the rest of the file.
  it('is 503 clock-ahead-of-database when the ledger\'s newest event is ahead of the database\'s clock, whatever this clock reads, as every write is', async () => {
    // As after the database's clock stepped back under events dated within the bound: written
    // here through the tests' widened bound, for this one write.
    world.clock.set(fromNow(6 * minuteMs));
    await database.pool.query(`ALTER DATABASE ${databaseName()} SET ${clockAheadSetting} = '${testClockAheadMsMax}'`);
    try {
      expectOk(await world.ledger.submit('site.register', { name: 'DC-ahead', province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10 }, world.actors.alpha));
    } finally {
      await productionClockAhead(database.pool, databaseName());
    }
    served = await serve(new ManualClock(fromNow(90_000)));
    const health = await served.app.inject({ method: 'GET', url: '/healthz' });
    expect([health.statusCode, health.json().rule]).toEqual([503, 'clock-ahead-of-database']);
    expect(health.json().detail).toMatch(/^the ledger's newest event \(\S+\), which dates this server's writes, is \d+ s ahead of the database's clock .* check the database host's clock/);
    const post = await registerSite(served.app, 'ledger-ahead');
    expect([post.statusCode, post.json().rule]).toEqual([503, 'clock-ahead-of-database']);
    await closed(served);
    served = undefined;
  });
});
