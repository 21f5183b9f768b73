/**
 * The demo load's reads of the state tables (what is loaded, which organisations, how its
 * shipments stand) and its advisory lock's key and release. Rows are the demo's where their
 * `demo` column says so; every function here reads, none but the release changes anything.
 */
import type { Pool, PoolClient } from './pool.ts';

/** Any constant: the key of the advisory lock the demo loader holds. */
export const demoLoadLockKey = 7_201_964_012;

/** Counts of the demo's rows, read in one statement (one snapshot). */
export interface DemoCounts {
  organisations: number;
  sites: number;
  shipments: number;
  /** Demo shipments that expired. */
  expired: number;
  /** How many of the ends 'decommissioned' and 'lost' the units of demo shipments have reached (0 to 2). */
  ended: number;
}

/** The counts of the demo's rows that tell whether it is loaded, in full or in part. */
export async function demoCounts(pool: Pool): Promise<DemoCounts> {
  const { rows } = await pool.query<DemoCounts>(`
    SELECT (SELECT count(*)::int FROM organisations WHERE demo) AS organisations,
           (SELECT count(*)::int FROM sites WHERE demo) AS sites,
           (SELECT count(*)::int FROM shipments WHERE demo) AS shipments,
           (SELECT count(*)::int FROM shipments WHERE demo AND status = 'expired') AS expired,
           (SELECT count(DISTINCT u.custody)::int FROM units u JOIN shipments s ON s.id = u.shipment_id
             WHERE s.demo AND u.custody IN ('decommissioned', 'lost')) AS ended`);
  return rows[0]!;
}

/**
 * Whether the database holds the demo, loaded in full or in part: what marks a server's
 * answers and events as demo data. The same test as demoState's 'absent', in one cheap query.
 */
export async function holdsDemo(pool: Pool): Promise<boolean> {
  const { rows } = await pool.query<{ holds: boolean }>('SELECT EXISTS (SELECT 1 FROM organisations WHERE demo) AS holds');
  return rows[0]!.holds;
}

/** The demo organisations' ids and names, in the order they were registered. */
export async function listDemoOrganisations(pool: Pool): Promise<Array<{ id: string; name: string }>> {
  return (await pool.query<{ id: string; name: string }>('SELECT id, name FROM organisations WHERE demo ORDER BY created_seq')).rows;
}

/** The statuses of the shipments with these ids, one for each that exists (none for an unknown id), in no set order. */
export async function shipmentStatuses(pool: Pool, ids: readonly string[]): Promise<string[]> {
  const { rows } = await pool.query<{ status: string }>('SELECT status FROM shipments WHERE id = ANY($1)', [ids]);
  return rows.map((row) => row.status);
}

/** Releases the demo load's advisory lock held by this session (`client`); one not held is a no-op that PostgreSQL warns of. */
export async function releaseDemoLoadLock(client: PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1)', [demoLoadLockKey]);
}
