/**
 * Invariant 3's route rule (licence-route): a shipment is booked only under licences whose
 * origin and destination are the shipment's, the exporter's country to the recipient's
 * (US → CN here). Each mismatched licence is issued by the authority of its own side's
 * country, as licence.create requires: a Korean authority an export licence from Korea (the
 * wrong origin), MOFCOM an import licence into China (from the wrong origin). A licence to
 * the wrong destination never gets this far: allocation.create gives its units to no
 * recipient outside its destination (allocations-route.test.ts). A refused booking reserves
 * nothing on either allocation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk, tokenActor, worldPerFile, type World } from '../../../test/world.ts';
import { systemActor, type Actor } from '../permissions.ts';

let database: TestDatabase;
let world: World;
/** An authority of Korea: it issues export licences from KR, the wrong origin for the exporter's US → CN shipments. */
let kats: Actor;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

beforeAll(async () => {
  const orgId = String((await world.run('organisation.register', { name: 'Korean Agency for Technology and Standards', country: 'KR', roles: ['authority'] }, systemActor)).organisationId);
  kats = await tokenActor(world.run, orgId, 'authority_officer');
});

let counter = 0;
const next = () => ++counter;

/** An issued licence for alpha on the given route, allocated in full to alpha; returns the allocation. */
async function allocationOn(direction: 'export' | 'import', route: { origin: string; destination: string }): Promise<{ licenceId: string; allocationId: string }> {
  const { run, actors, productId } = world;
  const authority: Actor = direction === 'import' ? actors.mofcom : route.origin === 'US' ? actors.bis : kats;
  const parties = direction === 'export'
    ? [{ organisationId: actors.alpha.orgId, role: 'end_user' as const }]
    : [{ organisationId: actors.exporter.orgId, role: 'supplier' as const }];
  const licenceId = String((await run('licence.create', {
    reference: `ROUTE-${direction}-${next()}`, direction, holderId: direction === 'export' ? actors.exporter.orgId : actors.alpha.orgId, parties,
    productIds: [productId], ...route, authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, authority)).licenceId);
  await run('licence.issue', { licenceId }, authority);
  const allocationId = String((await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 10 }, authority)).allocationId);
  return { licenceId, allocationId };
}

async function book(exportAllocationId: string, importAllocationId: string) {
  return world.ledger.submit('shipment.book', {
    exportAllocationId, importAllocationId, productId: world.productId, units: 2, deadline: '2026-06-01T00:00:00Z', serials: [`ROUTE-SN-${next()}`, `ROUTE-SN-${next()}`],
  }, world.actors.exporter);
}

async function reservedOn(allocationIds: string[]): Promise<number[]> {
  const { rows } = await database.pool.query<{ id: string; reserved_units: number }>('SELECT id, reserved_units FROM allocations WHERE id = ANY($1)', [allocationIds]);
  return allocationIds.map((id) => rows.find((row) => row.id === id)!.reserved_units);
}

describe('booking checks each licence’s route (invariant 3, licence-route)', () => {
  it('books under licences whose routes are the shipment’s, US → CN', async () => {
    const exportSide = await allocationOn('export', { origin: 'US', destination: 'CN' });
    const importSide = await allocationOn('import', { origin: 'US', destination: 'CN' });
    expect(expectOk(await book(exportSide.allocationId, importSide.allocationId))).toMatchObject({ status: 'booked', units: 2 });
    expect(await reservedOn([exportSide.allocationId, importSide.allocationId])).toEqual([2, 2]);
  });

  it('refuses an export licence from another origin, naming the licence and both routes', async () => {
    const exportSide = await allocationOn('export', { origin: 'KR', destination: 'CN' });
    const importSide = await allocationOn('import', { origin: 'US', destination: 'CN' });
    const answer = await book(exportSide.allocationId, importSide.allocationId);
    expect(answer.ok).toBe(false);
    if (answer.ok) return;
    expect({ code: answer.error.code, rule: answer.error.rule, details: answer.error.details }).toEqual({ code: 'licence_not_valid', rule: 'licence-route', details: { licenceId: exportSide.licenceId, licenceOrigin: 'KR', licenceDestination: 'CN', origin: 'US', destination: 'CN' } });
    expect(answer.error.message).toContain(`licence ${exportSide.licenceId} covers KR → CN, not US → CN`);
    expect(await reservedOn([exportSide.allocationId, importSide.allocationId])).toEqual([0, 0]);
  });

  it('refuses an import licence from another origin, naming the licence and both routes', async () => {
    const exportSide = await allocationOn('export', { origin: 'US', destination: 'CN' });
    const importSide = await allocationOn('import', { origin: 'KR', destination: 'CN' });
    const answer = await book(exportSide.allocationId, importSide.allocationId);
    expect(answer.ok).toBe(false);
    if (answer.ok) return;
    expect({ code: answer.error.code, rule: answer.error.rule, details: answer.error.details }).toEqual({ code: 'licence_not_valid', rule: 'licence-route', details: { licenceId: importSide.licenceId, licenceOrigin: 'KR', licenceDestination: 'CN', origin: 'US', destination: 'CN' } });
    expect(answer.error.message).toContain(`licence ${importSide.licenceId} covers KR → CN, not US → CN`);
    expect(await reservedOn([exportSide.allocationId, importSide.allocationId])).toEqual([0, 0]);
  });

  it('refuses when both routes are wrong, on the export licence first, and writes no shipment', async () => {
    const exportSide = await allocationOn('export', { origin: 'KR', destination: 'CN' });
    const importSide = await allocationOn('import', { origin: 'KR', destination: 'CN' });
    const before = (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM shipments')).rows[0]!.n;
    const answer = await book(exportSide.allocationId, importSide.allocationId);
    expect(answer.ok ? 'accepted' : { rule: answer.error.rule, details: answer.error.details }).toEqual({ rule: 'licence-route', details: { licenceId: exportSide.licenceId, licenceOrigin: 'KR', licenceDestination: 'CN', origin: 'US', destination: 'CN' } });
    expect((await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM shipments')).rows[0]!.n).toBe(before);
  });
});
