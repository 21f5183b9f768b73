import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { validateUscc } from '../core/uscc.ts';
import { Ledger } from '../ledger/ledger.ts';
import { generateSignerKey } from '../tlog/index.ts';
import { buildWorld } from '../../test/world.ts';
import { createDemoTokens, DemoLoadError, demoParties, demoState, loadDemo, type DemoResult } from './load.ts';
import * as scenario from './scenario.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';
import { dropReplayTemplate, replayFindings } from '../../test/support/replay.ts';

describe('the demo', () => {
  let database: TestDatabase;
  let ledger: Ledger;
  let first: DemoResult;

  beforeAll(async () => {
    database = await createTestDatabase();
    // As `serve --demo` opens it: with a log key, which records the key and signs the empty
    // log before the load. That is not data: the database is still empty, and the demo loads.
    ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, logSignerKey: generateSignerKey('demo.chipledger.test').signerKey });
    first = await loadDemo(ledger);
  }, 120_000);

  afterAll(async () => {
    await ledger.close();
    await database.drop();
    await dropReplayTemplate();
  });

  const count = async (sql: string): Promise<number> => (await database.pool.query<{ count: number }>(sql)).rows[0]!.count;

  it('loads the scenario with every invariant holding', async () => {
    expect(first.loaded).toBe(true);
    expect(await ledger.violations()).toEqual([]);
    expect(await demoState(database.pool)).toBe('complete');
  });

  it('is what its log makes: each command replayed through the rules makes its events and its state again (check --replay)', async () => {
    const { report, differences } = await replayFindings(database.pool);
    expect(report).toEqual({ replayed: await count('SELECT size::int AS count FROM log_head') });
    expect(differences).toEqual([]);
  });

  it('has a shipment in every state, with its manifest', async () => {
    const rows = (await database.pool.query<{ status: string; count: number; units: number; serials: number }>(
      'SELECT status, count(*)::int AS count, sum(units)::int AS units, sum(serial_count)::int AS serials FROM shipments GROUP BY status ORDER BY status',
    )).rows;
    expect(rows.map((row) => row.status).sort()).toEqual([...scenario.demoStatuses].sort());
    expect(await count('SELECT count(*)::int AS count FROM units')).toBe(scenario.shipments.reduce((sum, shipment) => sum + shipment.attached, 0));
    expect(await count("SELECT count(*)::int AS count FROM units u JOIN shipments s ON s.id = u.shipment_id WHERE s.status IN ('booked', 'shipped', 'cleared')")).toBe(500 + 120 + 400 + 300);
  });

  it('puts all of it in the event stream, and marks every row as demo', async () => {
    if (!first.loaded) expect.fail('the first load must load');
    expect(await count('SELECT count(*)::int AS count FROM events')).toBe(first.events);
    for (const table of ['organisations', 'products', 'licences', 'allocations', 'sites', 'shipments']) {
      expect(await count(`SELECT count(*)::int AS count FROM ${table} WHERE NOT demo`), table).toBe(0);
    }
  });

  it('follows the seed: 400,000 H200 on both licences, allocated 160k/140k/100k', async () => {
    const licences = (await database.pool.query<{ direction: string; authorised_units: number; allocated_units: number; status: string }>('SELECT direction, authorised_units, allocated_units, status FROM licences ORDER BY direction')).rows;
    expect(licences).toEqual([
      { direction: 'export', authorised_units: 400_000, allocated_units: 400_000, status: 'issued' },
      { direction: 'import', authorised_units: 400_000, allocated_units: 400_000, status: 'issued' },
    ]);
    const identifiers = (await database.pool.query<{ uscc: string | null }>("SELECT identifiers->>'uscc' AS uscc FROM organisations WHERE country = 'CN'")).rows;
    expect(identifiers).toHaveLength(5);
    for (const { uscc } of identifiers) expect(validateUscc(uscc ?? '')).toEqual({ ok: true });
  });

  it('deploys delivered units, decommissions one, loses one and has a shipment turned back at the border', async () => {
    const custody = Object.fromEntries((await database.pool.query<{ custody: string; count: number }>('SELECT custody, count(*)::int AS count FROM units GROUP BY custody')).rows.map((row) => [row.custody, row.count]));
    expect(custody).toEqual({ deployed: 1_750, delivered: 49, decommissioned: 1, in_transit: 699, lost: 1, licensed: 620 + 250 + 150, returned: 120 });
    expect(await count('SELECT sum(deployed_units)::int AS count FROM sites')).toBe(1_750);
  });

  it('hands out one token per organisation', () => {
    if (!first.loaded) expect.fail('the first load must load');
    expect(first.tokens.map((token) => token.role)).toEqual(scenario.organisations.map((org) => org.tokenRole));
    expect(first.tokens.map((token) => [token.key, token.part])).toEqual(scenario.organisations.map((org) => [org.key, org.part]));
    for (const token of first.tokens) expect(token.secret).toMatch(/^clt_/);
    // Both authorities are admins: each can make tokens in its own jurisdiction through the API.
    expect(first.tokens.filter((token) => token.role === 'authority_admin').map((token) => token.key)).toEqual(['bis', 'mofcom']);
  });

  it('does not load twice, and makes fresh tokens for the loaded demo', async () => {
    const events = await count('SELECT count(*)::int AS count FROM events');
    expect(await loadDemo(ledger)).toEqual({ loaded: false, state: 'complete' });
    expect(await count('SELECT count(*)::int AS count FROM events')).toBe(events);
    const admins = await createDemoTokens(ledger, 'admin');
    expect(admins).toEqual([expect.objectContaining({ key: 'mofcom', role: 'authority_admin', organisation: '中华人民共和国商务部' })]);
    const parties = await demoParties(database.pool);
    expect(parties.map((party) => [party.key, party.role])).toEqual(scenario.organisations.map((org) => [org.key, org.tokenRole]));
    expect(await count('SELECT count(*)::int AS count FROM organisations')).toBe(scenario.organisations.length);
  });
});

describe('the demo on a database that holds other data', () => {
  it('is refused, naming the events there, and adds nothing', async () => {
    const database = await createTestDatabase();
    const world = await buildWorld(database.pool);
    try {
      const size = async () => (await database.pool.query<{ size: number }>('SELECT size::int AS size FROM log_head')).rows[0]!.size;
      const events = await size();
      expect(events).toBeGreaterThan(0);
      // The demo's authority admins could make tokens for the real organisations of their
      // country, and every server on this database would mark the real data as demo.
      const refusal = new DemoLoadError(`couldn't load the demo: this database holds non-demo data (${events} events); the demo loads only into an empty database`);
      await expect(loadDemo(world.ledger)).rejects.toThrow(refusal);
      expect(await size()).toBe(events);
      expect(await demoState(database.pool)).toBe('absent');
    } finally {
      await world.ledger.close();
      await database.drop();
    }
  });
});

describe('the demo beside a server that sweeps', () => {
  it('loads when the server\'s own sweep expires the short booking before the loader\'s sweep does', async () => {
    await onFreshLedger(async (ledger) => {
      // While the loader waits out the short deadline, a running server's timer sweeps: the
      // loader's own sweep then finds nothing due.
      const sleep = async (ms: number) => {
        await new Promise((done) => setTimeout(done, ms));
        const swept = await ledger.sweep();
        expect(swept.ok).toBe(true);
      };
      expect((await loadDemo(ledger, { sleep })).loaded).toBe(true);
    });
  }, 120_000);
});

describe('the demo on a slow machine', () => {
  it('loads when bookings take longer to reach the ledger than the short deadline lasts', async () => {
    await onFreshLedger(async (ledger) => {
      // Each booking reaches the sequencer only after a delay longer than the expiring booking's
      // deadline (as when ten bookings with thousands of serials queue on a slow machine).
      const delayMs = scenario.expiringDeadlineMs + 300;
      let refusedDeadlines = 0;
      const slow = new Proxy(ledger, {
        get(target, property) {
          if (property !== 'submit') {
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === 'function' ? value.bind(target) : value;
          }
          return async (...args: Parameters<Ledger['submit']>) => {
            if (args[0] === 'shipment.book') await new Promise((done) => setTimeout(done, delayMs));
            const answer = await target.submit(...args);
            if (!answer.ok && answer.error.rule === 'booking-deadline') refusedDeadlines += 1;
            return answer;
          };
        },
      });
      expect((await loadDemo(slow, {})).loaded).toBe(true);
      expect(refusedDeadlines).toBe(1); // the first try; the second, with twice the margin, books
    });
  }, 120_000);
});

/**
 * A load on a fresh database and ledger of its own, then the checks every such load must
 * pass: the demo complete and every invariant holding.
 */
async function onFreshLedger(load: (ledger: Ledger) => Promise<void>): Promise<void> {
  const database = await createTestDatabase();
  const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool });
  try {
    await load(ledger);
    expect(await demoState(database.pool)).toBe('complete');
    expect(await ledger.violations()).toEqual([]);
  } finally {
    await ledger.close();
    await database.drop();
  }
}
