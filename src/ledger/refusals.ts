/**
 * Turning what went wrong into the refusal a caller can act on: schema problems (with
 * every field), limits hit (413), and database refusals. Anything else is a bug and is
 * rethrown.
 */
import pg from 'pg';
import { DomainError, isDomainError } from '../core/errors.ts';
import { headMovedCode } from '../store/ledger-tables.ts';

export function invalidInput(kind: string, issues: ReadonlyArray<{ path: PropertyKey[]; message: string; code?: string; origin?: string }>): DomainError {
  const fields = issues.slice(0, 20).map((issue) => ({ path: issue.path.map(String).join('.') || '(body)', message: issue.message }));
  const first = fields[0];
  // A list over its named bound (a manifest over shipmentSerialsMax) is a limit hit: 413.
  const overList = issues.find((issue) => issue.code === 'too_big' && issue.origin === 'array');
  if (overList) {
    const path = overList.path.map(String).join('.');
    return new DomainError('payload_too_large', `couldn't take the ${kind} request: ${path}: ${overList.message}`, { rule: 'list-length-max', details: { fields } });
  }
  return new DomainError('invalid_input', `couldn't read the ${kind} request: ${first ? `${first.path}: ${first.message}` : 'invalid'}${fields.length > 1 ? ` (and ${fields.length - 1} more)` : ''}`, { details: { fields } });
}

/**
 * PostgreSQL errors that say "not now" rather than "not this": nothing was committed, and
 * the same command may succeed when sent again.
 * - 08: the connection failed; 57: an operator or shutdown cancelled it (57P01, 57014);
 * - 53100 disk full, 53200 out of memory, 53300 too many connections (not the rest of class
 *   53: 53400, a configured limit such as temp_file_limit, fails the same command again);
 * - 55P03: a lock not had in time (the head lock's wait bound, or an operator's lock_timeout);
 * - 40: the transaction was rolled back (40001 serialization failure, 40P01 deadlock);
 * - 25P03: the session idled in its transaction past idle_in_transaction_session_timeout.
 */
function isTransientDatabaseError(code: string): boolean {
  return code.startsWith('08') || code.startsWith('57') || code.startsWith('40') || ['53100', '53200', '53300', '55P03', '25P03'].includes(code);
}

/** Socket errors from Node: the database is unreachable, which the caller may retry. */
const networkErrorCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * The database refused what a command wrote: a constraint (class 23), or a value it cannot
 * hold (class 22: a date out of its range, text it cannot store) that our checks let
 * through. Either is the command's fault, not the batch's: the sequencer runs the batch's
 * commands one by one, so only the command that wrote it is refused.
 */
export function isConstraintError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('23') || code.startsWith('22'));
}

/**
 * Tables and constraints of the log and of the write path's own bookkeeping: a refusal there
 * (a tile that would change, a seq already taken, a key already stored) is no fault of the
 * command's, and must not be remembered as its answer.
 */
const bookkeeping = /^(tlog_|log_head|events|event_serials|event_reader_sets|idempotency_keys)/;

/** Whether a constraint error is about what the command wrote (its rows), not the write path's bookkeeping. */
export function isCommandsOwnRefusal(error: unknown): boolean {
  const { table, constraint } = error as { table?: unknown; constraint?: unknown };
  return ![table, constraint].some((name) => typeof name === 'string' && bookkeeping.test(name));
}

/** Database failures become refusals the caller can act on; bugs stay errors. */
export function toRefusal(error: unknown): DomainError {
  if (isDomainError(error)) return error;
  const pgError = error as { code?: string; constraint?: string; message?: string };
  if (pgError.code === headMovedCode) {
    // A batch sent ahead whose rollback could not be confirmed: nothing of it committed.
    return new DomainError('unavailable', 'another writer moved the ledger while the batch was on its way; retry with the same Idempotency-Key');
  }
  if (pgError.code === '23505') {
    return new DomainError('conflict', `the database refused a duplicate (${pgError.constraint ?? 'unique index'}): ${pgError.message ?? ''}`, { rule: pgError.constraint === 'units_gpu_uuid_key' ? 'invariant-4' : 'unique' });
  }
  if (pgError.code?.startsWith('23')) {
    return new DomainError('conflict', `the database refused the change: ${pgError.message ?? pgError.code}`, { rule: pgError.constraint ?? 'database-constraint' });
  }
  if (pgError.code?.startsWith('22')) {
    return new DomainError('invalid_input', `the database refused a value in the request: ${pgError.message ?? pgError.code}`, { rule: 'database-value' });
  }
  if (pgError.code === undefined || isTransientDatabaseError(pgError.code) || networkErrorCodes.has(pgError.code)) {
    if (error instanceof Error && !('code' in error) && !/connect|terminat|timeout|ECONN/i.test(error.message)) throw error;
    return new DomainError('unavailable', 'the database did not confirm the change; retry with the same Idempotency-Key to learn the outcome');
  }
  throw error;
}

/**
 * Whether a failure of a transaction's text proves that it did not commit: the server
 * reported it, at ERROR level, in a session that lives on. Such an error ends the
 * statement and skips the rest of the text, COMMIT included (an error at COMMIT rolls
 * back), and nothing after a COMMIT that went through can raise one. Anything else leaves
 * the outcome open: the connection lost (FATAL, or a socket error), or the client giving up
 * on a reply the server may still send (node-postgres's query_timeout, a value it cannot
 * parse), after which even a ROLLBACK succeeds, committed or not. `sessionLives`: a ROLLBACK
 * in the same session succeeded, which also covers a server whose messages are translated
 * (pg reports the severity as the server words it).
 */
export function provesNoCommit(error: unknown, sessionLives: boolean): boolean {
  return error instanceof pg.DatabaseError && (error.severity === 'ERROR' || sessionLives);
}

/**
 * A lock not had within its wait bound (SQLSTATE 55P03, lock_not_available). A batch sent
 * ahead waits only briefly (limits.aheadLockWaitMsMax) and then runs the classic way, with
 * the full wait; the sequencer asks this apart from isWorthRunningAgain.
 */
export function isLockTimeout(error: unknown): boolean {
  return (error as { code?: unknown }).code === '55P03';
}

/**
 * Whether a batch sent ahead failed because its guess was wrong or a row was refused (the
 * head moved, a key was stored before, a constraint or value our checks let through):
 * the classic way runs it again from the database's rows and answers each command. Other
 * failures that prove no commit (the database out of connections, say) are answered as they
 * are: running again would only wait for them a second time.
 */
export function isWorthRunningAgain(error: unknown): boolean {
  return (error as { code?: unknown }).code === headMovedCode || isConstraintError(error);
}
