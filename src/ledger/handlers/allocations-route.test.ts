/**
 * Units are allocated only to a recipient in the licence's destination (licence-route, s17
 * terms review finding 4): a shipment's destination is its recipient's country, and booking
 * checks it against each licence's route, so units allocated to a recipient anywhere else
 * could never be booked. The reviewer's case: BIS registers a US recipient, names it end user
 * on a US → CN export licence, and allocates to it.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';
import { systemActor } from '../permissions.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string; details?: Record<string, unknown> } | 'accepted' {
  return answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, ...(answer.error.details ? { details: answer.error.details } : {}) };
}

async function allocatedUnits(licenceId: string): Promise<number> {
  return (await database.pool.query<{ allocated_units: number }>('SELECT allocated_units FROM licences WHERE id = $1', [licenceId])).rows[0]!.allocated_units;
}

describe('allocation.create and the licence’s destination (licence-route)', () => {
  it('refuses a recipient in another country than the licence’s destination, naming both; allocates nothing', async () => {
    const { run, actors, productId } = world;
    const usRecipient = String((await run('organisation.register', { name: 'Domestic Cloud LLC', country: 'US', roles: ['recipient'] }, systemActor)).organisationId);
    const licenceId = String((await run('licence.create', {
      reference: 'BIS-ROUTE-ALLOC-1', direction: 'export', holderId: actors.exporter.orgId, parties: [{ organisationId: usRecipient, role: 'end_user' }],
      productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, actors.bis)).licenceId);
    await run('licence.issue', { licenceId }, actors.bis);
    expect(refusal(await world.ledger.submit('allocation.create', { licenceId, recipientId: usRecipient, units: 50 }, actors.bis))).toEqual({
      code: 'licence_not_valid', rule: 'licence-route',
      message: `couldn't allocate 50 units to ${usRecipient}: ${usRecipient} is in US, and licence ${licenceId} covers US → CN; units go to a recipient in the licence's destination, CN, as a shipment under it goes`,
      details: { licenceId, recipientId: usRecipient, recipientCountry: 'US', destination: 'CN' },
    });
    expect(await allocatedUnits(licenceId)).toBe(0);
  });

  it('refuses it on an import licence too, and allocates to a recipient in the destination', async () => {
    const { run, actors, productId } = world;
    const hkRecipient = String((await run('organisation.register', { name: 'Harbour Compute Ltd', country: 'HK', roles: ['recipient'] }, systemActor)).organisationId);
    const licenceId = String((await run('licence.create', {
      reference: 'MOFCOM-ROUTE-ALLOC-1', direction: 'import', holderId: actors.alpha.orgId,
      parties: [{ organisationId: hkRecipient, role: 'consignee' }, { organisationId: actors.exporter.orgId, role: 'supplier' }],
      productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, actors.mofcom)).licenceId);
    expect(refusal(await world.ledger.submit('allocation.create', { licenceId, recipientId: hkRecipient, units: 5 }, actors.mofcom))).toMatchObject({
      code: 'licence_not_valid', rule: 'licence-route', details: { recipientCountry: 'HK', destination: 'CN' },
    });
    expect(expectOk(await world.ledger.submit('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 5 }, actors.mofcom))).toMatchObject({ units: 5 });
    expect(await allocatedUnits(licenceId)).toBe(5);
  });
});
