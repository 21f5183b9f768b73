/**
 * Migration 049 in the database: a serial inserted new has no lower-case letter. Since 075 a
 * manifest line is its unit, or the line a moved unit leaves, which the database writes from the
 * unit's serial alone: the units' rule is the manifests' too, and a unit's serial never changes.
 * Rows an earlier release wrote in lower case stay, are written again as any row (its upserts
 * among them), and a migration over them applies. A serial that differs
 * only in case from another is named by the re-check (invariant 4). Through the ledger: a unit
 * made in lower case before is deployed and ended by its own spelling, and a new serial in
 * lower case is refused. The rest of a serial's form is the ledger's (core/serial.ts, tested
 * there and in server/bad-input.test.ts). Writes run in transactions rolled back, but the last
 * test's, which writes through the ledger.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, inRolledBack, insertShipments, statusInStep } from '../../test/support/rolled-back.ts';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import { problemOfNewSerial } from '../core/serial.ts';
import { toRefusal } from '../ledger/refusals.ts';
import { commandSchemas, shipmentBook } from '../ledger/schemas.ts';
import { listMigrations } from './migrate.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;
let world: World;
let bookedId = '';

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** A booking listing M49-1, whose unit the statements below copy under other serials. */
async function booked(): Promise<string> {
  if (bookedId !== '') return bookedId;
  const { run, actors, productId, allocations } = world;
  bookedId = String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 5, deadline: '2026-03-01T00:00:00Z', serials: ['M49-1'],
  }, actors.exporter)).shipmentId);
  return bookedId;
}

const unitsAs = (...serials: string[]): [string, unknown[]] => [`INSERT INTO units (serial, product_id, recipient_org_id, custody, shipment_id, updated_seq)
  SELECT s, product_id, recipient_org_id, custody, shipment_id, updated_seq FROM units, unnest($1::text[]) AS s WHERE serial = 'M49-1'`, [serials]];

/** The database's error for the statements, with the constraint it names; undefined where they pass. */
async function refusalOf(...statements: Array<[string, unknown[]]>): Promise<{ code: string; constraint: string; message: string } | undefined> {
  return inRolledBack(database.pool, async (client) => {
    try {
      for (const [text, values] of statements) await client.query(text, values);
      return undefined;
    } catch (error) {
      const { code, constraint, message } = error as { code: string; constraint: string; message: string };
      return { code, constraint, message };
    }
  });
}

/**
 * The database as 048 left it: 049's trigger and re-check part taken out (and the CHECK of its
 * first version, never released, so that this file judges that version too). Its trigger on
 * shipment_serials went with that table (075).
 */
async function before049(client: PoolClient): Promise<void> {
  await client.query(`DROP TRIGGER IF EXISTS units_serial_capitals ON units; DROP FUNCTION IF EXISTS serials_in_capitals();
    ALTER TABLE units DROP CONSTRAINT IF EXISTS units_serial_capitals`);
  await client.query('ALTER TABLE ledger_checks DISABLE TRIGGER ledger_checks_only_grow');
  await client.query(`DELETE FROM ledger_checks WHERE part = 'ledger_check_serial_case_twins'`);
  await client.query('ALTER TABLE ledger_checks ENABLE TRIGGER ledger_checks_only_grow');
  await client.query('DROP FUNCTION IF EXISTS ledger_check_serial_case_twins()');
}

/**
 * Migration 049 as it applies to today's tables: without its trigger on shipment_serials, which
 * 075 dropped (a manifest line is its unit now, so the units' trigger holds manifests too).
 */
function migration049(): { sql: string } {
  const { sql } = listMigrations().find((each) => each.version === 49)!;
  const onManifestLines = /CREATE TRIGGER shipment_serials_serial_capitals AFTER INSERT ON shipment_serials\s+REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION serials_in_capitals\(\);/;
  if (!onManifestLines.test(sql)) throw new Error('migration 049 no longer creates its trigger on shipment_serials as this file expects: see what it does now');
  return { sql: sql.replace(onManifestLines, '') };
}

/** The re-check's rows about serials that differ only in case. */
async function caseTwins(client: PoolClient): Promise<Array<{ invariant: string; subject: string; detail: string }>> {
  return (await client.query(`SELECT invariant, subject, detail FROM ledger_violations() WHERE detail LIKE '%differ only in case%' ORDER BY subject`)).rows;
}

describe('the database’s rule: a new serial has no lower-case letter (049)', () => {
  it('refuses a unit inserted with a lower-case letter, or respelt to one, and a manifest line the writer writes; names the rule the ledger answers with', async () => {
    const shipmentId = await booked();
    for (const serial of ['m49-2', 'M49-x', 'abc1654x01']) {
      const capitals = serial.toUpperCase();
      expect(await refusalOf(unitsAs(serial)), serial).toEqual({
        code: '23514', constraint: 'units_serial_capitals', message: `a new unit has serial ${serial}, with lower-case letters; new serials are written in capitals (${capitals})`,
      });
      // An UPDATE goes past 049's trigger on inserts; 075's keeps every serial as it was made.
      expect(await refusalOf([`UPDATE units SET serial = $1 WHERE serial = 'M49-1'`, [serial]]), serial).toEqual({
        code: '23514', constraint: 'units_keep_serial', message: `unit M49-1 cannot become unit ${serial}: a serial is one unit, listed under it`,
      });
      // A moved line is the database's to write, from the serial of the unit that moved.
      expect(await firstRefusal(database.writerPool, ['INSERT INTO moved_manifest_lines (shipment_id, serial) VALUES ($1, $2)', [shipmentId, serial]]), serial)
        .toEqual({ code: '42501', message: 'permission denied for table moved_manifest_lines' });
    }
    // The ledger answers it as any constraint its checks let through: the rule is the constraint's name.
    const error = await inRolledBack(database.pool, (client) => client.query(...unitsAs('m49-2')).then(() => undefined, (refused: unknown) => refused));
    expect(toRefusal(error)).toMatchObject({ code: 'conflict', rule: 'units_serial_capitals', details: { constraint: 'units_serial_capitals' } });
  });

  it('finds the one serial in lower case among the rows of one statement', async () => {
    expect((await refusalOf(unitsAs('M49-A', 'M49-B', 'M49-c', 'M49-D')))?.message).toMatch(/^a new unit has serial M49-c,/);
  });

  it('takes capitals, digits and . _ : / -, starting with a capital or a digit, up to 64 characters', async () => {
    await booked();
    // On units alone: a manifest line is its unit, or the line the database writes as it moves.
    for (const serial of ['M49/2:X.Y_Z-1', '0', 'M'.repeat(64)]) {
      expect(await firstRefusal(database.pool, unitsAs(serial)), serial).toBeUndefined();
    }
  });

  it('refuses a serial exactly where the ledger does, in its case or its form (058), whatever the database’s locale', async () => {
    // Past ASCII, a serial is refused for its form: a zero-width space or full-width digits
    // made a second live manifest line for a unit already live in another shipment (s26).
    const samples = ['A', 'Z', 'a', 'z', '@', '[', '`', '{', 'É', 'é', 'ß', 'İ', 'ı', 'ｚ', '\u212a', 'ǅ', '\u200b', '１'];
    const serials = [...samples.map((character) => `A${character}1`), '-M49', '.M49', 'M'.repeat(65)];
    for (const serial of serials) {
      const problem = problemOfNewSerial(serial);
      const refused = await refusalOf(unitsAs(serial));
      expect(refused?.constraint, serial).toBe(problem === undefined ? undefined : 'units_serial_capitals');
      if (problem?.includes('has lower-case letters')) expect(refused?.message, serial).toContain('with lower-case letters');
      else if (problem !== undefined) expect(refused?.message, serial).toContain('which is not of the form of a serial');
    }
  });
});

describe('migration 049 over serials written before it', () => {
  it('applies over units in lower case, which are then written again as any row, and leave their lines as they move; new ones in lower case are refused', async () => {
    const shipmentId = await booked();
    const outcome = await inRolledBack(database.pool, async (client) => {
      await before049(client);
      await client.query(...unitsAs('m49-old'));
      await client.query(migration049().sql);
      // An old row's next write: an UPDATE, and the ledger's upsert (INSERT … ON CONFLICT DO UPDATE, store/batch-writes.ts).
      await client.query(`UPDATE units SET updated_seq = updated_seq + 1 WHERE serial = 'm49-old'`);
      await client.query(`INSERT INTO units (serial, product_id, recipient_org_id, custody, shipment_id, updated_seq)
        SELECT serial, product_id, recipient_org_id, custody, shipment_id, updated_seq + 1 FROM units WHERE serial = 'm49-old'
        ON CONFLICT (serial) DO UPDATE SET updated_seq = EXCLUDED.updated_seq`);
      const updated = (await client.query(`SELECT serial FROM units WHERE serial = 'm49-old' AND updated_seq = (SELECT updated_seq + 2 FROM units WHERE serial = 'M49-1')`)).rows.length;
      // Listed again once its booking is cancelled: its line in that booking keeps its spelling.
      await client.query(...statusInStep(shipmentId, 'cancelled'));
      await client.query(...insertShipments(world, [{ id: 'S-M49' }]));
      await client.query(`UPDATE units SET shipment_id = 'S-M49' WHERE serial = 'm49-old'`);
      const lines = (await client.query('SELECT shipment_id, serial FROM moved_manifest_lines')).rows;
      const refused = await client.query(...unitsAs('m49-new')).then(() => undefined, (error: Error) => error.message);
      return { updated, lines, refused };
    });
    expect(outcome).toEqual({
      updated: 1, lines: [{ shipment_id: shipmentId, serial: 'm49-old' }],
      refused: 'a new unit has serial m49-new, with lower-case letters; new serials are written in capitals (M49-NEW)',
    });
  });

  it('names serials that differ only in case in the re-check, one row a serial in capitals; a lone lower-case serial is no violation', async () => {
    await booked();
    const found = await inRolledBack(database.pool, async (client) => {
      await before049(client);
      await client.query(...unitsAs('abc01', 'Abc01', 'lone-01', 'Twin.2'));
      await client.query(migration049().sql);
      // In capitals, as the ledger takes them: it looks no serial up in another case.
      await client.query(...unitsAs('ABC01', 'TWIN.2', 'LONE-02'));
      return caseTwins(client);
    });
    const detail = (units: string) => `units ${units} differ only in case; a serial is one unit (new serials are written in capitals)`;
    expect(found).toEqual([
      { invariant: 'invariant-4', subject: 'ABC01', detail: detail('ABC01, Abc01, abc01') },
      { invariant: 'invariant-4', subject: 'TWIN.2', detail: detail('TWIN.2, Twin.2') },
    ]);
  });
});

describe('a unit made in lower case by an earlier release, through the ledger', () => {
  /** shipment.book as releases before 049 took it: serials in either case. */
  const previousBooking = shipmentBook.extend({ serials: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/)).min(1).optional() });

  async function bookAndDeliver(serials: string[]): Promise<string> {
    const { run, actors, productId, allocations } = world;
    const shipmentId = String((await run('shipment.book', {
      exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: serials.length, deadline: '2026-03-01T00:00:00Z', serials,
    }, actors.exporter)).shipmentId);
    await run('shipment.ship', { shipmentId }, actors.exporter);
    await run('shipment.clear', { shipmentId }, actors.alpha);
    await run('shipment.deliver', { shipmentId }, actors.alpha);
    return shipmentId;
  }

  it('is deployed and ended by its own spelling after 049 applies; a new lower-case serial is refused; its capital twin is named by the check', async () => {
    const { run, ledger, actors } = world;
    // The earlier release: no rule in the database, and the API's schema of then.
    const client = await database.pool.connect();
    try {
      await before049(client);
    } finally {
      client.release();
    }
    const schemas = commandSchemas as unknown as Record<string, z.ZodType>;
    const current = schemas['shipment.book']!;
    schemas['shipment.book'] = previousBooking;
    try {
      await bookAndDeliver(['abc01', 'Lower-02', 'lower-03']);
    } finally {
      schemas['shipment.book'] = current;
    }
    // The upgrade: 049 applies over them, and nothing else is needed.
    await database.pool.query(`BEGIN; ${migration049().sql}; COMMIT`);
    expect(await ledger.violations()).toEqual([]);

    const siteId = String((await run('site.register', { name: 'Legacy Hall', province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 10 }, actors.alpha)).siteId);
    expectOk(await ledger.submit('units.deploy', { siteId, serials: ['abc01', 'Lower-02'] }, actors.alpha));
    expectOk(await ledger.submit('units.decommission', { serials: ['abc01'], reason: 'End of life' }, actors.alpha));
    expectOk(await ledger.submit('units.report_lost', { serials: ['Lower-02'], reason: 'Missing at stocktake' }, actors.alpha));
    expectOk(await ledger.submit('units.return', { serials: ['lower-03'], reason: 'RMA' }, actors.alpha));
    const units = await database.pool.query(`SELECT serial, custody FROM units WHERE serial IN ('abc01', 'Lower-02', 'lower-03') ORDER BY serial COLLATE "C"`);
    expect(units.rows).toEqual([{ serial: 'Lower-02', custody: 'lost' }, { serial: 'abc01', custody: 'decommissioned' }, { serial: 'lower-03', custody: 'returned' }]);

    // A serial no unit has, in lower case: its refusal names the capitals.
    await bookAndDeliver(['NEW-04']);
    const unknown = await ledger.submit('units.deploy', { siteId, serials: ['new-04'] }, actors.alpha);
    expect(unknown.ok ? unknown.body : unknown.error).toMatchObject({ code: 'not_found', message: 'unit new-04 was not found; serials are written in capitals: did you mean NEW-04?', details: { unit: 'new-04' } });
    // A new serial in lower case is the ledger's to refuse, naming the capitals.
    const lower = await ledger.submit('shipment.book', {
      exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-03-01T00:00:00Z', serials: ['new-05'],
    }, actors.exporter);
    expect(lower.ok ? lower.body : lower.error).toMatchObject({ code: 'invalid_input', message: expect.stringContaining('serial "new-05" has lower-case letters; serials are written in capitals: write it as NEW-05') });

    // The capital twin of an old unit is taken (no serial is looked up in another case), and `check` names the pair.
    await bookAndDeliver(['ABC01']);
    expect(await ledger.violations()).toEqual([
      { invariant: 'invariant-4', subject: 'ABC01', detail: 'units ABC01, abc01 differ only in case; a serial is one unit (new serials are written in capitals)' },
    ]);
  });
});
