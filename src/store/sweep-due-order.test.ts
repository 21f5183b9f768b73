/**
 * Which of many lapsed bookings a sweep takes (loadDue) follows from the licences and
 * allocations alone, not from the lapse marks that reserve nothing nor from the plan: a
 * replay of the log (ledger/replay) must take the same, and it keeps marks the ledger's own
 * quiet sweeps deleted (a sweep that expires nothing records no event, so the replay makes
 * none). sweep-due.test.ts covers what a look-up reads; the handler's own order is
 * ledger/handlers/sweep-order.test.ts.
 *
 * Rows are written straight into the tables with triggers off, inside a transaction rolled
 * back after each test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { limits } from '../core/limits.ts';
import { emptyKeys } from './batch-keys.ts';
import { loadDue } from './sweep-due.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

/** Before every deadline here: only lapsed licences make bookings due. */
const dueAt = '2026-05-31T23:59:00Z';

/**
 * `count` revoked licences L-0001…, each marked (as its revocation marks it), each with
 * `allocationsEach` allocations: reserving one unit for one booking each when `reserving`,
 * nothing otherwise. The licences' and the allocations' created_seq are shuffled (by the md5
 * of the id), so no order of their ids is their order of creation.
 */
async function revokedLicences(client: PoolClient, count: number, allocationsEach: number, reserving: boolean): Promise<void> {
  await client.query('SET LOCAL session_replication_role = replica');
  await client.query(
    `INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
     SELECT 'L-' || lpad(g::text, 4, '0'), 1, 'R-' || g, 'ORG-1', 'export', 'ORG-2', '{PRD-1}', 'US', 'CN', 1000, '2025-01-01', '2030-01-01', 'revoked', s, s
     FROM (SELECT g, row_number() OVER (ORDER BY md5('L' || g)) AS s FROM generate_series(1, $1::int) g) shuffled`,
    [count],
  );
  await client.query(`INSERT INTO licence_lapses (licence_id) SELECT 'L-' || lpad(g::text, 4, '0') FROM generate_series(1, $1::int) g`, [count]);
  await client.query(
    `INSERT INTO allocations (id, licence_id, recipient_org_id, units, reserved_units, created_seq)
     SELECT 'A-' || lpad(g::text, 4, '0') || '-' || k, 'L-' || lpad(g::text, 4, '0'), 'ORG-3', 10, $3::int, 100000 + s
     FROM (SELECT g, k, row_number() OVER (ORDER BY md5('A' || g || '-' || k)) AS s
           FROM generate_series(1, $1::int) g, generate_series(1, $2::int) k) shuffled`,
    [count, allocationsEach, reserving ? 1 : 0],
  );
  if (reserving) {
    await client.query(
      `INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, created_seq, updated_seq)
       SELECT 'S-' || substr(a.id, 3), 'ORG-2', 'ORG-3', 'PRD-1', 'US', 'CN', a.id, 'A-IMPORT', 1, 'booked', '2026-01-01', '2027-05-01', a.created_seq, a.created_seq
       FROM allocations a WHERE a.licence_id LIKE 'L-____'`,
    );
  }
  await client.query('SET LOCAL session_replication_role = origin');
}

/** The booked shipments a look-up finds, sorted. */
async function dueShipments(client: PoolClient): Promise<string[]> {
  const keys = emptyKeys();
  await loadDue(client, keys, dueAt);
  return [...keys.shipments].sort();
}

describe('the sweep look-up of lapsed bookings', () => {
  it('finds a lapsed licence that reserves behind more marks than it takes, of licences that reserve nothing', async () => {
    await inRolledBack(database.pool, async (client) => {
      await revokedLicences(client, limits.sweepRowsMax, 1, false);
      // L-X sorts after every L-0001…: by mark alone, it would be the 1,001st.
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
        VALUES ('L-X', 1, 'R-X', 'ORG-1', 'export', 'ORG-2', '{PRD-1}', 'US', 'CN', 10, '2025-01-01', '2030-01-01', 'revoked', 0, 0)`);
      await client.query(`INSERT INTO licence_lapses (licence_id) VALUES ('L-X')`);
      await client.query(`INSERT INTO allocations (id, licence_id, recipient_org_id, units, reserved_units, created_seq) VALUES ('A-X', 'L-X', 'ORG-3', 10, 2, 0)`);
      await client.query(`INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination, export_allocation_id, import_allocation_id, units, status, booked_at, deadline, created_seq, updated_seq)
        SELECT 'S-X' || g, 'ORG-2', 'ORG-3', 'PRD-1', 'US', 'CN', 'A-X', 'A-IMPORT', 1, 'booked', '2026-01-01', '2027-05-01', 0, 0 FROM generate_series(1, 2) g`);
      await client.query('SET LOCAL session_replication_role = origin');

      expect(await dueShipments(client)).toEqual(['S-X1', 'S-X2']);
      // The same look-up deleted the marks that reserve nothing, up to its bound.
      expect(Number((await client.query('SELECT count(*) AS n FROM licence_lapses')).rows[0].n)).toBe(1);
    });
  });

  it('takes the oldest reserving allocations when more reserve than it takes, whichever licences hold them', async () => {
    await inRolledBack(database.pool, async (client) => {
      // 500 licences × 3 allocations: 1,500 reserving, 500 more than a look-up takes.
      const allocationsEach = 3;
      const count = limits.sweepRowsMax / 2;
      await revokedLicences(client, count, allocationsEach, true);
      const oldest = await bookingsOf(client, `SELECT id FROM allocations WHERE reserved_units > 0 ORDER BY created_seq, id LIMIT ${limits.sweepRowsMax}`);
      expect(await dueShipments(client)).toEqual(oldest);
    });
  });

  it('takes the oldest licences that still reserve when more are marked than it takes', async () => {
    await inRolledBack(database.pool, async (client) => {
      // 1,100 licences reserving on one allocation each: 100 more than a look-up takes.
      await revokedLicences(client, limits.sweepRowsMax + 100, 1, true);
      const oldestLicences = await bookingsOf(client, `SELECT a.id FROM allocations a JOIN licences l ON l.id = a.licence_id
        ORDER BY l.created_seq LIMIT ${limits.sweepRowsMax}`);
      expect(await dueShipments(client)).toEqual(oldestLicences);
    });
  });
});

/**
 * The bookings (one each, named after it) of the allocations a query selects, sorted; checked
 * to be neither the first nor the last of them by id, so that an order by id would not pass.
 */
async function bookingsOf(client: PoolClient, allocationsSql: string): Promise<string[]> {
  const ids = (await client.query<{ id: string }>(allocationsSql)).rows.map((row) => `S-${row.id.slice(2)}`).sort();
  const all = (await client.query<{ id: string }>(`SELECT 'S-' || substr(id, 3) AS id FROM allocations WHERE licence_id LIKE 'L-____' ORDER BY id`)).rows.map((row) => row.id);
  expect(ids).toHaveLength(limits.sweepRowsMax);
  expect(ids).not.toEqual(all.slice(0, ids.length));
  expect(ids).not.toEqual(all.slice(-ids.length));
  return ids;
}
