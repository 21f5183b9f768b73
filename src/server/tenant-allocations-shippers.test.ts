/**
 * Whose allocations a tenant reads. An exporter reads the allocations it ships under (the
 * export licences it holds, the import licences naming it as supplier), as those
 * allocations' events name it, and no others: not those of an export licence that merely
 * names it as supplier, nor those of an import licence it holds. A recipient keeps reading
 * a licence it has an allocation on after an amendment drops it from the parties.
 */
import { describe, expect, it } from 'vitest';
import { makeUscc } from '../core/uscc.ts';
import { systemActor } from '../ledger/permissions.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let api: ApiWorld;
apiWorldPerFile((made) => { api = made; });

type Item = Record<string, unknown>;
const get = async (url: string, token: string) => {
  const response = await api.request({ method: 'GET', url, token });
  return { status: response.statusCode, body: response.json() as Item };
};
const ids = async (url: string, token: string) => ((await get(url, token)).body.items as Item[]).map((item) => item.id);
const validity = { validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z' };

async function tokenFor(organisationId: string, role: 'exporter' | 'recipient'): Promise<string> {
  return String((await api.world.run('token.create', { organisationId, role, label: role }, systemActor)).secret);
}

describe('allocations an exporter reads', () => {
  it('are not those of an export licence that names it only as supplier', async () => {
    const { world, orgs } = api;
    const { run, actors } = world;
    const licenceId = String((await run('licence.create', {
      ...validity, productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 1000, reference: 'BIS-SUPPLIER', direction: 'export', holderId: orgs.exporter,
      parties: [{ organisationId: orgs.alpha, role: 'end_user' }, { organisationId: orgs.exporter2, role: 'supplier' }],
    }, actors.bis)).licenceId);
    await run('licence.issue', { licenceId }, actors.bis);
    const allocationId = String((await run('allocation.create', { licenceId, recipientId: orgs.alpha, units: 250 }, actors.bis)).allocationId);
    const supplier = await tokenFor(orgs.exporter2, 'exporter');

    expect(await ids(`/v1/allocations?licenceId=${licenceId}`, supplier)).toEqual([]);
    expect((await get(`/v1/allocations/${allocationId}`, supplier)).status).toBe(404);
    expect((await get(`/v1/events?subjectId=${allocationId}`, supplier)).body.items).toEqual([]);
    const licence = (await get(`/v1/licences/${licenceId}`, supplier)).body;
    expect(licence).toMatchObject({ allocatedUnits: 0, totalsScope: 'own_allocations', allocations: [] });
    // The holder ships under it and reads it all.
    expect(await ids(`/v1/allocations?licenceId=${licenceId}`, api.tokens.exporter)).toEqual([allocationId]);
    expect((await get(`/v1/licences/${licenceId}`, api.tokens.exporter)).body).toMatchObject({ allocatedUnits: 250, totalsScope: 'licence' });
  });

  it('are not another recipient\'s on an import licence it holds, whichever of its tokens reads', async () => {
    const { world, orgs } = api;
    const { run, actors } = world;
    const dual = String((await run('organisation.register', { name: 'Dual Role Co', country: 'CN', roles: ['exporter', 'recipient'], identifiers: { uscc: makeUscc('91440300MA0000009') } }, systemActor)).organisationId);
    const licenceId = String((await run('licence.create', {
      ...validity, productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 1000, reference: 'MOFCOM-DUAL', direction: 'import', holderId: dual,
      parties: [{ organisationId: orgs.beta, role: 'consignee' }],
    }, actors.mofcom)).licenceId);
    await run('licence.issue', { licenceId }, actors.mofcom);
    const own = String((await run('allocation.create', { licenceId, recipientId: dual, units: 100 }, actors.mofcom)).allocationId);
    const betas = String((await run('allocation.create', { licenceId, recipientId: orgs.beta, units: 300 }, actors.mofcom)).allocationId);

    for (const role of ['exporter', 'recipient'] as const) {
      const token = await tokenFor(dual, role);
      expect(await ids(`/v1/allocations?licenceId=${licenceId}`, token), role).toEqual([own]);
      expect((await get(`/v1/allocations/${betas}`, token)).status, role).toBe(404);
      expect((await get(`/v1/licences/${licenceId}`, token)).body, role).toMatchObject({ allocatedUnits: 100, totalsScope: 'own_allocations' });
    }
  });

  it('are those it ships under through its exporter token only: its recipient token reads the allocations made to it', async () => {
    const { world, orgs } = api;
    const { run, actors } = world;
    // An organisation that exports and receives, holding an export licence with an allocation
    // to alpha and one to itself.
    const dual = String((await run('organisation.register', { name: 'Both Ways Co', country: 'CN', roles: ['exporter', 'recipient'], identifiers: { uscc: makeUscc('91440300MA0000017') } }, systemActor)).organisationId);
    const licenceId = String((await run('licence.create', {
      ...validity, productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 1000, reference: 'BIS-DUAL', direction: 'export', holderId: dual,
      parties: [{ organisationId: orgs.alpha, role: 'end_user' }, { organisationId: dual, role: 'end_user' }],
    }, actors.bis)).licenceId);
    await run('licence.issue', { licenceId }, actors.bis);
    const own = String((await run('allocation.create', { licenceId, recipientId: dual, units: 100 }, actors.bis)).allocationId);
    const alphas = String((await run('allocation.create', { licenceId, recipientId: orgs.alpha, units: 300 }, actors.bis)).allocationId);

    const exporter = await tokenFor(dual, 'exporter');
    expect((await ids(`/v1/allocations?licenceId=${licenceId}`, exporter)).sort()).toEqual([own, alphas].sort());
    expect((await get(`/v1/allocations/${alphas}`, exporter)).status).toBe(200);
    expect((await get(`/v1/licences/${licenceId}`, exporter)).body).toMatchObject({ allocatedUnits: 400, totalsScope: 'licence' });

    const recipient = await tokenFor(dual, 'recipient');
    expect(await ids(`/v1/allocations?licenceId=${licenceId}`, recipient)).toEqual([own]);
    expect((await get(`/v1/allocations/${alphas}`, recipient)).status).toBe(404);
    expect((await get(`/v1/licences/${licenceId}`, recipient)).body).toMatchObject({ allocatedUnits: 100, totalsScope: 'own_allocations' });
  });
});

describe('a recipient dropped from a licence by an amendment', () => {
  it('still reads the licence its allocation is on, in detail, list and report', async () => {
    const { world, orgs, tokens } = api;
    await api.shipment('own', 'booked', 2);
    const licenceId = world.exportLicenceId;
    const reported = async () => ((await get('/v1/reports/utilisation?limit=500', tokens.recipient)).body.items as Item[]).find((row) => row.licenceId === licenceId);
    const before = await reported();
    expect(before).toBeDefined();
    await world.run('licence.amend', { licenceId, parties: [{ organisationId: orgs.beta, role: 'end_user' }], reason: 'alpha dropped' }, world.actors.bis);

    expect((await get(`/v1/allocations/${api.allocations.alphaExport}`, tokens.recipient)).body).toMatchObject({ licenceId });
    const licence = await get(`/v1/licences/${licenceId}`, tokens.recipient);
    expect(licence.status).toBe(200);
    expect((licence.body.parties as Item[]).map((party) => party.organisationId)).toEqual([orgs.beta]);
    expect(await ids('/v1/licences?limit=500', tokens.recipient)).toContain(licenceId);
    expect(await reported()).toEqual(before);
  });
});
