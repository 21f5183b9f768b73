/**
 * A licence covers units crossing from one country to another (licence-cross-border): its
 * origin and destination differ. Each side of a shipment is licensed by its own country's
 * authority (licence-authority), and both licences must cover it (invariant 3); on a route
 * inside one country a single authority would license both sides, and an organisation that
 * is both exporter and recipient could ship to itself. In the ledger's code and again in the
 * database (migration 035, licences_cross_border: src/store/constraints-035.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import { makeUscc } from '../../core/uscc.ts';
import type { Answer } from '../ledger.ts';
import { systemActor, type Actor } from '../permissions.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let counter = 0;

function create(direction: 'export' | 'import', actor: Actor, route: { origin: string; destination: string }, holderId: string): Promise<Answer> {
  const { productId } = world;
  return world.ledger.submit('licence.create', {
    reference: `CROSS-${direction}-${++counter}`, direction, ...route, holderId,
    productIds: [productId], authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, actor);
}

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string } {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, message: answer.error.message };
}

async function licenceCount(): Promise<number> {
  return (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM licences')).rows[0]!.n;
}

describe('licence.create refuses a route inside one country (licence-cross-border)', () => {
  it('refuses the Chinese authority an export and an import licence CN → CN, naming the rule and the country', async () => {
    const { mofcom, alpha, exporter } = world.actors;
    const before = await licenceCount();
    expect(refusal(await create('export', mofcom, { origin: 'CN', destination: 'CN' }, exporter.orgId))).toEqual({
      code: 'invalid_input', rule: 'licence-cross-border',
      message: `couldn't create export licence CROSS-export-${counter} for CN → CN: its origin and destination are both CN; a licence covers units leaving one country for another, each side licensed by its own country's authority, and on this route one authority would license both`,
    });
    expect(refusal(await create('import', mofcom, { origin: 'CN', destination: 'CN' }, alpha.orgId))).toMatchObject({ code: 'invalid_input', rule: 'licence-cross-border' });
    expect(refusal(await create('export', world.actors.bis, { origin: 'US', destination: 'US' }, exporter.orgId))).toMatchObject({ rule: 'licence-cross-border' });
    expect(await licenceCount()).toBe(before);
  });

  it('leaves an organisation that is both exporter and recipient no licence to ship to itself under', async () => {
    const { mofcom } = world.actors;
    const both = String((await world.run('organisation.register', {
      name: '丁科技有限公司', country: 'CN', roles: ['exporter', 'recipient'], identifiers: { uscc: makeUscc('91110000MA0000004') },
    }, systemActor)).organisationId);
    for (const direction of ['export', 'import'] as const) {
      expect(refusal(await create(direction, mofcom, { origin: 'CN', destination: 'CN' }, both)).rule).toBe('licence-cross-border');
    }
  });

  it('still makes licences that cross a border, either way', async () => {
    const { bis, mofcom, exporter, alpha } = world.actors;
    expect(expectOk(await create('export', bis, { origin: 'US', destination: 'CN' }, exporter.orgId))).toMatchObject({ status: 'draft' });
    expect(expectOk(await create('import', mofcom, { origin: 'US', destination: 'CN' }, alpha.orgId))).toMatchObject({ status: 'draft' });
    expect(expectOk(await create('export', mofcom, { origin: 'CN', destination: 'US' }, alpha.orgId))).toMatchObject({ status: 'draft' });
  });

  it('has no amendment that could move a licence’s route onto one country', async () => {
    for (const field of [{ origin: 'CN' }, { destination: 'US' }]) {
      const answer = await world.ledger.submit('licence.amend', { licenceId: world.exportLicenceId, reason: 'reroute', ...field } as never, world.actors.bis);
      expect(refusal(answer).code).toBe('invalid_input');
    }
  });
});
