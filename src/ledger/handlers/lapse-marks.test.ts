/**
 * The marks the sweep works from (migration 034, licence_lapses): every status change that
 * ends a licence marks it in its own batch, the sweep expires the bookings under marked
 * licences (and under licences past their validity, in the same sweep that expires them),
 * and a later sweep deletes a mark once nothing reserves on its licence, also a sweep that
 * finds nothing due. Two servers sweeping at once expire each booking once. The migration
 * marks the licences that lapsed before it with bookings still under them.
 * src/store/sweep-due.test.ts shows what a sweep then reads; lapse.test.ts what it expires.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { inRolledBack, manifestLinesBefore075 } from '../../../test/support/rolled-back.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import { listMigrations } from '../../store/migrate.ts';
import { Ledger, type Answer } from '../ledger.ts';
import { licencePair, type LicencePair } from '../../../test/support/licence-pair.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** An issued export and import licence with `units` allocated to alpha on each (as lapse.test.ts). */
const pair = (units: number, validTo?: string): Promise<LicencePair> => licencePair(world, { authorisedUnits: units, ...(validTo === undefined ? {} : { validTo }), betaConsignee: true });

async function book(on: LicencePair, units: number, deadline = '2026-12-01T00:00:00Z'): Promise<string> {
  return String((await world.run('shipment.book', {
    exportAllocationId: on.exportAllocationId, importAllocationId: on.importAllocationId, productId: world.productId, units, deadline,
  }, world.actors.exporter)).shipmentId);
}

/** Which of these licences are marked. */
async function marked(...licenceIds: string[]): Promise<string[]> {
  const rows = (await database.pool.query<{ licence_id: string }>('SELECT licence_id FROM licence_lapses WHERE licence_id = ANY($1) ORDER BY licence_id', [licenceIds])).rows;
  return rows.map((row) => row.licence_id);
}

async function status(shipmentId: string): Promise<string> {
  return (await database.pool.query<{ status: string }>('SELECT status FROM shipments WHERE id = $1', [shipmentId])).rows[0]!.status;
}

async function logSize(): Promise<number> {
  return Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size);
}

function refusedRule(answer: Answer): string | undefined {
  return answer.ok ? undefined : answer.error.rule;
}

describe('a licence lapse mark', () => {
  it('is written by the revocation, surrender or sweep expiry that ends the licence, in its batch, bookings or none; a suspension writes none', async () => {
    const revoked = await pair(4);
    await book(revoked, 2);
    const surrendered = await pair(4);
    const suspended = await pair(4);
    await book(suspended, 1);
    await world.run('licence.revoke', { licenceId: revoked.exportLicenceId }, world.actors.bis);
    expect(await marked(revoked.exportLicenceId, revoked.importLicenceId)).toEqual([revoked.exportLicenceId]);
    // No booking under it: marked all the same (a booking earlier in the same batch would not be in allocations yet).
    await world.run('licence.surrender', { licenceId: surrendered.importLicenceId }, world.actors.alpha);
    expect(await marked(surrendered.importLicenceId)).toEqual([surrendered.importLicenceId]);
    await world.run('licence.suspend', { licenceId: suspended.importLicenceId }, world.actors.mofcom);
    expect(await marked(suspended.importLicenceId)).toEqual([]);

    // The sweep expires the revoked licence's booking; the mark, read before that, stays this once.
    const swept = expectOk(await world.ledger.sweep());
    expect((swept.expiredShipments as string[]).length).toBe(1);
    expect(await marked(revoked.exportLicenceId, surrendered.importLicenceId)).toEqual([revoked.exportLicenceId]);
    // Then a sweep with nothing due deletes it: refused, no event, the delete committed.
    const size = await logSize();
    expect(refusedRule(await world.ledger.sweep())).toBe('sweep-nothing-due');
    expect(await logSize()).toBe(size);
    expect(await marked(revoked.exportLicenceId)).toEqual([]);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('is found missing by the re-check while its licence still reserves, and is written for a licence made in an ended status', async () => {
    const revoked = await pair(5);
    await book(revoked, 3);
    await world.run('licence.revoke', { licenceId: revoked.exportLicenceId }, world.actors.bis);
    await inRolledBack(database.pool, async (client) => {
      await client.query('DELETE FROM licence_lapses WHERE licence_id = $1', [revoked.exportLicenceId]);
      expect((await client.query(`SELECT invariant, subject, detail FROM ledger_violations() WHERE invariant = 'licence-lapses'`)).rows).toEqual([{
        invariant: 'licence-lapses', subject: revoked.exportLicenceId,
        detail: 'the licence is revoked and its allocations still reserve 3 units, but it is not marked for the sweep (licence_lapses)',
      }]);
      // A licence row written new as revoked (a batch that makes and revokes it writes it once) is marked too.
      await client.query(`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
        SELECT 'L-MADE-REVOKED', 1, 'R-MADE-REVOKED', authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, 'revoked', created_seq, updated_seq
        FROM licences WHERE id = $1`, [revoked.importLicenceId]);
      expect((await client.query(`SELECT licence_id FROM licence_lapses WHERE licence_id = 'L-MADE-REVOKED'`)).rowCount).toBe(1);
    });
    // The mark was there all along: the sweep expires the booking, leaving the next tests none.
    expect(expectOk(await world.ledger.sweep()).expiredShipments).toHaveLength(1);
  });

  it('is written when the sweep expires a licence past its validity, whose bookings that same sweep expires', async () => {
    const at = world.clock.now().getTime();
    const deadline = new Date(at + 86_400_000).toISOString();
    const ending = await pair(3, deadline);
    const shipmentId = await book(ending, 3, deadline);
    // A booking's deadline is within its licences' validity when made; an amendment that cuts
    // the validity short leaves it past it, so the sweep finds it by the licences' validity.
    const validTo = new Date(at + 60_000).toISOString();
    await world.run('licence.amend', { licenceId: ending.exportLicenceId, reason: 'cut short', validTo }, world.actors.bis);
    await world.run('licence.amend', { licenceId: ending.importLicenceId, reason: 'cut short', validTo }, world.actors.mofcom);
    world.clock.set(new Date(at + 120_000));
    // Not marked while its status still says issued: the sweep finds it by its validity.
    expect(await marked(ending.exportLicenceId, ending.importLicenceId)).toEqual([]);
    const swept = expectOk(await world.ledger.sweep());
    expect(swept.expiredShipments).toEqual([shipmentId]);
    expect([...(swept.expiredLicences as string[])].sort()).toEqual([ending.exportLicenceId, ending.importLicenceId].sort());
    expect(await marked(ending.exportLicenceId, ending.importLicenceId)).toEqual([ending.exportLicenceId, ending.importLicenceId].sort());
    expect(refusedRule(await world.ledger.sweep())).toBe('sweep-nothing-due');
    expect(await marked(ending.exportLicenceId, ending.importLicenceId)).toEqual([]);
  });
});

describe('two servers sweeping the same ledger at once', () => {
  it('expire each booking under a revoked licence once, and leave no mark behind', async () => {
    const revoked = await pair(10);
    const bookings = [await book(revoked, 2), await book(revoked, 3), await book(revoked, 1)];
    await world.run('licence.revoke', { licenceId: revoked.importLicenceId }, world.actors.mofcom);
    const other = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, clock: world.clock });
    try {
      const answers = await Promise.all([world.ledger.sweep(), other.sweep(), world.ledger.sweep(), other.sweep()]);
      const expired = answers.flatMap((answer) => (answer.ok ? answer.body.expiredShipments as string[] : []));
      expect([...expired].sort()).toEqual([...bookings].sort());
      for (const answer of answers) if (!answer.ok) expect(answer.error.rule).toBe('sweep-nothing-due');
      for (const shipmentId of bookings) expect(await status(shipmentId)).toBe('expired');
      // Whichever sweeps next deletes the mark.
      expect(refusedRule(await other.sweep())).toBe('sweep-nothing-due');
      expect(await marked(revoked.importLicenceId)).toEqual([]);
      expect(await world.ledger.violations()).toEqual([]);
    } finally {
      await other.close();
    }
  });
});

describe('migration 034 on rows written before it', () => {
  it('marks the licences no longer in force that still hold bookings, and no other', async () => {
    const withBookings = await pair(5);
    await book(withBookings, 5);
    const without = await pair(5);
    const inForce = await pair(5);
    await book(inForce, 2);
    await world.run('licence.revoke', { licenceId: withBookings.exportLicenceId }, world.actors.bis);
    await world.run('licence.revoke', { licenceId: without.exportLicenceId }, world.actors.bis);
    const ours = [withBookings.exportLicenceId, withBookings.importLicenceId, without.exportLicenceId, inForce.exportLicenceId, inForce.importLicenceId];
    expect(await marked(...ours)).toEqual([withBookings.exportLicenceId, without.exportLicenceId].sort());

    const migration = listMigrations().find((each) => each.version === 34)!;
    await inRolledBack(database.pool, async (client) => {
      // Back to the schema as 033 left it, as far as 034 reads it: its table, triggers and index
      // gone, and stand-ins for the two wrappers 034 drops by name.
      await client.query(`DROP TABLE licence_lapses; DROP TRIGGER licences_mark_lapse ON licences; DROP TRIGGER licences_mark_lapse_insert ON licences;
        DROP FUNCTION licences_mark_lapse(); DROP INDEX licences_expirable_valid_to;
        CREATE FUNCTION ledger_violations_before_032() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
        CREATE FUNCTION ledger_violations_before_030() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$`);
      await client.query(manifestLinesBefore075); // the table this older migration reads
      await client.query(migration.sql);
      const rows = (await client.query<{ licence_id: string }>('SELECT licence_id FROM licence_lapses WHERE licence_id = ANY($1) ORDER BY licence_id', [ours])).rows;
      expect(rows.map((row) => row.licence_id)).toEqual([withBookings.exportLicenceId]);
    });
    // And the sweep takes it from there.
    expect(expectOk(await world.ledger.sweep()).expiredShipments).toHaveLength(1);
  });
});
