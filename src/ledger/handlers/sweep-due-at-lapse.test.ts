/**
 * A booking's expiry is dated (dueAt) by whichever came first: its deadline, or the end of a
 * licence's validity. A licence cut short to before the deadline, swept after both (the
 * servers down, say), dates the booking by the licence's end and gives the reason, not by a
 * deadline it could never have shipped by; a licence that ended after the deadline leaves
 * the deadline. A revocation is dated by its own event only, so past the deadline it leaves
 * the deadline, which the booking was due by in any case. A booking that the sweep expiring
 * its licence left to the next one (limits.sweepRowsMax) finds that licence expired, and is
 * still dated by its validTo.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { limits } from '../../core/limits.ts';
import { licencePair, type LicencePair } from '../../../test/support/licence-pair.ts';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** The effects of the sweep's event about a record. */
async function expiryOf(subjectId: string): Promise<Record<string, unknown>> {
  const rows = (await database.pool.query<{ canonical: Buffer }>("SELECT canonical FROM events WHERE subject_id = $1 AND kind = 'ledger.sweep'", [subjectId])).rows;
  expect(rows).toHaveLength(1);
  return JSON.parse(rows[0]!.canonical.toString('utf8')).effects;
}

const deadline = '2026-03-01T00:00:00.000Z';

async function book(pair: LicencePair): Promise<string> {
  return String((await world.run('shipment.book', {
    exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1, deadline,
  }, world.actors.exporter)).shipmentId);
}

const cutShort = (licenceId: string, validTo: string, actor = world.actors.mofcom) => world.run('licence.amend', { licenceId, reason: 'quota cut short', validTo }, actor);

describe('a booking swept after both its deadline and its licence\'s end', () => {
  it('is dated by whichever came first', async () => {
    world.clock.set('2026-02-01T00:00:00Z');
    const [before, after, both, revoked] = [await licencePair(world), await licencePair(world), await licencePair(world), await licencePair(world)];
    const [endedBefore, endedAfter, bothEnded, underRevoked] = [await book(before), await book(after), await book(both), await book(revoked)];
    await cutShort(before.importLicenceId, '2026-02-20T00:00:00Z');
    await cutShort(after.importLicenceId, '2026-03-03T00:00:00Z');
    // Both licences ended: the revocation is undated, the import licence's end is not.
    await world.run('licence.revoke', { licenceId: both.exportLicenceId, reason: 'end-use concern' }, world.actors.bis);
    await cutShort(both.importLicenceId, '2026-02-20T00:00:00Z');
    await world.run('licence.revoke', { licenceId: revoked.exportLicenceId, reason: 'end-use concern' }, world.actors.bis);

    world.clock.set('2026-03-05T00:00:00Z');
    const swept = expectOk(await world.ledger.sweep());
    expect(swept.expiredShipments).toEqual(expect.arrayContaining([endedBefore, endedAfter, bothEnded, underRevoked]));
    const expired = { from: 'booked', to: 'expired', units: 1 };
    expect(await expiryOf(endedBefore)).toEqual({
      shipmentId: endedBefore, ...expired, reason: `licence ${before.importLicenceId}'s validity ended at 2026-02-20T00:00:00.000Z`, dueAt: '2026-02-20T00:00:00.000Z',
    });
    expect(await expiryOf(endedAfter)).toEqual({ shipmentId: endedAfter, ...expired, dueAt: deadline });
    expect(await expiryOf(bothEnded)).toEqual({
      shipmentId: bothEnded, ...expired, reason: `licence ${both.importLicenceId}'s validity ended at 2026-02-20T00:00:00.000Z`, dueAt: '2026-02-20T00:00:00.000Z',
    });
    expect(await expiryOf(underRevoked)).toEqual({ shipmentId: underRevoked, ...expired, dueAt: deadline });
  });
});

describe('a booking left by the sweep that expired its licence', () => {
  it('is dated by the licence\'s validTo when the next sweep finds the licence already expired', async () => {
    // Runs after the test above, whose sweep ran at 2026-03-05: the clock only moves on.
    world.clock.set('2026-03-06T00:00:00Z');
    const pair = await licencePair(world);
    const book = async () => String((await world.run('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    }, world.actors.exporter)).shipmentId);
    const bookings = [await book(), await book()];
    await cutShort(pair.importLicenceId, '2026-03-10T00:00:00Z');

    // One row a list, so the sweep that expires the licence leaves one of its bookings to the next.
    world.clock.set('2026-03-12T00:00:00Z');
    const rowsMax = limits.sweepRowsMax;
    (limits as { sweepRowsMax: number }).sweepRowsMax = 1;
    let first: Record<string, unknown>;
    try {
      first = expectOk(await world.ledger.sweep());
    } finally {
      (limits as { sweepRowsMax: number }).sweepRowsMax = rowsMax;
    }
    expect(first.expiredLicences).toEqual([pair.importLicenceId]);
    expect(first.expiredShipments).toHaveLength(1);
    const left = bookings.find((id) => !(first.expiredShipments as string[]).includes(id))!;

    world.clock.set('2026-03-13T00:00:00Z');
    expect(expectOk(await world.ledger.sweep()).expiredShipments).toEqual([left]);
    expect(await expiryOf(left)).toEqual({
      shipmentId: left, from: 'booked', to: 'expired', units: 1, reason: `licence ${pair.importLicenceId} is expired`, dueAt: '2026-03-10T00:00:00.000Z',
    });
  });
});
