/**
 * An allocation may be resized to 0: a tranche whose period has ended gives every unit back
 * to the licence, so that the next tranche can have them all (s21 calendar review, L2: each
 * ended tranche stranded a unit). Not below what it has reserved or shipped (invariant 2);
 * creating one still takes at least 1. The database holds the allocation at 0 (migration 051).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

function refusal(answer: Answer): Record<string, unknown> {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, details: answer.error.details };
}

/** A fresh issued import licence of 100 units held by alpha, naming the exporter as supplier. */
async function importLicence(reference: string): Promise<string> {
  const { run, actors, productId } = world;
  const licenceId = String((await run('licence.create', {
    reference, direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId }, actors.mofcom);
  return licenceId;
}

const allocate = async (licenceId: string, units: number, period: { periodStart: string; periodEnd: string }) =>
  String((await world.run('allocation.create', { licenceId, recipientId: world.actors.alpha.orgId, units, ...period }, world.actors.mofcom)).allocationId);

describe('an ended tranche resized to 0', () => {
  it('gives every unit back, so that the next tranche takes the licence\'s remaining units whole', async () => {
    const licenceId = await importLicence('MOFCOM-ZERO-1');
    const march = await allocate(licenceId, 40, { periodStart: '2026-03-01', periodEnd: '2026-03-31' });
    world.clock.set('2026-04-01T00:00:00Z');
    expect(expectOk(await world.ledger.submit('allocation.resize', { allocationId: march, units: 0 }, world.actors.mofcom))).toMatchObject({ allocationId: march, units: 0 });
    const rows = await database.pool.query('SELECT a.units, l.allocated_units FROM allocations a JOIN licences l ON l.id = a.licence_id WHERE a.id = $1', [march]);
    expect(rows.rows[0]).toEqual({ units: 0, allocated_units: 0 });
    expectOk(await world.ledger.submit('allocation.create', { licenceId, recipientId: world.actors.alpha.orgId, units: 100, periodStart: '2026-04-01', periodEnd: '2026-06-30' }, world.actors.mofcom));
    expect((await database.pool.query('SELECT invariant, subject FROM ledger_violations()')).rows).toEqual([]);
  });

  it('is refused while the allocation holds a reservation (invariant 2), and creating one of 0 stays refused', async () => {
    const { allocations, productId, actors } = world;
    await world.run('shipment.book', { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 2, deadline: '2026-06-01T00:00:00Z' }, actors.exporter);
    expect(refusal(await world.ledger.submit('allocation.resize', { allocationId: allocations.alphaImport, units: 0 }, actors.mofcom))).toMatchObject({
      code: 'insufficient_units', rule: 'invariant-2', details: { allocationId: allocations.alphaImport, usedUnits: 2, requestedUnits: 0 },
    });
    const licenceId = await importLicence('MOFCOM-ZERO-2');
    expect(refusal(await world.ledger.submit('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 0 }, actors.mofcom))).toMatchObject({ code: 'invalid_input', rule: 'schema' });
    expect(refusal(await world.ledger.submit('allocation.resize', { allocationId: allocations.alphaImport, units: -1 }, actors.mofcom))).toMatchObject({ code: 'invalid_input', rule: 'schema' });
  });
});
