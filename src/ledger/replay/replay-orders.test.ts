/**
 * What a replay must not count as a difference: lists the ledger keeps in the order its batch
 * came by them (a licence's readers, from the row cache or the database), and the settings a
 * role or database may give the sessions that read each side (a time zone, the bytes' output).
 */
import { afterAll, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { differencesFrom, dropReplayTemplate, replayOf } from '../../../test/support/replay.ts';
import { worldPerFile, type World } from '../../../test/world.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});
afterAll(dropReplayTemplate);

it("passes over the order of an event's readers and of a snapshot's parties, which follow the batching and the row cache", async () => {
  const { actors, productId, run, clock } = world;
  // Parties beta then alpha; allocations to beta then alpha. The server's row cache keeps the
  // recipients in the order they came (beta, alpha); the replay, dated alike, sends the
  // commands of one instant together and loads the licence afresh for the suspension, sorted.
  const licenceId = String((await run('licence.create', {
    reference: 'BIS-ORDER-1', direction: 'export', holderId: actors.exporter.orgId, productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100,
    validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    parties: [{ organisationId: actors.beta.orgId, role: 'end_user' }, { organisationId: actors.alpha.orgId, role: 'end_user' }],
  }, actors.bis)).licenceId);
  await run('licence.issue', { licenceId }, actors.bis);
  await run('allocation.create', { licenceId, recipientId: actors.beta.orgId, units: 10 }, actors.bis);
  await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 10 }, actors.bis);
  await run('licence.amend', { licenceId, reason: 'parties by allocation', parties: [] }, actors.bis);
  clock.advanceMs(1_000);
  const suspended = await run('licence.suspend', { licenceId, reason: 'review' }, actors.bis);
  await run('licence.amend', { licenceId, reason: 'parties again', parties: [{ organisationId: actors.beta.orgId, role: 'end_user' }, { organisationId: actors.alpha.orgId, role: 'end_user' }] }, actors.bis);
  clock.advanceMs(1_000);
  await run('licence.amend', { licenceId, reason: 'units', authorisedUnits: 90 }, actors.bis);

  const replayed = await replayOf(database.pool);
  try {
    expect(replayed.report.divergence).toBeUndefined();
    // The orders did differ: the suspension's readers as the server wrote them, and as the replay did.
    const readers = async (pool: typeof database.pool) => (await pool.query<{ org_ids: string[] }>('SELECT org_ids FROM events WHERE seq = $1', [suspended.seq])).rows[0]!.org_ids;
    expect(await readers(database.pool)).not.toEqual(await readers(replayed.target));
    expect([...await readers(database.pool)].sort()).toEqual([...await readers(replayed.target)].sort());
    expect(await differencesFrom(database.pool, replayed)).toEqual([]);
    // A reader added is still a difference.
    const added = await differencesFrom(database.pool, replayed, async (client) => {
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query('UPDATE events SET org_ids = org_ids || $2::text[] WHERE seq = $1', [suspended.seq, ['ORG-1']]);
    });
    expect(added.map((found) => found.subject)).toEqual([`events ${String(suspended.seq)}`]);
    // Nor do the settings the checked database's sessions run under count (a role's time zone, bytes shown escaped).
    const settings = await differencesFrom(database.pool, replayed, async (client) => {
      await client.query("SET TimeZone = 'Asia/Shanghai'; SET bytea_output = 'escape'; SET extra_float_digits = -3");
    });
    expect(settings).toEqual([]);
  } finally {
    await replayed.drop();
  }
});
