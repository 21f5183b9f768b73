/**
 * A server whose clock runs ahead of the database's (migration 047): its batches are refused
 * 'unavailable' (clock-ahead-of-database) and write nothing, its sweep included, on the batch
 * sent ahead and the classic one alike; a clock a minute ahead is drift, and taken. Without
 * the bound, one server a year ahead expired licences and bookings for good and left every
 * right server refused clock-behind-ledger for the year (s19, time review).
 *
 * The database's clock is the real one here: the ledger under test runs with the bound the
 * ledger runs under in production (productionClockAhead, on the test's whole database), as the
 * writer role a server writes as, its clock set relative to now.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import { clockAheadSetting, productionClockAhead, testClockAheadMsMax, type TestDatabase } from '../../test/database.ts';
import { licencePair, type LicencePair } from '../../test/support/licence-pair.ts';
import { ManualClock } from '../core/clock.ts';
import { limits } from '../core/limits.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { Ledger, type Answer } from './ledger.ts';
import { clockAheadOfDatabaseRule } from './refusals.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, db) => { world = made; database = db; });

const dayMs = 24 * 60 * 60 * 1000;
const minuteMs = 60 * 1000;
const fromNow = (ms: number) => new Date(Date.now() + ms).toISOString();

let pool: Pool;
let pair: LicencePair;
let shipmentId: string;

const registerSite = (ledger: Ledger, name: string): Promise<Answer> => ledger.submit('site.register', {
  name, province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10,
}, world.actors.alpha);

interface Written { events: number; headAt: string; licences: string[]; shipment: string }

async function written(): Promise<Written> {
  const { rows: [head] } = await database.pool.query<{ size: string; at: string }>('SELECT size, at FROM log_head');
  const { rows: [events] } = await database.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM events');
  const { rows: licences } = await database.pool.query<{ status: string }>('SELECT status FROM licences WHERE id = ANY($1) ORDER BY id', [[pair.exportLicenceId, pair.importLicenceId]]);
  const { rows: [shipment] } = await database.pool.query<{ status: string }>('SELECT status FROM shipments WHERE id = $1', [shipmentId]);
  return { events: events!.count, headAt: String(head!.at), licences: licences.map((row) => row.status), shipment: shipment!.status };
}

function expectClockAhead(answer: Answer): void {
  expect(answer.ok).toBe(false);
  if (answer.ok) return;
  expect(answer.error).toMatchObject({ code: 'unavailable', rule: clockAheadOfDatabaseRule, details: { aheadMsMax: limits.clockAheadOfDatabaseMsMax } });
  const { batchAt, databaseAt } = answer.error.details as { batchAt: string; databaseAt: string };
  expect(answer.error.message).toContain(batchAt);
  expect(answer.error.message).toContain(databaseAt);
  expect(answer.error.message).toMatch(/nothing was written: check this server's clock and the database host's/);
  expect(answer.error.message).not.toContain('\n');
}

/** A ledger on the test's database, under the production bound, with a clock of its own. */
async function ledgerAt(at: string): Promise<{ ledger: Ledger; clock: ManualClock }> {
  const clock = new ManualClock(at);
  return { clock, ledger: await Ledger.open({ logSealingKey: testSealingKey, pool, clock }) };
}

/** The bound the test's database had before productionClockAhead: what every test database takes. */
let testBound: number;
const databaseName = () => new URL(database.url).pathname.slice(1);

beforeAll(async () => {
  testBound = Number((await database.pool.query('SELECT ledger_clock_ahead_ms_max() AS bound')).rows[0].bound);
  await productionClockAhead(database.pool, databaseName());
  pool = createPool({ url: database.writerUrl, connectionsMax: 4, applicationName: 'chipledger-test-clock-ahead' });
  // The world dated now: the database's clock and the ledger's time agree.
  world.clock.set(fromNow(0));
  pair = await licencePair(world, { validTo: fromNow(200 * dayMs) });
  shipmentId = String(expectOk(await world.ledger.submit('shipment.book', {
    exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1, deadline: fromNow(30 * dayMs),
  }, world.actors.exporter)).shipmentId);
});
afterAll(async () => {
  await pool.end();
});

describe('a server whose clock runs ahead of the database\'s', () => {
  it('holds the bound of limits.clockAheadOfDatabaseMsMax in the database, and tests\' databases take any time', async () => {
    expect(Number((await pool.query('SELECT ledger_clock_ahead_ms_max() AS bound')).rows[0].bound)).toBe(limits.clockAheadOfDatabaseMsMax);
    expect(testBound).toBe(testClockAheadMsMax);
  });

  it('takes a setting that is no whole number as none (migration 048): a batch is still judged, never refused as bad input', async () => {
    try {
      for (const setting of ['5min', '-1', '1e9', ' 300000', '9'.repeat(16)]) {
        await database.pool.query(`ALTER DATABASE ${databaseName()} SET ${clockAheadSetting} = '${setting}'`);
        expect(Number((await pool.query('SELECT ledger_clock_ahead_ms_max() AS bound')).rows[0].bound), setting).toBe(limits.clockAheadOfDatabaseMsMax);
      }
    } finally {
      await productionClockAhead(database.pool, databaseName());
    }
  });

  it('reads a setting changed after a session planned its read (migration 065 keeps the plan, not the value)', async () => {
    const session = await pool.connect();
    try {
      // More than five calls, each in a transaction of its own: PL/pgSQL has then made and kept
      // its generic plan for the function's query.
      for (let call = 0; call < 7; call += 1) {
        expect(Number((await session.query('SELECT ledger_clock_ahead_ms_max() AS bound')).rows[0].bound)).toBe(limits.clockAheadOfDatabaseMsMax);
      }
      await database.pool.query(`ALTER DATABASE ${databaseName()} SET ${clockAheadSetting} = '1234'`);
      expect(Number((await session.query('SELECT ledger_clock_ahead_ms_max() AS bound')).rows[0].bound)).toBe(1234);
    } finally {
      session.release();
      await productionClockAhead(database.pool, databaseName());
    }
  });

  it("ignores a session's own setting (migration 056): a writer cannot widen the bound for itself", async () => {
    // Before 056 this session's own setting (a connection's options, or a SET) was the bound.
    const url = new URL(database.writerUrl);
    url.searchParams.set('options', `-c ${clockAheadSetting}=${testClockAheadMsMax}`);
    const widened = createPool({ url: url.toString(), connectionsMax: 2, applicationName: 'chipledger-test-clock-widened' });
    try {
      expect((await widened.query(`SELECT current_setting('${clockAheadSetting}') AS own, ledger_clock_ahead_ms_max() AS bound`)).rows[0])
        .toEqual({ own: String(testClockAheadMsMax), bound: limits.clockAheadOfDatabaseMsMax });
      const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: widened, clock: new ManualClock(fromNow(365 * dayMs)) });
      try {
        expectClockAhead(await registerSite(ledger, 'DC-widened'));
      } finally {
        await ledger.close();
      }
    } finally {
      await widened.end();
    }
  });

  it('a year ahead: its commands and its sweep are refused, and nothing is written', async () => {
    const before = await written();
    expect(before.licences).toEqual(['issued', 'issued']);
    const { ledger } = await ledgerAt(fromNow(365 * dayMs));
    try {
      expectClockAhead(await registerSite(ledger, 'DC-ahead'));
      expectClockAhead(await ledger.sweep());
    } finally {
      await ledger.close();
    }
    expect(await written()).toEqual(before);
    // The right server goes on writing: the ledger's time did not move.
    world.clock.set(fromNow(0));
    expectOk(await registerSite(world.ledger, 'DC-right'));
  });

  it('refuses on the batch sent ahead as on the classic one', async () => {
    const { ledger, clock } = await ledgerAt(fromNow(0));
    try {
      // The classic way twice (this process has no head of its own yet, then finds it alone), then sent ahead.
      for (const name of ['DC-first', 'DC-second', 'DC-third']) expectOk(await registerSite(ledger, name));
      const { aheadBatches } = ledger.sequencer.stats;
      expect(aheadBatches).toBeGreaterThan(0);
      const before = await written();
      clock.set(fromNow(365 * dayMs));
      expectClockAhead(await registerSite(ledger, 'DC-ahead-1')); // sent ahead
      expectClockAhead(await registerSite(ledger, 'DC-ahead-2')); // the classic way, the cache cleared
      expect(await written()).toEqual(before);
      expect(ledger.sequencer.stats.aheadBatches).toBe(aheadBatches);
    } finally {
      await ledger.close();
    }
  });

  it('takes a clock within the bound as drift: a minute ahead is accepted, six minutes refused', async () => {
    const { ledger, clock } = await ledgerAt(fromNow(limits.clockAheadOfDatabaseMsMax + minuteMs));
    try {
      expectClockAhead(await registerSite(ledger, 'DC-six-minutes'));
      clock.set(fromNow(minuteMs));
      const seq = Number(expectOk(await registerSite(ledger, 'DC-one-minute')).seq);
      const { rows: [event] } = await database.pool.query<{ at: string }>('SELECT at FROM events WHERE seq = $1', [seq]);
      expect(Date.parse(event!.at)).toBeGreaterThan(Date.now());
    } finally {
      await ledger.close();
    }
  });
});
