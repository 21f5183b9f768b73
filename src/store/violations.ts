/**
 * The full re-check's reads: the invariant violations the database re-derives from its state
 * tables (ledger_violations(), migration 041 and after), and what `chipledger check` says
 * beside them. Each is one statement and writes nothing; run in one REPEATABLE READ
 * transaction, they describe one state.
 */
import type { Pool, PoolClient } from './pool.ts';

type Queryable = Pool | PoolClient;

/** One invariant that does not hold, as ledger_violations() names it. */
export interface Violation {
  invariant: string;
  subject: string;
  detail: string;
  /**
   * How many violations this row stands for, where it is not one: a row that says "and 1,234
   * more rows of units differ" (store/state-diff.ts) is 1,234 of them, and check's count says so.
   */
  standsFor?: number;
}

/**
 * Every invariant re-checked from the state tables, in ledger_checks' order; empty means all
 * hold. Every row comes to this process: for the states tests make and the ledger's own
 * checks of a handful of rows. `chipledger check`, which may read a badly damaged database,
 * reads ledgerViolationsBounded instead.
 */
export async function ledgerViolations(db: Queryable): Promise<Violation[]> {
  return (await db.query<Violation>('SELECT * FROM ledger_violations()')).rows;
}

/**
 * Violations of one invariant `chipledger check` shows; the rest are counted. A badly damaged
 * database (a million shipments each breaking one rule) would otherwise be read whole into the
 * check's memory and printed a line each: the first of each invariant say what is wrong, the
 * count says how much, and one invariant's flood does not hide another's.
 */
export const violationsShownPerInvariantMax = 20;

/** How many violations of one invariant the re-check found, and how many of them it shows. */
export interface InvariantTally {
  invariant: string;
  /** Every violation of the invariant, shown or not. */
  violations: number;
  /** Of those, the ones in BoundedViolations.shown: at most the bound asked for. */
  shown: number;
}

export interface BoundedViolations {
  /**
   * At most the bound's violations of each invariant, by invariant, then subject (shorter
   * first, so LIC-9 comes before LIC-10), then detail; texts compared bytewise.
   */
  shown: Violation[];
  /** Each invariant with a violation, in the order of `shown`; none means every invariant holds. */
  tallies: InvariantTally[];
}

/**
 * The rows past the bound are counted and dropped in the database, never sent here. The
 * re-check's rows are gathered once (as ledger_violations(), a plpgsql function, gathers them
 * anyway: in the server, spilled to disk past work_mem); each invariant's are counted, and its
 * first few kept by a sort that holds only those (a top-N sort), in the order above, so which
 * rows are shown does not depend on the plan. A million rows of one invariant took about 2 s
 * here; row_number() and count(*) over windows, which sort every row on disk, took 6 to 9 s.
 */
const boundedViolationsSql = `WITH found AS MATERIALIZED (SELECT invariant, subject, detail FROM ledger_violations()),
  tallies AS (SELECT invariant, count(*) AS total FROM found GROUP BY invariant)
SELECT t.invariant, shown.subject, shown.detail, t.total::text AS total
FROM tallies t CROSS JOIN LATERAL (
  SELECT f.subject, f.detail FROM found f WHERE f.invariant IS NOT DISTINCT FROM t.invariant
  ORDER BY length(f.subject), f.subject COLLATE "C", f.detail COLLATE "C"
  LIMIT $1
) shown
ORDER BY t.invariant COLLATE "C", length(shown.subject), shown.subject COLLATE "C", shown.detail COLLATE "C"`;

/**
 * Every invariant re-checked from the state tables, as ledgerViolations, with at most
 * `shownPerInvariantMax` violations of each invariant read, and every invariant's count.
 */
export async function ledgerViolationsBounded(db: Queryable, shownPerInvariantMax: number = violationsShownPerInvariantMax): Promise<BoundedViolations> {
  if (!Number.isSafeInteger(shownPerInvariantMax) || shownPerInvariantMax < 1) throw new Error(`the violations shown per invariant must be a whole number of at least 1; got ${shownPerInvariantMax}`);
  const { rows } = await db.query<Violation & { total: string }>(boundedViolationsSql, [shownPerInvariantMax]);
  const shown: Violation[] = [];
  const tallies: InvariantTally[] = [];
  for (const { invariant, subject, detail, total } of rows) {
    const last = tallies.at(-1);
    if (last === undefined || last.invariant !== invariant) {
      // count(*) is a bigint, read as text (pg's way with one); a count of violations stays far below 2^53.
      tallies.push({ invariant, violations: Number(total), shown: 1 });
    } else {
      last.shown += 1;
    }
    shown.push({ invariant, subject, detail });
  }
  for (const tally of tallies) {
    if (!Number.isSafeInteger(tally.violations) || tally.violations < tally.shown || tally.shown > shownPerInvariantMax) {
      throw new Error(`the bounded re-check read ${tally.shown} violations of ${tally.invariant} of ${tally.violations} in all, under a bound of ${shownPerInvariantMax}: the query does not bound what it reads`);
    }
  }
  return { shown, tallies };
}

/** How many events the database holds: what a re-check read in the same snapshot covered. */
export async function countEvents(db: Queryable): Promise<number> {
  // count(*) is a bigint, which pg reads as a string: "1 events" and no thousands separators
  // in check's answer came of that. A count of events stays far below 2^53.
  return Number((await db.query<{ events: string }>('SELECT count(*) AS events FROM events')).rows[0]!.events);
}

/**
 * How many units keep a GPU UUID in the spelling a release before migration 037 accepted
 * (recorded by migration 042): not a violation, which the re-check passes, but said beside it.
 */
export async function countLegacyGpuUuidUnits(db: Queryable): Promise<number> {
  return (await db.query<{ units: number }>('SELECT count(*)::int AS units FROM units u JOIN units_gpu_uuid_legacy k ON k.serial = u.serial AND k.gpu_uuid = u.gpu_uuid')).rows[0]!.units;
}
