/**
 * Two writers on one database, as two server processes would be: first two Ledger
 * instances on separate pools in this process, then this process and a second real
 * Node process (test/support/load-client.ts). Both book on the same allocations until
 * they run out. Afterwards: no over-allocation, every sequence number was given once
 * across both writers, the events are gapless, the reservations equal the sum of what
 * both writers were told they booked, and ledger_violations() is empty. Last, both
 * attach big manifests (sent by COPY) that share serials, at once: one gets in whole.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.ts';
import { refusedSerialsListedMax } from '../../src/ledger/handlers/manifests.ts';
import { Ledger, type Answer } from '../../src/ledger/ledger.ts';
import { createPool, type Pool } from '../../src/store/pool.ts';
import type { World } from '../world.ts';
import { answerWithin } from '../support/answers.ts';
import { checkEventsGapless, checkNoOverAllocation } from '../support/checks.ts';
import type { LoadConfig } from '../support/load-client.ts';
import { spawnLoadClient } from '../support/load-process.ts';
import { seededRandom } from '../support/random.ts';
import { createWorldTemplate, type FreshWorld, type WorldTemplate } from '../support/world-template.ts';
import { testSealingKey } from '../support/sealing-key.ts';

const worldClock = '2026-02-01T00:00:00Z';
let template: WorldTemplate;

beforeAll(async () => {
  template = await createWorldTemplate({ licenceUnits: 4_000, allocationUnits: 1_500 });
});
afterAll(async () => {
  await template?.drop();
});

/** One accepted or refused booking, by the writer that answered it. */
interface Booked {
  writer: string;
  ok: boolean;
  code?: string;
  seq?: number;
  shipmentId?: string;
  units: number;
  exportAllocationId: string;
  importAllocationId: string;
  key?: string;
  body?: Record<string, unknown>;
}

function pairsOf(world: World) {
  const { allocations } = world;
  return [
    { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport },
    { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport },
  ];
}

function toBooked(writer: string, answer: Answer, input: { units: number; exportAllocationId: string; importAllocationId: string }, key?: string): Booked {
  const base = { writer, units: input.units, exportAllocationId: input.exportAllocationId, importAllocationId: input.importAllocationId, ...(key ? { key } : {}) };
  if (!answer.ok) return { ...base, ok: false, code: answer.error.code };
  return { ...base, ok: true, seq: Number(answer.body.seq), shipmentId: String(answer.body.shipmentId), body: answer.body };
}

/** `clients` concurrent loops booking on one ledger until `stop()` says so or `bookings` each are done. */
async function bookFrom(writer: string, ledger: Ledger, world: World, options: { clients: number; bookings: number; seed: number; keyEvery?: number; stop?: () => boolean }): Promise<Booked[]> {
  const results: Booked[] = [];
  const pairs = pairsOf(world);
  await Promise.all(Array.from({ length: options.clients }, async (_, index) => {
    const random = seededRandom(options.seed + index);
    for (let n = 0; n < options.bookings && !options.stop?.(); n += 1) {
      const input = { ...pairs[Math.floor(random() * pairs.length)]!, productId: world.productId, units: 1 + Math.floor(random() * 6), deadline: '2026-03-01T00:00:00Z' };
      const key = options.keyEvery && n % options.keyEvery === 0 ? `shared-${index}-${n}` : undefined; // the same keys from every writer with the same seed
      results.push(toBooked(writer, await ledger.submit('shipment.book', input, world.actors.exporter, key), input, key));
    }
  }));
  return results;
}

/** Every check that needs only the rows and the answers both writers gave. */
async function checkBooks(pool: Pool, sizeBefore: number, bookings: Booked[]): Promise<void> {
  expect(await violations(pool)).toEqual([]);
  await checkNoOverAllocation(pool);
  const events = await checkEventsGapless(pool);
  const unique = new Map<string, Booked>();
  for (const booking of bookings) {
    if (!booking.ok) continue;
    expect(unique.has(booking.shipmentId!), `shipment ${booking.shipmentId} was answered to two bookings`).toBe(false);
    unique.set(booking.shipmentId!, booking);
  }

  // Sequence numbers: each accepted command has its own, all within the log, with its event.
  const seqs = [...unique.values()].map((booking) => booking.seq!);
  expect(new Set(seqs).size, 'two commands got the same sequence number').toBe(seqs.length);
  expect(events - sizeBefore, 'one event per accepted booking').toBe(unique.size);
  const rows = await pool.query<{ seq: number; kind: string; subject_id: string }>('SELECT seq, kind, subject_id FROM events WHERE seq >= $1 ORDER BY seq', [sizeBefore]);
  const bySeq = new Map(rows.rows.map((row) => [row.seq, row]));
  for (const booking of unique.values()) expect(bySeq.get(booking.seq!)).toEqual({ seq: booking.seq, kind: 'shipment.book', subject_id: booking.shipmentId });

  // Reservations are exactly what the writers were told they booked.
  const shipments = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM shipments');
  expect(shipments.rows[0]!.n).toBe(unique.size);
  const reserved = new Map<string, number>();
  for (const booking of unique.values()) {
    for (const id of [booking.exportAllocationId, booking.importAllocationId]) reserved.set(id, (reserved.get(id) ?? 0) + booking.units);
  }
  const allocations = await pool.query<{ id: string; units: number; reserved_units: number }>('SELECT id, units, reserved_units FROM allocations');
  for (const row of allocations.rows) {
    expect({ id: row.id, reserved: row.reserved_units }).toEqual({ id: row.id, reserved: reserved.get(row.id) ?? 0 });
    expect(row.reserved_units).toBeLessThanOrEqual(row.units);
  }
  // The load was contended: the allocations ran out, so over-allocation was possible.
  expect(bookings.some((booking) => booking.code === 'insufficient_units')).toBe(true);
}

async function violations(pool: Pool): Promise<unknown[]> {
  return (await pool.query('SELECT * FROM ledger_violations()')).rows;
}

/** How often the writer changes along the event order: 1 means one ran wholly after the other. */
function switches(bookings: Booked[]): number {
  const ordered = bookings.filter((booking) => booking.ok).sort((a, b) => a.seq! - b.seq!);
  let count = 0;
  for (let i = 1; i < ordered.length; i += 1) if (ordered[i]!.writer !== ordered[i - 1]!.writer) count += 1;
  return count;
}

/** A fresh copy of the template world for the enclosing describe block, dropped after it. */
function freshWorldPerDescribe(): () => FreshWorld {
  let fresh: FreshWorld | undefined;
  beforeAll(async () => {
    fresh = await template.fresh();
  });
  afterAll(async () => {
    await fresh?.drop();
  });
  return () => fresh!;
}

/** A second Ledger on the same database through a pool of its own, as another server process has. */
async function secondLedger(url: string): Promise<{ ledger: Ledger; close(): Promise<void> }> {
  const pool = createPool({ url, connectionsMax: 10, applicationName: 'chipledger-test-second' });
  const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: new ManualClock(worldClock) });
  return { ledger, close: async () => { await ledger.close(); await pool.end(); } };
}

describe('two writers on one database', () => {
  const freshWorld = freshWorldPerDescribe();

  it('two Ledger instances on separate pools never over-allocate nor reuse a sequence number', async () => {
    const { world, pool, url } = freshWorld();
    const { ledger: other, close } = await secondLedger(url);
    try {
      const sizeBefore = Number((await pool.query('SELECT size FROM log_head')).rows[0].size);
      const [first, second] = await answerWithin(Promise.all([
        bookFrom('first', world.ledger, world, { clients: 32, bookings: 60, seed: 1, keyEvery: 5 }),
        bookFrom('second', other, world, { clients: 32, bookings: 60, seed: 1, keyEvery: 5 }), // same seed: same keys, same bodies
      ]), 60_000);
      const all = [...first, ...second];
      // The same key sent to both writers at once: one shipment, one answer for both.
      const byKey = new Map<string, Booked[]>();
      for (const booking of all) if (booking.key) byKey.set(booking.key, [...(byKey.get(booking.key) ?? []), booking]);
      for (const [key, answers] of byKey) {
        expect(answers.length).toBe(2);
        const [a, b] = answers as [Booked, Booked];
        expect(a.ok ? isDeepStrictEqual(a.body, b.body) : a.code === b.code, `key ${key}: ${JSON.stringify(answers)}`).toBe(true);
      }
      const distinct = all.filter((booking, index) => !booking.key || all.findIndex((other) => other.key === booking.key) === index);
      await checkBooks(pool, sizeBefore, distinct);
      expect(switches(all), 'the two writers never interleaved').toBeGreaterThan(10);
    } finally {
      await close();
    }
  }, 90_000);
});

describe('a second writer in another process', () => {
  const freshWorld = freshWorldPerDescribe();

  it('this process and a child process never over-allocate nor reuse a sequence number', async () => {
    const { world, pool, url } = freshWorld();
    const sizeBefore = Number((await pool.query('SELECT size FROM log_head')).rows[0].size);
    const config: LoadConfig = {
      clock: worldClock, exporter: world.actors.exporter, productId: world.productId, pairs: pairsOf(world),
      workers: 16, bookingsPerWorker: 150, unitsMax: 6, prefix: 'child', ship: false, keys: false,
    };
    const child = spawnLoadClient(url, config);
    await answerWithin(child.ready, 30_000);
    let childDone = false;
    const exited = child.exited.then((exit) => {
      childDone = true;
      return exit;
    });
    await answerWithin(child.answered(1), 30_000);
    const mine = await answerWithin(bookFrom('parent', world.ledger, world, { clients: 16, bookings: 400, seed: 7, stop: () => childDone }), 60_000);
    const exit = await answerWithin(exited, 60_000);
    expect(exit.code, exit.stderr).toBe(0);
    const theirs: Booked[] = child.answers.map((answer) => ({
      writer: 'child', ok: answer.ok, units: Number(answer.input.units),
      exportAllocationId: String(answer.input.exportAllocationId), importAllocationId: String(answer.input.importAllocationId),
      ...(answer.ok ? { seq: Number(answer.body!.seq), shipmentId: String(answer.body!.shipmentId), body: answer.body! } : { code: answer.code! }),
    }));
    expect(theirs.length).toBe(config.workers * config.bookingsPerWorker);
    const all = [...mine, ...theirs];
    await checkBooks(pool, sizeBefore, all);
    expect(switches(all), 'the two processes never interleaved').toBeGreaterThan(10);
  }, 120_000);
});

describe('manifests from two writers', () => {
  const freshWorld = freshWorldPerDescribe();

  it('lets one of two manifests that share serials in, whole, and refuses the other by the rule, with big manifests sent by COPY', async () => {
    const { world, pool, url } = freshWorld();
    const { ledger: other, close } = await secondLedger(url);
    const serials = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(5, '0')}`);
    const book = async (ledger: Ledger, pair: number) => {
      const answer = await ledger.submit('shipment.book', { ...pairsOf(world)[pair]!, productId: world.productId, units: 350, deadline: '2026-03-01T00:00:00Z' }, world.actors.exporter);
      if (!answer.ok) throw new Error(answer.error.message);
      return String(answer.body.shipmentId);
    };
    try {
      for (let round = 0; round < 3; round += 1) {
        const [mine, theirs] = [await book(world.ledger, 0), await book(other, 1)];
        const shared = serials(`SHARED${round}`, 300);
        // 350 serials each, 300 of them the same: new units go by COPY.
        const [first, second] = await answerWithin(Promise.all([
          world.ledger.submit('manifest.attach', { shipmentId: mine, serials: [...shared, ...serials(`MINE${round}`, 50)] }, world.actors.exporter),
          other.submit('manifest.attach', { shipmentId: theirs, serials: [...serials(`THEIRS${round}`, 50), ...shared] }, world.actors.exporter),
        ]), 30_000);
        const answers = [first, second];
        expect(answers.filter((answer) => answer.ok).length, `round ${round}: ${JSON.stringify(answers)}`).toBe(1);
        const refused = answers.find((answer) => !answer.ok)!;
        const winner = first.ok ? mine : theirs;
        // Every shared serial is refused, none other: named in the manifest's order (the first
        // in the words, the first refusedSerialsListedMax in details), the rest counted.
        const error = refused.ok ? undefined : refused.error;
        const listed = shared.slice(0, refusedSerialsListedMax);
        const more = shared.length - listed.length;
        expect({
          code: error?.code, rule: error?.rule, message: error?.message, more: error?.details?.more,
          serials: (error?.details?.serials as Array<Record<string, unknown>> | undefined)?.map(({ serial, rule, shipmentId }) => ({ serial, rule, shipmentId })),
        }).toEqual({
          code: 'conflict', rule: 'invariant-4', more,
          message: `serial ${shared[0]} is already in live shipment ${winner}; and ${shared.length - 1} more serials are refused (details.serials names the first ${listed.length}, details.more counts the other ${more})`,
          serials: listed.map((serial) => ({ serial, rule: 'invariant-4', shipmentId: winner })),
        });
        const units = await pool.query<{ shipment_id: string; n: number }>('SELECT shipment_id, count(*)::int AS n FROM units WHERE serial LIKE $1 OR serial LIKE $2 OR serial LIKE $3 GROUP BY 1', [`SHARED${round}-%`, `MINE${round}-%`, `THEIRS${round}-%`]);
        expect(units.rows).toEqual([{ shipment_id: winner, n: 350 }]);
      }
      expect(await violations(pool)).toEqual([]);
      await checkEventsGapless(pool);
    } finally {
      await close();
    }
  }, 90_000);
});
