/**
 * When a batch happens: dated by this process's clock, but never before the newest event
 * committed (log_head.at, migration 031), so event times never go back in commit order.
 */
import { DomainError, assert } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Clock } from '../core/clock.ts';
import type { BatchHead, LogHead } from '../store/head-lock.ts';

/** The rule of a batch refused because this server's clock reads too far before the ledger's time. */
export const clockBehindLedgerRule = 'clock-behind-ledger';

/**
 * A batch's time: the clock's, or the newest committed event's (`head.at`) when the clock
 * reads earlier (it lags another process's clock, or was stepped back). ISO 8601, to the
 * millisecond, as head.at is kept. Refused 'unavailable' when the clock reads more than
 * limits.clockBehindLedgerMsMax earlier: a clock that far off, here or on the server that
 * dated the newest event, is a fault to fix, not drift to absorb.
 *
 * A clock that reads ahead is not refused here: this process reads no other clock to compare
 * it with (a batch sent ahead makes no round trip before it is dated). The database refuses a
 * batch dated more than limits.clockAheadOfDatabaseMsMax ahead of its own clock (migration
 * 047, rule clock-ahead-of-database, ledger/refusals.ts), on every writer's path.
 */
export function batchTime(clock: Clock, head: BatchHead): string {
  const newestMs = Date.parse(head.at);
  assert(Number.isFinite(newestMs), 'the log head carries the time of its newest event');
  const nowMs = clock.now().getTime();
  if (newestMs - nowMs > limits.clockBehindLedgerMsMax) {
    throw new DomainError('unavailable', `the ledger's newest event is dated ${head.at}, ${Math.round((newestMs - nowMs) / 1000)} s ahead of this server's clock (${new Date(nowMs).toISOString()}); at most ${limits.clockBehindLedgerMsMax / 1000} s is taken as clock drift: check the clocks of this server and of the others writing to the ledger`, {
      rule: clockBehindLedgerRule, details: { ledgerAt: head.at, clockAt: new Date(nowMs).toISOString(), behindMsMax: limits.clockBehindLedgerMsMax },
    });
  }
  return new Date(Math.max(nowMs, newestMs)).toISOString();
}

/** The head a batch committed at `at` left: its time moved only if the batch wrote events (migration 031). */
export function headAfter(before: BatchHead, committed: LogHead, at: string): BatchHead {
  return { size: committed.size, root: committed.root, at: committed.size > before.size ? at : before.at };
}
