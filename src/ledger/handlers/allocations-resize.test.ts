/**
 * Growing an allocation hands out units, so it needs the licence status that creating
 * one needs; shrinking gives units back and is allowed in any status.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let counter = 0;

/** A fresh issued import licence of 100 units held by alpha, 10 of them allocated to it. */
async function allocatedLicence(validTo = '2027-01-01T00:00:00Z'): Promise<{ licenceId: string; allocationId: string }> {
  const { run, actors, productId } = world;
  const licenceId = String((await run('licence.create', {
    reference: `MOFCOM-R-${++counter}`, direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo,
  }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId }, actors.mofcom);
  const allocationId = String((await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 10 }, actors.mofcom)).allocationId);
  return { licenceId, allocationId };
}

async function units(allocationId: string, licenceId: string): Promise<{ allocation: number; allocated: number }> {
  const row = await database.pool.query<{ allocation: number; allocated: number }>(
    'SELECT a.units AS allocation, l.allocated_units AS allocated FROM allocations a JOIN licences l ON l.id = a.licence_id WHERE a.id = $1 AND l.id = $2',
    [allocationId, licenceId],
  );
  return row.rows[0]!;
}

const statuses: Array<{ status: string; reach: (licenceId: string) => Promise<unknown> }> = [
  { status: 'suspended', reach: (licenceId) => world.run('licence.suspend', { licenceId }, world.actors.mofcom) },
  { status: 'revoked', reach: (licenceId) => world.run('licence.revoke', { licenceId }, world.actors.mofcom) },
  { status: 'surrendered', reach: (licenceId) => world.run('licence.surrender', { licenceId }, world.actors.alpha) },
];

describe('allocation.resize and the licence status', () => {
  it('grows and shrinks an allocation of an issued licence', async () => {
    const { licenceId, allocationId } = await allocatedLicence();
    expect(await world.run('allocation.resize', { allocationId, units: 25 }, world.actors.mofcom)).toMatchObject({ units: 25 });
    expect(await world.run('allocation.resize', { allocationId, units: 5 }, world.actors.mofcom)).toMatchObject({ units: 5 });
    expect(await units(allocationId, licenceId)).toEqual({ allocation: 5, allocated: 5 });
  });

  for (const { status, reach } of statuses) {
    it(`refuses to grow an allocation of a ${status} licence, as allocation.create does, and lets it shrink`, async () => {
      const { licenceId, allocationId } = await allocatedLicence();
      await reach(licenceId);
      const created = await world.ledger.submit('allocation.create', { licenceId, recipientId: world.actors.alpha.orgId, units: 1 }, world.actors.mofcom);
      expect(created.ok ? 'accepted' : created.error.rule).toBe('licence-status');
      const grown = await world.ledger.submit('allocation.resize', { allocationId, units: 11 }, world.actors.mofcom);
      expect(grown.ok ? 'accepted' : { code: grown.error.code, rule: grown.error.rule, message: grown.error.message }).toEqual({
        code: 'conflict', rule: 'licence-status', message: `couldn't grow allocation ${allocationId} to 11 units: licence ${licenceId} is ${status}; only a draft or issued licence hands out units`,
      });
      expect(await units(allocationId, licenceId)).toEqual({ allocation: 10, allocated: 10 });
      expect(expectOk(await world.ledger.submit('allocation.resize', { allocationId, units: 4 }, world.actors.mofcom))).toMatchObject({ units: 4 });
      expect(await units(allocationId, licenceId)).toEqual({ allocation: 4, allocated: 4 });
    });
  }

  it('refuses to grow an allocation of an expired licence', async () => {
    const { licenceId, allocationId } = await allocatedLicence('2026-02-02T00:00:00Z');
    world.clock.set('2026-02-03T00:00:00Z');
    expect(expectOk(await world.ledger.sweep()).expiredLicences).toContain(licenceId);
    const grown = await world.ledger.submit('allocation.resize', { allocationId, units: 11 }, world.actors.mofcom);
    expect(grown.ok ? 'accepted' : grown.error.rule).toBe('licence-status');
    expect(expectOk(await world.ledger.submit('allocation.resize', { allocationId, units: 9 }, world.actors.mofcom))).toMatchObject({ units: 9 });
  });
});

describe('allocation.resize and the recipient the licence names', () => {
  it('refuses to grow an allocation of a recipient an amendment dropped, as allocation.create does, and lets it shrink', async () => {
    const { run, actors, productId } = world;
    const { alpha, beta, exporter, mofcom } = actors;
    // Held by beta, naming alpha as consignee: alpha is named only as long as the parties say so.
    const licenceId = String((await run('licence.create', {
      reference: `MOFCOM-R-${++counter}`, direction: 'import', holderId: beta.orgId,
      parties: [{ organisationId: alpha.orgId, role: 'consignee' }, { organisationId: exporter.orgId, role: 'supplier' }],
      productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, mofcom)).licenceId);
    await run('licence.issue', { licenceId }, mofcom);
    const allocationId = String((await run('allocation.create', { licenceId, recipientId: alpha.orgId, units: 10 }, mofcom)).allocationId);
    await run('licence.amend', { licenceId, reason: 'alpha removed', parties: [{ organisationId: exporter.orgId, role: 'supplier' }] }, mofcom);
    const created = await world.ledger.submit('allocation.create', { licenceId, recipientId: alpha.orgId, units: 1 }, mofcom);
    expect(created.ok ? 'accepted' : created.error.rule).toBe('licence-recipient');
    const grown = await world.ledger.submit('allocation.resize', { allocationId, units: 50 }, mofcom);
    expect(grown.ok ? 'accepted' : { code: grown.error.code, rule: grown.error.rule, message: grown.error.message }).toEqual({
      code: 'licence_not_valid', rule: 'licence-recipient',
      message: `couldn't grow allocation ${allocationId} to 50 units: licence ${licenceId} does not name ${alpha.orgId} as holder, consignee or end user`,
    });
    expect(await units(allocationId, licenceId)).toEqual({ allocation: 10, allocated: 10 });
    // Shrinking gives units back to the licence, named or not.
    expect(expectOk(await world.ledger.submit('allocation.resize', { allocationId, units: 3 }, mofcom))).toMatchObject({ units: 3 });
    expect(await units(allocationId, licenceId)).toEqual({ allocation: 3, allocated: 3 });
    // A recipient still named (beta, the holder) is grown as before.
    const betaAllocationId = String((await run('allocation.create', { licenceId, recipientId: beta.orgId, units: 1 }, mofcom)).allocationId);
    expect(expectOk(await world.ledger.submit('allocation.resize', { allocationId: betaAllocationId, units: 20 }, mofcom))).toMatchObject({ units: 20 });
  });
});
