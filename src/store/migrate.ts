/**
 * Forward-only migrations, applied at start under an advisory lock so that two processes
 * starting at once never race: the second waits, then finds nothing left to do.
 *
 * Each file in ./migrations runs in its own transaction together with its row in
 * schema_migrations, so a crash mid-migration leaves the previous version intact.
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

const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Any constant: the key of the advisory lock that migrations hold. */
const migrationLockKey = 7_201_964_011;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** The database's schema is not one this build may run on; an operating error, said without a stack. */
export class MigrationRefused extends Error {
  constructor(readonly reason: 'unknown_versions' | 'changed', readonly versions: readonly number[], message: string) {
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

/** Applies every migration not yet applied; returns the names it applied. */
export async function migrate(pool: pg.Pool): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [migrationLockKey]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = await client.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations');
    const applied = new Map(done.rows.map((row) => [row.version, row]));
    const migrations = listMigrations();
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
      await applyOne(client, migration);
      ran.push(migration.name);
    }
    return ran;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [migrationLockKey]).catch(() => {});
    client.release();
  }
}

/**
 * A version applied here but unknown to this build was applied by a newer chipledger: running
 * on its schema could break rules this code has never heard of, so nothing runs at all.
 */
function refuseUnknownVersions(applied: ReadonlyMap<number, { name: string }>, migrations: readonly Migration[]): void {
  const known = new Set(migrations.map((migration) => migration.version));
  const unknown = [...applied.entries()].filter(([version]) => !known.has(version)).sort(([a], [b]) => a - b);
  if (unknown.length === 0) return;
  const names = unknown.map(([version, row]) => `${version} (${row.name})`).join(', ');
  const newest = migrations.at(-1)?.version ?? 0;
  throw new MigrationRefused('unknown_versions', unknown.map(([version]) => version),
    `the database was migrated by a newer chipledger: it has migration${unknown.length === 1 ? '' : 's'} ${names}, which this build does not know (it knows up to ${newest}); run the newer chipledger against this database`);
}

async function applyOne(client: pg.PoolClient, migration: Migration): Promise<void> {
  try {
    await client.query('BEGIN');
    await client.query(migration.sql);
    await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [migration.version, migration.name, migration.checksum]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw new Error(`couldn't apply migration ${migration.name}: ${(error as Error).message}`, { cause: error });
  }
}
