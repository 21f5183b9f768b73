/**
 * The set-up the booking-path SQL experiments share: the benchmark's world in a fresh database
 * of a running bench server (built through the ledger, then the ledger closed), and shipments
 * rows as a batch of bookings writes them, each call a new batch with new ids.
 */
import { Ledger } from '../../src/ledger/ledger.ts';
import { createPool, type Pool } from '../../src/store/pool.ts';
import type { startBenchServer } from '../database.ts';
import { buildBenchWorld, type BenchWorld } from '../ledger-world.ts';

export interface BookingWorld {
  pool: Pool;
  world: BenchWorld;
  /** `rows` shipments rows of one batch, spread over the world's recipients. */
  shipments(rows: number): Array<Record<string, unknown>>;
}

export async function openBookingWorld(server: Awaited<ReturnType<typeof startBenchServer>>, name: string): Promise<BookingWorld> {
  const pool = createPool({ url: await server.createDatabase(`bench_${name.replaceAll('-', '_')}`), connectionsMax: 2, applicationName: `chipledger-bench-${name}` });
  const ledger = await Ledger.open({ pool });
  const world = await buildBenchWorld(ledger);
  await ledger.close();
  const at = new Date().toISOString();
  const deadline = new Date(Date.now() + 86_400_000).toISOString();
  let serial = 0;
  const shipments = (rows: number) => Array.from({ length: rows }, (_, index) => {
    const pair = world.pairs[index % world.pairs.length]!;
    serial += 1;
    return {
      id: `S-X${serial}`, exporter_org_id: world.exporterOrgId, recipient_org_id: pair.recipientOrgId, product_id: world.productId, origin: 'US', destination: 'CN',
      export_allocation_id: pair.exportAllocationId, import_allocation_id: pair.importAllocationId, units: 1 + (index % 10), status: 'booked',
      booked_at: at, deadline, reference: null, serial_count: 0, demo: false, created_seq: 1_000_000 + serial, updated_seq: 1_000_000 + serial,
    };
  });
  return { pool, world, shipments };
}
