/**
 * The sweep's look-up of due work (loadDue) reads what may be due, not the ledger's history:
 * a tick with nothing due reads a handful of rows of allocations and shipments however many
 * the ledger holds, and one with a licence that just lapsed reads that licence's allocations
 * and the live bookings, not the delivered ones (the rows each plan node read,
 * from EXPLAIN ANALYZE). And a mark stays while its licence's allocations still reserve, and
 * goes once they reserve nothing. bench/experiments/sweep-due.ts times the same at the s13
 * review's scale.
 *
 * Rows are written straight into the tables with triggers off, inside a transaction rolled
 * back after each test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { emptyKeys, type BatchKeys } from './batch-keys.ts';
import { loadDue } from './sweep-due.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

/** Just before the first synthetic deadline: nothing is past its deadline. */
const dueAt = '2026-05-31T23:59:00Z';

/**
 * 1,000 licences (half ended long ago, half issued until 2030), ten allocations each (those of
 * the issued ones reserving), 50,000 shipments (40% booked, the rest delivered), with no
 * mark (the ended licences reserve nothing); then licence L-X, revoked and marked, with an
 * allocation reserving 3 units for 3 bookings.
 */
async function ledgerWithHistory(client: PoolClient): Promise<void> {
  await client.query('SET LOCAL session_replication_role = replica');
  await client.query(`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
    SELECT 'L-' || g, 1, 'R-' || g, 'ORG-1', 'export', 'ORG-2', '{PRD-1}', 'US', 'CN', 1000000, '2025-01-01',
      CASE WHEN g % 2 = 0 THEN '2026-01-01'::timestamptz ELSE '2030-01-01'::timestamptz END,
      CASE WHEN g % 2 = 0 THEN (ARRAY['expired','revoked','surrendered'])[1 + g % 3] ELSE 'issued' END, g, g
    FROM generate_series(1, 1000) g`);
  await client.query(`INSERT INTO allocations (id, licence_id, recipient_org_id, units, reserved_units, created_seq)
    SELECT 'A-' || g, 'L-' || (1 + g % 1000), 'ORG-3', 100, CASE WHEN (1 + g % 1000) % 2 = 1 THEN 5 ELSE 0 END, g FROM generate_series(1, 10000) g`);
  await client.query(`INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, created_seq, updated_seq)
    SELECT 'S-' || g, 'ORG-2', 'ORG-3', 'PRD-1', 'US', 'CN', 'A-' || (1 + g % 10000), 'A-' || (1 + (g + 7) % 10000), 1,
      CASE WHEN g % 5 < 2 THEN 'booked' ELSE 'delivered' END, '2026-01-01', '2026-06-01'::timestamptz + (g % 300000) * interval '1 minute', g, g
    FROM generate_series(1, 50000) g`);
  await client.query(`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
    VALUES ('L-X', 1, 'R-X', 'ORG-1', 'export', 'ORG-2', '{PRD-1}', 'US', 'CN', 10, '2025-01-01', '2030-01-01', 'revoked', 0, 0)`);
  await client.query(`INSERT INTO allocations (id, licence_id, recipient_org_id, units, reserved_units, created_seq) VALUES ('A-X', 'L-X', 'ORG-3', 10, 3, 0), ('A-Y', 'L-X', 'ORG-3', 10, 0, 0)`);
  await client.query(`INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, created_seq, updated_seq)
    SELECT 'S-X' || g, 'ORG-2', 'ORG-3', 'PRD-1', 'US', 'CN', 'A-X', 'A-Y', 1, 'booked', '2026-01-01', '2027-05-01', 0, 0 FROM generate_series(1, 3) g`);
  // The mark its revocation wrote (034's trigger; ledger/handlers/lapse-marks.test.ts).
  await client.query(`INSERT INTO licence_lapses (licence_id) VALUES ('L-X')`);
  await client.query('SET LOCAL session_replication_role = origin');
  await client.query('ANALYZE licences, allocations, shipments');
}

/** L-X's bookings ended, and with them its reservation (as the sweep leaves them). */
async function lapsedBookingsEnded(client: PoolClient): Promise<void> {
  await client.query('SET LOCAL session_replication_role = replica');
  await client.query(`UPDATE shipments SET status = 'expired' WHERE id LIKE 'S-X%'`);
  await client.query(`UPDATE allocations SET reserved_units = 0 WHERE id = 'A-X'`);
  await client.query('SET LOCAL session_replication_role = origin');
}

function expectFewRead(read: Map<string, number>, shipmentsMax = rowsReadMax): void {
  expect(read.get('allocations') ?? 0, 'rows of allocations read').toBeLessThanOrEqual(rowsReadMax);
  expect(read.get('shipments') ?? 0, 'rows of shipments read').toBeLessThanOrEqual(shipmentsMax);
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Rows each table's scans read (returned or filtered out), over every node of a plan. */
function rowsRead(node: PlanNode, into: Map<string, number>): Map<string, number> {
  const table = node['Relation Name'];
  if (table !== undefined && node['Node Type'] !== 'ModifyTable') {
    const read = (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * node['Actual Loops'];
    into.set(table, (into.get(table) ?? 0) + read);
  }
  for (const child of node.Plans ?? []) rowsRead(child, into);
  return into;
}

/** Runs loadDue with each of its statements explained (EXPLAIN ANALYZE runs it, then it runs again for its rows). */
async function explainedLoad(client: PoolClient): Promise<{ keys: BatchKeys; read: Map<string, number> }> {
  const read = new Map<string, number>();
  const query = client.query.bind(client) as (sql: string, values?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>;
  const explaining = {
    query: async (sql: string, values?: unknown[]) => {
      await query('SAVEPOINT explained');
      const [plan] = (await query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, values)).rows[0]!['QUERY PLAN'] as Array<{ Plan: PlanNode }>;
      await query('ROLLBACK TO SAVEPOINT explained');
      rowsRead(plan!.Plan, read);
      return query(sql, values);
    },
  };
  const keys = emptyKeys();
  await loadDue(explaining as unknown as PoolClient, keys, dueAt);
  return { keys, read };
}

/** Far below the 5,000 reserving allocations and 20,000 booked shipments the ledger holds. */
const rowsReadMax = 50;
/** The booked shipments of ledgerWithHistory (of its 50,003). */
const bookedShipments = 20_003;

describe('the sweep look-up on a ledger with history', () => {
  it('reads a handful of rows when nothing is due, and when a licence just lapsed only that licence\'s bookings', async () => {
    await inRolledBack(database.pool, async (client) => {
      await ledgerWithHistory(client);
      const lapsed = await explainedLoad(client);
      expect([...lapsed.keys.shipments].sort()).toEqual(['S-X1', 'S-X2', 'S-X3']);
      expect(lapsed.keys.licences.size).toBe(0);
      // A lapse reads the live bookings once (no index by allocation: 034), not the history.
      expectFewRead(lapsed.read, bookedShipments);
      // With the lapsed licence's bookings gone (its reservation too), a tick finds nothing.
      await lapsedBookingsEnded(client);
      const idle = await explainedLoad(client);
      expect(idle.keys.shipments.size + idle.keys.licences.size).toBe(0);
      expectFewRead(idle.read);
    });
  });
});

describe('a licence lapse mark', () => {
  it('stays while an allocation of its licence still reserves, and is deleted by the first look-up that finds none', async () => {
    await inRolledBack(database.pool, async (client) => {
      await ledgerWithHistory(client);
      const marks = async () => (await client.query<{ licence_id: string }>('SELECT licence_id FROM licence_lapses ORDER BY licence_id')).rows.map((row) => row.licence_id);
      expect(await marks()).toEqual(['L-X']);
      const keys = emptyKeys();
      await loadDue(client, keys, dueAt);
      expect(keys.shipments.size).toBe(3);
      expect(await marks()).toEqual(['L-X']);
      await lapsedBookingsEnded(client);
      await loadDue(client, emptyKeys(), dueAt);
      expect(await marks()).toEqual([]);
    });
  });
});
