/**
 * kill -9 in the middle of a load. A child process opens a Ledger on the test database
 * and books and ships from many concurrent workers, printing each answer after it gets
 * it; we SIGKILL it after some hundreds of answers, then open a new Ledger on the same
 * database (the restart) and check: every acknowledged command is there, retrying any
 * of them answers the same and changes nothing, no command was applied twice, and every
 * invariant holds. Three kills, at different points of the load, on the same database.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import { createPool } from '../../src/store/pool.ts';
import { createTestDatabase, type TestDatabase } from '../database.ts';
import { buildWorld, type World } from '../world.ts';
import { answerWithin } from '../support/answers.ts';
import type { LoadAnswer, LoadConfig } from '../support/load-client.ts';
import { spawnLoadClient } from '../support/load-process.ts';
import { checkEventsGapless } from '../support/checks.ts';
import { testSealingKey } from '../support/sealing-key.ts';

let database: TestDatabase;
let world: World;
const worldClock = '2026-02-01T00:00:00Z';

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000_000, allocationUnits: 2_000_000 });
  // The first "server" is the child; this process only sets up and, later, restarts.
  await world.ledger.close();
});
afterAll(async () => {
  await database?.drop();
});

function loadConfig(prefix: string): LoadConfig {
  const { allocations } = world;
  return {
    clock: worldClock,
    exporter: world.actors.exporter,
    productId: world.productId,
    pairs: [
      { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport },
      { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport },
    ],
    workers: 24,
    bookingsPerWorker: 100_000, // far more than it gets to make before the kill
    unitsMax: 4,
    prefix,
    ship: true,
    keys: true,
  };
}

/** Statuses a shipment may have reached after an acknowledged answer put it in `status`. */
const atLeast: Record<string, string[]> = {
  booked: ['booked', 'shipped', 'cleared', 'delivered'],
  shipped: ['shipped', 'cleared', 'delivered'],
};

async function killAfter(prefix: string, acknowledgements: number): Promise<LoadAnswer[]> {
  const load = spawnLoadClient(database.url, loadConfig(prefix));
  try {
    await answerWithin(load.ready, 30_000);
    await answerWithin(load.answered(acknowledgements), 30_000);
  } catch (error) {
    // Not left booking beside the files after this one in the worker.
    load.child.kill('SIGKILL');
    throw error;
  }
  load.child.kill('SIGKILL');
  const exit = await load.exited;
  expect(exit.signal, `the load client was still running when killed (stderr: ${exit.stderr})`).toBe('SIGKILL');
  // Answers printed between the count and the kill are acknowledged too: keep them all.
  return [...load.answers];
}

/** The restart: a new Ledger on a new pool over the same database, then every check. */
async function restartAndCheck(acknowledged: LoadAnswer[]): Promise<void> {
  const pool = createPool({ url: database.url, connectionsMax: 8, applicationName: 'chipledger-test-restart' });
  const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: new ManualClock(worldClock) });
  try {
    expect(await ledger.violations()).toEqual([]);
    await checkEventsGapless(pool);

    // Every acknowledged booking is there, at its acknowledged status or later.
    const bookings = acknowledged.filter((answer) => answer.kind === 'shipment.book' && answer.ok);
    const shipped = new Set(acknowledged.filter((answer) => answer.kind === 'shipment.ship' && answer.ok).map((answer) => String(answer.input.shipmentId)));
    const ids = bookings.map((answer) => String(answer.body!.shipmentId));
    expect(new Set(ids).size, 'two acknowledged bookings got the same shipment').toBe(ids.length);
    const rows = await pool.query<{ id: string; status: string; units: number; reference: string }>('SELECT id, status, units, reference FROM shipments WHERE id = ANY($1)', [ids]);
    const byId = new Map(rows.rows.map((row) => [row.id, row]));
    for (const answer of bookings) {
      const id = String(answer.body!.shipmentId);
      const row = byId.get(id);
      expect(row, `acknowledged shipment ${id} (key ${answer.key}) is missing after the restart`).toBeDefined();
      expect(atLeast[shipped.has(id) ? 'shipped' : 'booked']).toContain(row!.status);
      expect({ units: row!.units, reference: row!.reference }).toEqual({ units: answer.input.units, reference: answer.input.reference });
    }

    // No command was applied twice: one shipment per booking key, one shipping per ship key.
    const counts = await pool.query<{ shipments: number; booked_keys: number; booking_ids: number; shipped: number; ship_keys: number }>(`
      SELECT (SELECT count(*)::int FROM shipments) AS shipments,
             (SELECT count(*)::int FROM idempotency_keys WHERE key LIKE '%-book' AND status = 1) AS booked_keys,
             (SELECT count(DISTINCT response->'body'->>'shipmentId')::int FROM idempotency_keys WHERE key LIKE '%-book' AND status = 1) AS booking_ids,
             (SELECT count(*)::int FROM shipments WHERE status <> 'booked') AS shipped,
             (SELECT count(*)::int FROM idempotency_keys WHERE key LIKE '%-ship' AND status = 1) AS ship_keys`);
    const count = counts.rows[0]!;
    expect(count.booked_keys).toBe(count.shipments);
    expect(count.booking_ids).toBe(count.shipments);
    expect(count.ship_keys).toBe(count.shipped);

    // Retrying every acknowledged command answers the same and changes nothing.
    const before = await snapshot(pool);
    const retries = await answerWithin(Promise.all(acknowledged.map((answer) => ledger.submit(answer.kind, answer.input as never, world.actors.exporter, answer.key ?? undefined))), 30_000);
    retries.forEach((retry, index) => {
      const first = acknowledged[index]!;
      const same = retry.ok ? first.ok && isDeepStrictEqual(retry.body, first.body) : !first.ok && retry.error.code === first.code;
      expect(same && retry.replayed, `retry of ${first.kind} key ${first.key}: first ${JSON.stringify(first)}, retry ${JSON.stringify(retry)}`).toBe(true);
    });
    expect(await snapshot(pool)).toEqual(before);
  } finally {
    await ledger.close();
    await pool.end();
  }
}

async function snapshot(pool: TestDatabase['pool']): Promise<unknown> {
  const result = await pool.query(`SELECT (SELECT size FROM log_head) AS size, (SELECT count(*)::int FROM shipments) AS shipments,
    (SELECT count(*)::int FROM idempotency_keys) AS keys, (SELECT sum(reserved_units)::int FROM allocations) AS reserved,
    (SELECT sum(shipped_units)::int FROM allocations) AS shipped`);
  return result.rows[0];
}

describe('kill -9 mid-load, then restart', () => {
  const acknowledged: LoadAnswer[] = [];
  for (const [round, point] of [[1, 150], [2, 400], [3, 900]] as const) {
    it(`keeps every acknowledged command after a kill at ${point} answers (round ${round})`, async () => {
      const answers = await killAfter(`KILL${round}`, point);
      expect(answers.length).toBeGreaterThanOrEqual(point);
      acknowledged.push(...answers);
      // All acknowledgements so far, from this kill and the ones before, must hold.
      await restartAndCheck(acknowledged);
    }, 90_000);
  }
});
