/**
 * 64 concurrent clients booking and cancelling on the same two allocation pairs, far
 * more than the allocations hold, some with idempotency keys sent twice at once and
 * retried later. Afterwards the books must balance exactly against the answers the
 * clients got: every accepted booking is one shipment row, every allocation's
 * reservation is the sum of the accepted bookings not cancelled, every key made at most
 * one shipment, and the database's own re-check finds nothing.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Answer } from '../../src/ledger/ledger.ts';
import type { TestDatabase } from '../database.ts';
import { worldPerFile, type World } from '../world.ts';
import { answerWithin } from '../support/answers.ts';
import { checkEventsGapless, checkNoOverAllocation } from '../support/checks.ts';
import { seededRandom } from '../support/random.ts';

const clientsCount = 64;
const operationsPerClient = 100;
/** Each client stops early past this, so the test stays bounded on a slow machine. */
const loadTimeMs = 40_000;

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
}, { licenceUnits: 2_400, allocationUnits: 600 });

interface Booking {
  shipmentId: string;
  units: number;
  exportAllocationId: string;
  importAllocationId: string;
}

interface Results {
  bookings: Map<string, Booking>;
  cancelled: Set<string>;
  /** Every answer per idempotency key. */
  keyed: Map<string, Answer[]>;
  keyedInputs: Map<string, Record<string, unknown>>;
  mismatches: Answer[];
  refusals: Map<string, number>;
  acceptedCommands: number;
}

async function client(index: number, results: Results, stopAt: number): Promise<void> {
  const random = seededRandom(0xc0ffee + index);
  const { ledger, actors, allocations, productId } = world;
  const pairs = [
    { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport },
    { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport },
  ];
  const mine: string[] = [];
  const note = (answer: Answer, kind: string) => {
    if (!answer.ok) results.refusals.set(`${kind} ${answer.error.code}`, (results.refusals.get(`${kind} ${answer.error.code}`) ?? 0) + 1);
  };
  const remember = (key: string, answer: Answer) => results.keyed.set(key, [...(results.keyed.get(key) ?? []), answer]);
  const accept = (answer: Answer, input: { units: number; exportAllocationId: string; importAllocationId: string }) => {
    if (!answer.ok || answer.replayed) return;
    const shipmentId = String(answer.body.shipmentId);
    expect(results.bookings.has(shipmentId), `shipment ${shipmentId} was answered to two bookings`).toBe(false);
    results.bookings.set(shipmentId, { shipmentId, units: input.units, exportAllocationId: input.exportAllocationId, importAllocationId: input.importAllocationId });
    results.acceptedCommands += 1;
    mine.push(shipmentId);
  };
  for (let op = 0; op < operationsPerClient && Date.now() < stopAt; op += 1) {
    if (mine.length > 0 && random() < 0.3) {
      const shipmentId = mine.splice(Math.floor(random() * mine.length), 1)[0]!;
      const answer = await ledger.submit('shipment.cancel', { shipmentId }, actors.exporter);
      note(answer, 'cancel');
      if (answer.ok) {
        results.cancelled.add(shipmentId);
        results.acceptedCommands += 1;
      }
      continue;
    }
    const pair = pairs[Math.floor(random() * pairs.length)]!;
    const input = { ...pair, productId, units: 1 + Math.floor(random() * 8), deadline: '2026-03-01T00:00:00Z' };
    if (random() < 0.7) {
      const answer = await ledger.submit('shipment.book', input, actors.exporter);
      note(answer, 'book');
      accept(answer, input);
      continue;
    }
    // A keyed booking sent twice at once, as a client that timed out and retried would.
    const key = `client-${index}-op-${op}`;
    results.keyedInputs.set(key, input);
    const [first, second] = await Promise.all([
      ledger.submit('shipment.book', input, actors.exporter, key),
      ledger.submit('shipment.book', input, actors.exporter, key),
    ]);
    for (const answer of [first!, second!]) {
      note(answer, 'book');
      accept(answer, input);
      remember(key, answer);
    }
    if (random() < 0.2) {
      // The same key with another body must be refused, whatever the first answer was.
      results.mismatches.push(await ledger.submit('shipment.book', { ...input, units: input.units + 1 }, actors.exporter, key));
    }
  }
}

describe('64 concurrent clients on the same allocations', () => {
  it('never over-allocates, and the books balance against the answers', async () => {
    const sizeBefore = Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size);
    const statsBefore = { ...world.ledger.sequencer.stats };
    const results: Results = { bookings: new Map(), cancelled: new Set(), keyed: new Map(), keyedInputs: new Map(), mismatches: [], refusals: new Map(), acceptedCommands: 0 };
    const stopAt = Date.now() + loadTimeMs;
    await answerWithin(Promise.all(Array.from({ length: clientsCount }, (_, index) => client(index, results, stopAt))), loadTimeMs + 20_000);

    // Later retries of every key, all at once: the stored answers come back, nothing changes.
    const sizeBeforeRetries = Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size);
    const keys = [...results.keyed.keys()];
    const retries = await answerWithin(Promise.all(keys.map((key) => world.ledger.submit('shipment.book', results.keyedInputs.get(key) as never, world.actors.exporter, key))), 20_000);
    retries.forEach((answer, index) => {
      expect(answer.replayed, `the late retry of key ${keys[index]} was run again`).toBe(true);
      results.keyed.get(keys[index]!)!.push(answer);
    });
    expect(Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size)).toBe(sizeBeforeRetries);
    const stored = await database.pool.query<{ key: string; response: { ok: boolean; body?: { shipmentId: string } } }>('SELECT key, response FROM idempotency_keys WHERE scope = $1', [world.actors.exporter.orgId]);
    expect(stored.rows.map((row) => row.key).sort(), 'every key is stored exactly once').toEqual([...keys].sort());
    const inputs = new Map(stored.rows.map((row) => [row.key, row.response]));

    const stats = world.ledger.sequencer.stats;
    const commands = stats.commands - statsBefore.commands;
    const batches = stats.batches - statsBefore.batches;
    console.info(`concurrency: ${commands} commands in ${batches} batches; ${results.bookings.size} bookings, ${results.cancelled.size} cancels accepted; refusals ${JSON.stringify(Object.fromEntries(results.refusals))}`);

    // The load was real: contended (allocations ran out), batched, and large.
    expect(results.refusals.get('book insufficient_units') ?? 0).toBeGreaterThan(0);
    expect(results.bookings.size + results.cancelled.size).toBeGreaterThan(1_000);
    expect(commands / batches).toBeGreaterThan(2);

    // Invariants, from the rows.
    expect(await world.ledger.violations()).toEqual([]);
    await checkNoOverAllocation(database.pool);
    const events = await checkEventsGapless(database.pool);
    expect(events - sizeBefore, 'one event per accepted command, none for replays or refusals').toBe(results.acceptedCommands);

    // Every accepted booking is one row; every accepted cancel is a cancelled row.
    const rows = await database.pool.query<{ id: string; status: string; units: number; export_allocation_id: string; import_allocation_id: string }>('SELECT id, status, units, export_allocation_id, import_allocation_id FROM shipments');
    expect(rows.rows.length).toBe(results.bookings.size);
    for (const row of rows.rows) {
      const booking = results.bookings.get(row.id);
      expect(booking, `shipment ${row.id} exists but no client was told it was booked`).toBeDefined();
      expect({ units: row.units, exportAllocationId: row.export_allocation_id, importAllocationId: row.import_allocation_id })
        .toEqual({ units: booking!.units, exportAllocationId: booking!.exportAllocationId, importAllocationId: booking!.importAllocationId });
      expect(row.status).toBe(results.cancelled.has(row.id) ? 'cancelled' : 'booked');
    }

    // Each allocation reserves exactly the accepted bookings that were not cancelled.
    const reserved = new Map<string, number>();
    for (const booking of results.bookings.values()) {
      if (results.cancelled.has(booking.shipmentId)) continue;
      for (const id of [booking.exportAllocationId, booking.importAllocationId]) reserved.set(id, (reserved.get(id) ?? 0) + booking.units);
    }
    const allocations = await database.pool.query<{ id: string; reserved_units: number; shipped_units: number }>('SELECT id, reserved_units, shipped_units FROM allocations');
    for (const row of allocations.rows) expect({ id: row.id, reserved: row.reserved_units, shipped: row.shipped_units }).toEqual({ id: row.id, reserved: reserved.get(row.id) ?? 0, shipped: 0 });

    // Each key: every answer the same, at most one shipment, and the stored answer is that one.
    const keyedShipments = new Set<string>();
    for (const [key, answers] of results.keyed) {
      const first = answers[0]!;
      for (const answer of answers) {
        const same = answer.ok ? first.ok && isDeepStrictEqual(answer.body, first.body) : !first.ok && answer.error.code === first.error.code;
        expect(same, `key ${key} got different answers: ${JSON.stringify(answers)}`).toBe(true);
      }
      expect(answers.filter((answer) => !answer.replayed).length, `key ${key} was run more than once`).toBe(1);
      if (first.ok) {
        const shipmentId = String(first.body.shipmentId);
        expect(keyedShipments.has(shipmentId)).toBe(false);
        keyedShipments.add(shipmentId);
        expect(inputs.get(key)?.body?.shipmentId).toBe(shipmentId);
      }
    }
    expect(results.mismatches.length).toBeGreaterThan(0);
    for (const answer of results.mismatches) expect(answer.ok ? 'accepted' : answer.error.code).toBe('idempotency_mismatch');
  }, 90_000);
});
