/**
 * What the sweep's look-up of due work (store/sweep-due.ts loadDue) costs as the ledger's
 * history grows, before migration 034 (cbb6715's two queries, with 034's index dropped in the
 * rolled-back transaction that times them) and after (loadDue as it is). The sweep runs every
 * few seconds under the head lock, so every writer waits for it. And what two partial indexes
 * of booked shipments by allocation, which would make a lapse's look-up of bookings an index
 * scan, would cost a booking (034 leaves them out for it): 64 bookings' shipment rows upserted
 * as the ledger writes them, with and without them, alternating.
 *
 * Synthetic rows, written straight into the tables with triggers off, as the s13 review's
 * scratch test built them: licences, half of them ended long ago (expired, revoked or
 * surrendered) and half issued until 2030; ten allocations a licence, those of the issued
 * ones holding reservations; shipments, 40% of them booked with deadlines over the next
 * seven months, the rest delivered. "One lapsed licence": licence L-2 (revoked, marked in
 * licence_lapses) gets an allocation holding 3 units and 3 bookings far from their deadlines.
 * Every variant runs in a transaction that is rolled back; median of `runs` after a warm-up.
 * Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/sweep-due.ts [runs] [scales, e.g. 0,0.1,1]
 *   (SWEEP_DUE_EXPLAIN=1 prints loadDue's plans with one lapsed licence)
 *
 * Scale 1: 20,000 licences, 200,000 allocations (100,000 reserving), 1,000,000 shipments
 * (400,000 booked). Scale 0 is an empty ledger.
 */
import { migrate } from '../../src/store/migrate.ts';
import { emptyKeys } from '../../src/store/batch-keys.ts';
import { loadDue } from '../../src/store/sweep-due.ts';
import { createPool, type PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';

const runs = Number(process.argv[2] ?? 9);
const scales = (process.argv[3] ?? '0,0.1,1').split(',').map(Number);
/** Just before the first deadline: a tick with nothing due. */
const dueAt = '2026-05-31T23:59:00Z';
const indexes034 = ['licences_expirable_valid_to'];
/** The indexes 034 leaves out: booked shipments by each allocation. */
const bookedByAllocation = [
  'CREATE INDEX shipments_booked_export_allocation ON shipments (export_allocation_id) WHERE status = \'booked\'',
  'CREATE INDEX shipments_booked_import_allocation ON shipments (import_allocation_id) WHERE status = \'booked\'',
];

/** loadDue as of cbb6715 (before 034), as it ran: the due rows, then lapsed bookings when some allocation lapsed. */
async function loadDueBefore(client: PoolClient): Promise<number> {
  const due = await client.query<{ id: string; kind: string }>(
    `(SELECT id, 'shipment' AS kind FROM shipments WHERE status = 'booked' AND deadline <= $1 ORDER BY deadline LIMIT 1000)
     UNION ALL (SELECT id, 'licence' FROM licences WHERE status IN ('issued','suspended','exhausted') AND valid_to <= $1 LIMIT 1000)
     UNION ALL (SELECT a.id, 'allocation' FROM allocations a JOIN licences l ON l.id = a.licence_id
                WHERE a.reserved_units > 0 AND (l.status IN ('expired','revoked','surrendered') OR l.valid_to <= $1) LIMIT 1000)`,
    [dueAt],
  );
  const lapsedAllocations = due.rows.filter((row) => row.kind === 'allocation').map((row) => row.id);
  if (lapsedAllocations.length === 0) return due.rows.length;
  const lapsed = await client.query(
    `SELECT id FROM shipments WHERE status = 'booked' AND deadline > $1
       AND (export_allocation_id = ANY($2) OR import_allocation_id = ANY($2))
     ORDER BY deadline LIMIT 1000`,
    [dueAt, lapsedAllocations],
  );
  return due.rows.length - lapsedAllocations.length + lapsed.rows.length;
}

/** With SWEEP_DUE_EXPLAIN set: the plans of loadDue's statements, with one lapsed licence. */
async function explain(client: PoolClient): Promise<void> {
  await client.query('BEGIN');
  for (const statement of oneLapsed) await client.query(statement);
  const query = client.query.bind(client);
  (client as { query: unknown }).query = async (sql: string, values: unknown[]) => {
    console.log((await query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, values)).rows.map((row) => row['QUERY PLAN']).join('\n'));
    return query(sql, values);
  };
  try {
    await loadDueAfter(client);
  } finally {
    (client as { query: unknown }).query = query;
    await client.query('ROLLBACK');
  }
}

async function loadDueAfter(client: PoolClient): Promise<number> {
  const keys = emptyKeys();
  await loadDue(client, keys, dueAt);
  return keys.shipments.size + keys.licences.size;
}

/** Median ms of `work`, each run in a transaction rolled back after `setup`; the rows it found, to check both agree. */
async function timed(client: PoolClient, setup: string[], work: () => Promise<number>): Promise<{ ms: number; found: number }> {
  const times: number[] = [];
  let found = 0;
  for (let run = -1; run < runs; run += 1) {
    await client.query('BEGIN');
    for (const statement of setup) await client.query(statement);
    const started = performance.now();
    found = await work();
    if (run >= 0) times.push(performance.now() - started);
    await client.query('ROLLBACK');
  }
  return { ms: median(times), found };
}

async function fill(client: PoolClient, scale: number): Promise<void> {
  const licences = Math.round(20_000 * scale);
  const allocations = licences * 10;
  const shipments = Math.round(1_000_000 * scale);
  await client.query(`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
    SELECT 'L-' || g, 1, 'R-' || g, 'ORG-1', 'export', 'ORG-2', '{PRD-1}', 'US', 'CN', 1000000, '2025-01-01',
      CASE WHEN g % 2 = 0 THEN '2026-01-01'::timestamptz ELSE '2030-01-01'::timestamptz END,
      CASE WHEN g % 2 = 0 THEN (ARRAY['expired','revoked','surrendered'])[1 + g % 3] ELSE 'issued' END, g, g
    FROM generate_series(1, ${licences}) g`);
  await client.query(`INSERT INTO allocations (id, licence_id, recipient_org_id, units, reserved_units, created_seq)
    SELECT 'A-' || g, 'L-' || (1 + g % ${licences}), 'ORG-3', 100, CASE WHEN (1 + g % ${licences}) % 2 = 1 THEN 5 ELSE 0 END, g
    FROM generate_series(1, ${allocations}) g`);
  await client.query(`INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, created_seq, updated_seq)
    SELECT 'S-' || g, 'ORG-2', 'ORG-3', 'PRD-1', 'US', 'CN', 'A-' || (1 + g % ${allocations}), 'A-' || (1 + (g + 7) % ${allocations}), 1,
      CASE WHEN g % 5 < 2 THEN 'booked' ELSE 'delivered' END, '2026-01-01', '2026-06-01'::timestamptz + (g % 300000) * interval '1 minute', g, g
    FROM generate_series(1, ${shipments}) g`);
  // 034's marks as its migration sets them for rows already there.
  await client.query(`INSERT INTO licence_lapses (licence_id) SELECT l.id FROM licences l
    WHERE l.status IN ('expired', 'revoked', 'surrendered') AND EXISTS (SELECT 1 FROM allocations a WHERE a.licence_id = l.id AND a.reserved_units > 0)`);
  await client.query('VACUUM ANALYZE');
}

/** The one lapsed licence, set up inside the timed transaction (so rolled back with it). */
const oneLapsed = [
  `INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
   VALUES ('L-X', 1, 'R-X', 'ORG-1', 'export', 'ORG-2', '{PRD-1}', 'US', 'CN', 10, '2025-01-01', '2030-01-01', 'revoked', 0, 0)`,
  `INSERT INTO allocations (id, licence_id, recipient_org_id, units, reserved_units, created_seq) VALUES ('A-X', 'L-X', 'ORG-3', 10, 3, 0), ('A-Y', 'L-X', 'ORG-3', 10, 0, 0)`,
  `INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, created_seq, updated_seq)
   SELECT 'S-X' || g, 'ORG-2', 'ORG-3', 'PRD-1', 'US', 'CN', 'A-X', 'A-Y', 1, 'booked', '2026-01-01', '2027-05-01', 0, 0 FROM generate_series(1, 3) g`,
  `INSERT INTO licence_lapses (licence_id) VALUES ('L-X')`,
];

/** 64 bookings' shipment rows, upserted as store/batch-writes.ts writes them. */
let booked = 0;
function bookingUpsert(): [string, unknown[]] {
  const rows = Array.from({ length: 64 }, (_, index) => {
    booked += 1;
    return {
      id: `S-B${booked}`, exporter_org_id: 'ORG-2', recipient_org_id: 'ORG-3', product_id: 'PRD-1', origin: 'US', destination: 'CN',
      export_allocation_id: `A-${1 + ((booked * 7) % 1000)}`, import_allocation_id: `A-${2 + ((booked * 7) % 1000)}`, units: 1 + (index % 10), status: 'booked',
      booked_at: '2026-05-01T00:00:00Z', deadline: '2026-09-01T00:00:00Z', reference: null, serial_count: 0, demo: false, created_seq: 2_000_000 + booked, updated_seq: 2_000_000 + booked,
    };
  });
  const columns = Object.keys(rows[0]!);
  const updates = columns.filter((column) => column !== 'id').map((column) => `${column} = EXCLUDED.${column}`).join(', ');
  return [`INSERT INTO shipments (${columns.join(', ')}) SELECT ${columns.join(', ')} FROM json_populate_recordset(NULL::shipments, $1::json) ON CONFLICT (id) DO UPDATE SET ${updates}`, [JSON.stringify(rows)]];
}

const server = await startBenchServer('sweep-due');
try {
  console.log(`sweep look-up (loadDue), median of ${runs} runs, ms; before = cbb6715's queries without 034's index, after = loadDue`);
  for (const scale of scales) {
    // A database of its own for each scale: the ledger's tables refuse TRUNCATE.
    const pool = createPool({ url: await server.createDatabase(`sweep_due_${String(scale).replace('.', '_')}`), connectionsMax: 1, applicationName: 'sweep-due' });
    await migrate(pool);
    const client = await pool.connect();
    await client.query('SET session_replication_role = replica'); // no triggers or foreign keys: rows straight in
    if (scale > 0) await fill(client, scale);
    await measure(client, scale);
    client.release();
    await pool.end();
  }
} finally {
  await server.stop();
}

async function measure(client: PoolClient, scale: number): Promise<void> {
  const dropped = indexes034.map((name) => `DROP INDEX ${name}`);
  const sizes = (await client.query(`SELECT (SELECT count(*) FROM licences) AS licences, (SELECT count(*) FROM allocations WHERE reserved_units > 0) AS reserving, (SELECT count(*) FROM shipments) AS shipments, (SELECT count(*) FROM shipments WHERE status = 'booked') AS booked`)).rows[0];
  const count = (value: unknown) => Number(value).toLocaleString('en-US');
  console.log(`scale ${scale}: ${count(sizes.licences)} licences, ${count(sizes.reserving)} reserving allocations, ${count(sizes.shipments)} shipments (${count(sizes.booked)} booked)`);
  const noOpBefore = await timed(client, dropped, () => loadDueBefore(client));
  const noOpAfter = await timed(client, [], () => loadDueAfter(client));
  const lapsedBefore = await timed(client, [...oneLapsed, ...dropped], () => loadDueBefore(client));
  const lapsedAfter = await timed(client, oneLapsed, () => loadDueAfter(client));
  console.log(`  no-op tick:          before ${noOpBefore.ms.toFixed(2).padStart(8)}  after ${noOpAfter.ms.toFixed(2).padStart(8)}  (found ${noOpBefore.found} / ${noOpAfter.found})`);
  console.log(`  one lapsed licence:  before ${lapsedBefore.ms.toFixed(2).padStart(8)}  after ${lapsedAfter.ms.toFixed(2).padStart(8)}  (found ${lapsedBefore.found} / ${lapsedAfter.found} bookings)`);
  if (process.env.SWEEP_DUE_EXPLAIN) await explain(client);
  if (scale === 0) return;
  // A booking's cost: alternate with and without the two indexes 034 leaves out, so drift hits both.
  const withIndexes: number[] = [];
  const without: number[] = [];
  for (let run = -2; run < runs * 20; run += 1) {
    const dropBoth = run % 2 === 0;
    await client.query('BEGIN');
    if (!dropBoth) for (const statement of bookedByAllocation) await client.query(statement);
    const [sql, values] = bookingUpsert();
    const started = performance.now();
    await client.query(sql, values);
    const ms = performance.now() - started;
    await client.query('ROLLBACK');
    if (run >= 0) (dropBoth ? without : withIndexes).push(ms);
  }
  console.log(`  64 bookings' shipment rows, upsert, median of ${withIndexes.length} alternating runs each: without the two indexes (as 034 leaves them) ${median(without).toFixed(3)} ms, with them ${median(withIndexes).toFixed(3)} ms`);
}
