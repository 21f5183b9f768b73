/**
 * A shipment carries at most limits.shipmentSerialsMax units, the most serials its manifest
 * lists: booked above it, repeated attaches could grow its manifest past the bound. Refused
 * by the ledger's schema and again by the database (migration 025, shipments_units_max).
 */
import { describe, expect, it } from 'vitest';
import { limits } from '../../core/limits.ts';
import type { TestDatabase } from '../../../test/database.ts';
import { firstRefusal, insertShipments, reservationsUnguarded, type Statement } from '../../../test/support/rolled-back.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';
import { shipmentBook } from '../schemas.ts';

let database: TestDatabase;
let world: World;

// Allocations of 150,000 units each: room for a booking above the bound.
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
}, { licenceUnits: 300_000, allocationUnits: 150_000 });

function book(units: number): Promise<Answer> {
  const { allocations, productId, actors } = world;
  return world.ledger.submit('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units, deadline: '2026-03-01T00:00:00Z',
  }, actors.exporter);
}

describe('shipment.book units', () => {
  it('is bounded by shipmentSerialsMax, which is 100,000', () => {
    expect(limits.shipmentSerialsMax).toBe(100_000);
  });

  it('refuses a booking of one unit more than a manifest can list, with the numbers, and reserves nothing', async () => {
    const answer = await book(limits.shipmentSerialsMax + 1);
    if (answer.ok) expect.fail(`booked ${JSON.stringify(answer.body)}`);
    expect(answer.error).toMatchObject({
      code: 'invalid_input',
      message: "couldn't read the shipment.book request: units: a shipment carries at most 100,000 units, the most serials its manifest lists (shipmentSerialsMax); 100,001 given",
    });
    const reserved = await database.pool.query('SELECT reserved_units FROM allocations WHERE id = $1', [world.allocations.alphaExport]);
    expect(reserved.rows[0].reserved_units).toBe(0);
  });

  it('books exactly shipmentSerialsMax units', async () => {
    expect(expectOk(await book(limits.shipmentSerialsMax))).toMatchObject({ status: 'booked', units: 100_000 });
  });

  it('says so in the schema the API validates with (and documents)', () => {
    const request = { exportAllocationId: 'A-1', importAllocationId: 'A-2', productId: 'P-1', deadline: '2026-03-01T00:00:00Z' };
    expect(shipmentBook.safeParse({ ...request, units: 100_000 }).success).toBe(true);
    expect(shipmentBook.safeParse({ ...request, units: 100_001 }).success).toBe(false);
  });
});

describe('the database refuses a shipment of more units than a manifest lists (migration 025)', () => {
  it('refuses a shipment row of 100,001 units, and takes one of 100,000', async () => {
    // More units than the world's allocations hold: written without counting them (070's notes off), which this rule is not about.
    const over = await firstRefusal(database.pool, ...reservationsUnguarded, insertShipments(world, [{ units: '100001' }], false));
    expect(over).toEqual({ code: '23514', message: 'shipment S-X is of 100001 units; a shipment carries at most 100000, the most serials its manifest lists' });
    expect(await firstRefusal(database.pool, ...reservationsUnguarded, insertShipments(world, [{ units: '100000' }], false))).toBeUndefined();
  });

  it('refuses an UPDATE that raises a shipment above it', async () => {
    const shipmentId = String(expectOk(await book(2)).shipmentId);
    expect((await firstRefusal(database.pool, ['UPDATE shipments SET units = 100001 WHERE id = $1', [shipmentId]]))?.code).toBe('23514');
  });

  it('lets a shipment booked above it before the rule finish its life: cancelled, expired (a CHECK would refuse every later UPDATE of it)', async () => {
    const oldBooking: Statement[] = [
      ['ALTER TABLE shipments DISABLE TRIGGER shipments_units_max_insert', []],
      ...reservationsUnguarded,
      insertShipments(world, [{ id: 'S-OLD', units: '100001' }], false),
      ['ALTER TABLE shipments ENABLE TRIGGER shipments_units_max_insert', []],
    ];
    expect(await firstRefusal(database.pool, ...oldBooking, [`UPDATE shipments SET status = 'cancelled', updated_seq = 1000000 WHERE id = 'S-OLD'`, []])).toBeUndefined();
    expect(await firstRefusal(database.pool, ...oldBooking, [`UPDATE shipments SET status = 'expired', updated_seq = 1000000 WHERE id = 'S-OLD'`, []])).toBeUndefined();
  });
});
