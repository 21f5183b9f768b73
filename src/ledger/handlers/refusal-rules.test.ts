/**
 * Refusals that say who may act name a rule too (DESIGN.md: every refusal says which rule
 * refused it), and conflicts carry the numbers and records behind them, in one shape per
 * rule: invariant 1's has the licence's figures and what was asked, whichever command met it.
 */
import { describe, expect, it } from 'vitest';
import { systemActor } from '../permissions.ts';
import { refusalOf, worldPerFile, type World } from '../../../test/world.ts';

let world: World;

worldPerFile((made) => {
  world = made;
});

describe('an authority acting on another authority\'s licence', () => {
  it('is refused under rule licence-issuer, whatever it does', async () => {
    const { ledger, actors, exportLicenceId, allocations } = world;
    expect(refusalOf(await ledger.submit('allocation.create', { licenceId: exportLicenceId, recipientId: actors.alpha.orgId, units: 1 }, actors.mofcom))).toMatchObject({ code: 'forbidden', rule: 'licence-issuer' });
    expect(refusalOf(await ledger.submit('allocation.resize', { allocationId: allocations.alphaExport, units: 1 }, actors.mofcom))).toEqual({
      code: 'forbidden', rule: 'licence-issuer', message: `only ${actors.bis.orgId}, which issued licence ${exportLicenceId}, may resize its allocations`, details: undefined,
    });
    expect(refusalOf(await ledger.submit('licence.suspend', { licenceId: exportLicenceId, reason: 'x' }, actors.mofcom))).toMatchObject({ code: 'forbidden', rule: 'licence-issuer' });
  });
});

describe('invariant 1, one details shape', () => {
  it('gives the licence\'s figures and what was asked, on create, resize and amend', async () => {
    const { ledger, actors, exportLicenceId, allocations } = world;
    // The world's export licence: 1,000 authorised, 1,000 allocated (500 each to alpha and beta).
    const figures = { licenceId: exportLicenceId, authorisedUnits: 1_000, allocatedUnits: 1_000, unallocatedUnits: 0 };
    expect(refusalOf(await ledger.submit('allocation.create', { licenceId: exportLicenceId, recipientId: actors.alpha.orgId, units: 3 }, actors.bis)).details).toEqual({ ...figures, requestedUnits: 3 });
    expect(refusalOf(await ledger.submit('allocation.resize', { allocationId: allocations.alphaExport, units: 502 }, actors.bis)).details).toEqual({ ...figures, requestedUnits: 2, allocationId: allocations.alphaExport });
    expect(refusalOf(await ledger.submit('licence.amend', { licenceId: exportLicenceId, reason: 'fewer', authorisedUnits: 900 }, actors.bis)).details).toEqual({ ...figures, requestedAuthorisedUnits: 900 });
  });

  it('names the allocation when a shrink would go below what it holds (invariant 2)', async () => {
    const { ledger, actors, allocations, productId } = world;
    await world.run('shipment.book', { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport, productId, units: 2, deadline: '2026-06-01T00:00:00Z' }, actors.exporter);
    expect(refusalOf(await ledger.submit('allocation.resize', { allocationId: allocations.betaExport, units: 1 }, actors.bis)).details).toEqual({ allocationId: allocations.betaExport, usedUnits: 2, requestedUnits: 1 });
  });
});

describe('tokens and KYC', () => {
  it('says a/an by the word and gives the roles, for a token the organisation cannot hold', async () => {
    const { ledger, actors } = world;
    expect(refusalOf(await ledger.submit('token.create', { organisationId: actors.exporter.orgId, role: 'recipient', label: 'x' }, systemActor))).toEqual({
      code: 'conflict', rule: 'token-role', message: `organisation ${actors.exporter.orgId} is not a recipient, so it cannot hold a recipient token`,
      details: { organisationId: actors.exporter.orgId, role: 'recipient', neededRole: 'recipient', roles: ['exporter'] },
    });
    expect(refusalOf(await ledger.submit('token.create', { organisationId: actors.exporter.orgId, role: 'auditor', label: 'x' }, systemActor)).message).toBe(`organisation ${actors.exporter.orgId} is not an auditor, so it cannot hold an auditor token`);
  });

  it('names the revocation time of a token revoked twice', async () => {
    const { ledger, actors } = world;
    const tokenId = String((await world.run('token.create', { organisationId: actors.alpha.orgId, role: 'recipient', label: 'twice' }, systemActor)).tokenId);
    await world.run('token.revoke', { tokenId }, systemActor);
    expect(refusalOf(await ledger.submit('token.revoke', { tokenId }, systemActor)).details).toEqual({ tokenId, revokedAt: world.clock.now().toISOString() });
  });

  it('refuses KYC recorded by no authority organisation under rule kyc-authority', async () => {
    expect(refusalOf(await world.ledger.submit('organisation.set_kyc', { organisationId: world.actors.alpha.orgId, verified: true }, systemActor))).toMatchObject({ code: 'forbidden', rule: 'kyc-authority' });
  });

  it('refuses an allocation to an organisation that is not a recipient, with its roles', async () => {
    const { ledger, actors, importLicenceId } = world;
    expect(refusalOf(await ledger.submit('allocation.create', { licenceId: importLicenceId, recipientId: actors.exporter.orgId, units: 1 }, actors.mofcom))).toMatchObject({
      code: 'conflict', rule: 'allocation-recipient', details: { organisationId: actors.exporter.orgId, roles: ['exporter'] },
    });
  });
});

describe('a site without room', () => {
  it('says "1 more unit", not "1 more units"', async () => {
    const { run, actors, productId, allocations } = world;
    const serials = ['ROOM-1', 'ROOM-2'];
    const shipmentId = String((await run('shipment.book', { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 2, deadline: '2026-03-01T00:00:00Z', serials }, actors.exporter)).shipmentId);
    await run('shipment.ship', { shipmentId }, actors.exporter);
    await run('shipment.clear', { shipmentId }, actors.mofcom);
    await run('shipment.deliver', { shipmentId }, actors.alpha);
    const siteId = String((await run('site.register', { name: 'Small DC', province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 1 }, actors.alpha)).siteId);
    expect(refusalOf(await world.ledger.submit('units.deploy', { siteId, serials }, actors.alpha)).message).toBe(`site ${siteId} has room for 1 more unit; 2 reported`);
  });

  it('lists the custodies a unit may end from with "or"', async () => {
    const { run, actors } = world;
    await run('units.decommission', { serials: ['ROOM-1'], reason: 'end of life' }, actors.alpha);
    expect(refusalOf(await world.ledger.submit('units.return', { serials: ['ROOM-1'], reason: 'again' }, actors.alpha)).message).toBe('unit ROOM-1 is decommissioned; only delivered or deployed units can be returned');
  });
});
