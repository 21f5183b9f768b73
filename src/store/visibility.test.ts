/**
 * The tenant predicates agree with each other: every organisation a row names can be looked
 * up by a viewer that reads the row, also one that reads a licence only through its own
 * allocation, or an allocation whose recipient an amendment dropped from the parties.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import * as read from './read-queries.ts';
import type { Viewer } from './visibility.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, db) => { world = made; database = db; });
const everything: Viewer = { orgId: null, allocations: 'related' };
// A shipment to beta, booked while both licences name it.
beforeAll(async () => {
  const { run, actors, allocations, productId } = world;
  await run('shipment.book', {
    exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport, productId, units: 2, deadline: '2026-06-01T00:00:00Z', serials: ['VIS-1', 'VIS-2'],
  }, actors.exporter);
});

describe('organisations a viewer may look up', () => {
  it('include the authority and holder of a licence a recipient reads through its allocation after an amendment dropped it from the parties', async () => {
    const { run, actors, importLicenceId } = world;
    const licence = await read.findLicence(database.pool, { orgId: null, allocations: 'related' }, importLicenceId);
    const beta = { orgId: actors.beta.orgId, allocations: 'received' as const };
    const named = licence!.parties.filter((party) => party.org_id !== actors.beta.orgId).map((party) => ({ organisationId: party.org_id, role: party.role }));
    await run('licence.amend', { licenceId: importLicenceId, reason: 'beta is no longer a consignee', parties: named }, actors.mofcom);

    const seen = await read.findLicence(database.pool, beta, importLicenceId);
    expect(seen?.parties.map((party) => party.org_id)).not.toContain(actors.beta.orgId); // it reads the licence through its allocation alone
    const organisations = (await read.listOrganisations(database.pool, beta, { after: null, limit: 100 })).rows.map((row) => row.id);
    expect(organisations).toEqual(expect.arrayContaining([seen!.authority_org_id, seen!.holder_org_id, ...seen!.parties.map((party) => party.org_id)]));
  });
});

describe('every organisation a row names', () => {
  it('can be looked up by each viewer that reads the row: a licence\'s holder, authority and parties, an allocation\'s recipient, a shipment\'s and a unit\'s', async () => {
    const { run, actors, exportLicenceId, importLicenceId } = world;
    const beta = actors.beta.orgId;
    // Beta leaves the parties of both licences and keeps its allocations and its shipment:
    // the exporter ships under both and still reads them all.
    for (const [licenceId, authority] of [[exportLicenceId, actors.bis], [importLicenceId, actors.mofcom]] as const) {
      const licence = await read.findLicence(database.pool, everything, licenceId);
      const parties = licence!.parties.filter((party) => party.org_id !== beta).map((party) => ({ organisationId: party.org_id, role: party.role }));
      await run('licence.amend', { licenceId, reason: 'beta is no longer named', parties }, authority);
    }
    const viewers: Viewer[] = [
      { orgId: actors.exporter.orgId, allocations: 'related' }, { orgId: actors.alpha.orgId, allocations: 'received' }, { orgId: beta, allocations: 'received' },
    ];
    for (const viewer of viewers) {
      const page = { after: null, limit: 500 };
      const named = new Set<string>();
      for (const licence of (await read.listLicences(database.pool, viewer, page)).rows) {
        const detail = await read.findLicence(database.pool, viewer, licence.id);
        for (const id of [licence.holder_org_id, licence.authority_org_id, ...detail!.parties.map((party) => party.org_id)]) named.add(id);
      }
      for (const allocation of (await read.listAllocations(database.pool, viewer, page)).rows) named.add(allocation.recipient_org_id);
      for (const shipment of (await read.listShipments(database.pool, viewer, page)).rows) named.add(shipment.exporter_org_id).add(shipment.recipient_org_id);
      for (const unit of (await read.listUnits(database.pool, viewer, page)).rows) named.add(unit.recipient_org_id);
      const organisations = (await read.listOrganisations(database.pool, viewer, page)).rows.map((row) => row.id);
      expect([...named].filter((id) => !organisations.includes(id)), `${viewer.orgId}`).toEqual([]);
      if (viewer.orgId === actors.exporter.orgId) expect(named.has(beta)).toBe(true);
    }
    // A recipient still looks up no other recipient: alpha's ties to beta were the parties it no longer shares.
    const forAlpha = (await read.listOrganisations(database.pool, viewers[1]!, { after: null, limit: 500 })).rows.map((row) => row.id);
    expect(forAlpha).not.toContain(beta);
  });
});
