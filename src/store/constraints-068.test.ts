/**
 * Migration 068: the re-check holds each shipment to the booking that made it (product, units,
 * both allocations), and a shipment past booked to a full manifest. Each case changes rows as
 * an owner with every trigger off would, in a transaction that is always rolled back; before
 * 068 `chipledger check` named none of them (the s32 review), only `check --replay` did.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { partOnChangedState } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let bookedId: string;
let shippedId: string;

beforeAll(async () => {
  const { run, actors, productId, allocations } = world;
  const book = async (serials?: string[]) => String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 2, deadline: '2026-03-01T00:00:00Z', ...(serials ? { serials } : {}),
  }, actors.exporter)).shipmentId);
  bookedId = await book();
  shippedId = await book(['C068-1', 'C068-2']);
  await run('shipment.ship', { shipmentId: shippedId }, actors.exporter);
});

/** The rows `part` names on the state as `change` leaves it (rolled back after), with every trigger off. */
const named = (part: string, change: (client: PoolClient) => Promise<unknown>) => partOnChangedState(database.pool, part, change);

describe('migration 068: the re-check holds shipments to their bookings', () => {
  it('names nothing on an honest ledger', async () => {
    expect(await named('ledger_check_shipment_bookings', async () => {})).toEqual([]);
    expect(await named('ledger_check_shipped_manifests', async () => {})).toEqual([]);
  });

  it('names a product changed by hand (invariant 3), and units raised with both reservations in step (invariant 2 still balanced)', async () => {
    const seq = Number(bookedId.split('-')[1]);
    const product = await world.run('product.register', { model: 'C068 other', vendor: 'NVIDIA', parameters: { denseTops: 1, bitLength: 8, logicDieAreaMm2: 1, dramBandwidthGbS: 1, memoryGb: 1, designedForDatacenter: true } }, world.actors.bis);
    const otherProduct = String(product.productId);
    expect(await named('ledger_check_shipment_bookings', (client) => client.query('UPDATE shipments SET product_id = $2 WHERE id = $1', [bookedId, otherProduct]))).toEqual([
      { invariant: 'invariant-3', subject: bookedId, detail: `its product is ${otherProduct}, but its booking, event ${seq} (shipment.book), booked ${world.productId}` },
    ]);
    expect(await named('ledger_check_shipment_bookings', async (client) => {
      await client.query('UPDATE shipments SET units = 300 WHERE id = $1', [bookedId]);
      await client.query('UPDATE allocations SET reserved_units = reserved_units + 298 WHERE id = ANY($1)', [[world.allocations.alphaExport, world.allocations.alphaImport]]);
    })).toEqual([{ invariant: 'invariant-3', subject: bookedId, detail: `its units is 300, but its booking, event ${seq} (shipment.book), booked 2` }]);
    expect(await named('ledger_check_shipment_bookings', (client) => client.query('UPDATE shipments SET import_allocation_id = $2 WHERE id = $1', [bookedId, world.allocations.betaImport]))).toEqual([
      { invariant: 'invariant-3', subject: bookedId, detail: `its import allocation is ${world.allocations.betaImport}, but its booking, event ${seq} (shipment.book), booked ${world.allocations.alphaImport}` },
    ]);
  });

  it('reads past an event whose bytes are not JSON (057 names it), one at a time', async () => {
    expect(await named('ledger_check_shipment_bookings', async (client) => {
      await client.query("UPDATE events SET canonical = '\\x7b' WHERE seq = 1");
      await client.query('UPDATE shipments SET units = 1 WHERE id = $1', [bookedId]);
    })).toEqual([{ invariant: 'invariant-3', subject: bookedId, detail: expect.stringMatching(/^its units is 1, but its booking/) }]);
  });

  it('names a shipped shipment short of a serial: a unit deleted, and with it its manifest line (075), and the count lowered in step', async () => {
    expect(await named('ledger_check_shipped_manifests', async (client) => {
      await client.query("DELETE FROM units WHERE serial = 'C068-2'");
      await client.query('UPDATE shipments SET serial_count = serial_count - 1 WHERE id = $1', [shippedId]);
    })).toEqual([{ invariant: 'invariant-4', subject: shippedId, detail: 'it is shipped with 1 of its 2 units listed; a shipment leaves booked only with a serial for every unit' }]);
  });
});
