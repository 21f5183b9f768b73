/**
 * What the units' secondary indexes cost a 100,000-serial manifest's COPY, and what their
 * storage options change. Unlike manifest-copy.ts, every run of every variant lists serials
 * no run listed before, and the table is vacuumed between runs, so no variant meets the dead
 * index entries of an earlier rolled-back run (a variant that rebuilds an index would
 * otherwise look quicker for having none).
 * Each variant runs in a transaction that is rolled back, DDL included, on a durable embedded
 * PostgreSQL with the real schema and one booked shipment; variants alternate run by run.
 *
 *   node --import tsx bench/experiments/manifest-index-options.ts [runs]
 */
import { copyIn, copyStatement, encodeCopyBinary, type CopyColumn } from '../../src/store/copy-binary.ts';
import type { PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { bookManifestShipment } from './manifest-shipment.ts';
import { median, round } from '../stats.ts';

const serialsCount = 100_000;
const runs = Number(process.argv[2] ?? 7);

const unitColumns: CopyColumn[] = [
  { name: 'serial', type: 'text' }, { name: 'gpu_uuid', type: 'text' }, { name: 'product_id', type: 'text' }, { name: 'recipient_org_id', type: 'text' },
  { name: 'custody', type: 'text' }, { name: 'shipment_id', type: 'text' }, { name: 'site_id', type: 'text' }, { name: 'updated_seq', type: 'int8' },
];

interface Variant { name: string; setup?: string }
const variants: Variant[] = [
  { name: 'as the schema stands' },
  { name: 'units_shipment and units_recipient without deduplication', setup: 'ALTER INDEX units_shipment SET (deduplicate_items = off); ALTER INDEX units_recipient SET (deduplicate_items = off)' },
  { name: 'units_shipment and units_recipient at fillfactor 100', setup: 'ALTER INDEX units_shipment SET (fillfactor = 100); ALTER INDEX units_recipient SET (fillfactor = 100)' },
  { name: 'no units_recipient index', setup: 'DROP INDEX units_recipient' },
  { name: 'no units_shipment index', setup: 'DROP INDEX units_shipment' },
  { name: 'units_refs_insert off (the references of new units)', setup: 'ALTER TABLE units DISABLE TRIGGER units_refs_insert' },
  { name: 'units_serial_capitals off (the serial form)', setup: 'ALTER TABLE units DISABLE TRIGGER units_serial_capitals' },
  { name: 'units_sites_insert off', setup: 'ALTER TABLE units DISABLE TRIGGER units_sites_insert' },
  { name: 'work_mem 64MB (the transition table kept in memory)', setup: "SET LOCAL work_mem = '64MB'" },
  { name: 'every statement trigger on insert off', setup: 'ALTER TABLE units DISABLE TRIGGER units_refs_insert; ALTER TABLE units DISABLE TRIGGER units_serial_capitals; ALTER TABLE units DISABLE TRIGGER units_sites_insert' },
];

const server = await startBenchServer('manifest-index-options');
try {
  const { pool, productId, recipientOrgId, shipmentId } = await bookManifestShipment(server, 'manifest-index-options', serialsCount);
  const client = await pool.connect();
  const triggers = await client.query<{ tgname: string }>(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'units'::regclass AND NOT tgisinternal AND (tgtype & 4) <> 0 ORDER BY tgname`);
  console.log(`the units' triggers on INSERT: ${triggers.rows.map((row) => row.tgname).join(', ')}`);
  const times = variants.map(() => [] as number[]);
  for (let run = 0; run < runs; run += 1) {
    for (const [index, variant] of variants.entries()) {
      const serials = Array.from({ length: serialsCount }, (_, at) => `X${run}V${index}-SN-${String(at).padStart(6, '0')}`);
      const units = encodeCopyBinary(unitColumns, serials.map((serial) => [serial, null, productId, recipientOrgId, 'licensed', shipmentId, null, 1]));
      await client.query('VACUUM units');
      await client.query('BEGIN');
      if (variant.setup) await client.query(variant.setup);
      const started = performance.now();
      await copyIn(client as PoolClient, copyStatement('units', unitColumns), units);
      times[index]!.push(performance.now() - started);
      await client.query('ROLLBACK');
    }
  }
  console.log(`units COPY, ${serialsCount.toLocaleString('en-US')} new serials a run, ${runs} runs each (alternating), rolled back, vacuumed between; median (all runs)`);
  for (const [index, variant] of variants.entries()) {
    console.log(`  ${String(round(median(times[index]!), 0)).padStart(6)} ms  (${times[index]!.map((t) => round(t, 0)).join(', ')})  ${variant.name}`);
  }
  client.release();
  await pool.end();
} finally {
  await server.stop();
}
