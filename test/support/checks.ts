/** Whole-database checks the invariant tests share. */
import { expect } from 'vitest';
import type { Pool } from '../../src/store/pool.ts';

/** Events are 0..size-1 without a gap, and log_head.size counts them (invariant 5). */
export async function checkEventsGapless(pool: Pool): Promise<number> {
  const result = await pool.query<{ size: number; events: number; min_seq: number | null; max_seq: number | null; distinct_seqs: number }>(
    `SELECT (SELECT size FROM log_head WHERE id = 1) AS size, count(*)::int AS events, min(seq) AS min_seq, max(seq) AS max_seq,
            count(DISTINCT seq)::int AS distinct_seqs FROM events`,
  );
  const row = result.rows[0]!;
  expect(row).toEqual({ size: row.events, events: row.events, min_seq: row.events > 0 ? 0 : null, max_seq: row.events > 0 ? row.events - 1 : null, distinct_seqs: row.events });
  return row.events;
}

/** reserved + shipped within units for every allocation, read straight from the rows. */
export async function checkNoOverAllocation(pool: Pool): Promise<void> {
  const result = await pool.query('SELECT id, units, reserved_units, shipped_units FROM allocations WHERE reserved_units < 0 OR shipped_units < 0 OR reserved_units + shipped_units > units');
  expect(result.rows).toEqual([]);
}
