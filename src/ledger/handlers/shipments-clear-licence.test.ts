/**
 * Clearance is the import recorded, under the shipment's import licence: the recipient's is
 * refused once that licence is not in force (its validity ended, swept or not; revoked,
 * surrendered, suspended), naming the licence and its status or end. The licence's issuing
 * authority may still record a clearance that happened in time, and every clearance's event
 * says how the import licence stood (importLicence). Delivery stays a domestic step.
 *
 * Each test makes its own pair of licences; the clock only moves forward.
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

let serials = 0;

/** A shipment of one unit under the pair, shipped; its deadline a week ahead unless given. */
async function shipped(pair: LicencePair, deadline = new Date(world.clock.now().getTime() + 7 * 86_400_000).toISOString()): Promise<string> {
  const shipmentId = String((await world.run('shipment.book', {
    exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1, deadline, serials: [`CLEAR-LIC-${++serials}`],
  }, world.actors.exporter)).shipmentId);
  await world.run('shipment.ship', { shipmentId }, world.actors.exporter);
  return shipmentId;
}

/** The effects of the shipment's newest event of a kind, as its canonical bytes hold them. */
async function effectsOf(shipmentId: string, kind: string): Promise<Record<string, unknown>> {
  const rows = (await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE subject_id = $1 AND kind = $2 ORDER BY seq DESC LIMIT 1', [shipmentId, kind])).rows;
  return JSON.parse(rows[0]!.canonical.toString('utf8')).effects;
}

const clear = (shipmentId: string, actor = world.actors.alpha) => world.ledger.submit('shipment.clear', { shipmentId }, actor);

describe("a clearance under an import licence whose validity has ended", () => {
  it('is refused to the recipient before the sweep (licence-validity) and after it (licence-status), and recorded by the licence\'s authority', async () => {
    world.clock.set('2026-02-10T00:00:00Z');
    const pair = await licencePair(world, { authorisedUnits: 10, validTo: '2026-04-01T00:00:00Z' });
    const shipmentId = await shipped(pair);
    world.clock.set('2026-04-02T00:00:00Z');

    expect(refusalOf(await clear(shipmentId))).toEqual({
      code: 'licence_not_valid', rule: 'licence-validity',
      message: `couldn't clear shipment ${shipmentId}: the validity of its import licence ${pair.importLicenceId} ended at 2026-04-01T00:00:00.000Z (now 2026-04-02T00:00:00.000Z); a clearance under it is recorded now only by ${world.actors.mofcom.orgId}, the authority that issued it`,
      details: { licenceId: pair.importLicenceId, validTo: '2026-04-01T00:00:00.000Z', at: '2026-04-02T00:00:00.000Z' },
    });
    expectOk(await world.ledger.sweep());
    expect(refusalOf(await clear(shipmentId))).toMatchObject({
      code: 'licence_not_valid', rule: 'licence-status', details: { licenceId: pair.importLicenceId, status: 'expired' },
      message: `couldn't clear shipment ${shipmentId}: its import licence ${pair.importLicenceId} is expired, not issued or exhausted; a clearance under it is recorded now only by ${world.actors.mofcom.orgId}, the authority that issued it`,
    });

    // The authority that issued the import licence records a clearance that happened in
    // time; its event says the licence had ended when it was recorded.
    expect(expectOk(await clear(shipmentId, world.actors.mofcom))).toMatchObject({ shipmentId, status: 'cleared' });
    expect(await effectsOf(shipmentId, 'shipment.clear')).toEqual({
      from: 'shipped', to: 'cleared', units: 1, importLicence: { id: pair.importLicenceId, status: 'expired', validTo: '2026-04-01T00:00:00.000Z' },
    });
    // Delivery is a domestic step: the recipient takes it whatever the licence.
    expect(expectOk(await world.ledger.submit('shipment.deliver', { shipmentId }, world.actors.alpha))).toMatchObject({ shipmentId, status: 'delivered' });
  });

  it('is taken a millisecond before validTo and refused at it: the validity is half-open', async () => {
    const validTo = new Date(world.clock.now().getTime() + 10 * 86_400_000).toISOString();
    const pair = await licencePair(world, { authorisedUnits: 10, validTo });
    const [early, late] = [await shipped(pair, validTo), await shipped(pair, validTo)];
    world.clock.set(new Date(Date.parse(validTo) - 1));
    expectOk(await clear(early));
    world.clock.set(validTo);
    expect(refusalOf(await clear(late))).toMatchObject({ rule: 'licence-validity' });
  });
});

describe('a clearance under an import licence its authority or holder ended', () => {
  it('is refused to the recipient when revoked, suspended or surrendered, naming the status', async () => {
    const ended = { revoke: world.actors.mofcom, suspend: world.actors.mofcom, surrender: world.actors.alpha } as const;
    for (const [step, actor] of Object.entries(ended)) {
      const pair = await licencePair(world, { authorisedUnits: 10 });
      const shipmentId = await shipped(pair);
      await world.run(`licence.${step as keyof typeof ended}`, { licenceId: pair.importLicenceId, reason: 'diversion' }, actor);
      const status = { revoke: 'revoked', suspend: 'suspended', surrender: 'surrendered' }[step];
      expect(refusalOf(await clear(shipmentId)), step).toMatchObject({ code: 'licence_not_valid', rule: 'licence-status', details: { licenceId: pair.importLicenceId, status } });
      expect((await database.pool.query('SELECT status FROM shipments WHERE id = $1', [shipmentId])).rows[0].status).toBe('shipped');
    }
  });

  it('is another authority\'s to record no more than before (shipment-party)', async () => {
    const pair = await licencePair(world, { authorisedUnits: 10 });
    const shipmentId = await shipped(pair);
    await world.run('licence.revoke', { licenceId: pair.importLicenceId, reason: 'diversion' }, world.actors.mofcom);
    expect(refusalOf(await clear(shipmentId, world.actors.bis))).toMatchObject({ code: 'forbidden', rule: 'shipment-party' });
  });
});

describe('a clearance under an import licence in force', () => {
  it('is the recipient\'s, the export licence\'s status aside, and its event gives the import licence as it stood', async () => {
    const pair = await licencePair(world, { authorisedUnits: 10 });
    const shipmentId = await shipped(pair);
    // The export side is not the import's to answer for: its revocation does not stop the clearance.
    await world.run('licence.revoke', { licenceId: pair.exportLicenceId, reason: 'export side ended' }, world.actors.bis);
    expect(expectOk(await clear(shipmentId))).toMatchObject({ shipmentId, status: 'cleared' });
    expect(await effectsOf(shipmentId, 'shipment.clear')).toEqual({
      from: 'shipped', to: 'cleared', units: 1, importLicence: { id: pair.importLicenceId, status: 'issued', validTo: '2027-01-01T00:00:00.000Z' },
    });
  });

  it('is taken under an exhausted import licence: its units all shipped, it is still in force', async () => {
    const pair = await licencePair(world, { authorisedUnits: 1 });
    const shipmentId = await shipped(pair);
    expect((await database.pool.query('SELECT status FROM licences WHERE id = $1', [pair.importLicenceId])).rows[0].status).toBe('exhausted');
    expectOk(await clear(shipmentId));
    expect(await effectsOf(shipmentId, 'shipment.clear')).toMatchObject({ importLicence: { id: pair.importLicenceId, status: 'exhausted' } });
  });

  it('is paused by suspending the exhausted import licence, and taken again once it is reinstated, exhausted as before', async () => {
    const pair = await licencePair(world, { authorisedUnits: 1 });
    const shipmentId = await shipped(pair);
    const licenceStatus = async () => (await database.pool.query('SELECT status FROM licences WHERE id = $1', [pair.importLicenceId])).rows[0].status;
    expect(await licenceStatus()).toBe('exhausted');
    expect(expectOk(await world.ledger.submit('licence.suspend', { licenceId: pair.importLicenceId, reason: 'investigation' }, world.actors.mofcom))).toMatchObject({ status: 'suspended' });
    expect(refusalOf(await clear(shipmentId))).toMatchObject({ code: 'licence_not_valid', rule: 'licence-status', details: { licenceId: pair.importLicenceId, status: 'suspended' } });
    expect(expectOk(await world.ledger.submit('licence.reinstate', { licenceId: pair.importLicenceId }, world.actors.mofcom))).toMatchObject({ status: 'exhausted' });
    expect(await licenceStatus()).toBe('exhausted');
    expectOk(await clear(shipmentId));
    expect(await world.ledger.violations()).toEqual([]);
  });
});
