/**
 * The replay of the log (replay.ts) and the comparison of states (store/state-diff.ts): a
 * ledger's whole history makes its state again, and what was changed around the ledger
 * differs from it, whether or not the change kept every count in step. Each attack runs in a
 * transaction on the checked database, rolled back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { differencesFrom, dropReplayTemplate, replayFindings, replayOf, type Replayed } from '../../../test/support/replay.ts';
import { worldPerFile, type World } from '../../../test/world.ts';
import type { PoolClient } from '../../store/pool.ts';
import { canonicalJson } from '../../core/canonical-json.ts';
import { systemActor } from '../permissions.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const ids = { booked: '', expiring: '', site: '', otherSite: '', manifestSeq: 0, bookingSeq: 0, token: '' };

/** One row's column, as the owner reads it. */
async function one<T>(sql: string, values: unknown[] = []): Promise<T> {
  return (await database.pool.query(sql, values)).rows[0] as T;
}

/** Plays an owner who switches the triggers off (as migrations 055–064 say it can) before changing rows. */
async function asOwner(client: PoolClient, statements: Array<[string, unknown[]?]>): Promise<void> {
  await client.query('SET LOCAL session_replication_role = replica');
  for (const [text, values] of statements) await client.query(text, values ?? []);
}

beforeAll(async () => {
  const { actors, allocations, productId, run, clock, exportLicenceId } = world;
  const book = (units: number, deadline: string, serials?: Array<string | { serial: string; gpuUuid?: string }>) => run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units, deadline, ...(serials ? { serials } : {}),
  }, actors.exporter);
  // A booking with GPU UUIDs in two spellings of case, its manifest completed later, shipped,
  // cleared and delivered; its units deployed, moved, returned (two events: the second names
  // the sites) and decommissioned.
  const made = await book(6, '2026-06-01T00:00:00Z', ['RPL-6', { serial: 'RPL-1', gpuUuid: 'GPU-AAAAAAAA-0000-4000-8000-000000000001' }, { serial: 'RPL-2' }]);
  ids.booked = String(made.shipmentId);
  ids.bookingSeq = Number(made.seq);
  const manifest = await run('manifest.attach', { shipmentId: ids.booked, serials: ['RPL-3', 'RPL-5', { serial: 'RPL-4', gpuUuid: 'GPU-bbbbbbbb-0000-4000-8000-000000000002' }] }, actors.exporter);
  ids.manifestSeq = Number(manifest.seq);
  for (const [kind, actor] of [['shipment.ship', actors.exporter], ['shipment.clear', actors.alpha], ['shipment.deliver', actors.alpha]] as const) {
    await run(kind, { shipmentId: ids.booked }, actor);
  }
  const site = async (name: string) => String((await run('site.register', { name, province: 'Guizhou', city: 'Gui\'an', latitude: 26.4123, longitude: 106.6, capacityUnits: 10 }, actors.alpha)).siteId);
  ids.site = await site('Replay A');
  ids.otherSite = await site('Replay B');
  await run('units.deploy', { siteId: ids.site, serials: ['RPL-1', 'RPL-2', 'RPL-3', 'RPL-4'] }, actors.alpha);
  await run('units.deploy', { siteId: ids.otherSite, serials: ['RPL-4'] }, actors.alpha);
  await run('units.return', { serials: ['RPL-4', 'RPL-1'], reason: 'faulty' }, actors.alpha);
  await run('units.decommission', { serials: ['RPL-2'], reason: 'end of life' }, actors.alpha);
  await run('units.report_lost', { serials: ['RPL-5'], reason: 'not found at audit' }, actors.alpha);
  // The licence amended, suspended and reinstated; an allocation resized; a token made and revoked.
  await run('licence.amend', { licenceId: exportLicenceId, reason: 'quota calibrated', authorisedUnits: 1_200 }, actors.bis);
  await run('licence.suspend', { licenceId: exportLicenceId, reason: 'review' }, actors.bis);
  await run('licence.reinstate', { licenceId: exportLicenceId }, actors.bis);
  await run('allocation.resize', { allocationId: allocations.betaExport, units: 450 }, actors.bis);
  ids.token = String((await run('token.create', { organisationId: world.actors.beta.orgId, role: 'recipient', label: 'replay' }, systemActor)).tokenId);
  await run('token.revoke', { tokenId: ids.token }, systemActor);
  // Two bookings past their deadline, expired by one sweep (one event each, in creation order), and one cancelled.
  ids.expiring = String((await book(2, '2026-02-03T00:00:00Z')).shipmentId);
  await book(1, '2026-02-03T00:00:00Z');
  const cancelled = String((await book(1, '2026-03-01T00:00:00Z')).shipmentId);
  await run('shipment.cancel', { shipmentId: cancelled }, actors.exporter);
  clock.advanceMs(3 * 24 * 60 * 60 * 1000);
  expect((await world.ledger.sweep()).ok).toBe(true);
});

afterAll(dropReplayTemplate);

describe('the replay of the log', () => {
  let replayed: Replayed;
  beforeAll(async () => {
    replayed = await replayOf(database.pool);
  });
  afterAll(async () => replayed.drop());

  it('makes every event again as the log records it, and the same state, row by row', async () => {
    const size = Number((await one<{ size: string }>('SELECT size FROM log_head')).size);
    expect(replayed.report).toEqual({ replayed: size });
    expect(await differencesFrom(database.pool, replayed)).toEqual([]);
    // It compared something: the replay's database holds what the world's does.
    expect((await replayed.target.query('SELECT count(*)::int AS units FROM units')).rows[0].units).toBe(6);
  });

  it("names a licence's terms changed with its newest version's snapshot, which no count or part of the re-check ties to anything", async () => {
    const licenceId = world.exportLicenceId;
    let recheck: unknown[] = [];
    const differences = await differencesFrom(database.pool, replayed, async (client) => {
      await asOwner(client, [
        ['UPDATE licences SET authorised_units = 5000 WHERE id = $1', [licenceId]],
        ["UPDATE licence_versions SET snapshot = jsonb_set(snapshot::jsonb, '{authorised_units}', '5000')::json WHERE licence_id = $1 AND version = (SELECT version FROM licences WHERE id = $1)", [licenceId]],
      ]);
      recheck = (await client.query('SELECT * FROM ledger_violations()')).rows;
    });
    expect(recheck, "the re-check's parts without the replay").toEqual([]);
    expect(differences.map((found) => found.subject)).toEqual([`licences ${licenceId}`, `licence_versions ${licenceId} / 2`]);
    expect(differences[0]!.detail).toBe("authorised_units: the database holds 5000, the log's events make 1200");
    expect(differences[1]!.detail).toBe("snapshot.authorised_units: the database holds 5000, the log's events make 1200");
  });

  it('names a row no event made, and a row the events made that is gone', async () => {
    const differences = await differencesFrom(database.pool, replayed, (client) => asOwner(client, [
      ["INSERT INTO organisations (id, name, country, roles, identifiers, created_seq) VALUES ('ORG-999', 'Forged Ltd', 'GB', '{auditor}', '{}', 3)"],
      ["DELETE FROM units WHERE serial = 'RPL-6'"],
    ]));
    expect(differences).toEqual([
      { invariant: 'replay', subject: 'organisations ORG-999', detail: expect.stringMatching(/^the database holds this row \(.*"Forged Ltd".*\), which no event of the log makes$/) },
      { invariant: 'replay', subject: 'units RPL-6', detail: expect.stringMatching(/^the log's events make this row \(.*"custody": "delivered".*\), which the database does not hold$/) },
    ]);
  });

  it("names an event's row that says otherwise than its bytes (its readers), and a unit moved between sites with both counts kept", async () => {
    const differences = await differencesFrom(database.pool, replayed, (client) => asOwner(client, [
      ['UPDATE events SET org_ids = org_ids || $2::text[] WHERE seq = $1', [ids.manifestSeq, [world.actors.beta.orgId]]],
      ["UPDATE units SET site_id = $1 WHERE serial = 'RPL-3'", [ids.otherSite]],
      ['UPDATE sites SET deployed_units = deployed_units + (CASE WHEN id = $1 THEN 1 ELSE -1 END) WHERE id IN ($1, $2)', [ids.otherSite, ids.site]],
    ]));
    expect(differences.map((found) => `${found.subject}: ${found.detail.split(':')[0]}`).sort()).toEqual([
      `events ${ids.manifestSeq}: org_ids`,
      `sites ${ids.otherSite}: deployed_units`,
      `sites ${ids.site}: deployed_units`,
      'units RPL-3: site_id',
    ].sort());
  });

  it("passes over a token's secret hash, which no replay can make (its secret is drawn once, at random)", async () => {
    const differences = await differencesFrom(database.pool, replayed, (client) => asOwner(client, [
      ["UPDATE tokens SET secret_hash = decode(repeat('00', 32), 'hex') WHERE id = $1", [ids.token]],
    ]));
    expect(differences).toEqual([]);
    const revoked = await differencesFrom(database.pool, replayed, (client) => asOwner(client, [['UPDATE tokens SET revoked_at = NULL WHERE id = $1', [ids.token]]]));
    expect(revoked.map((found) => found.subject)).toEqual([`tokens ${ids.token}`]);
  });
});

describe('a replay that stops', () => {
  /** Replaces event `seq`'s canonical bytes by `change` of its body (its row and leaf left as they were: the replay reads the bytes). */
  const rewriteEvent = (seq: number, change: (body: Record<string, any>) => void) => async (client: PoolClient) => {
    const { canonical } = (await client.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = $1', [seq])).rows[0]!;
    const body = JSON.parse(canonical.toString('utf8')) as Record<string, any>;
    change(body);
    await asOwner(client, [['UPDATE events SET canonical = $2 WHERE seq = $1', [seq, Buffer.from(canonicalJson(body))]]]);
  };

  it("names the first event whose recorded effects are not what its command makes, and the field", async () => {
    const { report, differences } = await replayFindings(database.pool, rewriteEvent(ids.bookingSeq, (body) => {
      body.effects.destination = 'HK';
    }));
    expect(report.replayed).toBe(ids.bookingSeq);
    expect(report.divergence).toEqual({
      invariant: 'replay', subject: `event ${ids.bookingSeq}`,
      detail: `the shipment.book command of event ${ids.bookingSeq}, replayed, made event ${ids.bookingSeq} otherwise: effects: the log records {"destination":"HK","origin":"US","recipientId":"${world.actors.alpha.orgId}","shipmentId":"${ids.booked}"}, the replay made {"destination":"CN","origin":"US","recipientId":"${world.actors.alpha.orgId}","shipmentId":"${ids.booked}"}`,
    });
    expect(differences).toEqual([]);
  });

  it('names a recorded command the rules refuse, with its rule: a booking past its allocation', async () => {
    const { report } = await replayFindings(database.pool, rewriteEvent(ids.bookingSeq, (body) => {
      body.input.units = 100_000;
    }));
    expect(report.divergence?.subject).toBe(`event ${ids.bookingSeq}`);
    expect(report.divergence?.detail).toMatch(new RegExp(`^this release's rules refuse the shipment.book command event ${ids.bookingSeq} records, sent again at 2026-02-01T00:00:00.000Z as ${world.actors.exporter.id}: .*100,000 requested \\(rule invariant-2\\)$`));
  });

  it("names a command whose actor is not its token's: another organisation under a recipient's token, or the system's id for an exporter", async () => {
    for (const actor of [{ id: world.actors.beta.id, org: world.actors.exporter.orgId, role: 'exporter' }, { id: 'system', org: world.actors.exporter.orgId, role: 'exporter' }]) {
      const { report } = await replayFindings(database.pool, rewriteEvent(ids.bookingSeq, (body) => {
        body.actor = actor;
      }));
      expect(report.divergence?.detail).toBe(`this release's rules refuse the shipment.book command event ${ids.bookingSeq} records, sent again at 2026-02-01T00:00:00.000Z as ${actor.id}: the bearer token is not valid: it is malformed, unknown or revoked`);
    }
  });

  it('names a serial list whose stored lines do not hash to the digest the event records', async () => {
    const { report } = await replayFindings(database.pool, (client) => asOwner(client, [
      ["UPDATE event_serials SET lines = array_replace(lines, 'RPL-5', 'RPL-9') WHERE seq = $1", [ids.manifestSeq]],
    ]));
    expect(report.divergence).toEqual({
      invariant: 'replay', subject: `event ${ids.manifestSeq}`,
      detail: expect.stringMatching(new RegExp(`^event ${ids.manifestSeq} records 3 serials with digest [0-9a-f]{64}, and the 3 lines stored for it hash to [0-9a-f]{64}$`)),
    });
  });

  it('names an event missing below the log size, and bytes that are not an event', async () => {
    const missing = await replayFindings(database.pool, (client) => asOwner(client, [['DELETE FROM events WHERE seq = $1', [ids.manifestSeq]]]));
    expect(missing.report.divergence?.detail).toMatch(new RegExp(`^event ${ids.manifestSeq} is missing from the events table, below the log's size \\d+$`));
    const garbled = await replayFindings(database.pool, (client) => asOwner(client, [['UPDATE events SET canonical = $2 WHERE seq = $1', [ids.manifestSeq, Buffer.from('{"at":')]]]));
    expect(garbled.report.divergence?.detail).toMatch(new RegExp(`^event ${ids.manifestSeq}'s bytes are not JSON`));
  });
});
