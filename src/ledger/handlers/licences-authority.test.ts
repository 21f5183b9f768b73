/**
 * Each side's licence is its own country's act (licence-authority): an export licence is
 * made by an authority of its origin, an import licence by one of its destination. In the
 * ledger's code and again in the database (migration 025, licences_authority_country).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { licencePair } from '../../../test/support/licence-pair.ts';
import { firstRefusal } from '../../../test/support/rolled-back.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';
import type { Actor } from '../permissions.ts';
import { toRefusal } from '../refusals.ts';
import { licensingCountry } from './licences.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let counter = 0;

/** A US → CN licence of either direction, made by `actor`; holder and parties as the world's. */
function create(direction: 'export' | 'import', actor: Actor, route: { origin: string; destination: string } = { origin: 'US', destination: 'CN' }): Promise<Answer> {
  const { actors, productId } = world;
  return world.ledger.submit('licence.create', {
    reference: `AUTH-${direction}-${++counter}`, direction, ...route,
    holderId: direction === 'export' ? actors.exporter.orgId : actors.alpha.orgId,
    parties: direction === 'export' ? [{ organisationId: actors.alpha.orgId, role: 'end_user' }] : [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
    productIds: [productId], authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, actor);
}

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string } {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, message: answer.error.message };
}

describe('licensingCountry', () => {
  it('is the origin of an export licence and the destination of an import licence', () => {
    expect(licensingCountry({ direction: 'export', origin: 'US', destination: 'CN' })).toBe('US');
    expect(licensingCountry({ direction: 'import', origin: 'US', destination: 'CN' })).toBe('CN');
  });
});

describe('licence.create checks the authority’s country (licence-authority)', () => {
  it('refuses an export licence US → CN made by the Chinese authority, naming the rule and the countries', async () => {
    const { mofcom } = world.actors;
    expect(refusal(await create('export', mofcom))).toEqual({
      code: 'forbidden', rule: 'licence-authority',
      message: `couldn't create export licence AUTH-export-${counter} for US → CN: an export licence is issued by an authority of its origin, US; ${mofcom.orgId} is an authority of CN`,
    });
  });

  it('refuses an import licence US → CN made by the US authority', async () => {
    const { bis } = world.actors;
    expect(refusal(await create('import', bis))).toMatchObject({
      code: 'forbidden', rule: 'licence-authority',
      message: expect.stringContaining(`an import licence is issued by an authority of its destination, CN; ${bis.orgId} is an authority of US`),
    });
  });

  it('takes each side from its own country, the other way round too (a CN → US shipment)', async () => {
    expect(expectOk(await create('export', world.actors.bis))).toMatchObject({ status: 'draft' });
    expect(expectOk(await create('import', world.actors.mofcom))).toMatchObject({ status: 'draft' });
    expect(expectOk(await create('export', world.actors.mofcom, { origin: 'CN', destination: 'US' }))).toMatchObject({ status: 'draft' });
    expect(refusal(await create('import', world.actors.mofcom, { origin: 'CN', destination: 'US' }))).toMatchObject({ rule: 'licence-authority' });
  });

  it('has no amendment that changes a licence’s route, direction or authority', async () => {
    for (const field of [{ origin: 'CN' }, { destination: 'US' }, { direction: 'import' }]) {
      const answer = await world.ledger.submit('licence.amend', { licenceId: world.exportLicenceId, reason: 'reroute', ...field } as never, world.actors.bis);
      expect(refusal(answer).code).toBe('invalid_input');
    }
  });
});

describe('licence.surrender is its holder’s act alone', () => {
  it('refuses a party that is not the holder, on either side, naming the holder, and changes nothing; the holder may', async () => {
    const { actors } = world;
    const pair = await licencePair(world);
    // Alpha is the export licence's end user and the exporter the import licence's supplier:
    // each reads the other's licence and may name it, but giving it up is its holder's act.
    expect(refusal(await world.ledger.submit('licence.surrender', { licenceId: pair.exportLicenceId }, actors.alpha))).toEqual({
      code: 'forbidden', rule: 'licence-holder', message: `only the holder ${actors.exporter.orgId} may surrender licence ${pair.exportLicenceId}`,
    });
    expect(refusal(await world.ledger.submit('licence.surrender', { licenceId: pair.importLicenceId }, actors.exporter))).toEqual({
      code: 'forbidden', rule: 'licence-holder', message: `only the holder ${actors.alpha.orgId} may surrender licence ${pair.importLicenceId}`,
    });
    const status = async (licenceId: string) => (await database.pool.query('SELECT status FROM licences WHERE id = $1', [licenceId])).rows[0].status;
    expect([await status(pair.exportLicenceId), await status(pair.importLicenceId)]).toEqual(['issued', 'issued']);
    expect(expectOk(await world.ledger.submit('licence.surrender', { licenceId: pair.exportLicenceId }, actors.exporter))).toMatchObject({ status: 'surrendered' });
    expect(expectOk(await world.ledger.submit('licence.surrender', { licenceId: pair.importLicenceId }, actors.alpha))).toMatchObject({ status: 'surrendered' });
  });
});

describe('the database refuses a licence made or changed around the ledger by another country’s authority (migration 025)', () => {
  // Rows made without a version and route changes without a new one, which migration 030
  // refuses on its own: off here (first, before any row is written), as these cases are 025's.
  const versionsUnguarded: [string, unknown[]] = ['ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions, DISABLE TRIGGER licences_match_version_insert', []];
  const insertLicence = (id: string, direction: string, authorityOrgId: string): [string, unknown[]] => [
    `INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
     VALUES ($1, 1, $1, $2, $3, $4, ARRAY[$5], 'US', 'CN', 10, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'draft', 999999, 999999)`,
    [id, authorityOrgId, direction, world.actors.exporter.orgId, world.productId],
  ];

  it('refuses an export licence row whose authority is of its destination, and an import licence row whose authority is of its origin', async () => {
    const exported = await firstRefusal(database.pool, versionsUnguarded, insertLicence('L-X1', 'export', world.actors.mofcom.orgId));
    expect(exported).toEqual({ code: '23514', message: `licence L-X1 is an export licence for US → CN: it is issued by an authority of its origin, US; ${world.actors.mofcom.orgId} is an authority of CN` });
    expect((await firstRefusal(database.pool, versionsUnguarded, insertLicence('L-X2', 'import', world.actors.bis.orgId)))?.code).toBe('23514');
    // The well-formed rows: the refusals above are about the rule.
    expect(await firstRefusal(database.pool, versionsUnguarded, insertLicence('L-X3', 'export', world.actors.bis.orgId), insertLicence('L-X4', 'import', world.actors.mofcom.orgId))).toBeUndefined();
  });

  it('refuses an UPDATE that moves a licence’s route, direction or authority away from its authority’s country', async () => {
    for (const change of [`origin = 'GB'`, `direction = 'import'`, `authority_org_id = '${world.actors.mofcom.orgId}'`]) {
      const error = await firstRefusal(database.pool, versionsUnguarded, [`UPDATE licences SET ${change} WHERE id = $1`, [world.exportLicenceId]]);
      expect(error?.code, `${change}: ${error?.message ?? 'accepted'}`).toBe('23514');
    }
    // A destination the export licence's authority does not decide may change (as far as this rule goes).
    expect(await firstRefusal(database.pool, versionsUnguarded, [`UPDATE licences SET destination = 'GB' WHERE id = $1`, [world.exportLicenceId]])).toBeUndefined();
  });

  it('gives the ledger a refusal that names the rule', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      const [sql, values] = insertLicence('L-X5', 'export', world.actors.mofcom.orgId);
      const error = await client.query(sql, values).then(() => undefined, (caught: unknown) => caught);
      expect(error, 'the database accepted it').toBeDefined();
      expect(toRefusal(error)).toMatchObject({ code: 'conflict', rule: 'licences_authority_country' });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('leaves a licence made before the rule alone when its other columns change', async () => {
    // As on a database migrated from 024: a licence of the wrong country, written with the rule off.
    const setup: Array<[string, unknown[]]> = [
      versionsUnguarded,
      ['ALTER TABLE licences DISABLE TRIGGER licences_authority_country_insert', []],
      insertLicence('L-OLD', 'export', world.actors.mofcom.orgId),
      ['ALTER TABLE licences ENABLE TRIGGER licences_authority_country_insert', []],
    ];
    expect(await firstRefusal(database.pool, ...setup, [`UPDATE licences SET status = 'issued', updated_seq = 1000000 WHERE id = 'L-OLD'`, []])).toBeUndefined();
    expect((await firstRefusal(database.pool, ...setup, [`UPDATE licences SET origin = 'NL' WHERE id = 'L-OLD'`, []]))?.code).toBe('23514');
  });
});
