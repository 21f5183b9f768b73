/**
 * Forward-only migrations, applied at start under an advisory lock so that two processes
 * starting at once never race: the second waits, then finds nothing left to do. It waits at
 * most limits.migrationLockWaitMsMax, saying after a few seconds whose session holds the lock.
 *
 * Each file in ./migrations runs in its own transaction together with its row in
 * schema_migrations, so a crash mid-migration leaves the previous version intact. Its wait
 * for each table lock is bounded too (limits.migrationTableLockWaitMsMax): a migration stuck
 * behind a long or idle transaction would otherwise queue every reader and writer of that
 * table behind its pending ACCESS EXCLUSIVE lock, for as long as that transaction lasted.
 *
 * A database this build cannot vouch for is refused before anything is applied: one migrated by
 * a newer chipledger (versions we do not know: its schema may hold rules this code would break)
 * or one whose applied migration file has since changed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type pg from 'pg';
import { limits } from '../core/limits.ts';
import { describeHolders, formatWait, sessionsOf, takeAdvisoryLock, terminateSql, type LockHolder } from './advisory-locks.ts';
import { waitBoundsSql } from './pool.ts';
import { isLockTimeout, sqlState } from './sqlstate.ts';
import { ensureWriterLogin, grantWriterRights, knownWriterRoles, recordWriterRole, writerCreationProblem, writerRoleProblem } from './writer-role.ts';

const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Any constant: the key of the advisory lock that migrations hold. */
const migrationLockKey = 7_201_964_011;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/**
 * The database's schema is not one this build may run on, or this connection may not bring it
 * there ('read_only', 'not_permitted': the migrations it needs, in `versions`), or not now
 * ('lock_busy': another session held the migrations' lock past its bound, `versions` empty;
 * 'table_locked': the migration in `versions` waited for a table past its bound, and nothing
 * of it was applied; 'stopped': the migration in `versions` stopped itself, naming what a
 * person must decide first, and its hint); an operating error, said without a stack.
 */
export class MigrationRefused extends Error {
  constructor(readonly reason: 'unknown_versions' | 'changed' | 'read_only' | 'not_permitted' | 'lock_busy' | 'table_locked' | 'server_version' | 'stopped' | 'writer_role', readonly versions: readonly number[], message: string) {
    super(message);
    this.name = 'MigrationRefused';
  }
}

export function listMigrations(): Migration[] {
  return readdirSync(migrationsDir)
    .filter((file) => /^\d{3}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const sql = readFileSync(join(migrationsDir, file), 'utf8');
      return {
        version: Number(file.slice(0, 3)),
        name: file,
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
}

/** The bounds of migrate()'s waits; tests give small ones. */
export interface MigrateOptions {
  /** How long to wait for another chipledger's migrations (limits.migrationLockWaitMsMax). */
  lockWaitMs?: number;
  /** How long one migration waits for a table lock (limits.migrationTableLockWaitMsMax). */
  tableLockWaitMs?: number;
  /** After how long a wait is said, and how often a migration's wait for a table is looked at (limits.lockWaitNoticeDelayMs). */
  noticeAfterMs?: number;
  /** Where a wait is said; standard error by default. */
  notice?: (line: string) => void;
  /**
   * The role every other connection writes as (store/writer-role.ts): granted its rights once the
   * migrations are applied, under their lock; with `password`, first made a login role with it
   * (the embedded cluster, whose owner may make roles).
   */
  writer?: { role: string; password?: string };
}

interface MigrateBounds {
  lockWaitMs: number;
  tableLockWaitMs: number;
  noticeAfterMs: number;
  notice: (line: string) => void;
}

function boundsOf(options: MigrateOptions): MigrateBounds {
  return {
    lockWaitMs: options.lockWaitMs ?? limits.migrationLockWaitMsMax,
    tableLockWaitMs: options.tableLockWaitMs ?? limits.migrationTableLockWaitMsMax,
    noticeAfterMs: options.noticeAfterMs ?? limits.lockWaitNoticeDelayMs,
    notice: options.notice ?? ((line: string) => void process.stderr.write(`chipledger: ${line}\n`)),
  };
}

/** Applies every migration not yet applied; returns the names it applied. */
/**
 * Connections migrate() needs of a pool of its own: the session that migrates, and one that
 * looks, while a migration waits for a table, at which table and whose session it waits for
 * (applyOne). With one, every look waited for the migrating session's connection and failed,
 * and the refusal named neither.
 */
export const migratePoolConnections = 2;

export async function migrate(pool: pg.Pool, options: MigrateOptions = {}): Promise<string[]> {
  const bounds = boundsOf(options);
  const client = await pool.connect();
  try {
    await refuseOldServer(client);
    await takeMigrationLock(client, bounds);
    const migrations = listMigrations();
    const applied = await appliedMigrations(client, migrations);
    refuseUnknownVersions(applied, migrations);
    const ran: string[] = [];
    for (const migration of migrations) {
      const previous = applied.get(migration.version);
      if (previous) {
        if (previous.checksum !== migration.checksum) {
          throw new MigrationRefused('changed', [migration.version], `migration ${migration.name} was changed after it was applied (applied ${previous.checksum.slice(0, 12)}, now ${migration.checksum.slice(0, 12)}); add a new migration instead`);
        }
        continue;
      }
      try {
        await applyOne(pool, client, migration, bounds);
      } catch (error) {
        throw refusedForRights(error, migrations.filter((each) => !applied.has(each.version) && !ran.includes(each.name))) ?? error;
      }
      ran.push(migration.name);
    }
    if (options.writer !== undefined || ran.length > 0) await grantWriters(client, options.writer);
    return ran;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [migrationLockKey]).catch(() => {});
    client.release();
  }
}

/**
 * The writers' rights, in one transaction: a process that writes as a writer sees them all or
 * none. The writer given, and every writer the database already has (knownWriterRoles,
 * migration 058's writer_roles): a migration run without the writer named (`chipledger migrate`
 * given DATABASE_URL alone) still grants the servers' writer the rights on the tables it made.
 * A role that could switch the triggers off, or shadow a table, is refused (writer_role), and
 * nothing is granted to it (the migrations before it stay applied). A start whose writers hold
 * their rights already writes nothing.
 */
async function grantWriters(client: pg.PoolClient, writer: { role: string; password?: string } | undefined): Promise<void> {
  const refused = (problem: string) => new MigrationRefused('writer_role', [], `${problem}; nothing was granted to it (the database's migrations are applied)`);
  await client.query('BEGIN');
  try {
    if (writer?.password !== undefined) await ensureWriterLogin(client, writer.role, writer.password);
    const known = await knownWriterRoles(client);
    const roles = new Set([...(writer === undefined ? [] : [writer.role]), ...known]);
    for (const role of roles) {
      const problem = await writerRoleProblem(client, role);
      if (problem !== undefined) throw refused(problem);
      const held = (await grantWriterRights(client, role)) ?? (await writerCreationProblem(client, role));
      if (held !== undefined) throw refused(held);
      if (!known.includes(role)) await recordWriterRole(client, role);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    const server = error as { code?: string; message?: string };
    if (server.code !== sqlState.insufficientPrivilege) throw error;
    throw new MigrationRefused('not_permitted', [], `couldn't grant ${writer === undefined ? "the database's writer roles their" : `the writer role ${writer.role} its`} rights (${server.message}, SQLSTATE ${server.code}): DATABASE_URL must log in as the owner of chipledger's tables`);
  }
}

/**
 * The migrations applied so far, by version. schema_migrations is created only where it is
 * missing (to_regclass): a database already migrated then takes no DDL at all, so a role that
 * may only read and write rows, or a read-only connection, runs chipledger on it (CREATE TABLE
 * IF NOT EXISTS needs the right to create in the schema even when the table is there).
 */
async function appliedMigrations(client: pg.PoolClient, migrations: readonly Migration[]): Promise<Map<number, { name: string; checksum: string }>> {
  const found = await client.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  if (!found.rows[0]!.present) {
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    } catch (error) {
      throw refusedForRights(error, migrations) ?? error;
    }
  }
  const done = await client.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations');
  return new Map(done.rows.map((row) => [row.version, row]));
}

/** What SQLSTATE 25006 (read_only_sql_transaction) and 42501 (insufficient_privilege) mean to a migration. */
const withoutRights: Readonly<Record<string, { reason: 'read_only' | 'not_permitted'; what: string; fix: string }>> = {
  [sqlState.readOnlySqlTransaction]: {
    reason: 'read_only',
    what: 'the connection is read-only',
    fix: "run chipledger migrate as the database's owner on a connection that may write (the primary, without default_transaction_read_only)",
  },
  [sqlState.insufficientPrivilege]: { reason: 'not_permitted', what: "this role may not change the database's schema", fix: "run chipledger migrate as the database's owner" },
};

/**
 * A migration this connection may not apply, as one line that names the fix (MigrationRefused),
 * or undefined for any other failure. `pending`: the migrations the database still needs.
 */
function refusedForRights(error: unknown, pending: readonly Migration[]): MigrationRefused | undefined {
  // applyOne wraps the server's error (its cause) with the migration's name.
  const server = [error, (error as { cause?: unknown } | undefined)?.cause].find((each) => typeof (each as { code?: unknown } | undefined)?.code === 'string') as { code: string; message: string } | undefined;
  if (server === undefined || !Object.hasOwn(withoutRights, server.code)) return undefined;
  const rights = withoutRights[server.code]!;
  const first = pending[0]?.name ?? 'schema_migrations';
  const needs = `${pending.length} migration${pending.length === 1 ? '' : 's'} (from ${first})`;
  return new MigrationRefused(rights.reason, pending.map((each) => each.version),
    `the database needs ${needs}, which this connection may not apply: ${rights.what} (${server.message}, SQLSTATE ${server.code}); ${rights.fix}, then run this command again`);
}

/**
 * A version applied here but unknown to this build was applied by a newer chipledger: running
 * on its schema could break rules this code has never heard of, so nothing runs at all.
 */
function refuseUnknownVersions(applied: ReadonlyMap<number, { name: string }>, migrations: readonly Migration[]): void {
  const known = new Set(migrations.map((migration) => migration.version));
  const unknown = [...applied.entries()].filter(([version]) => !known.has(version)).sort(([a], [b]) => a - b);
  if (unknown.length === 0) return;
  throw new MigrationRefused('unknown_versions', unknown.map(([version]) => version),
    newerMigrationsMessage(unknown.map(([version, row]) => ({ version, name: row.name })), migrations.at(-1)?.version ?? 0));
}

/** What a database migrated by a newer chipledger is told, here and by /healthz (server/health.ts). */
export function newerMigrationsMessage(newer: ReadonlyArray<{ version: number; name: string }>, knownNewest: number): string {
  const names = newer.map((migration) => `${migration.version} (${migration.name})`).join(', ');
  return `the database was migrated by a newer chipledger: it has migration${newer.length === 1 ? '' : 's'} ${names}, which this build does not know (it knows up to ${knownNewest}); run the newer chipledger against this database`;
}

/**
 * The oldest PostgreSQL chipledger runs on. The triggers of migrations 015, 023 and 035 call
 * jsonb_path_exists, and history pages read WITH … AS MATERIALIZED (store/event-queries.ts):
 * both 12's. PL/pgSQL resolves a function only when the body runs, so on 11 every migration
 * applied and the first booking answered 500; on 10, 001 failed half-way with a stack.
 * Migration 050 compares models, identifiers and references in NFKC, by normalize(), 13's.
 */
export const serverVersionNumMin = 130_000;

/** Refuses, before anything is read or written, a server older than serverVersionNumMin. */
export async function refuseOldServer(client: Pick<pg.PoolClient, 'query'>): Promise<void> {
  const { rows } = await client.query<{ num: string; version: string }>("SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version");
  if (Number(rows[0]!.num) >= serverVersionNumMin) return;
  throw new MigrationRefused('server_version', [],
    `the database server is PostgreSQL ${rows[0]!.version}; chipledger needs PostgreSQL 13 or later (it uses normalize(), jsonb_path_exists and WITH … AS MATERIALIZED), so nothing was applied: upgrade the server, or point DATABASE_URL at a newer one`);
}

/**
 * Waits for the migrations' lock within its bound; past it, refuses the start naming the
 * session that holds it (a chipledger still migrating a large table, or one frozen or cut off
 * while it held the lock: its session is idle, and only ending it frees the lock).
 */
async function takeMigrationLock(client: pg.PoolClient, bounds: MigrateBounds): Promise<void> {
  const outcome = await takeAdvisoryLock(client, migrationLockKey, { waitMs: bounds.lockWaitMs, noticeAfterMs: bounds.noticeAfterMs, notice: bounds.notice, what: "another chipledger's migrations" });
  if (outcome.kind === 'locked') return;
  const terminate = terminateSql(outcome.holders);
  const ending = terminate === undefined ? '' : `, or end its session (${terminate})`;
  throw new MigrationRefused('lock_busy', [],
    `couldn't check the database's schema: waited ${formatWait(bounds.lockWaitMs)} for another chipledger's migrations, whose lock is still held by ${describeHolders(outcome.holders)}; `
    + `run this command again once that process has finished, or if it is frozen or gone, stop it${ending}`);
}

/** One migration applied as migrate() applies it (with its lock held): for tests of a migration's bounds. */
export function applyMigration(pool: pg.Pool, client: pg.PoolClient, migration: Migration, options: MigrateOptions = {}): Promise<void> {
  return applyOne(pool, client, migration, boundsOf(options));
}

/**
 * Runs one migration and records it, in one transaction. Its waits for table locks are
 * bounded (SET LOCAL lock_timeout); while its statements run, the migration's own session is
 * looked at every noticeAfterMs from another connection, to say which table it waits for and
 * who holds it: PostgreSQL's lock timeout names neither. A lock timeout rolls everything of
 * the migration back, and is refused naming the migration and the table.
 */
async function applyOne(pool: pg.Pool, client: pg.PoolClient, migration: Migration, bounds: MigrateBounds): Promise<void> {
  let waitSeen: TableWait | undefined;
  let ended = false;
  const watcher = setInterval(() => {
    tableWaitOf(pool, client).then((found) => {
      if (ended || found === undefined || found.table === waitSeen?.table) return;
      waitSeen = found;
      bounds.notice(`migration ${migration.name} waits for a lock on table ${found.table}, held by ${describeHolders(found.holders)}; it gives up after ${formatWait(bounds.tableLockWaitMs)}`);
    }, () => {}); // a look that fails only leaves the wait unnamed
  }, Math.max(1, Math.trunc(bounds.noticeAfterMs)));
  try {
    await client.query('BEGIN');
    await client.query(waitBoundsSql(bounds.tableLockWaitMs, 'locks'));
    await client.query(migration.sql);
    await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [migration.version, migration.name, migration.checksum]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    if (isLockTimeout(error)) throw tableLocked(migration, waitSeen, bounds);
    throw migrationFailed(migration, error);
  } finally {
    ended = true;
    clearInterval(watcher);
  }
}

/** SQLSTATE P0001, raise_exception: a RAISE EXCEPTION that names no other code. */
const raiseExceptionCode = 'P0001';

/**
 * A migration that failed, with the database's HINT where it gave one. A migration's own
 * RAISE (P0001: it found what it will not change, or a server it cannot run on, and its HINT
 * says what a person must do; 027, 050) is a refusal in one line, without a stack
 * (cli/program.ts says a MigrationRefused as it is); anything else is a bug of the migration
 * or of the database, with its cause, and its HINT too.
 */
function migrationFailed(migration: Migration, error: unknown): Error {
  const { code, hint } = error as { code?: unknown; hint?: unknown };
  const said = `couldn't apply migration ${migration.name}: ${(error as Error).message}${typeof hint === 'string' && hint !== '' ? `; ${hint}` : ''}`;
  if (code === raiseExceptionCode) return new MigrationRefused('stopped', [migration.version], `${said} (nothing of it was applied)`);
  return new Error(said, { cause: error });
}

/** A table lock the migration's session waits for, and the sessions it waits behind. */
interface TableWait {
  table: string;
  holders: LockHolder[];
}

async function tableWaitOf(pool: pg.Pool, client: pg.PoolClient): Promise<TableWait | undefined> {
  const pid = (client as unknown as { processID: number | null }).processID;
  if (pid === null) return undefined;
  const found = await pool.query<{ table: string; blockers: number[] }>(
    `SELECT l.relation::regclass::text AS table, pg_blocking_pids($1) AS blockers
     FROM pg_locks l WHERE l.pid = $1 AND l.locktype = 'relation' AND NOT l.granted LIMIT 1`,
    [pid],
  );
  const row = found.rows[0];
  return row === undefined ? undefined : { table: row.table, holders: await sessionsOf(pool, row.blockers) };
}

function tableLocked(migration: Migration, seen: TableWait | undefined, bounds: MigrateBounds): MigrationRefused {
  const what = seen === undefined ? 'a lock on a table it changes' : `a lock on table ${seen.table}, held by ${describeHolders(seen.holders)}`;
  const terminate = terminateSql(seen?.holders ?? []);
  const ending = terminate === undefined ? '' : ` (or end it: ${terminate})`;
  return new MigrationRefused('table_locked', [migration.version],
    `couldn't apply migration ${migration.name}: it waited ${formatWait(bounds.tableLockWaitMs)} for ${what}, and nothing of it was applied; `
    + `run this command again once that session's transaction has ended${ending}`);
}
