/**
 * How pages of shipments and units read at the seed's scale: 40,000 shipments of 10 units
 * (400,000 units; 10 shipments booked, 10 cancelled, the rest delivered; 40,000 units
 * deployed at one site, 40 lost). Readers: an authority, an exporter with nearly all of it
 * and a small one with 10 shipments, three recipients with a third each and a small one
 * with 10 shipments. Rows are written straight into the tables with triggers off (this
 * reads, it does not test the write path). A page of 100, first and deep, with and without
 * filters, median of 21.
 * Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/tenant-pages.ts
 */
import { migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { listShipments, listUnits, type Page, type PageRequest, type Viewer } from '../../src/store/read-queries.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';

const shipments = 40_000;
const unitsPerShipment = 10;

const server = await startBenchServer('tenant-pages');
try {
  const pool = createPool({ url: await server.createDatabase('tenant_pages'), connectionsMax: 2, applicationName: 'tenant-pages' });
  await migrate(pool);
  const client = await pool.connect();
  await client.query('SET session_replication_role = replica'); // no triggers: rows straight in
  // Recipient by shipment number: the small recipient has every 4,000th, the rest go round.
  const recipientOf = `CASE WHEN i % 4000 = 0 THEN 'ORG-SMALL' ELSE 'ORG-R' || (i % 3 + 1) END`;
  await client.query(`INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id,
      units, status, booked_at, deadline, reference, serial_count, demo, created_seq, updated_seq)
    SELECT 'S-' || i, CASE WHEN i % 4000 = 3 THEN 'ORG-EXP-SMALL' ELSE 'ORG-EXP' END, ${recipientOf}, 'PRD-1', 'US', 'CN', 'A-1', 'A-2', ${unitsPerShipment}, CASE WHEN i % 4000 = 1 THEN 'booked' WHEN i % 4000 = 2 THEN 'cancelled' ELSE 'delivered' END,
      '2026-02-01T00:00:00Z', '2026-06-01T00:00:00Z', NULL, ${unitsPerShipment}, false, i, i
    FROM generate_series(1, ${shipments}) AS i`);
  // Every unit past 'licensed', so marked as shipped (migration 033's CHECK holds with the triggers off too).
  await client.query(`INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq, ever_shipped)
    SELECT 'SN-' || lpad(((i - 1) * ${unitsPerShipment} + j)::text, 7, '0'), NULL, 'PRD-1', ${recipientOf},
      CASE WHEN i % 997 = 0 AND j = 1 THEN 'lost' WHEN i % 10 = 5 THEN 'deployed' ELSE 'delivered' END, 'S-' || i,
      CASE WHEN i % 997 = 0 AND j = 1 THEN NULL WHEN i % 10 = 5 THEN 'SITE-BIG' END, i, true
    FROM generate_series(1, ${shipments}) AS i, generate_series(1, ${unitsPerShipment}) AS j`);
  await client.query('VACUUM ANALYZE');
  client.release();
  const viewers: Record<string, Viewer> = {
    'an authority (every unit)': { orgId: null, allocations: 'related' },
    'a recipient (a third)': { orgId: 'ORG-R1', allocations: 'received' },
    'a small recipient (10 shipments)': { orgId: 'ORG-SMALL', allocations: 'received' },
    'the exporter (everything)': { orgId: 'ORG-EXP', allocations: 'related' },
    'a small exporter (10 shipments)': { orgId: 'ORG-EXP-SMALL', allocations: 'related' },
  };
  const time = async <K>(name: string, read: (page: PageRequest<K>) => Promise<Page<unknown, K>>, after: K | null) => {
    const times: number[] = [];
    let rows = 0;
    for (let run = 0; run < 21; run += 1) {
      const started = performance.now();
      rows = (await read({ after, limit: 100 })).rows.length;
      times.push(performance.now() - started);
    }
    console.log(`${name.padEnd(64)} ${String(rows).padStart(3)} rows, median ${median(times).toFixed(2)} ms`);
  };
  for (const [who, viewer] of Object.entries(viewers)) {
    await time<number>(`shipments, ${who}, first page`, (page) => listShipments(pool, viewer, page), null);
    await time<number>(`shipments, ${who}, after shipment 36,000`, (page) => listShipments(pool, viewer, page), 36_000);
    await time<number>(`booked shipments (10 of 40,000), ${who}, first page`, (page) => listShipments(pool, viewer, page, { status: 'booked' }), null);
    await time<number>(`cancelled shipments (10 of 40,000), ${who}, first page`, (page) => listShipments(pool, viewer, page, { status: 'cancelled' }), null);
    await time<string>(`units at a site (40,000), ${who}, first page`, (page) => listUnits(pool, viewer, page, { siteId: 'SITE-BIG' }), null);
    await time<string>(`units at a site (40,000), ${who}, after SN-0360000`, (page) => listUnits(pool, viewer, page, { siteId: 'SITE-BIG' }), 'SN-0360000');
    await time<string>(`decommissioned units (none), ${who}, first page`, (page) => listUnits(pool, viewer, page, { custody: 'decommissioned' }), null);
    await time<string>(`lost units (40 of 400,000), ${who}, first page`, (page) => listUnits(pool, viewer, page, { custody: 'lost' }), null);
    await time<string>(`units, ${who}, first page`, (page) => listUnits(pool, viewer, page), null);
    await time<string>(`units, ${who}, after SN-0360000`, (page) => listUnits(pool, viewer, page), 'SN-0360000');
  }
  await pool.end();
} finally {
  await server.stop();
}
