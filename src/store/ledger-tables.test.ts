import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { emptyKeys, loadBatchState } from './ledger-tables.ts';

let database: TestDatabase;
let world: World;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

async function loadSerials(serials: string[]) {
  const keys = emptyKeys();
  for (const serial of serials) keys.serials.add(serial);
  const client = await database.pool.connect();
  try {
    const loaded = await loadBatchState(client, keys);
    return { units: loaded.units.map((unit) => unit.serial).sort(), live: loaded.liveSerials.map((row) => row.serial).sort() };
  } finally {
    client.release();
  }
}

describe('loading the units a batch names', () => {
  // The serial list goes to PostgreSQL as an array literal written once (TextArrayParameter):
  // NULL unquoted would be a null element, and quotes or backslashes would break the literal.
  it('finds serials spelled like NULL, and takes a list with quotes and backslashes the usual way', async () => {
    const serials = ['NULL', 'null', 'SN-1', 'a.b:c/d_e-f'];
    await world.run('shipment.book', {
      exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
      units: serials.length, deadline: '2026-06-01T00:00:00Z', serials,
    }, world.actors.exporter);
    const expected = { units: [...serials].sort(), live: [...serials].sort() };
    expect(await loadSerials([...serials, 'NOT-THERE'])).toEqual(expected);
    expect(await loadSerials([...serials, 'quote"d', 'back\\slash', '{brace}', 'a,b', ''])).toEqual(expected);
    expect(await loadSerials([])).toEqual({ units: [], live: [] });
  });
});
