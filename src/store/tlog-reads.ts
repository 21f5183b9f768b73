/**
 * Reads of the transparency log's tables for callers outside the ledger: the published-
 * checkpoint guard (cli/published-checkpoint.ts) and the demo load. They belong with the log's
 * storage surface (tlog-tables.ts) and are kept apart only until they join it.
 *
 * Rules of this surface: each function is one statement, so it reads one snapshot even
 * outside a transaction; none writes.
 */
import type { Pool, PoolClient } from './pool.ts';

type Queryable = Pool | PoolClient;

/** A checkpoint row as a look reads it, with the log's size, in one snapshot. */
export interface NewestCheckpoint {
  headSize: number;
  checkpoint: { size: number; root: Buffer; signed_note: string } | undefined;
}

/**
 * The log's size and its newest checkpoint of at least `sizeMin` (none when there is none):
 * one statement, each part by its primary key, so a look that finds nothing new is an index
 * probe that returns no checkpoint. Needs a migrated database (log_head's one row).
 */
export async function newestCheckpointFrom(db: Queryable, sizeMin: number): Promise<NewestCheckpoint> {
  const row = (await db.query<{ head_size: number; size: number | null; root: Buffer | null; signed_note: string | null }>(`SELECT h.size AS head_size, c.size, c.root, c.signed_note
    FROM log_head h LEFT JOIN LATERAL (SELECT size, root, signed_note FROM tlog_checkpoints WHERE size >= $1 ORDER BY size DESC, key_id DESC LIMIT 1) c ON true
    WHERE h.id = 1`, [sizeMin])).rows[0]!;
  const checkpoint = row.size === null ? undefined : { size: row.size, root: row.root!, signed_note: row.signed_note! };
  return { headSize: row.head_size, checkpoint };
}

/**
 * Which of the log's tables exist: log_head (the head) and tlog_keys (the keys). Both are
 * false on a database never migrated, whose log is empty; reads nothing else.
 */
export async function logTablesPresent(db: Queryable): Promise<{ head: boolean; keys: boolean }> {
  return (await db.query<{ head: boolean; keys: boolean }>("SELECT to_regclass('log_head') IS NOT NULL AS head, to_regclass('tlog_keys') IS NOT NULL AS keys")).rows[0]!;
}

/** The log's size (events in it) as log_head records it; needs a migrated database. */
export async function logHeadSize(db: Queryable): Promise<number> {
  return Number((await db.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
}
