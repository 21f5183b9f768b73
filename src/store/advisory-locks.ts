/**
 * Waiting for a lock that another chipledger holds, with a bound and a word: who holds it
 * (the PostgreSQL session, from pg_locks), said after a few seconds and again when the bound
 * runs out. A holder frozen or cut off while it holds a session-level lock keeps it for as
 * long as that lasts (no timeout of PostgreSQL's ends an idle session), so an unbounded wait
 * behind it is a silent hang.
 */
import type pg from 'pg';
import { waitBoundsSql } from './pool.ts';
import { isLockTimeout, isStatementTimeout } from './sqlstate.ts';

type Queryable = pg.Pool | pg.PoolClient;

/** A session that holds (or, for a table, blocks) a lock, as pg_stat_activity shows it. */
export interface LockHolder {
  /** The PostgreSQL backend's pid: what pg_terminate_backend takes. */
  pid: number;
  /** The connection's application_name (chipledger's say which command: chipledger-serve, chipledger-check). */
  applicationName: string | null;
  /** 'idle', 'idle in transaction', 'active'; null where this role may not see it. */
  state: string | null;
  /** Seconds since the session's state last changed; null where this role may not see it. */
  stateSeconds: number | null;
}

const holderColumns = `a.pid, nullif(a.application_name, '') AS "applicationName", a.state,
  floor(extract(epoch FROM now() - a.state_change))::int AS "stateSeconds"`;

/**
 * The sessions holding the advisory lock `key` (the one-bigint form, which pg_locks shows as
 * classid = the high 32 bits, objid = the low 32 bits, objsubid = 1) in this database.
 */
export async function advisoryLockHolders(db: Queryable, key: number): Promise<LockHolder[]> {
  const result = await db.query<LockHolder>(
    `SELECT ${holderColumns} FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid
     ORDER BY a.pid`,
    [key],
  );
  return result.rows;
}

/** The sessions with these backend pids (those pg_blocking_pids names), by pid. */
export async function sessionsOf(db: Queryable, pids: readonly number[]): Promise<LockHolder[]> {
  if (pids.length === 0) return [];
  const result = await db.query<LockHolder>(`SELECT ${holderColumns} FROM pg_stat_activity a WHERE a.pid = ANY($1::int[]) ORDER BY a.pid`, [pids]);
  return result.rows;
}

/** "PostgreSQL session 4711 (chipledger-check, idle for 95 s)", for each holder; "a session that has since gone" for none. */
export function describeHolders(holders: readonly LockHolder[]): string {
  if (holders.length === 0) return 'a session that has since let it go';
  return holders.map((holder) => {
    const state = holder.state === null ? '' : `, ${holder.state}${holder.stateSeconds === null ? '' : ` for ${holder.stateSeconds} s`}`;
    return `PostgreSQL session ${holder.pid} (${holder.applicationName ?? 'no application name'}${state})`;
  }).join(', ');
}

/**
 * The statement that ends these sessions, for an operator to run, or undefined for none.
 * pg_terminate_backend takes one pid (a second argument is a timeout), so several sessions
 * (a table's blockers) are ended one by one.
 */
export function terminateSql(holders: readonly LockHolder[]): string | undefined {
  const pids = holders.map((holder) => Math.trunc(holder.pid));
  if (pids.length === 0) return undefined;
  return pids.length === 1 ? `SELECT pg_terminate_backend(${pids[0]})` : `SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[${pids.join(', ')}]) AS pid`;
}

/** A bound for people: "120 s", or "300 ms" under a second (tests' bounds). */
export function formatWait(ms: number): string {
  return ms >= 1_000 ? `${Math.round(ms / 1_000)} s` : `${Math.trunc(ms)} ms`;
}

export interface AdvisoryLockWait {
  /** The longest wait in all, in ms. */
  waitMs: number;
  /** After how long the wait is said, once (limits.lockWaitNoticeDelayMs). */
  noticeAfterMs: number;
  /** Says the wait: "waiting for <what>, held by <holders>". */
  notice: (line: string) => void;
  /** What the lock stands for, for the notice: "another chipledger's migrations". */
  what: string;
}

export type AdvisoryLockOutcome = { kind: 'locked' } | { kind: 'timed_out'; holders: LockHolder[] };

/**
 * Takes the session-level advisory lock `key` on `client`, waiting at most `wait.waitMs`:
 * first until the notice is due, then (after saying who holds it) for the rest. Each try is
 * one transaction with its own lock_timeout and statement_timeout (SET LOCAL), so the
 * session's own settings are left as they were; the lock, session-level, outlives it.
 * Returns who held the lock when the bound ran out, for the caller's refusal.
 */
export async function takeAdvisoryLock(client: pg.PoolClient, key: number, wait: AdvisoryLockWait): Promise<AdvisoryLockOutcome> {
  // performance.now() is monotonic: a step of the wall clock neither cuts the wait short nor stretches it.
  const startedMs = performance.now();
  let noticed = false;
  for (;;) {
    const leftMs = wait.waitMs - (performance.now() - startedMs);
    if (leftMs < 1) return { kind: 'timed_out', holders: await advisoryLockHolders(client, key) };
    const tryMs = noticed ? leftMs : Math.min(leftMs, wait.noticeAfterMs);
    if (await tryAdvisoryLock(client, key, tryMs)) return { kind: 'locked' };
    if (!noticed && wait.waitMs - (performance.now() - startedMs) >= 1) {
      wait.notice(`waiting for ${wait.what}: its lock is held by ${describeHolders(await advisoryLockHolders(client, key))}; waiting at most ${formatWait(wait.waitMs)} in all`);
      noticed = true;
    }
  }
}

/** Whether the lock was had within `waitMs`; false when the wait's bound ran out (55P03, 57014). */
async function tryAdvisoryLock(client: pg.PoolClient, key: number, waitMs: number): Promise<boolean> {
  try {
    await client.query(`BEGIN; ${waitBoundsSql(waitMs, 'locks and statements')}; SELECT pg_advisory_lock(${Math.trunc(key)}); COMMIT`);
    return true;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      throw error;
    });
    if (isWaitBoundError(error)) return false;
    throw error;
  }
}

/**
 * Whether `error` is a bound set with waitBoundsSql running out: the lock's (55P03) or the
 * statement's (57014 with "statement timeout"; not a cancel by hand, which shares the code).
 */
export function isWaitBoundError(error: unknown): boolean {
  return isLockTimeout(error) || isStatementTimeout(error);
}
