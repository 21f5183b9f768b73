/**
 * A record's end is decided by the calendar, not by when the sweep ran: a step on a licence
 * whose validity has ended, or on a booking whose deadline has passed, gets before the sweep
 * the answer it gets after it. Suspending, revoking or surrendering an ended licence, and
 * cancelling a booking at its deadline, are refused, so that the licence ends expired and the
 * booking expired, whichever came first.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { licencePair } from '../../../test/support/licence-pair.ts';
import { expectOk, refusalOf, worldPerFile, type World } from '../../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

async function statusOf(table: 'licences' | 'shipments', id: string): Promise<string> {
  return (await database.pool.query(`SELECT status FROM ${table} WHERE id = $1`, [id])).rows[0].status;
}

describe('a licence 3 seconds past its validTo, not yet swept', () => {
  it('cannot be suspended, revoked or surrendered: the sweep expires it, as it would have had it come first', async () => {
    world.clock.set('2026-02-10T00:00:00Z');
    const [suspended, revoked, surrendered] = [
      await licencePair(world, { validTo: '2026-04-01T00:00:00Z' }), await licencePair(world, { validTo: '2026-04-01T00:00:00Z' }), await licencePair(world, { validTo: '2026-04-01T00:00:00Z' }),
    ];
    world.clock.set('2026-04-01T00:00:03Z');
    const steps = [
      ['suspend', suspended.importLicenceId, world.actors.mofcom], ['revoke', revoked.importLicenceId, world.actors.mofcom], ['surrender', surrendered.importLicenceId, world.actors.alpha],
    ] as const;
    for (const [step, licenceId, actor] of steps) {
      expect(refusalOf(await world.ledger.submit(`licence.${step}`, { licenceId, reason: 'diversion' }, actor)), step).toEqual({
        code: 'conflict', rule: 'licence-validity', message: `couldn't ${step} licence ${licenceId}: its validity ended at 2026-04-01T00:00:00.000Z`,
        details: { licenceId, validTo: '2026-04-01T00:00:00.000Z' },
      });
    }
    expect(expectOk(await world.ledger.sweep()).expiredLicences).toEqual(expect.arrayContaining(steps.map(([, licenceId]) => licenceId)));
    for (const [, licenceId] of steps) expect(await statusOf('licences', licenceId)).toBe('expired');
  });

  it('can still be suspended, revoked and surrendered a millisecond before validTo', async () => {
    const validTo = new Date(world.clock.now().getTime() + 86_400_000).toISOString();
    const pair = await licencePair(world, { validTo });
    world.clock.set(new Date(Date.parse(validTo) - 1));
    expect(expectOk(await world.ledger.submit('licence.suspend', { licenceId: pair.importLicenceId }, world.actors.mofcom))).toMatchObject({ status: 'suspended' });
    expect(expectOk(await world.ledger.submit('licence.revoke', { licenceId: pair.exportLicenceId }, world.actors.bis))).toMatchObject({ status: 'revoked' });
  });

  it('stays revocable while a draft: the sweep never expires a draft, so the answer is the same after it', async () => {
    const draft = String((await world.run('licence.create', {
      reference: 'BIS-TIMING-DRAFT', direction: 'export', holderId: world.actors.exporter.orgId, parties: [{ organisationId: world.actors.alpha.orgId, role: 'end_user' }],
      productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 5, validFrom: '2026-01-01T00:00:00Z', validTo: '2026-02-01T00:00:00Z',
    }, world.actors.bis)).licenceId);
    expect(expectOk(await world.ledger.submit('licence.revoke', { licenceId: draft, reason: 'never issued' }, world.actors.bis))).toMatchObject({ status: 'revoked' });
  });
});

describe('a booking at its deadline, not yet swept', () => {
  it('cannot be cancelled (booking-deadline, as manifest.attach and shipment.ship say): the sweep expires it', async () => {
    const pair = await licencePair(world, { validTo: '2027-01-01T00:00:00Z' });
    const deadline = new Date(world.clock.now().getTime() + 86_400_000).toISOString();
    const book = async () => String((await world.run('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1, deadline,
    }, world.actors.exporter)).shipmentId);
    const [early, late] = [await book(), await book()];
    world.clock.set(new Date(Date.parse(deadline) - 1));
    expect(expectOk(await world.ledger.submit('shipment.cancel', { shipmentId: early }, world.actors.exporter))).toMatchObject({ status: 'cancelled' });
    world.clock.set(deadline);
    expect(refusalOf(await world.ledger.submit('shipment.cancel', { shipmentId: late, reason: 'order withdrawn' }, world.actors.exporter))).toEqual({
      code: 'conflict', rule: 'booking-deadline', message: `couldn't cancel shipment ${late}: its booking deadline ${deadline} has passed`, details: { deadline },
    });
    expect(expectOk(await world.ledger.sweep()).expiredShipments).toContain(late);
    expect(await statusOf('shipments', late)).toBe('expired');
  });
});
