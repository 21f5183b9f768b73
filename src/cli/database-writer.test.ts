/**
 * DATABASE_WRITER_URL (store/writer-role.ts): with it, the migrations run as DATABASE_URL's
 * owner and every other connection logs in as the writer, which then cannot switch the
 * triggers off; a writer that could is refused before anything is served; and the settings are
 * checked as one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { MigrationRefused } from '../store/migrate.ts';
import { readConfig, type Config } from './config.ts';
import { openDatabase } from './database.ts';
import { Failure } from './output.ts';

let database: TestDatabase;
const role = `cl_writer_${randomBytes(4).toString('hex')}`;
const password = randomBytes(12).toString('hex');
let writerUrl: string;

beforeAll(async () => {
  database = await createTestDatabase();
  await database.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  const url = new URL(database.url);
  url.username = role;
  url.password = password;
  writerUrl = url.toString();
});
afterAll(async () => {
  await database.drop();
  const { Client } = (await import('pg')).default;
  const admin = new Client({ connectionString: database.url.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${role}`).finally(() => admin.end());
});

function configWith(env: Record<string, string>): Config {
  const read = readConfig(env, {}, '/tmp');
  if (!read.ok) throw new Error(read.problems.join('; '));
  return read.config;
}

const open = (env: Record<string, string>) => openDatabase(configWith(env), { exclusive: false, connectionsMax: 2, applicationName: 'chipledger-test', notice: () => {} });

describe('DATABASE_WRITER_URL', () => {
  it('serves as the writer, granted its rights by the owner, which may then not switch a trigger off', async () => {
    const opened = await open({ DATABASE_URL: database.url, DATABASE_WRITER_URL: writerUrl });
    try {
      expect((await opened.pool.query<{ who: string }>('SELECT current_user AS who')).rows).toEqual([{ who: role }]);
      expect((await opened.pool.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows).toHaveLength(1);
      await expect(opened.pool.query('ALTER TABLE events DISABLE TRIGGER events_no_delete')).rejects.toMatchObject({ code: '42501' });
      await expect(opened.pool.query('SET session_replication_role = replica')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await opened.close();
    }
  });

  it('says a writer that cannot log in as the writer’s, naming DATABASE_WRITER_URL without its password, for every command', async () => {
    const wrong = new URL(writerUrl);
    wrong.password = 'not-the-password';
    const refused = await open({ DATABASE_URL: database.url, DATABASE_WRITER_URL: wrong.toString() }).then(() => undefined, (error: unknown) => error);
    expect(refused).toBeInstanceOf(Failure);
    expect((refused as Failure).message).toBe(`couldn't log in as the writer role ${role} (DATABASE_WRITER_URL): password authentication failed for user "${role}"; the migrations ran as the tables' owner, but nothing can be read or written as the writer`);
    expect((refused as Failure).message).not.toContain(password);
  });

  it('refuses a writer that is a superuser, naming why, with nothing granted', async () => {
    await database.pool.query(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}; ALTER ROLE ${role} SUPERUSER`);
    try {
      const refused = await open({ DATABASE_URL: database.url, DATABASE_WRITER_URL: writerUrl }).then(() => undefined, (error: unknown) => error);
      expect(refused).toBeInstanceOf(MigrationRefused);
      expect((refused as MigrationRefused).message).toBe(`the writer role ${role} is a superuser, who can switch the database's triggers off; nothing was granted to it (the database's migrations are applied)`);
      const { rows } = await database.pool.query<{ can: boolean }>("SELECT has_table_privilege($1, 'events', 'INSERT') AS can", [role]);
      // A superuser may do anything anyway: what matters is that no grant was recorded for it.
      const granted = await database.pool.query("SELECT 1 FROM information_schema.role_table_grants WHERE grantee = $1 AND table_name = 'events'", [role]);
      expect({ can: rows[0]!.can, granted: granted.rowCount }).toEqual({ can: true, granted: 0 });
    } finally {
      await database.pool.query(`ALTER ROLE ${role} NOSUPERUSER`);
    }
  });

  it('is checked with the other settings: only beside DATABASE_URL, as another user, naming one, on the same database', () => {
    const problems = (env: Record<string, string>) => {
      const read = readConfig(env, {}, '/tmp');
      return read.ok ? [] : read.problems;
    };
    expect(problems({ DATABASE_WRITER_URL: writerUrl })).toEqual(['DATABASE_WRITER_URL: set only with DATABASE_URL (the embedded PostgreSQL makes its own writer role)']);
    expect(problems({ DATABASE_URL: database.url, DATABASE_WRITER_URL: database.url })).toEqual(["DATABASE_WRITER_URL: logs in as DATABASE_URL's user; the writer must be a role of its own"]);
    expect(problems({ DATABASE_URL: database.url, DATABASE_WRITER_URL: 'postgres://db.example/chipledger' })).toEqual(['DATABASE_WRITER_URL: must name the writer role as its user (postgres://chipledger_writer:password@host/database)']);
    // Another database on the same server: check would read one and migrate the other.
    const elsewhere = new URL(writerUrl);
    elsewhere.pathname = '/another';
    expect(problems({ DATABASE_URL: database.url, DATABASE_WRITER_URL: elsewhere.toString() })).toEqual(["DATABASE_WRITER_URL: names another server or database than DATABASE_URL; give the same host, port and database, with the writer's user and password"]);
    elsewhere.pathname = new URL(database.url).pathname;
    elsewhere.port = '1';
    expect(problems({ DATABASE_URL: database.url, DATABASE_WRITER_URL: elsewhere.toString() })).toHaveLength(1);
    // Its password is never echoed, as DATABASE_URL's is not.
    expect(problems({ DATABASE_URL: database.url, DATABASE_WRITER_URL: 'mysql://u:secret@h/d' }).join('')).not.toContain('secret');
  });
});
