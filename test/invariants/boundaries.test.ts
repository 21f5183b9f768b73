/**
 * Boundary cases of invariants 1, 2, 3 and 6 that the model test reaches only by chance
 * (it draws its seed anew each run): each test here pins one rule at its edge, so that a
 * check off by one, a check left out on one side of a shipment, or an idempotency key
 * compared on less than the whole request fails every run, not one run in many.
 *
 * Each case was written against a deliberate bug (hand mutation testing); the bug it
 * stops is named in its title.
 */
import { describe, expect, it } from 'vitest';
import type { Answer } from '../../src/ledger/ledger.ts';
import type { TestDatabase } from '../database.ts';
import { licencePair, type LicencePair, type LicencePairOptions } from '../support/licence-pair.ts';
import { expectOk, worldPerFile, type World } from '../world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

type PairOptions = Omit<LicencePairOptions, 'betaConsignee' | 'period'>;

/** A fresh issued export licence (BIS, the exporter) and import licence (MOFCOM, alpha), each with an allocation to alpha (50 units unless said). */
const pair = (options: PairOptions = {}): Promise<LicencePair> => licencePair(world, { exportUnits: 50, importUnits: 50, ...options });

function book(on: LicencePair, units: number, deadline = '2026-12-01T00:00:00Z', key?: string): Promise<Answer> {
  return world.ledger.submit('shipment.book', {
    exportAllocationId: on.exportAllocationId, importAllocationId: on.importAllocationId, productId: world.productId, units, deadline,
  }, world.actors.exporter, key);
}

/** What a refusal says, in one comparable shape; an acceptance as 'accepted'. */
function refusal(answer: Answer): 'accepted' | { code: string; rule: string | undefined } {
  return answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule };
}

async function allocationUnits(...ids: string[]): Promise<Record<string, { reserved: number; shipped: number }>> {
  const rows = await database.pool.query<{ id: string; reserved_units: number; shipped_units: number }>('SELECT id, reserved_units, shipped_units FROM allocations WHERE id = ANY($1)', [ids]);
  return Object.fromEntries(rows.rows.map((row) => [row.id, { reserved: row.reserved_units, shipped: row.shipped_units }]));
}

async function licenceAllocated(licenceId: string): Promise<number> {
  return (await database.pool.query<{ allocated_units: number }>('SELECT allocated_units FROM licences WHERE id = $1', [licenceId])).rows[0]!.allocated_units;
}

describe('invariant 1 at its edge', () => {
  it('allocates a licence exactly to its authorised units and refuses one unit more (create off by one)', async () => {
    const on = await pair({ authorisedUnits: 100, exportUnits: 60 });
    const over = await world.ledger.submit('allocation.create', { licenceId: on.exportLicenceId, recipientId: world.actors.alpha.orgId, units: 41 }, world.actors.bis);
    expect(refusal(over)).toEqual({ code: 'insufficient_units', rule: 'invariant-1' });
    expectOk(await world.ledger.submit('allocation.create', { licenceId: on.exportLicenceId, recipientId: world.actors.alpha.orgId, units: 40 }, world.actors.bis));
    expect(await licenceAllocated(on.exportLicenceId)).toBe(100);
  });

  it('grows an allocation exactly to the licence and refuses one unit more (resize off by one)', async () => {
    const on = await pair({ authorisedUnits: 100, exportUnits: 60 });
    const over = await world.ledger.submit('allocation.resize', { allocationId: on.exportAllocationId, units: 101 }, world.actors.bis);
    expect(refusal(over)).toEqual({ code: 'insufficient_units', rule: 'invariant-1' });
    expect(await licenceAllocated(on.exportLicenceId)).toBe(60);
    expectOk(await world.ledger.submit('allocation.resize', { allocationId: on.exportAllocationId, units: 100 }, world.actors.bis));
    expect(await licenceAllocated(on.exportLicenceId)).toBe(100);
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('invariant 2 at its edge, on both sides', () => {
  it('books exactly what an allocation has left and refuses one unit more (availability off by one)', async () => {
    const on = await pair({ exportUnits: 30, importUnits: 30 });
    expectOk(await book(on, 20));
    expect(refusal(await book(on, 11))).toEqual({ code: 'insufficient_units', rule: 'invariant-2' });
    expectOk(await book(on, 10));
    expect(await allocationUnits(on.exportAllocationId, on.importAllocationId)).toEqual({
      [on.exportAllocationId]: { reserved: 30, shipped: 0 }, [on.importAllocationId]: { reserved: 30, shipped: 0 },
    });
  });

  it('refuses a booking the import-side allocation cannot hold, though the export side could (import side unchecked)', async () => {
    const on = await pair({ exportUnits: 50, importUnits: 10 });
    const answer = await book(on, 11);
    expect(refusal(answer)).toEqual({ code: 'insufficient_units', rule: 'invariant-2' });
    expect(answer.ok ? null : answer.error.details).toMatchObject({ allocationId: on.importAllocationId, availableUnits: 10 });
    expect(await allocationUnits(on.exportAllocationId, on.importAllocationId)).toEqual({
      [on.exportAllocationId]: { reserved: 0, shipped: 0 }, [on.importAllocationId]: { reserved: 0, shipped: 0 },
    });
  });

  it('refuses a booking the export-side allocation cannot hold, though the import side could', async () => {
    const on = await pair({ exportUnits: 10, importUnits: 50 });
    const answer = await book(on, 11);
    expect(refusal(answer)).toEqual({ code: 'insufficient_units', rule: 'invariant-2' });
    expect(answer.ok ? null : answer.error.details).toMatchObject({ allocationId: on.exportAllocationId, availableUnits: 10 });
  });

  it('reserves on both allocations when booking and releases both when cancelling', async () => {
    const on = await pair();
    const shipmentId = String(expectOk(await book(on, 7)).shipmentId);
    const both = (reserved: number) => ({ [on.exportAllocationId]: { reserved, shipped: 0 }, [on.importAllocationId]: { reserved, shipped: 0 } });
    expect(await allocationUnits(on.exportAllocationId, on.importAllocationId)).toEqual(both(7));
    expectOk(await world.ledger.submit('shipment.cancel', { shipmentId }, world.actors.exporter));
    expect(await allocationUnits(on.exportAllocationId, on.importAllocationId)).toEqual(both(0));
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('invariant 3 at its edge', () => {
  it('refuses a booking the import licence no longer covers, though the export licence does, naming the rule (import side unchecked)', async () => {
    const on = await pair();
    await world.run('licence.suspend', { licenceId: on.importLicenceId }, world.actors.mofcom);
    expect(refusal(await book(on, 1))).toEqual({ code: 'licence_not_valid', rule: 'licence-status' });
    await world.run('licence.reinstate', { licenceId: on.importLicenceId }, world.actors.mofcom);
    expectOk(await book(on, 1));
  });

  it('refuses an allocation to an organisation the licence names only as a supplier', async () => {
    const { run, actors, productId } = world;
    const licenceId = String((await run('licence.create', {
      reference: 'MOFCOM-M-SUPPLIER', direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.beta.orgId, role: 'supplier' }],
      productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, actors.mofcom)).licenceId);
    await run('licence.issue', { licenceId }, actors.mofcom);
    const answer = await world.ledger.submit('allocation.create', { licenceId, recipientId: actors.beta.orgId, units: 1 }, actors.mofcom);
    expect(refusal(answer)).toEqual({ code: 'licence_not_valid', rule: 'licence-recipient' });
  });

  it('refuses a shipment above a max_units_per_shipment condition and books one at exactly its value', async () => {
    const on = await pair({ importConditions: [{ id: 'cap-five', text: 'At most 5 units a shipment', kind: 'max_units_per_shipment', value: 5 }] });
    const over = await book(on, 6);
    expect(refusal(over)).toEqual({ code: 'licence_not_valid', rule: 'licence-condition' });
    expectOk(await book(on, 5));
  });
});

describe('invariant 6: what "the same request" means', () => {
  it('refuses the same key with the same input under another command kind', async () => {
    const on = await pair();
    const shipmentId = String(expectOk(await book(on, 1)).shipmentId);
    const first = await world.ledger.submit('shipment.cancel', { shipmentId }, world.actors.exporter, 'kind-key-1');
    expectOk(first);
    const other = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter, 'kind-key-1');
    expect(refusal(other)).toEqual({ code: 'idempotency_mismatch', rule: 'invariant-6' });
  });

  it("keeps each organisation's keys to itself: another organisation's key of the same name is a new request", async () => {
    const on = await pair();
    const booked = expectOk(await book(on, 1, '2026-12-01T00:00:00Z', 'shared-name'));
    // Alpha's first use of the same key name: its own command runs, and is not refused or replayed.
    const site = await world.ledger.submit('site.register', { name: 'Key scope DC', province: 'Guizhou', city: 'Guiyang', latitude: 26.6, longitude: 106.7, capacityUnits: 5 }, world.actors.alpha, 'shared-name');
    expect(site.ok ? { replayed: site.replayed, siteId: typeof site.body.siteId } : site.error.code).toEqual({ replayed: false, siteId: 'string' });
    // And the exporter's key still answers the exporter's request.
    const again = await book(on, 1, '2026-12-01T00:00:00Z', 'shared-name');
    expect(again.ok ? { replayed: again.replayed, shipmentId: again.body.shipmentId } : again.error.code).toEqual({ replayed: true, shipmentId: booked.shipmentId });
  });

  it('replays a refusal under its key, even after the state changed so that the request would now pass', async () => {
    const on = await pair({ exportUnits: 10, importUnits: 10 });
    const held = String(expectOk(await book(on, 10)).shipmentId);
    const refused = await book(on, 5, '2026-12-01T00:00:00Z', 'refused-key');
    expect(refusal(refused)).toEqual({ code: 'insufficient_units', rule: 'invariant-2' });
    expectOk(await world.ledger.submit('shipment.cancel', { shipmentId: held }, world.actors.exporter));
    const retried = await book(on, 5, '2026-12-01T00:00:00Z', 'refused-key');
    expect(retried.ok ? 'accepted' : { code: retried.error.code, replayed: retried.replayed }).toEqual({ code: 'insufficient_units', replayed: true });
    expect(await allocationUnits(on.exportAllocationId)).toEqual({ [on.exportAllocationId]: { reserved: 0, shipped: 0 } });
  });

  it('replays a booking retried with its key, one batch after another, and books it once', async () => {
    const on = await pair();
    const first = expectOk(await book(on, 3, '2026-12-01T00:00:00Z', 'retry-key'));
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const again = await book(on, 3, '2026-12-01T00:00:00Z', 'retry-key');
      expect(again.ok ? { shipmentId: again.body.shipmentId, replayed: again.replayed } : again.error.code).toEqual({ shipmentId: first.shipmentId, replayed: true });
    }
    expect(await allocationUnits(on.exportAllocationId)).toEqual({ [on.exportAllocationId]: { reserved: 3, shipped: 0 } });
  });
});

describe('invariant 4: a unit in the hands of its recipient is listed nowhere again', () => {
  it('refuses a delivered unit in a new manifest, by the rule, not by the database', async () => {
    const on = await pair();
    const { run, actors } = world;
    const shipmentId = String((await run('shipment.book', {
      exportAllocationId: on.exportAllocationId, importAllocationId: on.importAllocationId, productId: world.productId, units: 1, deadline: '2026-12-01T00:00:00Z', serials: ['MUT-DELIVERED-1'],
    }, actors.exporter)).shipmentId);
    await run('shipment.ship', { shipmentId }, actors.exporter);
    await run('shipment.clear', { shipmentId }, actors.alpha);
    await run('shipment.deliver', { shipmentId }, actors.alpha);
    const again = await world.ledger.submit('shipment.book', {
      exportAllocationId: on.exportAllocationId, importAllocationId: on.importAllocationId, productId: world.productId, units: 1, deadline: '2026-12-01T00:00:00Z', serials: ['MUT-DELIVERED-1'],
    }, actors.exporter);
    expect(refusal(again)).toEqual({ code: 'conflict', rule: 'invariant-4' });
  });
});

// These move the file's clock forward, so they run last.
describe('time edges (the clock moves forward)', () => {
  it('releases both allocations when a booking expires', async () => {
    const on = await pair();
    const now = world.clock.now().getTime();
    const shipmentId = String(expectOk(await book(on, 4, new Date(now + 3_600_000).toISOString())).shipmentId);
    world.clock.set(new Date(now + 3_600_000));
    expect(expectOk(await world.ledger.sweep()).expiredShipments).toContain(shipmentId);
    expect(await allocationUnits(on.exportAllocationId, on.importAllocationId)).toEqual({
      [on.exportAllocationId]: { reserved: 0, shipped: 0 }, [on.importAllocationId]: { reserved: 0, shipped: 0 },
    });
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('books under a licence up to the last millisecond of its validity and refuses at its end (validity off by one)', async () => {
    const validTo = new Date(world.clock.now().getTime() + 10 * 86_400_000);
    const on = await pair({ validTo: validTo.toISOString() });
    world.clock.set(new Date(validTo.getTime() - 1));
    // Its deadline at the licence's end, the latest a booking takes (booking-deadline).
    expectOk(await book(on, 1, validTo.toISOString()));
    // No sweep has run: the licence is still issued, and booking must check validity itself
    // (a deadline ahead of now, so that the deadline's own range is not what refuses it).
    world.clock.set(validTo);
    expect(refusal(await book(on, 1, new Date(validTo.getTime() + 86_400_000).toISOString()))).toEqual({ code: 'licence_not_valid', rule: 'licence-validity' });
  });

  it('takes no serials for a booking at the instant its licence ends, and the sweep then expires both (lapse off by one)', async () => {
    const validTo = new Date(world.clock.now().getTime() + 10 * 86_400_000);
    const deadline = new Date(validTo.getTime() + 86_400_000).toISOString();
    const on = await pair({ validTo: deadline });
    const shipmentId = String(expectOk(await book(on, 2, deadline)).shipmentId);
    // A deadline past the licence's end (a booking takes none, but an amendment may cut the
    // validity short after it): only the lapse can stop the booking at validTo.
    await world.run('licence.amend', { licenceId: on.exportLicenceId, reason: 'cut short', validTo: validTo.toISOString() }, world.actors.bis);
    await world.run('licence.amend', { licenceId: on.importLicenceId, reason: 'cut short', validTo: validTo.toISOString() }, world.actors.mofcom);
    world.clock.set(new Date(validTo.getTime() - 1));
    expectOk(await world.ledger.submit('manifest.attach', { shipmentId, serials: ['MUT-LAPSE-1'] }, world.actors.exporter));
    // No sweep has run: the licence is still issued, and attaching must see its end itself.
    world.clock.set(validTo);
    const attach = await world.ledger.submit('manifest.attach', { shipmentId, serials: ['MUT-LAPSE-2'] }, world.actors.exporter);
    expect(refusal(attach)).toEqual({ code: 'licence_not_valid', rule: 'licence-validity' });
    const swept = expectOk(await world.ledger.sweep());
    expect(swept.expiredShipments).toContain(shipmentId);
    expect(swept.expiredLicences).toEqual(expect.arrayContaining([on.exportLicenceId, on.importLicenceId]));
    expect(await allocationUnits(on.exportAllocationId, on.importAllocationId)).toEqual({
      [on.exportAllocationId]: { reserved: 0, shipped: 0 }, [on.importAllocationId]: { reserved: 0, shipped: 0 },
    });
    expect(await world.ledger.violations()).toEqual([]);
  });
});
