import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { emptyKeys } from './batch-keys.ts';
import { headMovedCode, openAtHeadSql, type StoredHead } from './head-lock.ts';
import { loadBatchState } from './batch-state.ts';
import { shipmentColumnTypes } from './batch-writes.ts';
import { tables } from './ledger-tables.ts';
import { liveShipmentStatuses } from '../ledger/rows.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

async function loadSerials(serials: string[]) {
  const keys = emptyKeys();
  for (const serial of serials) keys.serials.add(serial);
  const client = await database.pool.connect();
  try {
    const loaded = await loadBatchState(client, keys);
    // A unit is live in its shipment while that is under way (migration 075): it comes with it.
    const underWay = new Set(loaded.shipments.filter((shipment) => liveShipmentStatuses.includes(shipment.status)).map((shipment) => shipment.id));
    return { units: loaded.units.map((unit) => unit.serial).sort(), live: loaded.units.filter((unit) => underWay.has(unit.shipment_id)).map((unit) => unit.serial).sort() };
  } finally {
    client.release();
  }
}

describe('loading the units a batch names', () => {
  // The serial list goes to PostgreSQL as an array literal written once (TextArrayParameter):
  // NULL unquoted would be a null element, and quotes or backslashes would break the literal.
  it('finds serials spelled like NULL, and takes a list with quotes and backslashes the usual way', async () => {
    // Serials are in capitals (migration 049); 'null' is still looked up, as a key no unit has.
    const serials = ['NULL', 'SN-1', 'A.B:C/D_E-F'];
    await world.run('shipment.book', {
      exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
      units: serials.length, deadline: '2026-06-01T00:00:00Z', serials,
    }, world.actors.exporter);
    const expected = { units: [...serials].sort(), live: [...serials].sort() };
    expect(await loadSerials([...serials, 'NOT-THERE', 'null'])).toEqual(expected);
    expect(await loadSerials([...serials, 'quote"d', 'back\\slash', '{brace}', 'a,b', ''])).toEqual(expected);
    expect(await loadSerials([])).toEqual({ units: [], live: [] });
  });
});

describe('the opening of a batch sent ahead (migrations 021, 061)', () => {
  async function head(): Promise<StoredHead> {
    const row = (await database.pool.query<{ size: string; root: Buffer; seal: Buffer | null }>('SELECT size, root, seal FROM log_head')).rows[0]!;
    return { size: Number(row.size), root: row.root, seal: row.seal };
  }

  /** Runs the opening and a marker statement in one text, as a batch sends them, then rolls back. */
  async function open(at: StoredHead): Promise<{ marked: boolean } | { code: string; message: string }> {
    const client = await database.pool.connect();
    try {
      await client.query(`${openAtHeadSql(at)}; CREATE TEMP TABLE opened_marker (x int) ON COMMIT DROP`);
      const marked = (await client.query("SELECT to_regclass('pg_temp.opened_marker') IS NOT NULL AS marked")).rows[0].marked as boolean;
      return { marked };
    } catch (error) {
      const { code, message } = error as { code: string; message: string };
      return { code, message };
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }

  it('goes on at the head it names and holds the lock', async () => {
    expect(await open(await head())).toEqual({ marked: true });
    const client = await database.pool.connect();
    try {
      await client.query(openAtHeadSql(await head()));
      const other = await database.pool.query('SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE NOWAIT').then(() => 'locked it too', (error: { code: string }) => error.code);
      expect(other).toBe('55P03');
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('stops the whole text at any other size or root, with its own code', async () => {
    const at = await head();
    const otherRoot = Buffer.from(at.root);
    otherRoot.writeUInt8(otherRoot.readUInt8(31) ^ 1, 31);
    expect(await open({ ...at, size: at.size + 1 })).toEqual({ code: headMovedCode, message: `the log head is at size ${at.size}, not the ${at.size + 1} this batch was applied at` });
    expect(await open({ ...at, root: otherRoot })).toMatchObject({ code: headMovedCode });
    expect(() => openAtHeadSql({ ...at, size: 1.5 })).toThrow(/safe integer/);
    expect(() => openAtHeadSql({ ...at, size: 1, root: Buffer.alloc(31) })).toThrow(/32-byte root/);
  });

  it('stops it at the same size and root sealed otherwise: a log key adopted since sealed it (ledger/log/keys.ts)', async () => {
    const at = await head();
    const seal = Buffer.alloc(32, 7);
    const sealedAnew = { code: headMovedCode, message: `the log head at size ${at.size} was sealed anew since this batch was applied at it` };
    expect(await open({ ...at, seal })).toEqual(sealedAnew);
    expect(await open({ ...at, seal: at.seal === null ? Buffer.alloc(32, 8) : null })).toEqual(sealedAnew);
    await database.pool.query('UPDATE log_head SET seal = $1', [seal]);
    try {
      expect(await open(at)).toEqual(sealedAnew);
      expect(await open({ ...at, seal: null })).toEqual(sealedAnew);
      expect(await open({ ...at, seal })).toEqual({ marked: true });
    } finally {
      await database.pool.query('UPDATE log_head SET seal = $1', [at.seal]);
    }
  });
});

describe('shipments written as arrays (batch-writes.ts shipmentColumnTypes)', () => {
  it('casts each column to the type the table has', async () => {
    const { rows } = await database.pool.query<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = 'shipments'::regclass AND attnum > 0 AND NOT attisdropped`);
    expect(Object.fromEntries(rows.map((row) => [row.name, row.type]))).toEqual(shipmentColumnTypes);
    expect(Object.keys(shipmentColumnTypes).sort()).toEqual([...tables.shipments.columns].sort());
  });

  it('stores a reference as given, whatever an array literal or a dollar quote would read in it', async () => {
    const references = ['say "hi"', 'back\\slash \\"', '{braces},commas', 'NULL', '', ' spaced ', '$cl$ and $$', 'Ω 中文 ２０２６', "it's"];
    const ids: string[] = [];
    for (const reference of references) {
      ids.push(String((await world.run('shipment.book', {
        exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
        units: 1, deadline: '2026-06-01T00:00:00Z', reference,
      }, world.actors.exporter)).shipmentId));
    }
    const stored = await database.pool.query<{ id: string; reference: string | null; origin: string; units: number; demo: boolean }>(
      'SELECT id, reference, origin, units, demo FROM shipments WHERE id = ANY($1)', [ids]);
    const byId = new Map(stored.rows.map((row) => [row.id, row]));
    expect(ids.map((id) => byId.get(id)?.reference)).toEqual(references);
    expect(ids.map((id) => byId.get(id)).every((row) => row?.origin === 'US' && row.units === 1 && row.demo === false)).toBe(true);
  });
});
