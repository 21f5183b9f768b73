/**
 * What the manifest experiments start from: a fresh database on a bench server with the
 * bench world, one shipment booked for `serialsCount` units, and that many new serials.
 */
import { Ledger } from '../../src/ledger/ledger.ts';
import { createPool, type Pool } from '../../src/store/pool.ts';
import type { BenchServer } from '../database.ts';
import { buildBenchWorld } from '../ledger-world.ts';

export interface ManifestShipment {
  pool: Pool;
  productId: string;
  recipientOrgId: string;
  shipmentId: string;
  serials: string[];
}

export async function bookManifestShipment(server: BenchServer, label: string, serialsCount: number): Promise<ManifestShipment> {
  const pool = createPool({ url: await server.createDatabase(`bench_${label.replaceAll('-', '_')}`), connectionsMax: 2, applicationName: `chipledger-bench-${label}` });
  const ledger = await Ledger.open({ pool });
  const world = await buildBenchWorld(ledger);
  const pair = world.pairs[0]!;
  const booked = await ledger.submit('shipment.book', {
    exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: serialsCount,
    deadline: new Date(Date.now() + 86_400_000).toISOString(),
  }, world.exporter);
  if (!booked.ok) throw new Error(booked.error.message);
  await ledger.close();
  const serials = Array.from({ length: serialsCount }, (_, index) => `EXP-SN-${String(index).padStart(6, '0')}`);
  return { pool, productId: world.productId, recipientOrgId: pair.recipientOrgId, shipmentId: String(booked.body.shipmentId), serials };
}
