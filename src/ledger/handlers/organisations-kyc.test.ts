/**
 * KYC is recorded per authority: a licence's end_user_kyc_required condition counts only
 * the review of the authority that issued it, so the import authority can neither satisfy
 * nor withdraw the review an export licence requires.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { buildWorld, type World } from '../../../test/world.ts';
import { systemActor } from '../permissions.ts';

let database: TestDatabase;
let world: World;
let kycExportAllocationId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  const { run, actors, productId } = world;
  const licenceId = String((await run('licence.create', {
    reference: 'BIS-KYC-1', direction: 'export', holderId: actors.exporter.orgId, parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    conditions: [{ id: 'end-user-kyc', text: 'KYC of each end user', kind: 'end_user_kyc_required' }],
  }, actors.bis)).licenceId);
  await run('licence.issue', { licenceId }, actors.bis);
  kycExportAllocationId = String((await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 100 }, actors.bis)).allocationId);
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

const book = () => world.ledger.submit('shipment.book', {
  exportAllocationId: kycExportAllocationId, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-03-01T00:00:00Z',
}, world.actors.exporter);
const setKyc = (verified: boolean, actor: World['actors']['bis']) => world.ledger.submit('organisation.set_kyc', { organisationId: world.actors.alpha.orgId, verified }, actor);
const verifiedBy = async () => (await database.pool.query('SELECT kyc_verified_by FROM organisations WHERE id = $1', [world.actors.alpha.orgId])).rows[0].kyc_verified_by;

describe('organisation.set_kyc', () => {
  it("counts only the licence's own authority for end_user_kyc_required", async () => {
    const { actors } = world;
    const refusedFirst = await book();
    expect(refusedFirst.ok ? 'accepted' : refusedFirst.error.rule).toBe('licence-condition');

    // MOFCOM's review does not satisfy a BIS licence condition.
    const byMofcom = await setKyc(true, actors.mofcom);
    expect(byMofcom.ok && byMofcom.body).toMatchObject({ authorityId: actors.mofcom.orgId, kycVerified: true, kycVerifiedBy: [actors.mofcom.orgId] });
    const refused = await book();
    expect(refused.ok ? 'accepted' : refused.error.rule).toBe('licence-condition');

    // BIS's does; and MOFCOM withdrawing its own leaves BIS's standing.
    expect((await setKyc(true, actors.bis)).ok).toBe(true);
    expect(await verifiedBy()).toEqual([actors.bis.orgId, actors.mofcom.orgId].sort());
    expect((await book()).ok).toBe(true);
    const withdrawn = await setKyc(false, actors.mofcom);
    expect(withdrawn.ok && withdrawn.body).toMatchObject({ kycVerified: false, kycVerifiedBy: [actors.bis.orgId] });
    expect((await book()).ok).toBe(true);

    // BIS withdrawing its own blocks its licence again.
    expect((await setKyc(false, actors.bis)).ok).toBe(true);
    expect(await verifiedBy()).toEqual([]);
    const blocked = await book();
    expect(blocked.ok ? 'accepted' : blocked.error.rule).toBe('licence-condition');
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('is refused to the operator, which is no authority and could vouch for no review', async () => {
    const answer = await world.ledger.submit('organisation.set_kyc', { organisationId: world.actors.beta.orgId, verified: true }, systemActor);
    expect(answer.ok ? 'accepted' : answer.error.code).toBe('forbidden');
    expect(answer.ok ? '' : answer.error.message).toMatch(/not an authority/);
  });
});
