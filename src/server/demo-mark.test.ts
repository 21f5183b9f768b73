/**
 * The demo mark (demo-mark.ts): a server that started on a database without the demo marks its
 * answers and events once the demo is loaded while it runs, within limits.demoCheckIntervalMs, and
 * asks the database no more often than that.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { limits } from '../core/limits.ts';
import { createDemoTokens, loadDemo } from '../demo/load.ts';
import { Ledger } from '../ledger/ledger.ts';
import { buildServer } from './app.ts';
import { DemoMark } from './demo-mark.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

describe('the demo mark', () => {
  it('asks at most once per interval, keeps "not seen" when a check fails, and once set never asks again', async () => {
    let nowMs = 0;
    let checks = 0;
    let answer: () => Promise<boolean> = async () => false;
    let marked = 0;
    const mark = new DemoMark({ marked: false, holdsDemo: () => { checks += 1; return answer(); }, onMarked: () => (marked += 1), nowMs: () => nowMs });
    await mark.refresh();
    await mark.refresh();
    expect([checks, mark.demo]).toEqual([1, false]);
    nowMs += limits.demoCheckIntervalMs;
    answer = () => Promise.reject(new Error('connection refused'));
    await expect(mark.refresh()).resolves.toBeUndefined();
    expect([checks, mark.demo]).toEqual([2, false]);
    nowMs += limits.demoCheckIntervalMs;
    answer = async () => true;
    await mark.refresh();
    expect([checks, mark.demo, marked]).toEqual([3, true, 1]);
    nowMs += 10 * limits.demoCheckIntervalMs;
    await mark.refresh();
    expect([checks, marked]).toEqual([3, 1]);
  });

  it('waits a bounded time for a check that hangs, and starts no second one while it runs', async () => {
    let nowMs = 0;
    let checks = 0;
    let finish!: (holds: boolean) => void;
    const mark = new DemoMark({ marked: false, holdsDemo: () => { checks += 1; return new Promise((done) => (finish = done)); }, onMarked: () => {}, nowMs: () => nowMs });
    const started = performance.now();
    await mark.refresh();
    expect(performance.now() - started).toBeLessThan(limits.demoCheckWaitMs * 4);
    nowMs += 5 * limits.demoCheckIntervalMs;
    await mark.refresh();
    expect(checks).toBe(1);
    finish(true);
    await new Promise((done) => setImmediate(done));
    expect(mark.demo).toBe(true);
  });
});

describe('a server whose database gets the demo while it runs', () => {
  let database: TestDatabase;
  let ledger: Ledger;
  let app: FastifyInstance;

  beforeAll(async () => {
    database = await createTestDatabase();
    ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool });
    app = await buildServer({ ledger, pool: database.pool, logger: false });
  });
  afterAll(async () => {
    await app?.close();
    await ledger?.close();
    await database?.drop();
  });

  it('marks its answers and serves every event as demo within the interval of the load', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).headers['x-chipledger-demo']).toBeUndefined();
    // As `chipledger demo` loads it through the embedded PostgreSQL this server lends.
    expect((await loadDemo(ledger)).loaded).toBe(true);
    const loadedAt = performance.now();
    let marked: number | undefined;
    while (marked === undefined && performance.now() - loadedAt < limits.demoCheckIntervalMs * 3) {
      const answer = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
      if (answer.headers['x-chipledger-demo'] === 'true') marked = performance.now() - loadedAt;
      else await new Promise((done) => setTimeout(done, 50));
    }
    expect(marked, 'the mark within the interval').toBeLessThanOrEqual(limits.demoCheckIntervalMs + limits.demoCheckWaitMs);
    // Refusals before any route carry it too.
    expect((await app.inject({ method: 'GET', url: '/v1/nowhere' })).headers['x-chipledger-demo']).toBe('true');
    const auditor = (await createDemoTokens(ledger, 'all')).find((token) => token.role === 'auditor')!;
    const events = await app.inject({ method: 'GET', url: '/v1/events?limit=5', headers: { authorization: `Bearer ${auditor.secret}` } });
    expect(events.statusCode, events.body).toBe(200);
    const items = (events.json() as { items: Array<{ demo: boolean }> }).items;
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) expect(item.demo).toBe(true);
  }, 120_000);
});
