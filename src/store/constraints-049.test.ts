/**
 * Migration 049 in the database: a serial has no lower-case letter, on units and on manifest
 * rows; a database that holds one stops the migration, which names them. The rest of a
 * serial's form is the ledger's (core/serial.ts, tested there and in server/bad-input.test.ts).
 * Writes here run in transactions rolled back.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, inRolledBack } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { problemOfSerial } from '../core/serial.ts';
import { listMigrations } from './migrate.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;
let world: World;
let bookedId = '';

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** A booking listing M49-1, whose unit and manifest row the statements below copy under other serials. */
async function booked(): Promise<string> {
  if (bookedId !== '') return bookedId;
  const { run, actors, productId, allocations } = world;
  bookedId = String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 5, deadline: '2026-03-01T00:00:00Z', serials: ['M49-1'],
  }, actors.exporter)).shipmentId);
  return bookedId;
}

const unitAs = (serial: string): [string, unknown[]] => [`INSERT INTO units (serial, product_id, recipient_org_id, custody, shipment_id, updated_seq)
  SELECT $1, product_id, recipient_org_id, custody, shipment_id, updated_seq FROM units WHERE serial = 'M49-1'`, [serial]];
const listedAs = (serial: string, shipmentId: string): [string, unknown[]] => [`INSERT INTO shipment_serials (shipment_id, serial, live) VALUES ($1, $2, false)`, [shipmentId, serial]];

const violates = (constraint: string) => ({ code: '23514', message: expect.stringContaining(`violates check constraint "${constraint}"`) });

describe('the database’s rule: a serial has no lower-case letter (049)', () => {
  it('refuses a unit or a manifest row whose serial has a lower-case letter', async () => {
    const shipmentId = await booked();
    for (const serial of ['m49-2', 'M49-x', 'abc1654x01']) {
      expect(await firstRefusal(database.pool, unitAs(serial)), serial).toEqual(violates('units_serial_capitals'));
      expect(await firstRefusal(database.pool, listedAs(serial, shipmentId)), serial).toEqual(violates('shipment_serials_serial_capitals'));
    }
  });

  it('takes capitals, digits and . _ : / -; the rest of the form is the ledger’s', async () => {
    const shipmentId = await booked();
    for (const serial of ['M49/2:X.Y_Z-1', '0', '-M49']) {
      expect(await firstRefusal(database.pool, unitAs(serial)), serial).toBeUndefined();
      expect(await firstRefusal(database.pool, listedAs(serial, shipmentId)), serial).toBeUndefined();
    }
  });

  it('refuses a serial for its case exactly where the ledger does, whatever the database’s locale', async () => {
    // ASCII is all the ledger lets through; letters beyond it (which the ledger refuses first) keep their case here.
    const samples = ['A', 'Z', 'a', 'z', '@', '[', '`', '{', 'É', 'é', 'ß', 'İ', 'ı', 'ｚ', '\u212a', 'ǅ'];
    const serials = samples.map((character) => `A${character}1`);
    const { rows } = await database.pool.query<{ passes: boolean }>(
      `SELECT s = upper(s COLLATE "C") AS passes FROM unnest($1::text[]) WITH ORDINALITY AS t(s, n) ORDER BY n`, [serials]);
    const lowerCase = (serial: string) => problemOfSerial(serial)?.includes('has lower-case letters') ?? false;
    expect(rows.map((row) => row.passes)).toEqual(serials.map((serial) => !lowerCase(serial)));
    const { rows: [definition] } = await database.pool.query<{ check: string }>(`SELECT pg_get_constraintdef(oid) AS check FROM pg_constraint WHERE conname = 'units_serial_capitals'`);
    expect(definition!.check).toBe('CHECK ((serial = upper((serial COLLATE "C"))))');
  });
});

describe('migration 049 over serials written before it', () => {
  /** Back to the tables as 048 left them, with the rows `write` adds; then 049. Its error, or undefined. */
  async function migrateOver(write: (client: PoolClient, shipmentId: string) => Promise<void>): Promise<{ message: string; hint: string } | undefined> {
    const shipmentId = await booked();
    const migration = listMigrations().find((each) => each.version === 49)!;
    return inRolledBack(database.pool, async (client) => {
      await client.query('ALTER TABLE units DROP CONSTRAINT units_serial_capitals; ALTER TABLE shipment_serials DROP CONSTRAINT shipment_serials_serial_capitals');
      await write(client, shipmentId);
      try {
        await client.query(migration.sql);
        return undefined;
      } catch (error) {
        return { message: (error as Error).message, hint: (error as { hint: string }).hint };
      }
    });
  }

  it('applies to serials in capitals', async () => {
    expect(await migrateOver(async () => {})).toBeUndefined();
  });

  it('stops where a unit or a manifest row holds a serial in lower case, naming the first five of each', async () => {
    const found = await migrateOver(async (client, shipmentId) => {
      for (const serial of ['abc1654x01', 'ABC1654X01', 'm49-a', 'm49-b', 'm49-c', 'm49-d', 'm49-e', 'm49-f']) await client.query(...unitAs(serial));
      await client.query(...listedAs('abc1654x01', shipmentId));
    });
    expect(found?.message).toBe('serials in lower case, which this release refuses (serials are written in capitals): '
      + `abc1654x01 (listed in shipment ${bookedId}), abc1654x01 (unit), m49-a (unit), m49-b (unit), m49-c (unit), m49-d (unit)`);
    expect(found?.hint).toMatch(/^serials are recorded in the log as sent, so this migration does not respell them/);
  });
});
