/**
 * The one way to reach PostgreSQL: a pg.Pool with our type parsers (type-parsers.ts), session
 * settings (session-settings.ts) and limits, and the transactions run on it.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import './type-parsers.ts';
import { limits } from '../core/limits.ts';
import { setUpSession } from './session-settings.ts';
import { isQueryTimeout } from './query-timeout.ts';

export interface PoolOptions {
  url: string;
  /** Connections held at most by this process. */
  connectionsMax: number;
  applicationName: string;
}

export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.connectionsMax,
    application_name: options.applicationName,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: limits.connectTimeoutMs,
    onConnect: (client) => setUpSession(client, limits.connectTimeoutMs),
    // TCP keepalive: a connection whose peer vanished (a failover, a cut network) fails
    // instead of leaving its query waiting for ever.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client that loses its connection must not crash the process; the next
  // query on the pool gets a fresh connection.
  pool.on('error', () => {});
  // Nor may a client that is checked out: pg-pool listens for a client's errors only while
  // it is idle, and a connection lost in the middle of a ledger batch (the server killed
  // the backend, a failover) is also emitted as an 'error' event on the client, which
  // without a listener crashed the process with every queued command unanswered. The
  // query in flight fails on its own, as does any later one on that client (not
  // queryable), and release() drops it from the pool.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/**
 * A named (server-side prepared) form of a statement: each connection parses and plans it
 * once, which matters for the few statements every ledger batch sends.
 */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = preparedNames.get(text);
  if (name === undefined) {
    name = `cl_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
    preparedNames.set(text, name);
  }
  return { name, text, values };
}
const preparedNames = new Map<string, string>();

/** A pool, not one of its clients: a pool can run queries side by side. */
export function isPool(db: pg.Pool | pg.PoolClient): db is pg.Pool {
  return 'totalCount' in db;
}

/**
 * Runs `work` on one connection inside a transaction opened by `begin` (BEGIN with its
 * isolation level, say), commits, and returns what it returned; rolls back and rethrows
 * on any failure, and always gives the connection back.
 */
export async function inTransaction<T>(pool: pg.Pool, begin: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // Set when the connection must not serve anyone again: released with it, pg-pool closes it.
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // A query that ran out of its time (withQueryTimeout) is still in flight on this
    // connection, or the connection is closed: a ROLLBACK would queue behind it and wait out
    // a second bound, or fail. Closing the connection rolls the transaction back just as
    // well. A ROLLBACK that fails means the session is gone or lost track, and the connection
    // goes too.
    if (isQueryTimeout(error)) broken = error as Error;
    else await client.query('ROLLBACK').catch((rollbackError: unknown) => (broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))));
    throw error;
  } finally {
    client.release(broken);
  }
}

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/**
 * SET LOCAL statements that bound, for the rest of the transaction, how long it waits for
 * a lock and (with 'statements') how long each statement may run, in ms. At least 1 ms:
 * PostgreSQL reads 0 as no bound at all.
 */
export function waitBoundsSql(waitMs: number, bound: 'locks' | 'locks and statements'): string {
  const ms = Math.max(1, Math.trunc(waitMs));
  return `SET LOCAL lock_timeout = ${ms}${bound === 'locks' ? '' : `; SET LOCAL statement_timeout = ${ms}`}`;
}
