/**
 * Who ships under an import licence (licence-exporter): the exporters it names as
 * suppliers, and no one else, its holder included. That is who reads its allocations
 * (allocationOrgIds, store/visibility.ts shipsUnder); an exporter that held an import
 * licence naming it as no supplier booked under an allocation it could not see. Booking
 * does not find such an allocation; shipping refuses by rule once an amendment drops the
 * supplier, whoever holds the licence. The database holds the same (migration 035:
 * src/store/constraints-035.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { PartyRole } from '../rows.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let counter = 0;

/** An issued MOFCOM import licence US → CN held by the exporter, with these parties, allocated to alpha. */
async function importHeldByExporter(parties: Array<{ organisationId: string; role: PartyRole }>): Promise<{ licenceId: string; allocationId: string }> {
  const { run, actors, productId } = world;
  const licenceId = String((await run('licence.create', {
    reference: `MOFCOM-HELD-${++counter}`, direction: 'import', holderId: actors.exporter.orgId, parties,
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId }, actors.mofcom);
  const allocationId = String((await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 10 }, actors.mofcom)).allocationId);
  return { licenceId, allocationId };
}

function book(importAllocationId: string, serials: string[]) {
  return world.ledger.submit('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId, productId: world.productId, units: serials.length, deadline: '2026-06-01T00:00:00Z', serials,
  }, world.actors.exporter);
}

async function reserved(allocationId: string): Promise<number> {
  return (await database.pool.query<{ reserved_units: number }>('SELECT reserved_units FROM allocations WHERE id = $1', [allocationId])).rows[0]!.reserved_units;
}

describe('an import licence lets only the exporters it names as suppliers ship under it', () => {
  it('does not let its holder book under it when it names the holder as no supplier: the allocation is not the exporter’s to see', async () => {
    const { allocationId } = await importHeldByExporter([{ organisationId: world.actors.alpha.orgId, role: 'consignee' }]);
    const answer = await book(allocationId, ['HELD-1']);
    expect(answer.ok ? 'accepted' : { code: answer.error.code, message: answer.error.message }).toEqual({ code: 'not_found', message: `allocation ${allocationId} was not found` });
    expect(await reserved(allocationId)).toBe(0);
    expect(await reserved(world.allocations.alphaExport)).toBe(0);
  });

  it('refuses to ship once an amendment drops the supplier, although the exporter holds the licence', async () => {
    const { run, actors } = world;
    const { licenceId, allocationId } = await importHeldByExporter([
      { organisationId: actors.alpha.orgId, role: 'consignee' }, { organisationId: actors.exporter.orgId, role: 'supplier' },
    ]);
    const shipmentId = String(expectOk(await book(allocationId, ['HELD-2'])).shipmentId);
    await run('licence.amend', { licenceId, reason: 'supplier removed', parties: [{ organisationId: actors.alpha.orgId, role: 'consignee' }] }, actors.mofcom);
    const shipped = await world.ledger.submit('shipment.ship', { shipmentId }, actors.exporter);
    expect(shipped.ok ? 'accepted' : { code: shipped.error.code, rule: shipped.error.rule, message: shipped.error.message }).toEqual({
      code: 'licence_not_valid', rule: 'licence-exporter',
      message: `licence ${licenceId} does not name the exporter ${actors.exporter.orgId} of shipment ${shipmentId} as a supplier (holding an import licence does not let an exporter ship under it)`,
    });
    const row = await database.pool.query<{ status: string }>('SELECT status FROM shipments WHERE id = $1', [shipmentId]);
    expect(row.rows[0]!.status).toBe('booked');
    // Named again, it ships.
    await run('licence.amend', { licenceId, reason: 'supplier restored', parties: [{ organisationId: actors.alpha.orgId, role: 'consignee' }, { organisationId: actors.exporter.orgId, role: 'supplier' }] }, actors.mofcom);
    expect(expectOk(await world.ledger.submit('shipment.ship', { shipmentId }, actors.exporter))).toMatchObject({ status: 'shipped' });
  });
});
