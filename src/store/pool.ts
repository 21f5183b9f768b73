/**
 * The one way to reach PostgreSQL: a pg.Pool with our type parsers, session settings
 * (sessionSettingsSql) and limits.
 * int8 (bigint) comes back as a JS bigint only where we ask for it; counts and sequence
 * numbers we keep below 2^53 are parsed as numbers.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { isStatementTimeout, meaningOf, sqlState } from './sqlstate.ts';

// int8: sequence numbers and counts stay far below 2^53; value_minor is bigint-safe by
// the limit valueMinorMax. Parse to number, asserting safety.
pg.types.setTypeParser(20, (text: string) => {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`int8 value ${text} exceeds 2^53`);
  return value;
});
// date stays a 'YYYY-MM-DD' string: no time-zone shift.
pg.types.setTypeParser(1082, parseDate);
// timestamptz becomes an ISO 8601 string in UTC: rows stay plain JSON all the way to
// the events and the API, with one spelling of time.
pg.types.setTypeParser(1184, parseTimestamptz);

/** PostgreSQL's ISO output of a date: the year (four digits or more), month and day, maybe BC. */
const dateText = /^(\d{4,})-(\d\d)-(\d\d)( BC)?$/;

/**
 * A date as PostgreSQL writes it in the ISO style, as 'YYYY-MM-DD' (a year outside 1 to 9999
 * as toISOString writes one: sign and six digits, 1 BC the year 0). Anything else is refused,
 * as parseTimestamptz refuses: the identity passed '01/11/2026' (DateStyle 'SQL, DMY') on to
 * the API and to string comparisons with ISO days (shipments.ts, a booking's period) unnoticed.
 */
export function parseDate(text: string): string {
  const parts = dateText.exec(text);
  if (parts === null) throw new Error(`a date PostgreSQL wrote as ${JSON.stringify(text)}, not in the ISO style (DateStyle ISO) that chipledger reads`);
  const [, year, month, day, beforeChrist] = parts;
  if (year!.length === 4 && beforeChrist === undefined) return text;
  const number = beforeChrist ? 1 - Number(year) : Number(year);
  const spelt = number >= 0 && number <= 9999 ? String(number).padStart(4, '0') : `${number < 0 ? '-' : '+'}${String(Math.abs(number)).padStart(6, '0')}`;
  return `${spelt}-${month}-${day}`;
}

/** PostgreSQL's ISO output of a timestamptz: date, time, fraction, the session's offset (hours, maybe minutes and seconds), maybe BC. */
const timestamptzText = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

/**
 * A timestamptz as PostgreSQL writes it (DateStyle ISO, which every connection of the pool
 * sets: sessionSettingsSql; the session's time zone is whatever the server has, and any
 * offset reads right), to ISO 8601 in UTC, read field by field. new Date(text) read
 * '0050-01-01 00:00:00+00' as 1950 (years below 100 are taken as 19xx), and an offset with
 * seconds, as a non-UTC session writes for dates before time zones (+08:05:43), as no date
 * at all. Milliseconds are kept, as the API writes them.
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

/**
 * The session settings chipledger reads and writes by, whatever the server, the database or
 * the role sets (ALTER DATABASE/ROLE … SET, postgresql.conf, a managed service's defaults):
 * - DateStyle 'ISO, YMD': the date and timestamptz parsers above read the ISO style only
 *   ('SQL, DMY' writes 01/11/2026, and every read of a time failed); YMD orders the fields
 *   of any date text the server is given that is not ISO already.
 * - extra_float_digits 3: a double precision (a site's latitude and longitude) is written in
 *   full, so node-postgres's parseFloat gets the very value stored. Below 1 PostgreSQL
 *   rounds it (-12 read 41.0347 as 41), and 3 is exact on PostgreSQL before 12 as well.
 * - standard_conforming_strings on: a backslash in a quoted literal is itself, as the SQL
 *   texts we write assume (off, the '\x…' of a bytea read as escapes and every batch was
 *   refused; they no longer use such literals, but migrations and later texts need not care).
 * Sent as one statement text when a connection is made (pg-pool's onConnect, before the
 * connection serves anyone): one round trip per connection, none per query. Not as startup
 * parameters (the connection option `options: '-c …'`): PgBouncer before 1.20 refuses
 * connections that send one. PgBouncer in transaction pooling carries DateStyle and
 * standard_conforming_strings over to the server connection a transaction lands on (it
 * tracks the settings the server reports), not extra_float_digits: there the strict parsers
 * and the literals that need neither setting are what holds.
 */
export const sessionSettingsSql = "SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET standard_conforming_strings = on";

/**
 * Sets a new connection's session (sessionSettingsSql), bounded by `timeoutMs` (pg-pool's
 * connect bound stops once the connection is made). A failure fails the connect() or query
 * that asked for the connection, which pg-pool then closes: a connection lost or a bound run
 * out keeps its own error (isDatabaseUnavailable reads it), anything else is said as the
 * settings that could not be made.
 */
export async function setUpSession(client: Pick<pg.ClientBase, 'query'>, timeoutMs: number): Promise<void> {
  try {
    await client.query({ text: sessionSettingsSql, query_timeout: timeoutMs } as pg.QueryConfig);
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw error;
    throw new Error(`couldn't set a new PostgreSQL session as chipledger reads and writes by (${sessionSettingsSql}): ${(error as Error).message}`, { cause: error });
  }
}

/** How long making a connection may take, and then setting up its session. */
const connectTimeoutMs = 10_000;

export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.connectionsMax,
    application_name: options.applicationName,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: connectTimeoutMs,
    onConnect: (client) => setUpSession(client, connectTimeoutMs),
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

/** What node-postgres fails a query with when its query_timeout runs out (pg/lib/client.js); it has no code. */
export const queryTimeoutMessage = 'Query read timeout';

/** Whether `error` is a query that ran out of its client-side bound (withQueryTimeout). */
export function isQueryTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === queryTimeoutMessage;
}

/**
 * The same pool (its connections, its connectionsMax), with every query bounded to
 * `timeoutMs` on the client side: pg's per-query query_timeout for a query on the pool, a
 * timer for one on a checked-out client, and for a streamed one (a COPY, which pg does not
 * time) a timer of `streamTimeoutMs`. A query that runs out fails with queryTimeoutMessage
 * (isDatabaseUnavailable), and its connection is closed, never handed to another caller with
 * the query still on it (a caller need not send a ROLLBACK after it, inTransaction says why).
 *
 * Bounds no server-side setting can give: a database frozen (SIGSTOP, a stalled disk) or cut
 * off (a partition) sends no error and enforces none of its own timeouts, and a query in
 * flight would wait for TCP to give up (about 15 minutes), its caller unanswered.
 *
 * A view, not a pool option, because each user of the pool needs its own bound, and some none:
 * at start the migrations and the log check (a million leaves read in one snapshot, about
 * 6 s) run on the pool itself. serve hands a view to the HTTP API (limits.readQueryTimeoutMs:
 * reads take milliseconds); the sequencer views it for its batches (limits.writeQueryTimeoutMs,
 * above the head lock's wait, and writeStreamTimeoutMs for its COPYs) and the checkpointer for
 * its signings (their server-side bounds and a margin).
 */
export function withQueryTimeout(pool: pg.Pool, timeoutMs: number, streamTimeoutMs: number = timeoutMs, options: BoundOptions = {}): pg.Pool {
  for (const ms of [timeoutMs, streamTimeoutMs]) if (!Number.isSafeInteger(ms) || ms < 1) throw new Error(`assertion failed: a query timeout of ${ms} ms`);
  const probeMs = Math.min(stillWorkingProbeMs, timeoutMs);
  const stillWorking = options.whileServerWorks === true ? (client: pg.PoolClient) => serverStillWorks(pool, client, probeMs) : undefined;
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'query') {
        return (config: unknown, ...rest: unknown[]) => (target.query as (...args: unknown[]) => unknown)(boundConfig(config, timeoutMs), ...rest);
      }
      if (property === 'connect') {
        return async (...args: unknown[]) => {
          if (args.length > 0) throw new Error('assertion failed: connect() of a bounded pool takes no callback');
          return boundClient(await target.connect(), timeoutMs, streamTimeoutMs, stillWorking);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export interface BoundOptions {
  /**
   * When a checked-out client's round trip runs out of its bound, ask the server (on a
   * connection of its own) whether it is still working on it, and wait another bound if so.
   * For the ledger's batches: a healthy batch may hold many statements in one text (shipping
   * a dozen 100,000-unit shipments took 40 to 60 s here), each bounded by the server
   * (statement_timeout, lock_timeout), while a flat client bound cut them all off and failed
   * them again on every retry. What the client bound is for, a server that is frozen or
   * cut off, or a connection the network lost, answers no such question, or says the session
   * is not working on anything: then the connection is closed as before.
   */
  whileServerWorks?: boolean;
}

/**
 * How long asking the server whether it still works on a round trip may take, connect and
 * query (at most the round trip's own bound: a test's bound of a second is not stretched to
 * six). A frozen server answers no probe, so its callers hear at most this much later.
 */
export const stillWorkingProbeMs = 5_000;

/**
 * How many times a round trip's bound is extended because the server still works on it: past
 * that it is cut whatever the server says, so no answer of the probe makes a wait unbounded
 * (a write's 40 s bound: 400 s at most, far above the longest healthy batch seen, 60 s).
 */
export const stillWorkingExtensionsMax = 10;

/**
 * Whether the server is still running the query in flight on `client`: its backend, by pid,
 * shows as 'active' in pg_stat_activity (a multi-statement text stays 'active' until its last
 * statement ends; a lock wait too), and not waiting on this very connection (wait_event_type
 * 'Client': ClientWrite, a reply it cannot deliver because the connection's network path died
 * while new connections still get through, a NAT or firewall entry dropped; ClientRead, a
 * COPY's rows that stopped coming). Asked on a new connection, outside the pool (whose
 * connections may all be busy), bounded by stillWorkingProbeMs; any failure is "no".
 */
export async function serverStillWorks(pool: pg.Pool, client: pg.PoolClient, probeMs: number): Promise<boolean> {
  const pid = (client as unknown as { processID?: unknown }).processID;
  if (typeof pid !== 'number') return false;
  const options = (pool as unknown as { options: pg.ClientConfig }).options;
  // pg-pool keeps a password given on its own as a non-enumerable option: a spread drops it.
  const probe = new pg.Client({ ...options, password: options.password, connectionTimeoutMillis: probeMs, application_name: 'chipledger-still-working' });
  probe.on('error', () => {}); // a lost connection fails the query that uses it
  try {
    await probe.connect();
    const found = await probe.query<{ state: string | null; wait_event_type: string | null }>({ text: 'SELECT state, wait_event_type FROM pg_stat_activity WHERE pid = $1', values: [pid], query_timeout: probeMs } as pg.QueryConfig);
    const session = found.rows[0];
    return session?.state === 'active' && session.wait_event_type !== 'Client';
  } catch {
    return false;
  } finally {
    probe.end().catch(() => {});
  }
}

/** A query's config with query_timeout at most `timeoutMs` (a shorter one of its own stays). */
function boundConfig(config: unknown, timeoutMs: number): unknown {
  if (typeof config === 'string') return { text: config, query_timeout: timeoutMs };
  if (typeof config !== 'object' || config === null) return config;
  const own = (config as { query_timeout?: unknown }).query_timeout;
  return { ...config, query_timeout: typeof own === 'number' && own > 0 ? Math.min(own, timeoutMs) : timeoutMs };
}

/**
 * A client checked out of a bounded pool: its queries bounded, and closed once one ran out
 * (never handed back to the pool). A query is sent as the caller wrote it (its text a string
 * still, for whoever reads it on the way) and raced against a timer; a callback-style query
 * gets pg's query_timeout instead.
 */
function boundClient(client: pg.PoolClient, timeoutMs: number, streamTimeoutMs: number, stillWorking?: (client: pg.PoolClient) => Promise<boolean>): pg.PoolClient {
  let ranOut: Error | undefined;
  let released = false;
  const onTimeout = (error: Error): void => {
    ranOut = error;
  };
  const query = (config: unknown, ...rest: unknown[]): unknown => {
    const run = client.query as (...args: unknown[]) => unknown;
    if (typeof (config as { submit?: unknown } | null)?.submit === 'function') return run.call(client, boundStream(config as NodeJS.EventEmitter, client, streamTimeoutMs, onTimeout, stillWorking), ...rest);
    if (typeof rest.at(-1) === 'function') return run.call(client, boundConfig(config, timeoutMs), ...rest);
    return boundReply(run.call(client, config, ...rest) as Promise<unknown>, client, timeoutMs, onTimeout, stillWorking);
  };
  const release = (error?: Error | boolean): void => {
    // A stream that ran out was closed already; a second release must not throw.
    if (released) return;
    released = true;
    client.release(error || ranOut);
  };
  return new Proxy(client, {
    get(target, property) {
      if (property === 'query') return query;
      if (property === 'release') return release;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * A query's reply bounded by a timer: when it runs out first, the query fails with
 * queryTimeoutMessage and the connection is closed at once, which with a query in flight
 * destroys its socket: nothing more can be sent behind the abandoned query, and the server
 * rolls back whatever transaction was open on it (if it ever hears of it).
 */
function boundReply(reply: Promise<unknown>, client: pg.PoolClient, timeoutMs: number, onTimeout: (error: Error) => void, stillWorking?: (client: pg.PoolClient) => Promise<boolean>): Promise<unknown> {
  let stop: () => void = () => {};
  const ranOut = new Promise<never>((_resolve, reject) => {
    stop = runOut(client, timeoutMs, stillWorking, () => {
      const error = new Error(queryTimeoutMessage);
      onTimeout(error);
      reject(error);
      client.end().catch(() => {});
    });
  });
  // Once the bound ran out, the query's own failure (its connection closed) is no one's.
  reply.catch(() => {});
  return Promise.race([reply, ranOut]).finally(() => stop());
}

/**
 * Calls `cut` once `timeoutMs` passes, unless `stillWorking` says the server is still at it:
 * then it waits another `timeoutMs`, and asks again, at most stillWorkingExtensionsMax times.
 * Returns the function that stops it (the round trip was answered).
 */
function runOut(client: pg.PoolClient, timeoutMs: number, stillWorking: ((client: pg.PoolClient) => Promise<boolean>) | undefined, cut: () => void): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let extensions = 0;
  const arm = (): void => {
    timer = setTimeout(() => {
      if (stillWorking === undefined || extensions >= stillWorkingExtensionsMax) return cut();
      void stillWorking(client).then((working) => {
        if (stopped) return;
        if (!working) return cut();
        extensions += 1;
        arm();
      });
    }, timeoutMs);
  };
  arm();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * A streamed query (a COPY) bounded by a timer: pg's query_timeout would fire even after the
 * stream ended, on an object that then emits an error no one listens to. When the timer runs
 * out first, the client is ended, which with a query in flight destroys its socket: the
 * stream fails, and its reader with it.
 */
function boundStream<S extends NodeJS.EventEmitter>(stream: S, client: pg.PoolClient, timeoutMs: number, onTimeout: (error: Error) => void, stillWorking?: (client: pg.PoolClient) => Promise<boolean>): S {
  const done = runOut(client, timeoutMs, stillWorking, () => {
    const error = new Error(queryTimeoutMessage);
    onTimeout(error);
    const destroy = (stream as { destroy?: (error: Error) => void }).destroy;
    if (typeof destroy === 'function') destroy.call(stream, error);
    else stream.emit('error', error);
    client.end().catch(() => {});
  });
  for (const event of ['end', 'finish', 'close', 'error']) stream.once(event, done);
  return stream;
}

/**
 * A short query bounded by `timeoutMs` itself, for health checks: a check that gave up after
 * its own deadline must not leave the query holding a pooled connection for the pool's longer
 * bound (or, on a pool without one, until TCP gives up).
 */
export async function queryWithin<Row extends pg.QueryResultRow>(pool: pg.Pool, text: string, timeoutMs: number): Promise<Row[]> {
  // query_timeout is pg's per-query option, missing from @types/pg's QueryConfig.
  return (await pool.query<Row>({ text, query_timeout: timeoutMs } as pg.QueryConfig)).rows;
}

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
