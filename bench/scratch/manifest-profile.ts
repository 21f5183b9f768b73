import { Ledger } from '../../src/ledger/ledger.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { buildBenchWorld } from '../ledger-world.ts';
import { QueryTimer } from '../query-timer.ts';

const server = await startBenchServer('manifest-profile');
try {
  const timer = new QueryTimer();
  const pool = createPool({ url: await server.createDatabase('bench_mp'), connectionsMax: 4, applicationName: 'mp' });
  timer.attach(pool);
  const ledger = await Ledger.open({ pool });
  const world = await buildBenchWorld(ledger);
  const pair = world.pairs[0]!;
  for (let run = 0; run < 3; run += 1) {
    const booked = await ledger.submit('shipment.book', { exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 100000, deadline: new Date(Date.now() + 86400000).toISOString() }, world.exporter);
    if (!booked.ok) throw new Error(booked.error.message);
    const list = Array.from({ length: 100000 }, (_, index) => `MB${run}-SN-${String(index).padStart(6, '0')}`);
    timer.reset();
    const started = performance.now();
    const attached = await ledger.submit('manifest.attach', { shipmentId: String(booked.body.shipmentId), serials: list }, world.exporter);
    const ms = performance.now() - started;
    if (!attached.ok) throw new Error(attached.error.message);
    console.log(`run ${run}: ${ms.toFixed(0)} ms; statements ${timer.totalMs().toFixed(0)} ms`);
    for (const t of timer.report().slice(0, 8)) console.log(`   ${t.totalMs.toFixed(1).padStart(8)} ms ${t.calls}x ${t.statement.slice(0, 100)}`);
  }
  await ledger.close();
  await pool.end();
} finally {
  await server.stop();
}
