/**
 * Migration 063: organisations, products and sites keep what their registration made them,
 * and each organisation's KYC marks are held to the organisation.set_kyc events that set them.
 * The writer role, the server's own, may update all three tables (the ledger changes KYC marks
 * and a site's deployed count): these are the attacks s26's review made on other tables, tried
 * on these.
 */
import { describe, expect, it } from 'vitest';
import type { DatabaseError } from 'pg';
import type { TestDatabase } from '../../test/database.ts';
import { eventStateViolations, withEventsByHand } from '../../test/support/events-by-hand.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { inTransaction } from './pool.ts';
import { ledgerViolations } from './violations.ts';

// The tests run in order on one world: the KYC marks the second sets, the third and fourth read.
let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const stateViolations = () => eventStateViolations(database.pool);
const setKyc = (verified: boolean, authority: 'bis' | 'mofcom', organisationId = world.actors.alpha.orgId) =>
  world.run('organisation.set_kyc', { organisationId, verified }, world.actors[authority]);

/** What the writer's UPDATE met: the error's code, constraint and message, or 'changed'. */
async function asWriter(text: string, values: unknown[]): Promise<string | { code?: string; constraint?: string; message: string }> {
  try {
    // Rolled back whatever happens: a change the triggers let through is not kept.
    await inTransaction(database.writerPool, 'BEGIN', async (client) => {
      await client.query(text, values);
      throw new Error('changed');
    });
    return 'unreachable';
  } catch (error) {
    const { code, constraint, message } = error as DatabaseError;
    return message === 'changed' ? 'changed' : { code, constraint, message };
  }
}

describe('organisations, products and sites keep their registration (063)', () => {
  it("refuses the writer a change to an organisation's roles or country, a product's ECCN or datasheet, a site's capacity or place; lets it change KYC marks and a deployed count", async () => {
    const { actors, productId } = world;
    const siteId = String((await world.run('site.register', { name: 'Gui\'an DC', province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 100 }, actors.alpha)).siteId);
    const organisationRefused = {
      code: '23001', constraint: 'organisations_keep_registration',
      message: `organisation ${actors.exporter.orgId} keeps what organisation.register made it; only its KYC marks change, by organisation.set_kyc`,
    };
    expect(await asWriter("UPDATE organisations SET roles = '{exporter,authority}' WHERE id = $1", [actors.exporter.orgId])).toEqual(organisationRefused);
    expect(await asWriter("UPDATE organisations SET country = 'CA', name = 'Another' WHERE id = $1", [actors.exporter.orgId])).toEqual(organisationRefused);
    expect(await asWriter(`UPDATE organisations SET identifiers = '{"lei": "5493001KJTIIGC8Y1R12"}' WHERE id = $1`, [actors.exporter.orgId])).toEqual(organisationRefused);
    const productRefused = {
      code: '23001', constraint: 'products_keep_registration',
      message: `product ${productId} keeps what product.register made it; nothing changes it (register the part again under its own model)`,
    };
    expect(await asWriter("UPDATE products SET eccn = 'EAR99' WHERE id = $1", [productId])).toEqual(productRefused);
    expect(await asWriter(`UPDATE products SET parameters = jsonb_set(parameters, '{denseTops}', '100') WHERE id = $1`, [productId])).toEqual(productRefused);
    const siteRefused = {
      code: '23001', constraint: 'sites_keep_registration',
      message: `site ${siteId} keeps what site.register made it; only its count of deployed units changes, as units are deployed there and moved away`,
    };
    expect(await asWriter('UPDATE sites SET capacity_units = 200 WHERE id = $1', [siteId])).toEqual(siteRefused);
    expect(await asWriter('UPDATE sites SET latitude = 39.9, city = $2 WHERE id = $1', [siteId, 'Beijing'])).toEqual(siteRefused);
    // What the ledger changes, the triggers let through (the re-check judges the KYC marks).
    expect(await asWriter('UPDATE organisations SET kyc_verified_by = $2 WHERE id = $1', [actors.alpha.orgId, [actors.bis.orgId]])).toBe('changed');
    expect(await asWriter('UPDATE sites SET deployed_units = 1 WHERE id = $1', [siteId])).toBe('changed');
    // An UPDATE that writes the same values back, as a whole-row write does, is no change.
    expect(await asWriter('UPDATE organisations SET roles = roles, name = name WHERE id = $1', [actors.exporter.orgId])).toBe('changed');
    expect(await asWriter('UPDATE products SET eccn = eccn WHERE id = $1', [productId])).toBe('changed');
    expect(await ledgerViolations(database.pool)).toEqual([]);
  });

  it("writes back only the KYC marks of an organisation it changes: a name the owner corrected by hand, which the ledger's cache still holds as it was, stays", async () => {
    const { actors } = world;
    const { stats } = world.ledger.sequencer;
    await setKyc(true, 'bis', actors.beta.orgId); // the ledger has the row now
    await inTransaction(database.pool, 'BEGIN', async (client) => {
      await client.query("SET LOCAL session_replication_role = 'replica'");
      await client.query("UPDATE organisations SET name = '乙智能科技股份有限公司' WHERE id = $1", [actors.beta.orgId]);
    });
    // Served from the cache and sent ahead, as the head did not move: a whole row written back
    // would be refused there (and the batch run again from the database's rows).
    const before = { ahead: stats.aheadBatches, misses: stats.aheadMisses };
    await setKyc(false, 'bis', actors.beta.orgId);
    expect({ ahead: stats.aheadBatches - before.ahead, misses: stats.aheadMisses - before.misses }).toEqual({ ahead: 1, misses: 0 });
    const { rows: [beta] } = await database.pool.query('SELECT name, kyc_verified_by FROM organisations WHERE id = $1', [actors.beta.orgId]);
    expect(beta).toEqual({ name: '乙智能科技股份有限公司', kyc_verified_by: [] });
  });
});

describe("the re-check's part event-state: KYC marks (063)", () => {
  it('names nothing where every mark was set through the ledger: two authorities, one withdrawing, another organisation verified and withdrawn', async () => {
    const { actors } = world;
    await setKyc(true, 'mofcom');
    await setKyc(true, 'bis');
    await setKyc(false, 'mofcom');
    await setKyc(true, 'bis', actors.beta.orgId);
    await setKyc(false, 'bis', actors.beta.orgId);
    await setKyc(true, 'mofcom', actors.beta.orgId);
    const marks = await database.pool.query<{ id: string; kyc_verified_by: string[] }>('SELECT id, kyc_verified_by FROM organisations WHERE id = ANY($1) ORDER BY id', [[actors.alpha.orgId, actors.beta.orgId]]);
    expect(marks.rows).toEqual([{ id: actors.alpha.orgId, kyc_verified_by: [actors.bis.orgId] }, { id: actors.beta.orgId, kyc_verified_by: [actors.mofcom.orgId] }]);
    expect(await stateViolations()).toEqual([]);
  });

  it('names a mark the writer added, took away or repeated, with the event that says otherwise', async () => {
    const { actors } = world;
    const newest = async (organisationId: string, authority: World['actors']['bis']) => (await database.pool.query<{ seq: string }>(
      "SELECT max(seq)::text AS seq FROM events WHERE kind = 'organisation.set_kyc' AND subject_id = $1 AND actor = $2", [organisationId, authority.id],
    )).rows[0]!.seq;
    const alpha = actors.alpha.orgId;
    const beta = actors.beta.orgId;
    // As the writer, the server's own role: the triggers let it.
    await database.writerPool.query('UPDATE organisations SET kyc_verified_by = $2 WHERE id = $1', [alpha, [actors.bis.orgId, actors.mofcom.orgId].sort()]);
    await database.writerPool.query('UPDATE organisations SET kyc_verified_by = $2 WHERE id = $1', [beta, [actors.bis.orgId, actors.bis.orgId]]);
    await database.writerPool.query('UPDATE organisations SET kyc_verified_by = $2 WHERE id = $1', [actors.exporter.orgId, [actors.mofcom.orgId]]);
    expect(await stateViolations()).toEqual([
      { invariant: 'event-state', subject: alpha, detail: `the organisation is marked KYC-verified by ${actors.mofcom.orgId}, but that authority's newest organisation.set_kyc event for it, ${await newest(alpha, actors.mofcom)}, withdrew it` },
      { invariant: 'event-state', subject: beta, detail: `the organisation is not marked KYC-verified by ${actors.mofcom.orgId}, but that authority's newest organisation.set_kyc event for it, ${await newest(beta, actors.mofcom)}, verified it` },
      { invariant: 'event-state', subject: beta, detail: `the organisation lists ${actors.bis.orgId} among the authorities that verified its KYC 2 times` },
      { invariant: 'event-state', subject: actors.exporter.orgId, detail: `the organisation is marked KYC-verified by ${actors.mofcom.orgId}, but no organisation.set_kyc event of that authority verified it` },
    ].sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : a.detail < b.detail ? -1 : 1)));
    await database.writerPool.query('UPDATE organisations SET kyc_verified_by = $2 WHERE id = $1', [alpha, [actors.bis.orgId]]);
    await database.writerPool.query('UPDATE organisations SET kyc_verified_by = $2 WHERE id = $1', [beta, [actors.mofcom.orgId]]);
    await database.writerPool.query("UPDATE organisations SET kyc_verified_by = '{}' WHERE id = $1", [actors.exporter.orgId]);
    expect(await stateViolations()).toEqual([]);
  });

  it("takes the events of releases before 015, which name the authority only as the actor's organisation, and passes over bytes that are not JSON", async () => {
    const { actors } = world;
    const auditor = actors.auditor.orgId;
    await withEventsByHand(database.pool, async ({ insertEvent, query, violated }) => {
      // An authority's review, its organisation only in the body's actor (no token row: events.actor is 'system' here).
      await insertEvent('organisation.set_kyc', auditor, { input: { organisationId: auditor, verified: true }, actor: { id: 'TOK-x', org: actors.mofcom.orgId, role: 'authority_officer' }, effects: {} });
      expect(await violated()).toEqual([auditor]);
      await query('UPDATE organisations SET kyc_verified_by = $2 WHERE id = $1', [auditor, [actors.mofcom.orgId]]);
      expect(await violated()).toEqual([]);
      // One set by an organisation that is no authority (the operator's, before 015) vouched for nothing.
      await insertEvent('organisation.set_kyc', auditor, { input: { organisationId: auditor, verified: true }, actor: { id: 'system', org: actors.exporter.orgId, role: 'exporter' } });
      expect(await violated()).toEqual([]);
      // Bytes that are not an event's JSON (057 names them) are passed over, not a failure of the whole part.
      await insertEvent('organisation.set_kyc', auditor, Buffer.from('{"input": {"organisationId": "', 'utf8'));
      expect(await violated()).toEqual([]);
      await insertEvent('organisation.set_kyc', auditor, { input: { organisationId: auditor, verified: false }, actor: { id: 'TOK-x', org: actors.mofcom.orgId, role: 'authority_officer' } });
      expect(await violated()).toEqual([auditor]);
    });
    expect(await stateViolations()).toEqual([]);
  });
});
