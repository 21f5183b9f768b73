/**
 * Experiment behind the BENCHMARKS.md suggestions for the booking path: what one batch's
 * statements cost on the server, and what the fixed costs (a round trip, a durable
 * COMMIT) are on this machine. Each variant runs in a transaction that is rolled back
 * (DDL such as DROP INDEX is transactional, so it is undone too).
 *
 *   node --import tsx bench/experiments/booking-sql.ts [rowsPerBatch] [runs]
 */
import type { PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { openBookingWorld } from './shipment-rows.ts';
import { median, round } from '../stats.ts';

const rowsPerBatch = Number(process.argv[2] ?? 64);
const runs = Number(process.argv[3] ?? 50);

const server = await startBenchServer('booking-sql');
try {
  const { pool, shipments: rowsOfBatch } = await openBookingWorld(server, 'booking-sql');
  const shipments = () => rowsOfBatch(rowsPerBatch);
  const columns = 'id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, reference, serial_count, demo, created_seq, updated_seq';
  const jsonInsert = `INSERT INTO shipments (${columns}) SELECT ${columns} FROM json_populate_recordset(NULL::shipments, $1::json)`;
  const insertShipments = (c: PoolClient) => c.query(jsonInsert, [JSON.stringify(shipments())]);
  type Variant = { name: string; setup?: string[]; run(client: PoolClient): Promise<unknown> };
  const updates = columns.split(', ').filter((column) => column !== 'id').map((column) => `${column} = EXCLUDED.${column}`).join(', ');
  const upsertShipments = (c: PoolClient) => c.query(`${jsonInsert} ON CONFLICT (id) DO UPDATE SET ${updates}`, [JSON.stringify(shipments())]);
  const allocationRows = (await pool.query('SELECT * FROM allocations')).rows as Array<Record<string, unknown>>;
  const allocationColumns = Object.keys(allocationRows[0]!);
  const allocationList = allocationColumns.join(', ');
  const bump = () => JSON.stringify(allocationRows.map((row) => ({ ...row, reserved_units: Number(row.reserved_units) + 1 })));
  const upsertAllocations = (c: PoolClient) => c.query(`INSERT INTO allocations (${allocationList}) SELECT ${allocationList} FROM json_populate_recordset(NULL::allocations, $1::json) ON CONFLICT (id) DO UPDATE SET ${allocationColumns.filter((column) => column !== 'id').map((column) => `${column} = EXCLUDED.${column}`).join(', ')}`, [bump()]);
  const updateAllocations = (c: PoolClient) => c.query(`UPDATE allocations t SET (${allocationColumns.filter((column) => column !== 'id').join(', ')}) = (${allocationColumns.filter((column) => column !== 'id').map((column) => `r.${column}`).join(', ')}) FROM json_populate_recordset(NULL::allocations, $1::json) r WHERE t.id = r.id`, [bump()]);
  const variants: Variant[] = [
    { name: 'round trip: SELECT 1', run: (c) => c.query('SELECT 1') },
    { name: `shipments: ${rowsPerBatch} rows, plain INSERT`, run: insertShipments },
    { name: `shipments: ${rowsPerBatch} rows, INSERT ... ON CONFLICT DO UPDATE (the ledger today)`, run: upsertShipments },
    { name: `allocations: ${allocationRows.length} rows, INSERT ... ON CONFLICT DO UPDATE (the ledger today)`, run: upsertAllocations },
    { name: `allocations: ${allocationRows.length} rows, UPDATE ... FROM json_populate_recordset`, run: updateAllocations },
    { name: `shipments: ${rowsPerBatch} rows, plain INSERT (again)`, run: insertShipments },
    { name: `shipments: ${rowsPerBatch} rows, ON CONFLICT (again)`, run: upsertShipments },
  ];

  const client = await pool.connect();
  console.log(`booking SQL experiment: ${rowsPerBatch} rows per statement, ${runs} runs each, rolled back; median and p90 per statement (client-side wall time)`);
  for (const variant of variants) {
    const times: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      await client.query('BEGIN');
      for (const statement of variant.setup ?? []) await client.query(statement);
      const started = performance.now();
      await variant.run(client);
      times.push(performance.now() - started);
      await client.query('ROLLBACK');
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`  ${round(median(times), 3).toFixed(3).padStart(8)} ms  p90 ${round(sorted[Math.floor(sorted.length * 0.9)]!, 3).toFixed(3).padStart(8)} ms  ${variant.name}`);
  }
  const commits: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    await client.query('BEGIN');
    await client.query('UPDATE log_head SET size = size WHERE id = 1');
    const started = performance.now();
    await client.query('COMMIT');
    commits.push(performance.now() - started);
  }
  console.log(`  ${round(median(commits), 3).toFixed(3).padStart(8)} ms  durable COMMIT of a one-row update (WAL flush + fsync)`);
  client.release();
  await pool.end();
} finally {
  await server.stop();
}
