/**
 * Whether a failure says "the database is not answering now" (isDatabaseUnavailable), from
 * node's network errors, pg's and pg-pool's messages and PostgreSQL's SQLSTATEs.
 */
import { isStatementTimeout, meaningOf, sqlState } from './sqlstate.ts';

/** Node's socket and name-lookup errors on the way to the database: unreachable now, which a caller may retry (the write path's refusals read them too). */
export const networkErrorCodes: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/**
 * pg and pg-pool failures without a code: pg-pool's connectionTimeoutMillis ("timeout
 * exceeded when trying to connect"), pg's lost connection ("Connection terminated
 * unexpectedly", "… due to connection timeout"), a client whose connection failed before,
 * and a query that ran out of its bound (withQueryTimeout).
 */
const unavailableMessage = /^(timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error and is not queryable|Query read timeout$)/;

/**
 * Whether `error` says "the database is not answering now" (retry later: 503) rather than
 * "this request is wrong" or a bug: a lost or refused connection, a server shutting down, a
 * connection not had in time, a query over its bound. query_canceled (57014) counts only when
 * a statement_timeout cancelled it (a bound of ours); an operator's cancel does not.
 * Not one predicate with the write path's isTransientDatabaseError (sqlstate.ts), which takes a
 * SQLSTATE only and answers "may succeed if sent again": a lock not had in time, a deadlock, an
 * operator's cancel are that, but the database answered them, and saying "not answering" of
 * them (the CLI, setUpSession) would send an operator looking for an outage. The API and the
 * CLI ask both, and word each its own way.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // net.connect to a name with several addresses fails with an AggregateError of each attempt.
  if (error instanceof AggregateError) return error.errors.length > 0 && error.errors.every(isDatabaseUnavailable);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (meaningOf(code).unavailable || networkErrorCodes.has(code)) return true;
    if (code === sqlState.queryCanceled) return isStatementTimeout(error);
    // No socket file where a Unix-socket DATABASE_URL points: the server is not running.
    if (code === 'ENOENT' && (error as NodeJS.ErrnoException).syscall === 'connect') return true;
  }
  return unavailableMessage.test(error.message);
}
