/**
 * The tenant predicates agree with each other: every organisation a licence names can be
 * looked up by a viewer that reads the licence, also one that reads it only through its own
 * allocation (an amendment dropped it from the parties).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import * as read from './read-queries.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, db) => { world = made; database = db; });

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
