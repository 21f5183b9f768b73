/**
 * Client-side bounds on queries: a view of a pool whose every round trip is bounded
 * (withQueryTimeout), extended while the server still works on it; and one short query bounded
 * by its caller's deadline (queryWithin).
 */
import pg from 'pg';
import { limits } from '../core/limits.ts';

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
  const probeMs = Math.min(limits.stillWorkingProbeMs, timeoutMs);
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
 * Whether the server is still running the query in flight on `client`: its backend, by pid,
 * shows as 'active' in pg_stat_activity (a multi-statement text stays 'active' until its last
 * statement ends; a lock wait too), and not waiting on this very connection (wait_event_type
 * 'Client': ClientWrite, a reply it cannot deliver because the connection's network path died
 * while new connections still get through, a NAT or firewall entry dropped; ClientRead, a
 * COPY's rows that stopped coming). Asked on a new connection, outside the pool (whose
 * connections may all be busy), bounded by limits.stillWorkingProbeMs; any failure is "no".
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
 * then it waits another `timeoutMs`, and asks again, at most limits.stillWorkingExtensionsMax times.
 * Returns the function that stops it (the round trip was answered).
 */
function runOut(client: pg.PoolClient, timeoutMs: number, stillWorking: ((client: pg.PoolClient) => Promise<boolean>) | undefined, cut: () => void): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let extensions = 0;
  const arm = (): void => {
    timer = setTimeout(() => {
      if (stillWorking === undefined || extensions >= limits.stillWorkingExtensionsMax) return cut();
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

