/**
 * Migration 075 on a ledger that has history: a shipment's manifest becomes its units and the
 * lines of units that left it, so of the manifest lines written before it only those of units
 * that moved on are kept (and a line with no unit at all, which the re-check goes on naming).
 * The tables as the ledger writes them since are tested in constraints.test.ts,
 * constraints-028.test.ts and ledger/handlers/manifests-ownership.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack, manifestLineRowsBefore075 } from '../../test/support/rolled-back.ts';
import { bookListed, worldPerFile, type World } from '../../test/world.ts';
import { listMigrations } from './migrate.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const book = (serials: Parameters<typeof bookListed>[1]): Promise<string> => bookListed(world, serials);

/** The schema as 074 left it, from today's rows: shipment_serials holding every listed serial, live while its shipment is under way. */
const tablesBefore075 = `
  DROP TRIGGER units_leave_manifest_line ON units; DROP FUNCTION units_leave_manifest_line();
  DROP TRIGGER units_keep_serial ON units; DROP FUNCTION units_keep_serial();
  CREATE TABLE shipment_serials (shipment_id text NOT NULL, serial text NOT NULL, live boolean NOT NULL, PRIMARY KEY (shipment_id, serial));
  INSERT INTO shipment_serials ${manifestLineRowsBefore075};
  DROP TABLE moved_manifest_lines;
  CREATE FUNCTION shipment_serials_only_end() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
  CREATE FUNCTION shipment_serials_check_refs() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
  DROP INDEX units_shipment; CREATE INDEX units_shipment ON units (shipment_id)`;

describe('migration 075 on manifests written before it', () => {
  it('keeps the lines of units that moved on, and of serials with no unit, and no other', async () => {
    const { run, actors } = world;
    const cancelled = await book(['M75-MOVED', 'M75-STAYED']);
    await run('shipment.cancel', { shipmentId: cancelled }, actors.exporter);
    const relisted = await book(['M75-MOVED', 'M75-NEW']);
    const manifests = async (client: { query: typeof database.pool.query }) => (await client.query(
      `SELECT shipment_id, serial FROM units WHERE shipment_id = ANY($1) UNION ALL SELECT shipment_id, serial FROM moved_manifest_lines WHERE shipment_id = ANY($1) ORDER BY 1, 2`,
      [[cancelled, relisted]])).rows;
    const asTheLedgerLeftThem = await manifests(database.pool);
    expect(asTheLedgerLeftThem).toEqual([
      { shipment_id: cancelled, serial: 'M75-MOVED' }, { shipment_id: cancelled, serial: 'M75-STAYED' },
      { shipment_id: relisted, serial: 'M75-MOVED' }, { shipment_id: relisted, serial: 'M75-NEW' },
    ]);

    const migration = listMigrations().find((each) => each.version === 75)!;
    await inRolledBack(database.pool, async (client) => {
      await client.query(tablesBefore075);
      // A line whose serial has no unit, as the re-check before 075 named it: kept, and named still.
      await client.query(`INSERT INTO shipment_serials VALUES ($1, 'M75-GHOST', false)`, [cancelled]);
      expect((await client.query(`SELECT count(*)::int AS n FROM shipment_serials`)).rows[0].n).toBeGreaterThan(4);
      await client.query(migration.sql);
      expect((await client.query(`SELECT shipment_id, serial FROM moved_manifest_lines ORDER BY 1, 2`)).rows).toEqual([
        { shipment_id: cancelled, serial: 'M75-GHOST' }, { shipment_id: cancelled, serial: 'M75-MOVED' },
      ]);
      expect(await manifests(client)).toEqual([...asTheLedgerLeftThem, { shipment_id: cancelled, serial: 'M75-GHOST' }].sort((a, b) => `${a.shipment_id} ${a.serial}`.localeCompare(`${b.shipment_id} ${b.serial}`)));
      expect((await client.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'units_shipment'`)).rows[0].indexdef).toMatch(/\(shipment_id, serial\)$/);
      expect((await client.query(`SELECT to_regclass('shipment_serials') AS table`)).rows[0].table).toBeNull();
      expect((await client.query(`SELECT invariant, subject, detail FROM ledger_violations() WHERE subject = $1`, [cancelled])).rows).toEqual([
        { invariant: 'invariant-4', subject: cancelled, detail: 'serial_count 2, manifest rows 3 (1 units in it, 2 moved on)' },
        { invariant: 'invariant-4', subject: cancelled, detail: 'serial M75-GHOST is in the manifest but has no unit' },
      ]);
    });
    expect(await world.ledger.violations()).toEqual([]);
  });
});
