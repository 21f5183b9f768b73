/**
 * Migration 058, from the s26 review that attacked the database with the writer's connection
 * alone: a log key's row is kept; each licence version is made by an event of its own, in
 * order; and the re-check names a serial of no form the ledger ever took. Each case writes by
 * hand, in a transaction always rolled back; a part of the re-check is shown on rows the
 * trigger would have refused, written with it off (as the tables' owner only may).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, inRolledBack, insertShipments, statusInStep } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import type { PoolClient } from './pool.ts';
import { ledgerViolations } from './violations.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let shipmentId: string;
beforeAll(async () => {
  const { run, actors, productId, allocations } = world;
  shipmentId = String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 2, deadline: '2026-03-01T00:00:00Z', serials: ['M58-1'],
  }, actors.exporter)).shipmentId);
});

/** The re-check's rows of `invariant` after `write` (run with `trigger` off on `table`), rolled back after. */
async function foundAfter(invariant: string, table: string, trigger: string, write: (client: PoolClient) => Promise<unknown>): Promise<Array<{ subject: string; detail: string }>> {
  return inRolledBack(database.pool, async (client) => {
    await client.query(`ALTER TABLE ${table} DISABLE TRIGGER ${trigger}`);
    await write(client);
    return (await ledgerViolations(client)).filter((row) => row.invariant === invariant).map(({ subject, detail }) => ({ subject, detail }));
  });
}

/** Version 1 of the export licence again as version 2, naming event `seq` (a forged amendment: its units doubled). */
const forgedVersion = (seq: string) => [`INSERT INTO licence_versions (licence_id, version, snapshot, seq)
  SELECT licence_id, 2, snapshot || jsonb_build_object('version', 2, 'authorised_units', 2000), ${seq} FROM licence_versions WHERE licence_id = $1 AND version = 1`, [world.exportLicenceId]] as [string, unknown[]];

describe('058: rows a writer could still rewrite', () => {
  it('keeps a log key’s row: no UPDATE, DELETE or TRUNCATE', async () => {
    const kept = (operation: string) => ({ code: '23001', message: `a log key's row is never changed or deleted (${operation} refused)` });
    expect(await firstRefusal(database.pool, ['UPDATE tlog_keys SET first_size = 100000'])).toEqual(kept('UPDATE'));
    expect(await firstRefusal(database.pool, ['DELETE FROM tlog_keys'])).toEqual(kept('DELETE'));
    expect(await firstRefusal(database.pool, ['TRUNCATE tlog_keys'])).toEqual(kept('TRUNCATE'));
  });

  it('refuses a licence version naming the event that made another version', async () => {
    const { rows: [made] } = await database.pool.query<{ seq: string }>('SELECT seq FROM licence_versions WHERE licence_id = $1 AND version = 1', [world.exportLicenceId]);
    // With the licence's row moved to version 2 in the same write, as an amendment writes both (030).
    expect(await firstRefusal(database.pool, forgedVersion('seq'), [`UPDATE licences SET version = 2, authorised_units = 2000 WHERE id = $1`, [world.exportLicenceId]])).toEqual({
      code: '23505',
      message: `version 2 of licence ${world.exportLicenceId} names event ${made!.seq}, which made version 1 of licence ${world.exportLicenceId} already: each version is made by an event of its own`,
    });
  });

  it('names, in the re-check, a version made by another version’s event, and versions out of their events’ order', async () => {
    const { rows: [made] } = await database.pool.query<{ seq: string }>('SELECT seq FROM licence_versions WHERE licence_id = $1 AND version = 1', [world.exportLicenceId]);
    const found = await foundAfter('licence-versions', 'licence_versions', 'licence_versions_one_event_each', async (client) => {
      await client.query('SET CONSTRAINTS ALL DEFERRED');
      await client.query(...forgedVersion('seq'));
    });
    expect(found).toEqual(expect.arrayContaining([
      { subject: world.exportLicenceId, detail: `version 1 names event ${made!.seq}, which made 2 versions` },
      { subject: world.exportLicenceId, detail: `version 2 names event ${made!.seq}, which made 2 versions` },
      { subject: world.exportLicenceId, detail: `version 2 was made by event ${made!.seq}, not after event ${made!.seq}, which made version 1` },
    ]));
  });

  it('names, in the re-check, a unit and a manifest line whose serial is of no form the ledger took', async () => {
    const disguised = 'M58-1\u200b';
    const found = await foundAfter('invariant-4', 'units', 'units_serial_capitals', async (client) => {
      await client.query(`INSERT INTO units (serial, product_id, recipient_org_id, custody, shipment_id, updated_seq)
        SELECT $1, product_id, recipient_org_id, custody, shipment_id, updated_seq FROM units WHERE serial = 'M58-1'`, [disguised]);
      // The line it leaves as it moves on (075): listed again in a second booking once this one is cancelled.
      await client.query(...statusInStep(shipmentId, 'cancelled'));
      await client.query(...insertShipments(world, [{ id: 'S-M58' }]));
      await client.query(`UPDATE units SET shipment_id = 'S-M58' WHERE serial = $1`, [disguised]);
    });
    const quoted = JSON.stringify(disguised);
    expect(found.filter((row) => row.subject === disguised)).toEqual([
      { subject: disguised, detail: `a unit has serial ${quoted}, which is not of the form of a serial` },
      { subject: disguised, detail: `manifest line of ${shipmentId} has serial ${quoted}, which is not of the form of a serial` },
    ]);
  });
});
