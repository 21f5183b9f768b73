/**
 * What invariant 1's check on an allocation's UPDATE costs a batch of bookings as a licence is
 * shared out in more tranches (migration 074): the trigger time of one UPDATE of an allocation's
 * counters, as bookings write it, with 074's check (only allocations whose units changed) and
 * with 001's (every allocation of the licence summed), on one licence with N allocations.
 * Rows are written with triggers off; every variant runs in a transaction rolled back.
 *
 *   node --import tsx bench/experiments/allocation-sum-trigger.ts [runs]
 */
import type { PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { openBookingWorld } from './shipment-rows.ts';
import { median, round } from '../stats.ts';

const runs = Number(process.argv[2] ?? 15);
const tranches = [10, 1_000, 10_000];

/** 001's check: every allocation of each licence an updated allocation belongs to. */
const summingEveryUpdate = `
  CREATE OR REPLACE FUNCTION allocations_check_sum_001() RETURNS trigger LANGUAGE plpgsql AS $f$
  DECLARE bad record;
  BEGIN
    SELECT l.id INTO bad FROM licences l LEFT JOIN allocations a ON a.licence_id = l.id
    WHERE l.id IN (SELECT licence_id FROM changed_allocations)
    GROUP BY l.id, l.allocated_units, l.authorised_units
    HAVING coalesce(sum(a.units), 0) <> l.allocated_units OR coalesce(sum(a.units), 0) > l.authorised_units LIMIT 1;
    IF FOUND THEN RAISE EXCEPTION 'invariant 1'; END IF;
    RETURN NULL;
  END $f$;
  DROP TRIGGER allocations_sum_update ON allocations;
  CREATE TRIGGER allocations_sum_update AFTER UPDATE ON allocations REFERENCING NEW TABLE AS changed_allocations
    FOR EACH STATEMENT EXECUTE FUNCTION allocations_check_sum_001()`;

const server = await startBenchServer('allocation-sum-trigger');
try {
  const { pool, world } = await openBookingWorld(server, 'allocation-sum-trigger');
  const allocationId = world.pairs[0]!.importAllocationId;
  const client: PoolClient = await pool.connect();
  const { licence_id: licenceId } = (await client.query<{ licence_id: string }>('SELECT licence_id FROM allocations WHERE id = $1', [allocationId])).rows[0]!;
  console.log(`the allocations_sum_update trigger's time for one UPDATE of an allocation's counters, medians of ${runs} (EXPLAIN ANALYZE), rolled back`);
  for (const count of tranches) {
    for (const [name, setup] of [['074: licences whose allocations changed their units in sum', ''], ['001: every allocation of the licence', summingEveryUpdate]] as const) {
      const times: number[] = [];
      for (let run = 0; run < runs; run += 1) {
        await client.query('BEGIN');
        try {
          await client.query(`SET LOCAL session_replication_role = replica`);
          await client.query(`INSERT INTO allocations (id, licence_id, recipient_org_id, units, created_seq)
            SELECT 'A-T' || n, licence_id, recipient_org_id, 0, created_seq FROM allocations, generate_series(1, $2) AS n WHERE id = $1`, [allocationId, count]);
          await client.query(`SET LOCAL session_replication_role = origin`);
          if (setup) await client.query(setup);
          await client.query(`ANALYZE allocations`);
          const plan = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) UPDATE allocations SET reserved_units = reserved_units WHERE id = '${allocationId}'`)).rows[0]['QUERY PLAN'][0];
          times.push((plan.Triggers as Array<{ 'Trigger Name': string; Time: number }>).find((trigger) => trigger['Trigger Name'] === 'allocations_sum_update')!.Time);
        } finally {
          await client.query('ROLLBACK');
        }
      }
      console.log(`  ${String(count + 1).padStart(6)} allocations on licence ${licenceId}: ${round(median(times), 3).toFixed(3).padStart(8)} ms  ${name}`);
    }
  }
  client.release();
  await pool.end();
} finally {
  await server.stop();
}
