/**
 * Experiment behind the BENCHMARKS.md suggestions for the booking path: what one batch's
 * statements cost on the server, and what the fixed costs (a round trip, a durable
 * COMMIT) are on this machine. Each variant runs in a transaction that is rolled back
 * (DDL such as DROP INDEX is transactional, so it is undone too).
 *
 *   node --import tsx bench/experiments/booking-sql.ts [rowsPerBatch] [runs]
 */
import { Ledger } from '../../src/ledger/ledger.ts';
import { createPool, type PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { buildBenchWorld } from '../ledger-world.ts';
import { median, round } from '../stats.ts';

const rowsPerBatch = Number(process.argv[2] ?? 64);
const runs = Number(process.argv[3] ?? 50);

const server = await startBenchServer('booking-sql');
try {
  const pool = createPool({ url: await server.createDatabase('bench_booking_sql'), connectionsMax: 2, applicationName: 'chipledger-bench-booking-sql' });
  const ledger = await Ledger.open({ pool });
  const world = await buildBenchWorld(ledger);
  await ledger.close();
  const at = new Date().toISOString();
  const deadline = new Date(Date.now() + 86_400_000).toISOString();
  let serial = 0;
  const shipments = () => Array.from({ length: rowsPerBatch }, (_, index) => {
    const pair = world.pairs[index % world.pairs.length]!;
    serial += 1;
    return {
      id: `S-X${serial}`, exporter_org_id: world.exporterOrgId, recipient_org_id: pair.recipientOrgId, product_id: world.productId, origin: 'US', destination: 'CN',
      export_allocation_id: pair.exportAllocationId, import_allocation_id: pair.importAllocationId, units: 1 + (index % 10), status: 'booked',
      booked_at: at, deadline, reference: null, serial_count: 0, demo: false, created_seq: 1_000_000 + serial, updated_seq: 1_000_000 + serial,
    };
  });
  const columns = 'id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, reference, serial_count, demo, created_seq, updated_seq';
  const jsonInsert = `INSERT INTO shipments (${columns}) SELECT ${columns} FROM json_populate_recordset(NULL::shipments, $1::json)`;
  const insertShipments = (c: PoolClient) => c.query(jsonInsert, [JSON.stringify(shipments())]);
  const lit = (v: unknown) => (v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : String(v));
  const insertShipmentsValues = (c: PoolClient) => c.query(`INSERT INTO shipments (${columns}) VALUES ${shipments().map((row) => `(${Object.values(row).map(lit).join(', ')})`).join(', ')}`);
  const insertShipmentsUnnest = (c: PoolClient) => {
    const rows = shipments();
    const col = (name: keyof (typeof rows)[number]) => rows.map((row) => row[name]);
    return c.query(`INSERT INTO shipments (${columns}) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::int[], $15::boolean[], $16::bigint[], $17::bigint[])`,
      [col('id'), col('exporter_org_id'), col('recipient_org_id'), col('product_id'), col('origin'), col('destination'), col('export_allocation_id'), col('import_allocation_id'), col('units'), col('status'), col('booked_at'), col('deadline'), col('reference'), col('serial_count'), col('demo'), col('created_seq'), col('updated_seq')]);
  };
  const events = () => Array.from({ length: rowsPerBatch }, () => {
    serial += 1;
    return { seq: 10_000_000 + serial, subject: `S-X${serial}`, canonical: Buffer.alloc(420, 97) };
  });
  const insertEvents = (c: PoolClient) => {
    const rows = events();
    return c.query(
      `INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
       SELECT seq, $2, 'shipment.book', 'TOK-x', subject_id, ARRAY[$3, $4], canonical FROM unnest($1::bigint[], $5::text[], $6::bytea[]) AS e(seq, subject_id, canonical)`,
      [rows.map((row) => row.seq), at, world.exporterOrgId, world.pairs[0]!.recipientOrgId, rows.map((row) => row.subject), rows.map((row) => row.canonical)],
    );
  };

  type Variant = { name: string; setup?: string[]; run(client: PoolClient): Promise<unknown> };
  const secondary = 'shipments_due, shipments_export_allocation, shipments_import_allocation, shipments_created, shipments_exporter_created, shipments_recipient_created';
  const variants: Variant[] = [
    { name: 'round trip: SELECT 1', run: (c) => c.query('SELECT 1') },
    { name: `shipments: ${rowsPerBatch} rows via json_populate_recordset (plain INSERT)`, run: insertShipments },
    { name: '  same, statement trigger shipments_licences_valid disabled', setup: ['ALTER TABLE shipments DISABLE TRIGGER shipments_licences_valid'], run: insertShipments },
    { name: '  same, the six secondary indexes dropped', setup: [`DROP INDEX ${secondary}`], run: insertShipments },
    { name: '  same, trigger off and secondary indexes dropped', setup: ['ALTER TABLE shipments DISABLE TRIGGER shipments_licences_valid', `DROP INDEX ${secondary}`], run: insertShipments },
    { name: `shipments as multi-row VALUES literal`, run: insertShipmentsValues },
    { name: `shipments via unnest typed arrays`, run: insertShipmentsUnnest },
    { name: `  VALUES, trigger off and secondary indexes dropped`, setup: ['ALTER TABLE shipments DISABLE TRIGGER shipments_licences_valid', `DROP INDEX ${secondary}`], run: insertShipmentsValues },
    { name: `events: ${rowsPerBatch} rows (420-byte canonical) via unnest`, run: insertEvents },
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
