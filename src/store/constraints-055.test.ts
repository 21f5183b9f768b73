/**
 * The holes of the s25 database-defence review, closed by migration 055: each case writes
 * around the ledger, straight into the tables, in a transaction that is always rolled back,
 * and must be refused with its SQLSTATE and words (before 055 the database took every one of
 * them); and the re-check's three new parts name what the triggers cannot see.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, insertShipments, partOnChangedState, type Statement } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { systemActor } from '../ledger/permissions.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;
let world: World;

// Licences with units left to allocate (an allocation written by hand must fit).
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
}, { licenceUnits: 10_000, allocationUnits: 1_000 });

const refusal = (...statements: Statement[]) => firstRefusal(database.pool, ...statements);
const neverDeleted = (table: string) => ({ code: '23001', message: `the ledger only grows: ${table} rows are never deleted` });

/** A checkpoint row and a cosignature over it, written by hand (the world's ledger signs none). */
const checkpointAndCosignature: Statement[] = [
  [`INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES (1, '\\x${'11'.repeat(32)}', 'k1', 'note')`],
  [`INSERT INTO tlog_cosignatures (checkpoint_size, checkpoint_key_id, witness, key_id, timestamp_s, signature_line) VALUES (1, 'k1', 'w', 'wk', 100, 'line')`],
];

let bookedId: string;
let revokedTokenId: string;

beforeAll(async () => {
  const { run, actors, productId, allocations } = world;
  bookedId = String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 2, deadline: '2026-03-01T00:00:00Z',
  }, actors.exporter)).shipmentId);
  revokedTokenId = String((await run('token.create', { organisationId: actors.alpha.orgId, role: 'recipient', label: 'to revoke' }, systemActor)).tokenId);
  await run('token.revoke', { tokenId: revokedTokenId }, systemActor);
});

describe('migration 055: the record is kept whole', () => {
  it('refuses to delete an event (so a deleted and re-inserted one cannot change its kind, actor or readers)', async () => {
    expect(await refusal(['DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)'])).toEqual(neverDeleted('events'));
    expect(await refusal(['DELETE FROM events'])).toEqual(neverDeleted('events'));
  });

  it('refuses to change, delete or truncate a checkpoint', async () => {
    expect(await refusal(...checkpointAndCosignature, [`UPDATE tlog_checkpoints SET signed_note = 'other' WHERE size = 1`])).toEqual({ code: '23001', message: 'the ledger only grows: tlog_checkpoints rows are never changed' });
    expect(await refusal(...checkpointAndCosignature, ['DELETE FROM tlog_checkpoints WHERE size = 1'])).toEqual(neverDeleted('tlog_checkpoints'));
    expect(await refusal(...checkpointAndCosignature, ['TRUNCATE tlog_checkpoints CASCADE'])).toEqual(neverDeleted('tlog_checkpoints'));
    // As the log writes one: an insert that finds the row there does nothing.
    expect(await refusal(...checkpointAndCosignature, [`INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES (1, '\\x${'11'.repeat(32)}', 'k1', 'note') ON CONFLICT (size, key_id) DO NOTHING`])).toBeUndefined();
  });

  it('replaces a cosignature only with a newer one of the same witness, key and checkpoint, and never deletes one', async () => {
    const replace = (timestamp: number): Statement => [`INSERT INTO tlog_cosignatures (checkpoint_size, checkpoint_key_id, witness, key_id, timestamp_s, signature_line) VALUES (1, 'k1', 'w', 'wk', ${timestamp}, 'newer')
      ON CONFLICT (checkpoint_size, checkpoint_key_id, witness, key_id) DO UPDATE SET timestamp_s = EXCLUDED.timestamp_s, signature_line = EXCLUDED.signature_line`];
    expect(await refusal(...checkpointAndCosignature, replace(101))).toBeUndefined();
    const older = await refusal(...checkpointAndCosignature, replace(99));
    expect(older).toEqual({ code: '23001', message: 'the cosignature of witness w (key wk) over checkpoint 1 is replaced only by a newer one of the same witness, key and checkpoint (timestamp 100 → 99)' });
    expect((await refusal(...checkpointAndCosignature, [`UPDATE tlog_cosignatures SET witness = 'v', timestamp_s = 200`]))?.code).toBe('23001');
    expect(await refusal(...checkpointAndCosignature, ['DELETE FROM tlog_cosignatures'])).toEqual(neverDeleted('tlog_cosignatures'));
    expect(await refusal(...checkpointAndCosignature, ['TRUNCATE tlog_cosignatures'])).toEqual(neverDeleted('tlog_cosignatures'));
  });

  it('keeps a token\'s organisation, role, label and secret, revokes it once, and never deletes it', async () => {
    const { exporter } = world.actors;
    const grant = `token ${exporter.id} is organisation ${exporter.orgId}'s, with role exporter; its organisation, role, label and secret never change (revoke it and create another)`;
    for (const change of [`role = 'authority_admin'`, `org_id = '${world.actors.mofcom.orgId}'`, `label = 'other'`, `secret_hash = sha256('x')`]) {
      expect(await refusal([`UPDATE tokens SET ${change} WHERE id = $1`, [exporter.id]]), change).toEqual({ code: '23001', message: grant });
    }
    const unrevoked = await refusal(['UPDATE tokens SET revoked_at = NULL WHERE id = $1', [revokedTokenId]]);
    expect(unrevoked?.code).toBe('23001');
    expect(unrevoked?.message).toMatch(new RegExp(`^token ${revokedTokenId} was revoked at .*; it stays revoked$`));
    expect((await refusal([`UPDATE tokens SET revoked_at = revoked_at + interval '1 day' WHERE id = $1`, [revokedTokenId]]))?.code).toBe('23001');
    // What token.revoke writes: a live token revoked, the rest as it was.
    expect(await refusal(['UPDATE tokens SET revoked_at = now() WHERE id = $1', [exporter.id]])).toBeUndefined();
    expect(await refusal(['DELETE FROM tokens WHERE id = $1', [revokedTokenId]])).toEqual(neverDeleted('tokens'));
  });

  it('keeps a shipment\'s deadline', async () => {
    const moved = await refusal([`UPDATE shipments SET deadline = '2031-01-01T00:00:00Z' WHERE id = $1`, [bookedId]]);
    expect(moved?.code).toBe('23514');
    expect(moved?.message).toMatch(/^shipment .* keeps what it was booked as; it cannot change \(deadline 2026-03-01 00:00:00\+00 → 2031-01-01 00:00:00\+00\)$/);
  });

  it('refuses a shipment written new past booked without a serial for every unit, and takes one written new as the ledger writes a booking', async () => {
    for (const status of ['shipped', 'cleared', 'delivered']) {
      expect(await refusal(insertShipments(world, [{ id: 'S-NEW', units: '100', status }])), status)
        .toEqual({ code: '23514', message: `shipment S-NEW lists 0 of its 100 serials; it cannot be ${status} without a serial for every unit` });
    }
    expect(await refusal(insertShipments(world, [{ id: 'S-NEW', units: '100', status: 'booked' }]))).toBeUndefined();
    expect(await refusal(insertShipments(world, [{ id: 'S-NEW', units: '100', status: 'cancelled' }]))).toBeUndefined();
  });

  it('refuses an allocation to a recipient outside its licence\'s destination, and takes one inside it', async () => {
    const { bis, alpha } = world.actors;
    // The licence counts the new allocation, as the ledger writes one: only the route is wrong.
    const allocate = (recipient: string): Statement[] => [
      // 066 refuses first a recipient the licence does not name (the US authority is not): off, to judge 055's rule alone.
      ['ALTER TABLE allocations DISABLE TRIGGER allocations_handed_out_insert'],
      ['UPDATE licences SET allocated_units = allocated_units + 1 WHERE id = $1', [world.importLicenceId]],
      [`INSERT INTO allocations (id, licence_id, recipient_org_id, units, created_seq) VALUES ('A-ROUTE', $1, $2, 1, 999999)`, [world.importLicenceId, recipient]],
    ];
    expect((await database.pool.query<{ country: string }>('SELECT country FROM organisations WHERE id = $1', [bis.orgId])).rows[0]!.country).toBe('US');
    expect(await refusal(...allocate(bis.orgId))).toEqual({ code: '23514', message: `allocation A-ROUTE is for ${bis.orgId}, in US, of licence ${world.importLicenceId} for US → CN: units go to a recipient in the licence's destination` });
    expect(await refusal(...allocate(alpha.orgId))).toBeUndefined();
  });
});

describe('the re-check\'s parts of migration 055', () => {
  /** The rows `part` names on a view of the state changed by `change` (rolled back after), with every trigger off. */
  const named = (part: string, change: (client: PoolClient) => Promise<unknown>) => partOnChangedState(database.pool, part, change);

  it('find nothing in the ledger\'s own writes', async () => {
    for (const part of ['ledger_check_shipment_booking_times', 'ledger_check_version_events', 'ledger_check_row_seqs']) {
      expect((await database.pool.query(`SELECT * FROM ${part}()`)).rows, part).toEqual([]);
    }
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('name a shipment booked at another time than its booking event', async () => {
    const rows = await named('ledger_check_shipment_booking_times', (client) => client.query(`UPDATE shipments SET booked_at = booked_at - interval '2 days' WHERE id = $1`, [bookedId]));
    expect(rows).toEqual([{ invariant: 'invariant-3', subject: bookedId, detail: expect.stringMatching(/^booked at .*, but its booking, event \d+, is dated /) }]);
  });

  it('name a licence version made by an event that is not its creation or amendment, and such an event that made none', async () => {
    const licenceId = world.exportLicenceId;
    const rows = await named('ledger_check_version_events', (client) => client.query(
      `UPDATE licence_versions SET seq = (SELECT created_seq FROM shipments WHERE id = $2) WHERE licence_id = $1 AND version = 1`, [licenceId, bookedId]));
    const created = (await database.pool.query<{ seq: string }>('SELECT created_seq::text AS seq FROM licences WHERE id = $1', [licenceId])).rows[0]!.seq;
    const booking = (await database.pool.query<{ seq: string }>('SELECT created_seq::text AS seq FROM shipments WHERE id = $1', [bookedId])).rows[0]!.seq;
    expect(rows).toEqual(expect.arrayContaining([
      { invariant: 'licence-versions', subject: `event ${created}`, detail: `licence.create of ${licenceId} made no version of it` },
      { invariant: 'licence-versions', subject: licenceId, detail: `version 1 was made by event ${booking}, but event ${booking} is shipment.book of ${bookedId}, not licence.create or licence.amend of it` },
    ]));
    expect(rows).toHaveLength(2);
  });

  it('name a licence version made by an event the log does not hold', async () => {
    const licenceId = world.importLicenceId;
    const rows = await named('ledger_check_version_events', (client) => client.query('UPDATE licence_versions SET seq = 999999 WHERE licence_id = $1 AND version = 1', [licenceId]));
    expect(rows).toEqual(expect.arrayContaining([
      { invariant: 'licence-versions', subject: licenceId, detail: 'version 1 was made by event 999999, but there is no event 999999' },
    ]));
  });

  it('name a row last changed by an event past the log\'s last, whichever table holds it', async () => {
    const rows = await named('ledger_check_row_seqs', async (client) => {
      await client.query('UPDATE shipments SET updated_seq = (SELECT size + 5 FROM log_head) WHERE id = $1', [bookedId]);
      await client.query('UPDATE licences SET updated_seq = (SELECT size FROM log_head) WHERE id = $1', [world.exportLicenceId]);
    });
    const size = Number((await database.pool.query<{ size: string }>('SELECT size::text FROM log_head')).rows[0]!.size);
    expect(rows).toEqual([
      { invariant: 'event-rows', subject: world.exportLicenceId, detail: `the licence was last changed by event ${size}, past the log's last event (${size - 1})` },
      { invariant: 'event-rows', subject: bookedId, detail: `the shipment was last changed by event ${size + 5}, past the log's last event (${size - 1})` },
    ].sort((a, b) => a.subject.localeCompare(b.subject)));
  });
});
