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
}

/** Every invariant re-checked from the state tables, in ledger_checks' order; empty means all hold. */
export async function ledgerViolations(db: Queryable): Promise<Violation[]> {
  return (await db.query<Violation>('SELECT * FROM ledger_violations()')).rows;
}

/** How many events the database holds: what a re-check read in the same snapshot covered. */
export async function countEvents(db: Queryable): Promise<number> {
  return (await db.query<{ events: number }>('SELECT count(*) AS events FROM events')).rows[0]!.events;
}

/**
 * How many units keep a GPU UUID in the spelling a release before migration 037 accepted
 * (recorded by migration 042): not a violation, which the re-check passes, but said beside it.
 */
export async function countLegacyGpuUuidUnits(db: Queryable): Promise<number> {
  return (await db.query<{ units: number }>('SELECT count(*)::int AS units FROM units u JOIN units_gpu_uuid_legacy k ON k.serial = u.serial AND k.gpu_uuid = u.gpu_uuid')).rows[0]!.units;
}
