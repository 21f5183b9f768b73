/**
 * What `chipledger check --replay` costs: a ledger of BOOKINGS bookings (1-10 units each, from
 * 64 callers, as the ledger benchmark books them) and a cancel of every tenth, made through the
 * ledger; then the replay of its log into a database of its own (one command a batch) and the
 * comparison of the two states, each timed. Beside them, the same commands' time as the ledger
 * first made them (batches of many). One run each.
 *
 *   node --import tsx bench/experiments/replay-check.ts [BOOKINGS] [--manifest]   (default 20,000)
 *
 * With --manifest, one more booking of 100,000 units and its manifest of 100,000 serials (every
 * other one with a GPU UUID), attached in one command, before the replay.
 */
import { Ledger } from '../../src/ledger/ledger.ts';
import { replayInvariant, replayLog } from '../../src/ledger/replay/replay.ts';
import { createPool, inTransaction } from '../../src/store/pool.ts';
import { createScratchDatabase } from '../../src/store/scratch-database.ts';
import { stateDifferences } from '../../src/store/state-diff.ts';
import { startBenchServer } from '../database.ts';
import { buildBenchWorld, workload } from '../ledger-world.ts';
import { seededRandom } from '../stats.ts';

const bookings = Number(process.argv[2] ?? 20_000);
const withManifest = process.argv.includes('--manifest');
const manifestSerials = 100_000;
const callers = 64;
const server = await startBenchServer('replay-check');
try {
  const url = await server.createDatabase('replay_check');
  const pool = createPool({ url, connectionsMax: 8, applicationName: 'replay-check' });
  const ledger = await Ledger.open({ pool });
  const world = await buildBenchWorld(ledger);
  const list = workload(bookings, seededRandom(7));
  let started = performance.now();
  const shipments: string[] = [];
  let next = 0;
  const deadline = new Date(Date.now() + 30 * 24 * 60 * 60 * 1000).toISOString();
  await Promise.all(Array.from({ length: callers }, async () => {
    while (next < list.length) {
      const booking = list[next++]!;
      const pair = world.pairs[booking.pair]!;
      const answer = await ledger.submit('shipment.book', {
        exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: booking.units, deadline,
      }, world.exporter);
      if (!answer.ok) throw new Error(answer.error.message);
      shipments.push(String(answer.body.shipmentId));
    }
  }));
  const cancelled = shipments.filter((_, index) => index % 10 === 0);
  await Promise.all(cancelled.map(async (shipmentId) => {
    const answer = await ledger.submit('shipment.cancel', { shipmentId }, world.exporter);
    if (!answer.ok) throw new Error(answer.error.message);
  }));
  if (withManifest) {
    const pair = world.pairs[0]!;
    const booked = await ledger.submit('shipment.book', { exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: manifestSerials, deadline }, world.exporter);
    if (!booked.ok) throw new Error(booked.error.message);
    const serials = Array.from({ length: manifestSerials }, (_, index) => (index % 2 === 1 ? `RPL-${index}` : { serial: `RPL-${index}`, gpuUuid: `GPU-${String(index).padStart(8, '0')}-0000-4000-8000-000000000000` }));
    const attached = await ledger.submit('manifest.attach', { shipmentId: String(booked.body.shipmentId), serials }, world.exporter);
    if (!attached.ok) throw new Error(attached.error.message);
  }
  const madeMs = performance.now() - started;
  await ledger.close();
  const size = Number((await pool.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
  console.log(`${size.toLocaleString('en-US')} events made through the ledger in ${(madeMs / 1000).toFixed(1)} s (${Math.round((bookings + cancelled.length) / (madeMs / 1000)).toLocaleString('en-US')} commands/s, batched)`);
  const scratch = await createScratchDatabase(url, 'replay-check-target');
  try {
    await inTransaction(pool, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (source) => {
      started = performance.now();
      const report = await replayLog(source, scratch.pool, size);
      const replayMs = performance.now() - started;
      if (report.divergence !== undefined) throw new Error(`the replay stopped: ${report.divergence.detail}`);
      started = performance.now();
      const differences = await stateDifferences(source, scratch.pool, replayInvariant);
      const compareMs = performance.now() - started;
      console.log(`replay: ${(replayMs / 1000).toFixed(1)} s, ${Math.round(size / (replayMs / 1000)).toLocaleString('en-US')} events/s`);
      console.log(`comparison of the states: ${(compareMs / 1000).toFixed(2)} s, ${differences.length} differences`);
      console.log(JSON.stringify({ events: size, madeMs: Math.round(madeMs), replayMs: Math.round(replayMs), replayEventsPerSecond: Math.round(size / (replayMs / 1000)), compareMs: Math.round(compareMs), differences: differences.length }));
    });
  } finally {
    await scratch.drop();
    await pool.end();
  }
} finally {
  await server.stop();
}
