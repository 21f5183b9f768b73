/**
 * Tamper tests play an attacker with write access to the database: one who can also turn
 * off the trigger that keeps stored tiles append-only (migration 018). The checks under
 * test (the start-up check, `log verify`, the audit) must catch what such a change leaves.
 */
export function untriggered(statement: string): string {
  return `ALTER TABLE tlog_tiles DISABLE TRIGGER tlog_tiles_only_grow; ${statement}; ALTER TABLE tlog_tiles ENABLE TRIGGER tlog_tiles_only_grow`;
}
