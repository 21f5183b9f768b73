/**
 * What /healthz reads of the database (server/health.ts judges it): the clocks and the
 * migrations newer than this build knows, in one bounded query.
 */
import type { Pool } from './pool.ts';
import { queryWithin } from './query-timeout.ts';

/** A migration applied to the database that this build does not know. */
export interface NewerMigration {
  version: number;
  name: string;
}

/** The health check's one row, as the pool returns it. */
export interface HealthRow {
  /** log_head.at: the newest event's time (a timestamptz: ISO 8601 text, or a Date). */
  ledgerAt: unknown;
  /** The database's clock_timestamp() (a timestamptz, as ledgerAt). */
  databaseAt: unknown;
  /** ledger_clock_ahead_ms_max() (migration 047), as the pool returns it. */
  aheadMsMax: unknown;
  /** The migrations applied above `knownNewest`, by version. */
  newerMigrations: NewerMigration[];
}

/**
 * Reads log_head's time, the database's clock, its bound on a batch dated ahead of it and
 * the migrations newer than `knownNewest`, in one query bounded by `timeoutMs` itself (its
 * query_timeout ends the query and frees the connection when the database hangs). Always a
 * row: a database without log_head's row was never migrated, and that is thrown.
 */
export async function readHealthRow(pool: Pool, knownNewest: number, timeoutMs: number): Promise<HealthRow> {
  if (!Number.isSafeInteger(knownNewest)) throw new Error(`assertion failed: the newest migration ${knownNewest} is not an integer`);
  const [row] = await queryWithin<HealthRow>(pool,
    `SELECT at AS "ledgerAt", clock_timestamp() AS "databaseAt", ledger_clock_ahead_ms_max() AS "aheadMsMax",
       (SELECT coalesce(json_agg(json_build_object('version', version, 'name', name) ORDER BY version), '[]'::json) FROM schema_migrations WHERE version > ${knownNewest}) AS "newerMigrations"
     FROM log_head WHERE id = 1`, timeoutMs);
  if (row === undefined) throw new Error('log_head row is missing: the database was not migrated');
  return row;
}
