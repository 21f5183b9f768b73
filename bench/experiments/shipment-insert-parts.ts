/**
 * What one batch's shipments insert costs, part by part: the statement as the ledger sends
 * it (json_populate_recordset, 64 rows), then with each of its costs taken away in turn (the
 * foreign keys, each user trigger, the secondary indexes), each run in a transaction rolled
 * back (the DDL with it; a first, untimed insert after it). Medians of client wall time, the round trip of SELECT 1 included in
 * each and printed first.
 *
 *   node --import tsx bench/experiments/shipment-insert-parts.ts [rowsPerBatch] [runs]
 */
import { tables } from '../../src/store/ledger-tables.ts';
import type { PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { openBookingWorld } from './shipment-rows.ts';
import { median, round } from '../stats.ts';

const rowsPerBatch = Number(process.argv[2] ?? 64);
const runs = Number(process.argv[3] ?? 40);

const server = await startBenchServer('shipment-insert-parts');
try {
  const { pool, shipments: rowsOfBatch } = await openBookingWorld(server, 'shipment-insert-parts');
  const shipments = () => rowsOfBatch(rowsPerBatch);
  const columns = tables.shipments.columns.join(', ');
  const insert = `INSERT INTO shipments (${columns}) SELECT ${columns} FROM json_populate_recordset(NULL::shipments, $1::json)`;
  const foreignKeys = (await pool.query<{ conname: string }>("SELECT conname FROM pg_constraint WHERE conrelid = 'shipments'::regclass AND contype = 'f'")).rows.map((row) => row.conname);
  const checks = (await pool.query<{ conname: string }>("SELECT conname FROM pg_constraint WHERE conrelid = 'shipments'::regclass AND contype = 'c'")).rows.map((row) => row.conname);
  const triggers = (await pool.query<{ tgname: string }>("SELECT tgname FROM pg_trigger WHERE tgrelid = 'shipments'::regclass AND NOT tgisinternal ORDER BY tgname")).rows.map((row) => row.tgname);
  const indexes = (await pool.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'shipments' AND indexname NOT LIKE '%_pkey'")).rows.map((row) => row.indexname);
  type Variant = { name: string; setup: string[] };
  const variants: Variant[] = [
    { name: 'as the ledger sends it', setup: [] },
    { name: `without its ${foreignKeys.length} foreign keys`, setup: foreignKeys.map((name) => `ALTER TABLE shipments DROP CONSTRAINT ${name}`) },
    { name: `without its ${checks.length} CHECK constraints`, setup: checks.map((name) => `ALTER TABLE shipments DROP CONSTRAINT ${name}`) },
    { name: `without its ${indexes.length} secondary indexes`, setup: indexes.map((name) => `DROP INDEX ${name}`) },
    ...triggers.map((name) => ({ name: `without trigger ${name}`, setup: [`ALTER TABLE shipments DISABLE TRIGGER ${name}`] })),
    { name: 'without every user trigger', setup: ['ALTER TABLE shipments DISABLE TRIGGER USER'] },
    { name: 'as the ledger sends it (again)', setup: [] },
  ];
  const client: PoolClient = await pool.connect();
  const timed = async (run: () => Promise<unknown>): Promise<number> => {
    const started = performance.now();
    await run();
    return performance.now() - started;
  };
  const roundTrips: number[] = [];
  for (let run = 0; run < runs; run += 1) roundTrips.push(await timed(() => client.query('SELECT 1')));
  console.log(`shipments insert, ${rowsPerBatch} rows, ${runs} runs each, rolled back; median (p90) client wall time`);
  console.log(`  ${round(median(roundTrips), 3).toFixed(3).padStart(8)} ms  a round trip (SELECT 1)`);
  for (const variant of variants) {
    const times: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      await client.query('BEGIN');
      for (const statement of variant.setup) await client.query(statement);
      // Once untimed after the DDL, which makes the next statement plan again and reload the table's cache.
      await client.query('SAVEPOINT warm');
      await client.query(insert, [JSON.stringify(shipments())]);
      await client.query('ROLLBACK TO SAVEPOINT warm');
      const rows = JSON.stringify(shipments());
      times.push(await timed(() => client.query(insert, [rows])));
      await client.query('ROLLBACK');
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`  ${round(median(times), 3).toFixed(3).padStart(8)} ms  (${round(sorted[Math.floor(sorted.length * 0.9)]!, 3).toFixed(3)})  ${variant.name}`);
  }
  client.release();
  await pool.end();
} finally {
  await server.stop();
}
