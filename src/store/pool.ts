/**
 * The one way to reach PostgreSQL: a pg.Pool with our type parsers and limits.
 * int8 (bigint) comes back as a JS bigint only where we ask for it; counts and sequence
 * numbers we keep below 2^53 are parsed as numbers.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';

// int8: sequence numbers and counts stay far below 2^53; value_minor is bigint-safe by
// the limit valueMinorMax. Parse to number, asserting safety.
pg.types.setTypeParser(20, (text: string) => {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`int8 value ${text} exceeds 2^53`);
  return value;
});
// date stays a 'YYYY-MM-DD' string: no time-zone shift.
pg.types.setTypeParser(1082, (text: string) => text);
// timestamptz becomes an ISO 8601 string in UTC: rows stay plain JSON all the way to
// the events and the API, with one spelling of time.
pg.types.setTypeParser(1184, parseTimestamptz);

/** PostgreSQL's ISO output of a timestamptz: date, time, fraction, the session's offset (hours, maybe minutes and seconds), maybe BC. */
const timestamptzText = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

/**
 * A timestamptz as PostgreSQL writes it (DateStyle ISO, its default; the session's time zone
 * is whatever the server has: no startup parameter sets it, since PgBouncer before 1.20
 * refuses connections that send one), to ISO 8601 in UTC, read field by field. new Date(text) read '0050-01-01 00:00:00+00' as 1950 (years below 100 are taken as
 * 19xx), and an offset with seconds, as a non-UTC session writes for dates before time
 * zones (+08:05:43), as no date at all. Milliseconds are kept, as the API writes them.
 */
export function parseTimestamptz(text: string): string {
  const parts = timestamptzText.exec(text);
  if (parts === null) throw new Error(`a timestamptz PostgreSQL wrote as ${JSON.stringify(text)}, not in the ISO style (DateStyle ISO, PostgreSQL's default) that chipledger reads`);
  const [, year, month, day, hour, minute, second, fraction = '', sign, offsetHours, offsetMinutes = '0', offsetSeconds = '0', beforeChrist] = parts;
  const at = new Date(0);
  // setUTCFullYear, unlike Date.UTC, takes years below 100 as they are; 1 BC is the year 0
  // (a session west of UTC writes 0001-01-01T00:00Z so).
  at.setUTCFullYear(beforeChrist ? 1 - Number(year) : Number(year), Number(month) - 1, Number(day));
  at.setUTCHours(Number(hour), Number(minute), Number(second), Number(fraction.padEnd(3, '0').slice(0, 3)));
  const offsetMs = (Number(offsetHours) * 3600 + Number(offsetMinutes) * 60 + Number(offsetSeconds)) * 1000;
  return new Date(at.getTime() - (sign === '+' ? offsetMs : -offsetMs)).toISOString();
}

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
    connectionTimeoutMillis: 10_000,
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
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
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
