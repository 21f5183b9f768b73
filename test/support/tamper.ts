/**
 * Tamper tests play an attacker with write access to the database: one who can also turn
 * off the triggers that keep the record whole (stored tiles append-only, migration 018;
 * events, checkpoints and cosignatures never deleted or changed, 055; log keys, 058). The checks under test
 * (the start-up check, `log verify`, the audit, `chipledger check`) must catch what such a
 * change leaves.
 */
import type { Pool, PoolClient } from '../../src/store/pool.ts';

/** Each table a tamper test changes, and the trigger that would refuse the change. */
const keeping = {
  tlog_tiles: 'tlog_tiles_only_grow',
  tlog_checkpoints: 'tlog_checkpoints_kept',
  tlog_cosignatures: 'tlog_cosignatures_no_delete',
  events: 'events_no_delete',
  tlog_keys: 'tlog_keys_kept',
} as const;

export type KeptTable = keyof typeof keeping;

const toggled = (table: KeptTable, on: boolean): string => `ALTER TABLE ${table} ${on ? 'ENABLE' : 'DISABLE'} TRIGGER ${keeping[table]}`;

/** `statement` as one text that runs it with `table`'s trigger off (no parameters: a text of several statements takes none). */
export function untriggered(statement: string, table: KeptTable = 'tlog_tiles'): string {
  return `${toggled(table, false)}; ${statement}; ${toggled(table, true)}`;
}

/**
 * Runs `change` with `table`'s trigger off, on `db` (a pool or a client in a transaction: the
 * ALTER takes effect for every session once it commits, and in a transaction rolls back with it).
 */
export async function withTriggerOff<T>(db: Pool | PoolClient, table: KeptTable, change: () => Promise<T>): Promise<T> {
  await db.query(toggled(table, false));
  let failed = false;
  try {
    return await change();
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    // After a failure in a transaction the ALTER cannot run, and rolls back with it anyway:
    // the change's own error is the one to see.
    await db.query(toggled(table, true)).catch((error: unknown) => {
      if (!failed) throw error;
    });
  }
}

/**
 * Commits `statements` on one connection with every trigger off for that transaction
 * (`session_replication_role = replica`, which only a superuser or the owner's superuser may
 * set): a state the ledger never writes, left for a check to find, and undone by the caller.
 */
export async function commitWithTriggersOff(pool: Pool, ...statements: Array<[string, unknown[]?]>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    for (const [text, values] of statements) await client.query(text, values ?? []);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}
