/**
 * What /healthz checks, beyond the database answering: a server is ready for traffic only
 * when the writes it would take can commit. So it answers 503 (a readiness check, not a
 * liveness one: a database that is away makes every server unready, and restarting them
 * mends nothing) when
 * - a newer chipledger migrated the database: its rules are unknown to this build, whose
 *   writes could break them (`chipledger check` refuses such a database too);
 * - this server's clock is one every write is refused for: too far behind the ledger's time
 *   (batch-time.ts) or ahead of the database's clock (migration 047);
 * - its log key was retired by a rotation: it takes writes no checkpoint of its will cover;
 * - its signing is held because the newest checkpoint it signed or saw could not be recorded
 *   outside the database (the CLI's published-checkpoint, the guard against starting on a
 *   database that went back: a full disk, a read-only remount): a restart on a backup taken
 *   since would not be refused, and its writes go uncovered until the file is written again.
 *   Said in the recorder's words, with its rule (publishedCheckpointUnrecordedRule), file and error;
 * - its last signing found that the database's log no longer extends a checkpoint it signed
 *   before (the database went back under it, checkpointer.ts LogWentBack): it signs nothing.
 * Everything is read in one bounded query (and the log key in one more, on a signing server).
 */
import { DomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { clockBehindLedgerRule } from '../ledger/batch-time.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { retiredKeyMessage } from '../ledger/log/checkpointer.ts';
import { clockAheadOfDatabaseRule } from '../ledger/refusals.ts';
import { newerMigrationsMessage } from '../store/migrate.ts';
import { readHealthRow, type NewerMigration } from '../store/health-queries.ts';
import type { Pool } from '../store/pool.ts';
import { currentLogKey } from '../store/tlog-tables.ts';

/** What the health check reads of the clocks, in the ping's one query. */
export interface HealthClocks {
  /** log_head.at: the newest event's time, ISO 8601. */
  ledgerAt: string;
  /** The database's clock_timestamp(), ISO 8601. */
  databaseAt: string;
  /** How far ahead of the database's clock a batch may be dated (migration 047, limits.clockAheadOfDatabaseMsMax). */
  aheadMsMax: number;
}

export interface Health {
  clocks: HealthClocks;
  newerMigrations: NewerMigration[];
  /** The log's current key; undefined before the log first signed, or on a server that signs nothing (not read then). */
  logKey: string | undefined;
}

/**
 * Pings the database, reading the clocks and the migrations newer than `knownNewest` as it
 * does (one query, bounded by `timeoutMs` itself), then the log's current key.
 */
export async function readHealth(ledger: Ledger, pool: Pool, knownNewest: number, timeoutMs: number): Promise<Health> {
  const row = await readHealthRow(pool, knownNewest, timeoutMs);
  const clocks = { ledgerAt: isoOf(row.ledgerAt), databaseAt: isoOf(row.databaseAt), aheadMsMax: Number(row.aheadMsMax) };
  const logKey = ledger.checkpointer === undefined ? undefined : (await currentLogKey(pool))?.verifier_key;
  return { clocks, newerMigrations: row.newerMigrations, logKey };
}

/** Why this server is not ready (see the file's comment), or undefined when it is. */
export function healthFault(ledger: Ledger, health: Health, knownNewest: number): DomainError | undefined {
  if (health.newerMigrations.length > 0) return new DomainError('unavailable', newerMigrationsMessage(health.newerMigrations, knownNewest));
  const clockFault = clockRefusal(ledger.clock.now(), health.clocks);
  if (clockFault !== undefined) return clockFault;
  const retired = ledger.checkpointer?.retired;
  if (retired !== undefined) return new DomainError('unavailable', `this server no longer signs checkpoints: ${retired.message}`);
  const held = ledger.checkpointer?.held;
  if (held !== undefined) return held;
  const wentBack = ledger.checkpointer?.wentBack;
  if (wentBack !== undefined) return wentBack;
  // Another process may have rotated the key since this one's last tick (the checkpointer
  // finds it at its next): said in the words the checkpointer uses when it finds out itself.
  const own = ledger.checkpointer?.signer.verifierKey;
  if (own !== undefined && health.logKey !== undefined && health.logKey !== own) {
    return new DomainError('unavailable', `this server no longer signs checkpoints: ${retiredKeyMessage(own, health.logKey)}`);
  }
  return undefined;
}

/** A timestamptz as the pool returns it (text in ISO 8601, or a Date), as ISO 8601. */
function isoOf(value: unknown): string {
  return new Date(value instanceof Date ? value : String(value)).toISOString();
}

/**
 * The refusal every write of this server gets for its clock, if any: more than
 * limits.clockBehindLedgerMsMax behind the ledger's time (batch-time.ts), or more than the
 * database's bound ahead of its clock (migration 047). Judged as the write path judges them,
 * so /healthz says what the writes hear, with the same rule.
 */
export function clockRefusal(now: Date, clocks: HealthClocks): DomainError | undefined {
  const clockAt = now.toISOString();
  const behindMs = Date.parse(clocks.ledgerAt) - now.getTime();
  if (behindMs > limits.clockBehindLedgerMsMax) {
    return new DomainError('unavailable', `this server's clock (${clockAt}) is ${Math.round(behindMs / 1000)} s behind the ledger's newest event (${clocks.ledgerAt}); at most ${limits.clockBehindLedgerMsMax / 1000} s is taken as clock drift, so every write is refused: check the clocks of this server and of the others writing to the ledger`, {
      rule: clockBehindLedgerRule, details: { ledgerAt: clocks.ledgerAt, clockAt, behindMsMax: limits.clockBehindLedgerMsMax },
    });
  }
  // A batch is dated by this clock or by the ledger's newest event, whichever is later
  // (batch-time.ts): the database's clock stepped back, or a standby's that lags, refuses every
  // write while the ledger's time is ahead of it, whatever this clock reads.
  const batchAtMs = Math.max(now.getTime(), Date.parse(clocks.ledgerAt));
  const aheadMs = batchAtMs - Date.parse(clocks.databaseAt);
  if (aheadMs > clocks.aheadMsMax) {
    const dated = batchAtMs === now.getTime() ? `this server's clock (${clockAt})` : `the ledger's newest event (${clocks.ledgerAt}), which dates this server's writes,`;
    const check = batchAtMs === now.getTime() ? "fix this server's clock" : "check the database host's clock (stepped back, or a standby's that lags) and the clocks of the servers that wrote the newest events";
    return new DomainError('unavailable', `${dated} is ${Math.round(aheadMs / 1000)} s ahead of the database's clock (${clocks.databaseAt}); at most ${clocks.aheadMsMax / 1000} s is taken as clock drift, so every write is refused: ${check}`, {
      rule: clockAheadOfDatabaseRule, details: { clockAt, ledgerAt: clocks.ledgerAt, databaseAt: clocks.databaseAt, aheadMsMax: clocks.aheadMsMax },
    });
  }
  return undefined;
}
