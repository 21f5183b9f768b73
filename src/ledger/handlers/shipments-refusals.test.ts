/**
 * A booking's refusals as the exporter reads them: each names what is wrong with the
 * numbers or records behind it, and a rule of its own. Two allocations for different
 * recipients are a mismatched pair (the licence may well name the recipient, on another
 * allocation); an allocation the exporter reads but of the other direction is said to be so,
 * not "not found"; the deadline's refusal carries its bound.
 */
import { describe, expect, it } from 'vitest';
import { worldPerFile, expectOk, refusalOf, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';

let world: World;

worldPerFile((made) => {
  world = made;
});

function book(exportAllocationId: string, importAllocationId: string, deadline = '2026-06-01T00:00:00Z'): Promise<Answer> {
  return world.ledger.submit('shipment.book', { exportAllocationId, importAllocationId, productId: world.productId, units: 1, deadline }, world.actors.exporter);
}

describe('a booking whose two allocations are for different recipients', () => {
  it('names both allocations, their licences and recipients, under a rule of its own, not licence-recipient', async () => {
    const { allocations, exportLicenceId, importLicenceId, actors } = world;
    // The export licence names alpha (an end user, with an allocation of its own): it is the pair that is wrong.
    expect(refusalOf(await book(allocations.betaExport, allocations.alphaImport))).toEqual({
      code: 'licence_not_valid', rule: 'allocation-recipient-pair',
      message: `allocation ${allocations.betaExport} (export, licence ${exportLicenceId}) is for ${actors.beta.orgId}, and allocation ${allocations.alphaImport} (import, licence ${importLicenceId}) is for ${actors.alpha.orgId}; both allocations of a booking must be for the same recipient`,
      details: { exportAllocationId: allocations.betaExport, exportRecipientId: actors.beta.orgId, importAllocationId: allocations.alphaImport, importRecipientId: actors.alpha.orgId },
    });
    expectOk(await book(allocations.alphaExport, allocations.alphaImport));
  });
});

describe('a booking with its allocations swapped', () => {
  it('says which licence and direction each is, when the exporter reads it, instead of not found', async () => {
    const { allocations, exportLicenceId, importLicenceId } = world;
    expect(refusalOf(await book(allocations.alphaImport, allocations.alphaExport))).toEqual({
      code: 'invalid_input', rule: 'allocation-direction',
      message: `allocation ${allocations.alphaImport} is of import licence ${importLicenceId}, so it goes in importAllocationId; exportAllocationId takes an allocation of an export licence you hold`,
      details: { field: 'exportAllocationId', allocationId: allocations.alphaImport, licenceId: importLicenceId, direction: 'import', expectedDirection: 'export' },
    });
    expect(refusalOf(await book(allocations.alphaExport, allocations.alphaExport))).toMatchObject({
      rule: 'allocation-direction',
      message: `allocation ${allocations.alphaExport} is of export licence ${exportLicenceId}, so it goes in exportAllocationId; importAllocationId takes an allocation of an import licence that names you as a supplier`,
    });
  });

  it('still answers not found for an allocation the exporter does not read, whatever its direction', async () => {
    const { run, actors, productId } = world;
    // An import licence that names the exporter as no supplier: its allocations are not the exporter's to read.
    const licenceId = String((await run('licence.create', {
      reference: 'MOFCOM-UNREAD-1', direction: 'import', holderId: actors.alpha.orgId, parties: [],
      productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, actors.mofcom)).licenceId);
    const allocationId = String((await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 10 }, actors.mofcom)).allocationId);
    expect(refusalOf(await book(allocationId, world.allocations.alphaImport))).toEqual({
      code: 'not_found', rule: undefined, message: `allocation ${allocationId} was not found`, details: { allocation: allocationId },
    });
  });
});

describe('a booking deadline out of range', () => {
  it('carries the deadline, the booking\'s time and the bound in its details', async () => {
    const at = world.clock.now().toISOString();
    expect(refusalOf(await book(world.allocations.alphaExport, world.allocations.alphaImport, '2026-01-01T00:00:00.000Z'))).toEqual({
      code: 'invalid_input', rule: 'booking-deadline',
      message: `deadline 2026-01-01T00:00:00.000Z must be after ${at} and within 365 days`,
      details: { deadline: '2026-01-01T00:00:00.000Z', at, deadlineMaxDays: 365 },
    });
  });
});

describe('a shipment step by an organisation that is not its party', () => {
  it('names the rule shipment-party', async () => {
    const shipmentId = String(expectOk(await book(world.allocations.alphaExport, world.allocations.alphaImport)).shipmentId);
    // BIS reads every shipment, but clearing is the import side's act.
    const answer = await world.ledger.submit('shipment.clear', { shipmentId }, world.actors.bis);
    expect(refusalOf(answer)).toMatchObject({ code: 'forbidden', rule: 'shipment-party' });
  });
});
