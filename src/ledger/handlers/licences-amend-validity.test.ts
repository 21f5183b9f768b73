/**
 * An amendment does not end a licence that is in force (licence-validity): a new validTo at
 * or before the command's time would leave it dead, and no later amendment could put that
 * right (one of an ended licence is refused). Ending a licence now is licence.revoke (its
 * authority) or licence.surrender (its holder). A draft is not in force: its authority may
 * still set any validity (it cannot be issued once that has ended).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { licencePair } from '../../../test/support/licence-pair.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string } {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, message: answer.error.message };
}

async function licenceRow(licenceId: string): Promise<{ version: number; status: string; valid_to: string }> {
  return (await database.pool.query('SELECT version, status, valid_to FROM licences WHERE id = $1', [licenceId])).rows[0];
}

const amend = (licenceId: string, validTo: string) => world.ledger.submit('licence.amend', { licenceId, reason: 'validity', validTo }, world.actors.bis);

describe('licence.amend and a validity that would end at once', () => {
  it('refuses an issued licence a validTo before the command’s time, naming revoke and surrender, and changes nothing', async () => {
    const { exportLicenceId } = await licencePair(world);
    world.clock.set('2026-04-01T00:00:00Z');
    expect(refusal(await amend(exportLicenceId, '2026-01-15T00:00:00Z'))).toEqual({
      code: 'invalid_input', rule: 'licence-validity',
      message: `couldn't amend licence ${exportLicenceId}: validTo 2026-01-15T00:00:00.000Z is not after the time of the command, 2026-04-01T00:00:00.000Z; an amendment keeps a licence in force, and ending it now is licence.revoke (its authority) or licence.surrender (its holder)`,
    });
    expect(await licenceRow(exportLicenceId)).toEqual({ version: 1, status: 'issued', valid_to: '2027-01-01T00:00:00.000Z' });
    // Still correctable: a later validity is accepted.
    expect(expectOk(await amend(exportLicenceId, '2027-06-01T00:00:00Z'))).toMatchObject({ version: 2, status: 'issued' });
  });

  it('refuses a validTo equal to the command’s time (validity ends before valid_to, so it would end now)', async () => {
    const { exportLicenceId } = await licencePair(world);
    world.clock.set('2026-04-01T00:00:00Z');
    expect(refusal(await amend(exportLicenceId, '2026-04-01T00:00:00Z')).rule).toBe('licence-validity');
    expect(expectOk(await amend(exportLicenceId, '2026-04-01T00:00:01Z'))).toMatchObject({ status: 'issued' });
  });

  it('refuses it for a suspended licence too, whose authority may reinstate it', async () => {
    const { exportLicenceId } = await licencePair(world);
    await world.run('licence.suspend', { licenceId: exportLicenceId }, world.actors.bis);
    world.clock.set('2026-04-01T00:00:00Z');
    expect(refusal(await amend(exportLicenceId, '2026-03-01T00:00:00Z')).rule).toBe('licence-validity');
    expect((await licenceRow(exportLicenceId)).version).toBe(1);
  });

  it('lets the authority set a draft’s validity to one that has ended (a draft is not in force; it cannot then be issued)', async () => {
    const { run, actors, productId } = world;
    const licenceId = String((await run('licence.create', {
      reference: 'BIS-DRAFT-VALIDITY', direction: 'export', holderId: actors.exporter.orgId, parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
      productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, actors.bis)).licenceId);
    expect(expectOk(await amend(licenceId, '2026-01-15T00:00:00Z'))).toMatchObject({ status: 'draft' });
    expect(refusal(await world.ledger.submit('licence.issue', { licenceId }, actors.bis)).rule).toBe('licence-validity');
  });
});
