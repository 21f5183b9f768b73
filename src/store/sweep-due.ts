/**
 * What a sweep finds due (loadDue): the bookings and licences it expires, into a batch's keys,
 * and the lapse marks it has spent, deleted in the batch.
 */
import { limits } from '../core/limits.ts';
import type { PoolClient } from './pool.ts';
import type { BatchKeys } from './batch-keys.ts';

/**
 * What a sweep (ledger/handlers/sweep.ts) expires, by the handler's own tests, into the
 * keys: booked shipments past their deadline; booked shipments under a licence no longer in
 * force (lapsedLicence: expired, revoked or surrendered, or past its validity); licences
 * past their validity that are still issued, suspended or exhausted. Each list at most
 * limits.sweepRowsMax; the next sweep takes the rest. Each list's order is total (ties by
 * creation), so which of many due records a sweep takes follows from the database's rows, not
 * from its plan: a replay of the log (ledger/replay) takes the same.
 *
 * A tick with nothing due reads three indexes' empty ranges and a table of marks, whatever
 * the ledger's size (bench/experiments/sweep-due.ts): the sweep runs under the head lock
 * every few seconds, so every writer waits for it. The lapsed bookings are found from the
 * licences that may hold them, never from all allocations or shipments:
 * - licences marked when their status ended them (licence_lapses, migration 034: set by the
 *   status change itself, in its batch), and those past their validity not yet expired (the
 *   licences_expirable_valid_to index), which this same sweep expires, with their bookings;
 *   Of the marks, only those whose licence still reserves, the oldest licences first: which
 *   marks that reserve nothing are left depends on the sweeps that deleted them, and a sweep
 *   that expires nothing commits no event, so a replay of the log, which makes no such
 *   sweep, keeps more of them; 1,000 of those taking every place of the LIMIT would hide a
 *   licence that reserves;
 * - their allocations that hold reservations (a booked shipment reserves on both of its),
 *   licence by licence through allocations_licence (the OFFSET 0 and the LIMIT keep the
 *   planner from joining the licences to every reserving allocation instead, hashing all of
 *   them, as it did at 10,000 allocations; src/store/sweep-due.test.ts counts the rows read),
 *   the oldest first when more than the LIMIT reserve (of those licences: 1,000 marked and
 *   1,000 past their validity at most). A licence's reserving allocations are all read to
 *   take its oldest: a licence holds an allocation for each recipient (or each recipient's
 *   period), not thousands, and an index that kept them in order would be written by every
 *   booking;
 * - the booked shipments of those allocations, from all booked shipments (shipments_due):
 *   live bookings, not history, and only in a tick that finds a lapsed licence still
 *   reserving, once per lapse (034 says why bookings pay for no index by allocation).
 * A mark whose licence's allocations reserve nothing is deleted here, in this batch: nothing
 * books under a licence that has lapsed (no step leaves revoked, surrendered or expired), so
 * it will never again hold a booking. The delete commits with the batch, which a sweep with
 * nothing due commits too (refused, with no event); with a batch that rolls back it rolls
 * back, and a later sweep deletes it. Two servers' sweeps take the head lock in turn, so the
 * second sees the first's expiries and deletes.
 * Exported for bench/experiments/sweep-due.ts; the ledger calls it through loadBatchState.
 */
export async function loadDue(client: PoolClient, keys: BatchKeys, dueAt: string): Promise<void> {
  const due = await client.query<{ id: string; kind: 'shipment' | 'licence' | 'allocation' }>(
    `WITH marked AS (SELECT licence_id FROM licence_lapses ORDER BY licence_id LIMIT ${limits.sweepRowsMax}),
          reserving AS (SELECT m.licence_id FROM licence_lapses m JOIN licences l ON l.id = m.licence_id
                        WHERE EXISTS (SELECT 1 FROM allocations a WHERE a.licence_id = m.licence_id AND a.reserved_units > 0 OFFSET 0)
                        ORDER BY l.created_seq, l.id LIMIT ${limits.sweepRowsMax}),
          past AS (SELECT id FROM licences WHERE status IN ('issued','suspended','exhausted') AND valid_to <= $1 ORDER BY valid_to, created_seq LIMIT ${limits.sweepRowsMax}),
          -- Runs whether or not the query reads it (PostgreSQL runs a WITH's DELETE once, whole).
          unmarked AS (DELETE FROM licence_lapses m USING marked
                      WHERE m.licence_id = marked.licence_id
                        AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.licence_id = m.licence_id AND a.reserved_units > 0 OFFSET 0))
     (SELECT id, 'shipment' AS kind FROM shipments WHERE status = 'booked' AND deadline <= $1 ORDER BY deadline, created_seq LIMIT ${limits.sweepRowsMax})
     UNION ALL (SELECT id, 'licence' FROM past)
     UNION ALL (SELECT a.id, 'allocation' FROM (SELECT licence_id FROM reserving UNION ALL SELECT id FROM past) l,
                  LATERAL (SELECT id, created_seq FROM allocations WHERE licence_id = l.licence_id AND reserved_units > 0
                           ORDER BY created_seq, id LIMIT ${limits.sweepRowsMax}) a
                ORDER BY a.created_seq, a.id LIMIT ${limits.sweepRowsMax})`,
    [dueAt],
  );
  const lapsedAllocations: string[] = [];
  for (const row of due.rows) {
    if (row.kind === 'allocation') lapsedAllocations.push(row.id);
    else (row.kind === 'shipment' ? keys.shipments : keys.licences).add(row.id);
  }
  if (lapsedAllocations.length === 0) return;
  const lapsed = await client.query<{ id: string }>(
    `SELECT id FROM shipments WHERE status = 'booked' AND deadline > $1
       AND (export_allocation_id = ANY($2) OR import_allocation_id = ANY($2))
     ORDER BY deadline, created_seq LIMIT ${limits.sweepRowsMax}`,
    [dueAt, lapsedAllocations],
  );
  for (const row of lapsed.rows) keys.shipments.add(row.id);
}
