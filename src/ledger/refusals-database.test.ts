/**
 * The database's own refusals, as a caller hears them when a write gets past the ledger's
 * checks: the quantity CHECKs of migration 001 under the rule and code the ledger's check
 * gives (invariant-1, invariant-2, site-capacity), and a trigger's text never passed on (it
 * may name another tenant's records), only its constraint's name.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { toRefusal } from './refusals.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** What the database raised for these statements (rolled back). */
async function raisedBy(...statements: Array<[string, unknown[]]>): Promise<unknown> {
  const error = await inRolledBack(database.pool, async (client) => {
    try {
      for (const [text, values] of statements) await client.query(text, values);
      await client.query('SET CONSTRAINTS ALL IMMEDIATE');
      return undefined;
    } catch (caught) {
      return caught;
    }
  });
  if (error === undefined) expect.fail('the database took the statements');
  return error;
}

/** The refusal toRefusal makes of what the database raised for these statements (rolled back). */
async function refusalOf(...statements: Array<[string, unknown[]]>) {
  return toRefusal(await raisedBy(...statements)).toJSON();
}

describe('a quantity CHECK of the database', () => {
  it('is refused under the ledger\'s rule and code, in fixed words', async () => {
    expect(await refusalOf(['UPDATE licences SET allocated_units = authorised_units + 1 WHERE id = $1', [world.exportLicenceId]])).toEqual({
      code: 'insufficient_units', rule: 'invariant-1',
      message: "the database refused the change: a licence's allocated units would exceed its authorised units (invariant 1); nothing was written",
      details: { constraint: 'licences_check' },
    });
    expect(await refusalOf(['UPDATE allocations SET reserved_units = units + 1 WHERE id = $1', [world.allocations.alphaExport]])).toMatchObject({
      code: 'insufficient_units', rule: 'invariant-2', details: { constraint: 'allocations_check' },
    });
  });

  it('keeps the database\'s error as the cause, for the log: its detail (the whole row) is the operator\'s, not the caller\'s', async () => {
    const raised = await raisedBy(['UPDATE licences SET allocated_units = authorised_units + 1 WHERE id = $1', [world.exportLicenceId]]);
    expect(raised).toMatchObject({ code: '23514', constraint: 'licences_check' });
    expect(toRefusal(raised).cause).toBe(raised);
  });

  it('keeps a site within its capacity under rule site-capacity', async () => {
    const site = [
      'INSERT INTO sites (id, org_id, name, province, city, country, latitude, longitude, capacity_units, deployed_units, created_seq) VALUES ($1, $2, $3, $3, $3, \'CN\', 0, 0, 1, 2, 999999)',
      ['SITE-DB-1', world.actors.alpha.orgId, 'DC'],
    ] as [string, unknown[]];
    expect(await refusalOf(site)).toMatchObject({ code: 'insufficient_units', rule: 'site-capacity', details: { constraint: 'sites_check' } });
  });
});

describe('a trigger\'s refusal', () => {
  it('is answered by its constraint\'s name, never its text, which may name another tenant\'s records', () => {
    const raised = Object.assign(new Error("unit SN-1 is ORG-9's (it has shipped, or its booking S-77 is booked); shipment S-78 is not that exporter's"), { code: '23514', constraint: 'units_keep_identity' });
    const refusal = toRefusal(raised);
    expect(refusal.toJSON()).toEqual({
      code: 'conflict', rule: 'units_keep_identity',
      message: "the database refused the change: it breaks the rule units_keep_identity, which the ledger's checks did not catch first; nothing was written",
      details: { constraint: 'units_keep_identity' },
    });
    // The text stays with the error, for the log.
    expect(refusal.cause).toBe(raised);
  });

  it('without a constraint\'s name, is answered in fixed words naming its SQLSTATE, its text kept as the cause only', () => {
    const raised = Object.assign(new Error("unit SN-1 is ORG-9's (it has shipped, or its booking S-77 is booked)"), { code: '23514' });
    const refusal = toRefusal(raised);
    expect(refusal.toJSON()).toEqual({
      code: 'conflict', rule: 'database-constraint',
      message: "the database refused the change: it breaks a rule with no name (SQLSTATE 23514), which the ledger's checks did not catch first; nothing was written",
    });
    expect(refusal.cause).toBe(raised);
  });
});
