/**
 * What a PostgreSQL SQLSTATE means to us, in one place: "not now" (the same command may
 * succeed when sent again), "the database is not answering", and the words a refusal or a
 * CLI line says for it. The write path (refusals.ts), the API's 503s (database-unavailable.ts's
 * isDatabaseUnavailable, app.ts) and the CLI read the one table below, so a code added to
 * it is classified and worded everywhere at once.
 */

/** SQLSTATEs we act on, by PostgreSQL's condition names (Appendix A of its manual). */
export const sqlState = {
  uniqueViolation: '23505',
  readOnlySqlTransaction: '25006',
  idleInTransactionSessionTimeout: '25P03',
  invalidAuthorizationSpecification: '28000',
  invalidPassword: '28P01',
  invalidCatalogName: '3D000',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  insufficientPrivilege: '42501',
  duplicateDatabase: '42P04',
  diskFull: '53100',
  outOfMemory: '53200',
  tooManyConnections: '53300',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
} as const;

/** Classes of SQLSTATE (a code's first two characters) that we read whole. */
export const sqlStateClass = { connectionException: '08', invalidAuthorization: '28', transactionRollback: '40', operatorIntervention: '57' } as const;

export interface SqlStateMeaning {
  /**
   * "Not now" rather than "not this": nothing was committed, and the same command may succeed
   * when sent again (the write path answers unavailable, to retry with the same key).
   */
  transient: boolean;
  /**
   * The database cannot be reached or is going away: a narrower "not now". A lock not had in
   * time, a deadlock, an operator's cancel are transient, but the database answered them, and
   * saying "not answering" of them would send an operator looking for an outage.
   */
  unavailable: boolean;
  /** What it is, for a refusal or a CLI line, without PostgreSQL's own message (a full disk's names a file on the server, which the API does not show its clients). */
  words?: string;
}

/**
 * The meanings, by class and by code; a code's entry overrides its class's field by field (57P01
 * is unavailable, and worded as its class). Every transient code or class has words, and only
 * those: sqlstate.test.ts holds the table to that.
 * - 08: the connection failed; 57: an operator or shutdown cancelled the statement;
 * - 53100 disk full, 53200 out of memory, 53300 too many connections (not the rest of class
 *   53: 53400, a configured limit such as temp_file_limit, fails the same command again);
 * - 55P03: a lock not had in time (the head lock's wait bound, or an operator's lock_timeout);
 * - 40: the transaction was rolled back (40001 serialization failure, 40P01 deadlock);
 * - 25P03: the session idled in its transaction past idle_in_transaction_session_timeout;
 * - 25006: the connection writes nothing, a standby's after a failover (until the address
 *   leads to the new primary) or a session told read-only. Nothing was written, and a retry
 *   may reach a primary: unavailable, not a bug (500).
 * 57014 (query_canceled) is unavailable only when a statement_timeout cancelled it (a bound
 * of ours; isStatementTimeout), which its code alone does not say.
 */
export const sqlStateMeanings: ReadonlyMap<string, Partial<SqlStateMeaning>> = new Map<string, Partial<SqlStateMeaning>>([
  [sqlStateClass.connectionException, { transient: true, unavailable: true, words: 'a connection failure' }],
  [sqlStateClass.transactionRollback, { transient: true, unavailable: false, words: 'a transaction rolled back' }],
  [sqlStateClass.operatorIntervention, { transient: true, unavailable: false, words: 'an operator ending or cancelling the statement' }],
  [sqlState.serializationFailure, { words: 'a serialization failure (another session changed what this transaction read)' }],
  [sqlState.deadlockDetected, { words: 'a deadlock with another session, which PostgreSQL broke by failing this statement' }],
  [sqlState.queryCanceled, { words: 'a statement cancelled' }],
  [sqlState.adminShutdown, { unavailable: true }],
  [sqlState.crashShutdown, { unavailable: true }],
  [sqlState.cannotConnectNow, { unavailable: true }], // starting up or in recovery
  [sqlState.diskFull, { transient: true, words: "the database's disk full" }],
  [sqlState.outOfMemory, { transient: true, words: 'the database out of memory' }],
  [sqlState.tooManyConnections, { transient: true, unavailable: true, words: 'every connection slot taken' }],
  [sqlState.lockNotAvailable, { transient: true, words: 'a lock not had in time (another session holds what the statement needs)' }],
  [sqlState.idleInTransactionSessionTimeout, { transient: true, words: 'a transaction left idle past idle_in_transaction_session_timeout' }],
  [sqlState.readOnlySqlTransaction, { transient: true, unavailable: true, words: 'a read-only connection (a standby)' }],
]);

const meaningless: SqlStateMeaning = { transient: false, unavailable: false };

/** What `code` means to us: its class's meaning, overridden by its own entry's. */
export function meaningOf(code: string): SqlStateMeaning {
  return { ...meaningless, ...sqlStateMeanings.get(code.slice(0, 2)), ...sqlStateMeanings.get(code) };
}

/** The SQLSTATE of a PostgreSQL error; undefined for anything else (Node's ECONNRESET, a bug's TypeError, a value that is no error). */
export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** PostgreSQL errors that say "not now" rather than "not this" (see sqlStateMeanings). */
export function isTransientDatabaseError(code: string): boolean {
  return meaningOf(code).transient;
}

/** Words for a SQLSTATE that says "not now, try again" (see SqlStateMeaning.words). */
export function transientDatabaseErrorWords(code: string): string {
  return meaningOf(code).words ?? 'a passing condition of the database';
}

/** A lock not had within its wait bound (lock_not_available): lock_timeout ran out. */
export function isLockTimeout(error: unknown): boolean {
  return sqlStateOf(error) === sqlState.lockNotAvailable;
}

/**
 * A statement cancelled because it ran past statement_timeout: a bound of ours. An operator's
 * cancel (pg_cancel_backend) shares the code, and only PostgreSQL's message tells them apart.
 */
export function isStatementTimeout(error: unknown): boolean {
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return sqlStateOf(error) === sqlState.queryCanceled && typeof message === 'string' && message.includes('statement timeout');
}
