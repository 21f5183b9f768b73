/**
 * A unit's custody follows its shipment, and its shipment lists it (migration 032; s13
 * review, units #1); since 075 a shipment's manifest is its units, so it lists each of them by
 * construction. Each case writes around the ledger, straight into the tables, in a
 * transaction that is always rolled back. Before 032 the database and ledger_violations()
 * took every one of these states, none of which a handler produces.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, type Statement } from '../../test/support/rolled-back.ts';
import { bookListed, worldPerFile, type World } from '../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** Booked to alpha, four units listed (B33-1 … B33-4). */
let bookedId: string;
/** Delivered to alpha: R33-1 (returned), D33-1 (delivered). */
let returnedFromId: string;
/** Delivered to alpha, D33-2 (delivered): a shipment whose manifest never listed R33-1. */
let otherDeliveredId: string;
let alphaSiteId: string;

const refusal = (...statements: Statement[]) => firstRefusal(database.pool, ...statements);

const book = (serials: Parameters<typeof bookListed>[1]): Promise<string> => bookListed(world, serials);

async function delivered(serials: string[]): Promise<string> {
  const { run, actors } = world;
  const shipmentId = await book(serials);
  await run('shipment.ship', { shipmentId }, actors.exporter);
  await run('shipment.clear', { shipmentId }, actors.mofcom);
  await run('shipment.deliver', { shipmentId }, actors.alpha);
  return shipmentId;
}

/** The invariant-4 findings of ledger_violations() after the statements, in a transaction rolled back. */
async function violationsAfter(...statements: Statement[]): Promise<Array<{ subject: string; detail: string }>> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    for (const [text, values] of statements) await client.query(text, values ?? []);
    return (await client.query<{ subject: string; detail: string }>(`SELECT subject, detail FROM ledger_violations() WHERE invariant = 'invariant-4' ORDER BY subject, detail`)).rows;
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/** A statement with the units table's own triggers off: what 032's re-check must find however the row came to be. */
const off = (statement: string): Statement => [`ALTER TABLE units DISABLE TRIGGER USER; ${statement}; ALTER TABLE units ENABLE TRIGGER USER`];

beforeAll(async () => {
  const { run, actors } = world;
  bookedId = await book(['B33-1', 'B33-2', 'B33-3', 'B33-4']);
  returnedFromId = await delivered(['R33-1', 'D33-1']);
  otherDeliveredId = await delivered(['D33-2']);
  await run('units.return', { serials: ['R33-1'], reason: 'RMA' }, actors.alpha);
  alphaSiteId = String((await run('site.register', { name: 'DC 33', province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 10 }, actors.alpha)).siteId);
});

describe('a unit moves to another shipment only in a custody that fits it (019 as 032 and 075 left it)', () => {
  it('is named by the re-check when a returned unit is put under a delivered shipment (the review\'s case), which 075 no longer refuses', async () => {
    // 032 refused this move because the delivered shipment's manifest did not list the unit.
    // Since 075 a shipment's manifest is its units, so the move lists it there: the write is
    // taken, and the delivered shipment's manifest is one serial longer than it was booked with.
    // (The shipment the unit left keeps its line, so its own count still holds.)
    const found = await violationsAfter(
      [`UPDATE units SET shipment_id = $1, custody = 'deployed', site_id = $2 WHERE serial = 'R33-1'`, [otherDeliveredId, alphaSiteId]],
      [`UPDATE sites SET deployed_units = deployed_units + 1 WHERE id = $1`, [alphaSiteId]],
    );
    expect(found).toEqual([{ subject: otherDeliveredId, detail: 'serial_count 1, manifest rows 2 (2 units in it, 0 moved on)' }]);
  });

  it('refuses a custody the new shipment\'s status does not allow', async () => {
    for (const custody of ['in_transit', 'returned', 'delivered']) {
      const error = await refusal([`UPDATE units SET shipment_id = $1, custody = $2 WHERE serial = 'R33-1'`, [bookedId, custody]]);
      expect(error, `${custody}: the database accepted it`).toEqual({ code: '23514', message: `unit R33-1 cannot be ${custody} in shipment ${bookedId}, which is booked` });
    }
    // As the ledger lists it again: the unit licensed under the booking, which lists it by that (075).
    expect(await refusal([`UPDATE units SET shipment_id = $1, custody = 'licensed' WHERE serial = 'R33-1'`, [bookedId]])).toBeUndefined();
  });
});

describe('ledger_violations() holds every unit to its shipment (032)', () => {
  it('finds nothing in the ledger\'s own rows', async () => {
    expect(await violationsAfter()).toEqual([]);
  });

  it('finds units of a booked shipment in transit, lost, returned or decommissioned (the review\'s case)', async () => {
    // Marked as shipped too, as each of those custodies requires (033's CHECK), which 033's
    // clause reports in turn: no shipment that lists them has shipped.
    const found = await violationsAfter(
      [`UPDATE units SET custody = 'in_transit', ever_shipped = true WHERE serial = 'B33-1'`],
      [`UPDATE units SET custody = 'lost', ever_shipped = true WHERE serial = 'B33-2'`],
      [`UPDATE units SET custody = 'returned', ever_shipped = true WHERE serial = 'B33-3'`],
      [`UPDATE units SET custody = 'decommissioned', ever_shipped = true WHERE serial = 'B33-4'`],
    );
    const expected = ['in_transit', 'lost', 'returned', 'decommissioned'].flatMap((custody, index) => [
      { subject: `B33-${index + 1}`, detail: 'the unit is marked as shipped, but no shipment that lists it has shipped' },
      { subject: `B33-${index + 1}`, detail: `the unit is ${custody}, but its shipment ${bookedId} is booked` },
    ]);
    expect(found).toEqual(expect.arrayContaining(expected));
    expect(found).toHaveLength(expected.length);
  });

  it('finds a licensed or in-transit unit under a delivered shipment, and takes lost under every status a loss can leave', async () => {
    expect(await violationsAfter(off(`UPDATE units SET custody = 'licensed' WHERE serial = 'D33-1'`))).toEqual([
      { subject: 'D33-1', detail: `the unit is licensed, but its shipment ${returnedFromId} is delivered` },
    ]);
    expect(await violationsAfter(off(`UPDATE units SET custody = 'in_transit' WHERE serial = 'D33-1'`))).toEqual([
      { subject: 'D33-1', detail: `the unit is in_transit, but its shipment ${returnedFromId} is delivered` },
    ]);
    expect(await violationsAfter(off(`UPDATE units SET custody = 'lost' WHERE serial = 'D33-1'`))).toEqual([]);
  });

  it('reports a unit once, and keeps the findings of 028\'s and 030\'s clauses (folded into one definition by 034)', async () => {
    // 020's clause reports a delivered unit under a booked shipment; 032's does not report it again.
    expect(await violationsAfter(off(`UPDATE units SET custody = 'delivered', ever_shipped = true WHERE serial = 'B33-1'`))).toEqual([
      { subject: 'B33-1', detail: `the unit is delivered, but its shipment ${bookedId} is booked` },
      { subject: 'B33-1', detail: 'the unit is marked as shipped, but no shipment that lists it has shipped' },
    ]);
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE units SET custody = 'lost', ever_shipped = true WHERE serial = 'B33-2'`);
      await client.query(off(`UPDATE units SET custody = 'licensed' WHERE serial = 'D33-1'`)[0]);
      // A site's count off (017's clause) and a licence that no longer matches its version (030's).
      await client.query(`ALTER TABLE sites DISABLE TRIGGER USER; UPDATE sites SET deployed_units = deployed_units + 1 WHERE id = '${alphaSiteId}'; ALTER TABLE sites ENABLE TRIGGER USER`);
      await client.query(`ALTER TABLE licences DISABLE TRIGGER USER; UPDATE licences SET reference = reference || '-X' WHERE id = '${world.exportLicenceId}'; ALTER TABLE licences ENABLE TRIGGER USER`);
      const found = (await client.query<{ invariant: string; subject: string }>('SELECT invariant, subject FROM ledger_violations() ORDER BY invariant, subject')).rows;
      expect(found).toEqual([
        { invariant: 'event-state', subject: 'B33-2' }, // lost with no units.report_lost (064)
        { invariant: 'invariant-4', subject: 'B33-2' }, // lost under a booking (032)
        { invariant: 'invariant-4', subject: 'B33-2' }, // marked as shipped, but no shipment that lists it has (033)
        { invariant: 'invariant-4', subject: 'D33-1' }, // licensed under a delivered shipment (032, not 020's clause again)
        { invariant: 'invariant-4', subject: alphaSiteId }, // the site's count (017)
        { invariant: 'licence-versions', subject: world.exportLicenceId }, // 030
      ]);
      expect(await client.query(`SELECT 1 FROM pg_proc WHERE proname LIKE 'ledger_violations_before_%'`)).toMatchObject({ rowCount: 0 });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('finds a unit moved with the triggers off, which leaves no line: its old and new manifests are off their counts', async () => {
    // 032's clause for a unit its shipment's manifest does not list is gone: since 075 the
    // manifest is its units, so such a unit is listed where it is, and missed where it was.
    const found = await violationsAfter(off(`UPDATE units SET shipment_id = '${otherDeliveredId}' WHERE serial = 'R33-1'`));
    const expected = [
      { subject: returnedFromId, detail: 'serial_count 2, manifest rows 1 (1 units in it, 0 moved on)' },
      { subject: otherDeliveredId, detail: 'serial_count 1, manifest rows 2 (2 units in it, 0 moved on)' },
    ];
    expect(found).toEqual(expect.arrayContaining(expected));
    expect(found).toHaveLength(expected.length);
  });
});

describe('unit_custody_fits: the table, as the handlers move units', () => {
  it('pairs each custody with the shipment statuses the handlers leave it under', async () => {
    const statuses = ['booked', 'shipped', 'cleared', 'delivered', 'cancelled', 'expired', 'returned'];
    const custodies = ['licensed', 'in_transit', 'delivered', 'deployed', 'returned', 'lost', 'decommissioned'];
    const { rows } = await database.pool.query<{ custody: string; statuses: string[] }>(
      `SELECT c AS custody, array_agg(s ORDER BY array_position($2::text[], s)) FILTER (WHERE unit_custody_fits(c, s)) AS statuses
       FROM unnest($1::text[]) AS c, unnest($2::text[]) AS s GROUP BY c ORDER BY array_position($1::text[], c)`,
      [custodies, statuses],
    );
    expect(Object.fromEntries(rows.map((row) => [row.custody, row.statuses]))).toEqual({
      licensed: ['booked', 'cancelled', 'expired'],
      in_transit: ['shipped', 'cleared'],
      delivered: ['delivered'],
      deployed: ['delivered'],
      // Returned from a delivered shipment (units.return), or in one turned back at the border (071).
      returned: ['delivered', 'returned'],
      lost: ['shipped', 'cleared', 'delivered', 'returned'],
      decommissioned: ['delivered'],
    });
  });
});
