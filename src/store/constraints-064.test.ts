/**
 * Migration 064: the re-check holds each deployed or ended unit to the event that put it there,
 * each unit to the newest unit command that lists it, and each token's revocation to its
 * token.revoke. The writer role, the server's own,
 * may update units, sites and tokens; within what the triggers allow (custody forward, a deployed unit
 * at a site of its recipient), these are the changes it could make unseen before.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { eventStateViolations, withEventsByHand } from '../../test/support/events-by-hand.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { systemActor } from '../ledger/permissions.ts';
import { ledgerViolations } from './violations.ts';

// The tests run in order on one world: the first one delivers, deploys and ends the units the
// later ones change, and each gives back what it changed.
let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const stateViolations = () => eventStateViolations(database.pool);
const serials = Array.from({ length: 9 }, (_, index) => `UEV-${index + 1}`);
const sites: { a: string; b: string } = { a: '', b: '' };
const newestSeq = async () => Number((await database.pool.query<{ seq: string }>('SELECT max(seq)::text AS seq FROM events')).rows[0]!.seq);
const updatedSeqOf = async (serial: string) => (await database.pool.query<{ seq: string }>('SELECT updated_seq::text AS seq FROM units WHERE serial = $1', [serial])).rows[0]!.seq;

/** Runs `statements` as the writer in a transaction, then the part: what it says; rolled back. */
async function asWriter(statements: Array<[string, unknown[]]>): Promise<Array<{ subject: string; detail: string }>> {
  const client = await database.writerPool.connect();
  try {
    await client.query('BEGIN');
    for (const [text, values] of statements) await client.query(text, values);
    return (await eventStateViolations(client)).map(({ subject, detail }) => ({ subject, detail }));
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}
const moveCount = (siteId: string, by: number): [string, unknown[]] => ['UPDATE sites SET deployed_units = deployed_units + $2 WHERE id = $1', [siteId, by]];

describe("the re-check's part event-state: units (064)", () => {
  it('names nothing where the ledger deployed, moved and ended every unit', async () => {
    const { actors, allocations, productId } = world;
    const shipmentId = String((await world.run('shipment.book', {
      exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: serials.length, deadline: '2026-09-01T00:00:00Z', serials,
    }, actors.exporter)).shipmentId);
    await world.run('shipment.ship', { shipmentId }, actors.exporter);
    await world.run('shipment.clear', { shipmentId }, actors.alpha);
    await world.run('shipment.deliver', { shipmentId }, actors.alpha);
    const site = async (name: string) => String((await world.run('site.register', { name, province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 100 }, actors.alpha)).siteId);
    sites.a = await site('Gui\'an A');
    sites.b = await site('Gui\'an B');
    // UEV-1, 2 and 3 at A; UEV-4 at B; UEV-5 at A, then moved to B; UEV-6 decommissioned, UEV-7
    // lost, UEV-8 returned; UEV-9 left delivered.
    await world.run('units.deploy', { siteId: sites.a, serials: ['UEV-1', 'UEV-2', 'UEV-5'] }, actors.alpha);
    // UEV-3 to A, B and A again, one event after another at one time (the world's clock stands
    // still): three commands that list the same lines, each of them a move.
    for (const siteId of [sites.a, sites.b, sites.a]) await world.run('units.deploy', { siteId, serials: ['UEV-3'] }, actors.alpha);
    await world.run('units.deploy', { siteId: sites.b, serials: ['UEV-4', 'UEV-5'] }, actors.alpha);
    await world.run('units.deploy', { siteId: sites.a, serials: ['UEV-6'] }, actors.alpha);
    await world.run('units.decommission', { serials: ['UEV-6'], reason: 'end of life' }, actors.alpha);
    await world.run('units.report_lost', { serials: ['UEV-7'], reason: 'not found at the dock' }, actors.alpha);
    await world.run('units.return', { serials: ['UEV-8'], reason: 'faulty' }, actors.alpha);
    expect(await stateViolations()).toEqual([]);
    expect(await ledgerViolations(database.pool)).toEqual([]);
  });

  it('names a unit the writer deployed, moved between sites, or ended, with the event that last changed it', async () => {
    const [delivered, deployedToA, deployedUev3] = [await updatedSeqOf('UEV-9'), await updatedSeqOf('UEV-2'), await updatedSeqOf('UEV-3')];
    expect(await asWriter([
      ["UPDATE units SET custody = 'deployed', site_id = $1 WHERE serial = 'UEV-9'", [sites.a]], moveCount(sites.a, 1),
      ["UPDATE units SET site_id = $1 WHERE serial = 'UEV-2'", [sites.b]], moveCount(sites.a, -1), moveCount(sites.b, 1),
      ["UPDATE units SET custody = 'lost', site_id = NULL WHERE serial = 'UEV-3'", []], moveCount(sites.a, -1),
    ])).toEqual([
      { subject: 'UEV-2', detail: `the unit is deployed at ${sites.b}, but the units.deploy that last changed it, ${deployedToA}, deployed to ${sites.a}` },
      { subject: 'UEV-3', detail: `the unit is lost, but the event that last changed it, ${deployedUev3}, is a units.deploy, not the units.report_lost that makes a unit lost` },
      { subject: 'UEV-9', detail: `the unit is deployed, but the event that last changed it, ${delivered}, is a shipment.deliver, not the units.deploy that makes a unit deployed` },
    ]);
    expect(await stateViolations()).toEqual([]);
  });

  it('names a unit put back where an older event left it, and one dated by an event that does not list it', async () => {
    const firstDeploy = await updatedSeqOf('UEV-1'); // lists UEV-1, UEV-2 and UEV-5
    const moved = await updatedSeqOf('UEV-5'); // UEV-5 to B
    const deployedUev3 = await updatedSeqOf('UEV-3'); // UEV-3 alone, to A
    expect(await asWriter([
      ["UPDATE units SET site_id = $1, updated_seq = $2 WHERE serial = 'UEV-5'", [sites.a, firstDeploy]], moveCount(sites.b, -1), moveCount(sites.a, 1),
      ["UPDATE units SET updated_seq = $1 WHERE serial = 'UEV-1'", [deployedUev3]],
    ])).toEqual([
      { subject: 'UEV-1', detail: `the unit is deployed, but the units.deploy that last changed it, ${deployedUev3}, does not list its serial` },
      { subject: 'UEV-5', detail: `the unit was last changed by event ${firstDeploy}, but a later units.deploy, ${moved}, lists its serial` },
    ]);
  });

  it('takes a unit command that recorded no serial list (before migration 017), and a deploy whose list gives GPU UUIDs', async () => {
    const deployedUev3 = await updatedSeqOf('UEV-3');
    await withEventsByHand(database.pool, async ({ query, violations }) => {
      await query('DELETE FROM event_serials WHERE seq = $1', [deployedUev3]);
      expect(await violations()).toEqual([]);
      // Dated by another deploy to A that lists it no more than the first did: not judged by a list that is not there.
      await query("UPDATE units SET updated_seq = $1 WHERE serial = 'UEV-2'", [deployedUev3]);
      expect(await violations()).toEqual([]);
      // A line "serial gpuUuid" names the serial before the space.
      await query("UPDATE event_serials SET lines = array_replace(lines, 'UEV-1', 'UEV-1 GPU-12345678-1234-1234-1234-123456789abc') WHERE seq = $1", [await updatedSeqOf('UEV-1')]);
      expect(await violations()).toEqual([]);
    });
    expect(await stateViolations()).toEqual([]);
  });

  it('takes the serial list that releases from dbd9a2f to 1241a63 stored again in the second event of an ending, and names a later command that lists the unit', async () => {
    await withEventsByHand(database.pool, async ({ insertEvent, query, violations }) => {
      // The two events of one units.return: same kind, actor and time (now(), the transaction's), the same lines.
      await insertEvent('units.return', null, { effects: { count: 1 } });
      await insertEvent('units.return', sites.a, { effects: { fromSites: { [sites.a]: 1 } } });
      await query("INSERT INTO event_serials (seq, lines) SELECT seq, '{UEV-8}' FROM events ORDER BY seq DESC LIMIT 2", []);
      await query("UPDATE units SET updated_seq = (SELECT max(seq) - 1 FROM events) WHERE serial = 'UEV-8'", []);
      expect(await violations()).toEqual([]);
      // Other lines in the event after: another command, which listed the unit later.
      await query("UPDATE event_serials SET lines = '{UEV-7,UEV-8}' WHERE seq = (SELECT max(seq) FROM events)", []);
      // The newest seq the pool sees is the last committed: the two events by hand come after it.
      const newest = await newestSeq();
      const [first, second] = [newest + 1, newest + 2];
      expect(await violations()).toEqual([
        { invariant: 'event-state', subject: 'UEV-7', detail: `the unit was last changed by event ${await updatedSeqOf('UEV-7')}, but a later units.return, ${second}, lists its serial` },
        { invariant: 'event-state', subject: 'UEV-8', detail: `the unit was last changed by event ${first}, but a later units.return, ${second}, lists its serial` },
      ]);
    });
    expect(await stateViolations()).toEqual([]);
  });
});

describe("the re-check's part event-state: token revocations (064)", () => {
  it('names a token the writer revoked with no event, one a revocation names that is not revoked, and one revoked at another time', async () => {
    const make = async (label: string) => String((await world.run('token.create', { organisationId: world.actors.beta.orgId, role: 'recipient', label }, systemActor)).tokenId);
    const [revoked, kept] = [await make('revoked through the ledger'), await make('kept')];
    await world.run('token.revoke', { tokenId: revoked }, systemActor);
    expect(await stateViolations()).toEqual([]);
    const revocation = (await database.pool.query<{ seq: string; at: string }>("SELECT seq::text AS seq, at FROM events WHERE kind = 'token.revoke' AND subject_id = $1", [revoked])).rows[0]!;
    // As the writer: 055 lets a token be revoked once, as the ledger does.
    expect(await asWriter([["UPDATE tokens SET revoked_at = '2026-02-01T12:00:00Z' WHERE id = $1", [kept]]])).toEqual([
      { subject: kept, detail: 'the token is revoked (at 2026-02-01T12:00:00.000Z), but no token.revoke event revoked it' },
    ]);
    // A revoked token stays revoked for the writer (055): the owner, triggers off.
    await withEventsByHand(database.pool, async ({ insertEvent, query, violations }) => {
      await query('UPDATE tokens SET revoked_at = NULL WHERE id = $1', [revoked]);
      expect(await violations()).toEqual([{ invariant: 'event-state', subject: revoked, detail: `the token is not revoked, but token.revoke event ${revocation.seq} revoked it` }]);
      await query("UPDATE tokens SET revoked_at = '2027-01-01T00:00:00Z' WHERE id = $1", [revoked]);
      expect(await violations()).toEqual([{
        invariant: 'event-state', subject: revoked,
        detail: `the token was revoked at 2027-01-01T00:00:00.000Z, but its token.revoke event, ${revocation.seq}, is of ${new Date(revocation.at).toISOString()}`,
      }]);
      await query('UPDATE tokens SET revoked_at = $2 WHERE id = $1', [revoked, revocation.at]);
      // A revocation of a token that is not there (tokens are never deleted, 055).
      await insertEvent('token.revoke', 'TOK-999999', { input: { tokenId: 'TOK-999999' } });
      expect(await violations()).toEqual([{
        invariant: 'event-state', subject: 'TOK-999999', detail: `token.revoke event ${(await newestSeq()) + 1} revoked it, but no such token is in the record`,
      }]);
    });
    expect(await stateViolations()).toEqual([]);
  });
});
