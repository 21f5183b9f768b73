/**
 * A booking under a licence no longer in force (revoked, surrendered, or its validity ended)
 * can never ship, and the sweep expires it. Its end must not depend on whether its exporter
 * cancelled it before the sweep ran: cancelling it is refused, under the rule the sweep's
 * reason gives (licence-status, licence-validity), and the sweep then expires it, releasing
 * its reservation. A suspended licence has not lapsed (its authority may reinstate it): a
 * booking under it may still be cancelled.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { licencePair, type LicencePair } from '../../../test/support/licence-pair.ts';
import { expectOk, refusalOf, worldPerFile, type World } from '../../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

async function statusOf(shipmentId: string): Promise<string> {
  return (await database.pool.query('SELECT status FROM shipments WHERE id = $1', [shipmentId])).rows[0].status;
}

async function reservedOn(pair: LicencePair): Promise<number[]> {
  const rows = (await database.pool.query('SELECT id, reserved_units FROM allocations WHERE id = ANY($1) ORDER BY id', [[pair.exportAllocationId, pair.importAllocationId]])).rows;
  return rows.map((row) => row.reserved_units);
}

async function book(pair: LicencePair): Promise<string> {
  return String((await world.run('shipment.book', {
    exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 2, deadline: '2026-06-01T00:00:00Z',
  }, world.actors.exporter)).shipmentId);
}

const cancel = (shipmentId: string) => world.ledger.submit('shipment.cancel', { shipmentId, reason: 'order withdrawn' }, world.actors.exporter);

describe('a booking under a licence no longer in force, its deadline ahead, not yet swept', () => {
  it('cannot be cancelled, its licence revoked, surrendered or cut short; the sweep expires it and its twin alike', async () => {
    world.clock.set('2026-02-01T00:00:00Z');
    const revoked = await licencePair(world);
    const surrendered = await licencePair(world);
    const cutShort = await licencePair(world);
    const bookings = {
      revoked: [await book(revoked), await book(revoked)],
      surrendered: [await book(surrendered), await book(surrendered)],
      cutShort: [await book(cutShort), await book(cutShort)],
    };
    await world.run('licence.revoke', { licenceId: revoked.exportLicenceId, reason: 'end-use concern' }, world.actors.bis);
    await world.run('licence.surrender', { licenceId: surrendered.importLicenceId, reason: 'project ended' }, world.actors.alpha);
    await world.run('licence.amend', { licenceId: cutShort.importLicenceId, reason: 'quota cut short', validTo: '2026-02-20T00:00:00Z' }, world.actors.mofcom);
    world.clock.set('2026-02-20T00:00:00Z');

    const expected = {
      revoked: { rule: 'licence-status', licenceId: revoked.exportLicenceId, why: `licence ${revoked.exportLicenceId} is revoked` },
      surrendered: { rule: 'licence-status', licenceId: surrendered.importLicenceId, why: `licence ${surrendered.importLicenceId} is surrendered` },
      cutShort: { rule: 'licence-validity', licenceId: cutShort.importLicenceId, why: `licence ${cutShort.importLicenceId}'s validity ended at 2026-02-20T00:00:00.000Z` },
    };
    for (const [name, [shipmentId]] of Object.entries(bookings) as Array<[keyof typeof bookings, string[]]>) {
      const { rule, licenceId, why } = expected[name];
      expect(refusalOf(await cancel(shipmentId!)), name).toEqual({
        code: 'licence_not_valid', rule, message: `couldn't cancel shipment ${shipmentId}: ${why}, so it can never ship; the sweep expires it and releases its reserved units`, details: { licenceId },
      });
    }

    const swept = expectOk(await world.ledger.sweep());
    const all = Object.values(bookings).flat();
    expect(swept.expiredShipments).toEqual(expect.arrayContaining(all));
    for (const shipmentId of all) expect(await statusOf(shipmentId)).toBe('expired');
    for (const pair of [revoked, surrendered, cutShort]) expect(await reservedOn(pair)).toEqual([0, 0]);
    // After the sweep, the same cancel is refused as it always was: the booking is expired.
    expect(refusalOf(await cancel(bookings.revoked[1]!))).toMatchObject({ code: 'conflict', rule: 'shipment-status' });
  });

  it('may still be cancelled under a suspended licence, which its authority may reinstate', async () => {
    const pair = await licencePair(world);
    const shipmentId = await book(pair);
    await world.run('licence.suspend', { licenceId: pair.importLicenceId, reason: 'inquiry' }, world.actors.mofcom);
    expect(expectOk(await cancel(shipmentId))).toMatchObject({ status: 'cancelled' });
    expect(await reservedOn(pair)).toEqual([0, 0]);
  });

  it('past its deadline too, is refused for the deadline, as before a lapse was judged', async () => {
    const pair = await licencePair(world);
    const deadline = new Date(world.clock.now().getTime() + 86_400_000).toISOString();
    const shipmentId = String((await world.run('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1, deadline,
    }, world.actors.exporter)).shipmentId);
    await world.run('licence.revoke', { licenceId: pair.exportLicenceId, reason: 'end-use concern' }, world.actors.bis);
    world.clock.set(deadline);
    expect(refusalOf(await cancel(shipmentId))).toMatchObject({ code: 'conflict', rule: 'booking-deadline' });
  });
});
