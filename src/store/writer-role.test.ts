/**
 * The writer role (writer-role.ts): what it may not do is what a superuser or the tables' owner
 * did to the record in session 25's review (switch the triggers off, then rewrite), and the
 * owner's grants are exactly the list, table by table, whatever the role held before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { databasePerFile, type TestDatabase } from '../../test/database.ts';
import { testWriterRole } from '../../test/writer.ts';
import { migrate, MigrationRefused } from './migrate.ts';
import { grantWriterRights, writerRights, writerSequenceRights } from './writer-role.ts';

let database: TestDatabase;
databasePerFile(async () => undefined, async () => {}, (_made, made) => (database = made));

/** The SQLSTATE `sql` fails with as the writer, or 'ok'. */
async function asWriter(sql: string): Promise<string> {
  const client = await database.writerPool.connect();
  try {
    await client.query('BEGIN');
    await client.query(sql);
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}

describe('the writer role', () => {
  it('logs in as itself, neither superuser nor owner', async () => {
    const { rows } = await database.writerPool.query<{ who: string; super: string }>("SELECT current_user AS who, current_setting('is_superuser') AS super");
    expect(rows[0]).toEqual({ who: testWriterRole, super: 'off' });
  });

  it.each([
    ['switch every trigger off', 'SET session_replication_role = replica'],
    ['switch one trigger off', 'ALTER TABLE events DISABLE TRIGGER events_no_delete'],
    ['drop a trigger', 'DROP TRIGGER tlog_tiles_only_grow ON tlog_tiles'],
    ['drop a table', 'DROP TABLE tlog_checkpoints'],
    ['delete an event', 'DELETE FROM events'],
    ['change an event', "UPDATE events SET kind = 'x'"],
    ['empty a table', 'TRUNCATE tlog_tiles'],
    ['change a checkpoint', 'UPDATE tlog_checkpoints SET signed_note = signed_note'],
    ['forget a migration', 'DELETE FROM schema_migrations'],
    ['change the check', 'UPDATE ledger_checks SET part = part'],
    ['make a temporary table that a trigger would read as the real one', 'CREATE TEMP TABLE licences (id text)'],
    ['create a table in the schema', 'CREATE TABLE public.shadow (id text)'],
    ['make a schema', 'CREATE SCHEMA shadow'],
    ['run a program on the server', "COPY (SELECT 1) TO PROGRAM 'true'"],
    ['read a server file', "SELECT pg_read_file('PG_VERSION')"],
  ])('may not %s', async (_what, sql) => {
    expect(await asWriter(sql)).toBe('42501');
  });

  it('may write what the ledger writes', async () => {
    expect(await asWriter("INSERT INTO licence_lapses SELECT * FROM licence_lapses WHERE false")).toBe('ok');
    expect(await asWriter('SELECT 1 FROM log_head FOR UPDATE')).toBe('ok');
  });

  it('loses the right to make temporary tables that PostgreSQL gives everyone, at the next migration run', async () => {
    const name = (await database.pool.query<{ name: string }>('SELECT current_database() AS name')).rows[0]!.name;
    await database.pool.query(`GRANT TEMPORARY ON DATABASE ${name} TO PUBLIC`);
    expect(await asWriter('CREATE TEMP TABLE licences (id text)')).toBe('ok');
    await migrate(database.pool, { writer: { role: testWriterRole } });
    expect(await asWriter('CREATE TEMP TABLE licences (id text)')).toBe('42501');
  });

  it('writes nothing at a start whose writer holds its rights already, so a read-only connection starts', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN READ ONLY');
      expect(await grantWriterRights(client, testWriterRole)).toBeUndefined();
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('is granted to the writers recorded, not to any role that may read the tables', async () => {
    const reader = `cl_reader_${randomBytes(4).toString('hex')}`;
    await database.pool.query(`CREATE ROLE ${reader} NOLOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${reader}`);
    try {
      await migrate(database.pool, { writer: { role: testWriterRole } });
      const { rows } = await database.pool.query<{ role: string }>('SELECT role FROM writer_roles ORDER BY role');
      expect(rows.map((row) => row.role)).toEqual([testWriterRole]);
      expect((await database.pool.query("SELECT has_table_privilege($1, 'events', 'INSERT') AS can", [reader])).rows).toEqual([{ can: false }]);
    } finally {
      await database.pool.query(`DROP OWNED BY ${reader}; DROP ROLE ${reader}`);
    }
  });

  it('has a row in the list for every table of the schema, and the list no other', async () => {
    const { rows } = await database.pool.query<{ name: string }>(
      "SELECT relname AS name FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p', 'v', 'm') ORDER BY relname");
    expect(rows.map((row) => row.name)).toEqual(Object.keys(writerRights).sort());
  });

  it('has a row in the list for every sequence of the schema, and the list no other', async () => {
    const { rows } = await database.pool.query<{ name: string; usage: boolean; update: boolean }>(
      `SELECT relname AS name, has_sequence_privilege($1, oid, 'USAGE') AS usage, has_sequence_privilege($1, oid, 'UPDATE') AS update
       FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'S' ORDER BY relname`, [testWriterRole]);
    expect(rows.map((row) => row.name)).toEqual(Object.keys(writerSequenceRights).sort());
    expect(rows.every((row) => row.usage && !row.update)).toBe(true);
  });

  it('holds exactly the listed rights on each table', async () => {
    const { rows } = await database.pool.query<{ name: string; rights: string[] }>(
      `SELECT c.relname AS name, array(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
         WHERE has_table_privilege($1, c.oid, p) ORDER BY array_position(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], p)) AS rights
       FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY c.relname`, [testWriterRole]);
    expect(Object.fromEntries(rows.map((row) => [row.name, row.rights]))).toEqual(writerRights);
  });

  it('loses a right granted by hand on a column alone at the next migration run', async () => {
    await database.pool.query(`GRANT INSERT (role) ON writer_roles TO ${testWriterRole}; GRANT UPDATE (part) ON ledger_checks TO ${testWriterRole}`);
    // The column's right lets the INSERT through to the table's NOT NULL.
    expect(await asWriter("INSERT INTO writer_roles (role) VALUES ('cl_someone')")).toBe('23502');
    await migrate(database.pool, { writer: { role: testWriterRole } });
    expect(await asWriter("INSERT INTO writer_roles (role) VALUES ('cl_someone')")).toBe('42501');
    expect(await asWriter('UPDATE ledger_checks SET part = part')).toBe('42501');
  });

  it('loses a right granted by hand at the next migration run', async () => {
    const may = async (right: string) => (await database.pool.query<{ may: boolean }>('SELECT has_table_privilege($1, \'events\', $2) AS may', [testWriterRole, right])).rows[0]!.may;
    await database.pool.query(`GRANT DELETE, TRUNCATE ON events TO ${testWriterRole}`);
    expect([await may('DELETE'), await may('TRUNCATE')]).toEqual([true, true]);
    await migrate(database.pool, { writer: { role: testWriterRole } });
    expect([await may('DELETE'), await may('TRUNCATE')]).toEqual([false, false]);
    expect(await asWriter('TRUNCATE events')).toBe('42501');
  });
});

describe('a writer role that could switch the triggers off', () => {
  const role = `cl_w_${randomBytes(4).toString('hex')}`;
  /** The tables' owner: the test server's login (the URL's user). */
  let ownerName: string;
  beforeAll(async () => {
    await database.pool.query(`CREATE ROLE ${role} NOLOGIN`);
    ownerName = (await database.pool.query<{ me: string }>('SELECT current_user AS me')).rows[0]!.me;
  });
  afterAll(async () => {
    await database.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
  });

  /** migrate() granting to `role` once `setUp` ran (as the owner), undone after. */
  async function refusal(setUp: string, undo: string): Promise<MigrationRefused> {
    await database.pool.query(setUp);
    try {
      const error = await migrate(database.pool, { writer: { role } }).then(() => undefined, (failure: unknown) => failure);
      expect(error).toBeInstanceOf(MigrationRefused);
      return error as MigrationRefused;
    } finally {
      await database.pool.query(undo);
    }
  }

  it.each([
    ['a superuser', () => [`ALTER ROLE ${role} SUPERUSER`, `ALTER ROLE ${role} NOSUPERUSER`], 'is a superuser'],
    ['a member of the owner', () => [`GRANT ${ownerName} TO ${role}`, `REVOKE ${ownerName} FROM ${role}`], 'is a member of, the owner'],
    // Not inheriting its rights, it still takes them with SET ROLE (the review of s26).
    ['a member of the owner that does not inherit', () => [`ALTER ROLE ${role} NOINHERIT; GRANT ${ownerName} TO ${role}`, `REVOKE ${ownerName} FROM ${role}; ALTER ROLE ${role} INHERIT`], 'is a member of, the owner'],
    ['a member of pg_execute_server_program', () => [`GRANT pg_execute_server_program TO ${role}`, `REVOKE pg_execute_server_program FROM ${role}`], 'member of pg_execute_server_program'],
    // SET ROLE takes a role's attributes whole: a superuser group's, inheriting or not (the second review of s26).
    ['a member of a superuser role', () => [`CREATE ROLE ${role}_group SUPERUSER NOLOGIN; GRANT ${role}_group TO ${role}`, `DROP ROLE ${role}_group`], `is a member of ${role}_group, whose attributes and rights it takes with SET ROLE`],
    ['a member of a role that may delete', () => [`CREATE ROLE ${role}_group NOLOGIN; GRANT DELETE ON event_reader_sets TO ${role}_group; GRANT ${role}_group TO ${role}; ALTER ROLE ${role} NOINHERIT`, `DROP OWNED BY ${role}_group; DROP ROLE ${role}_group; ALTER ROLE ${role} INHERIT`], `is a member of ${role}_group`],
    // The default search_path, "$user", public, puts a schema of the writer's own first.
    ['the owner of a schema', () => [`CREATE SCHEMA ${role} AUTHORIZATION ${role}`, `DROP SCHEMA ${role}`], `may create objects in schema ${role}`],
    ['given a right through PUBLIC that it has no use for', () => ['GRANT UPDATE ON tlog_keys TO PUBLIC', 'REVOKE UPDATE ON tlog_keys FROM PUBLIC'], 'holds UPDATE on tlog_keys (or on some of its columns) through PUBLIC'],
    ['one that may make roles', () => [`ALTER ROLE ${role} CREATEROLE`, `ALTER ROLE ${role} NOCREATEROLE`], 'has CREATEROLE'],
    // PostgreSQL 13 and 14 give everyone this right in public.
    ['one that may create in the schema', () => ['GRANT CREATE ON SCHEMA public TO PUBLIC', 'REVOKE CREATE ON SCHEMA public FROM PUBLIC'], 'may create objects in schema public'],
  ] as const)('is refused when it is %s, and given nothing', async (_what, statements, words) => {
    const [setUp, undo] = statements() as [string, string];
    const refused = await refusal(setUp, undo);
    expect(refused.reason).toBe('writer_role');
    expect(refused.message).toContain(words);
    const { rows } = await database.pool.query<{ can: boolean; known: boolean }>(
      "SELECT has_table_privilege($1, 'events', 'INSERT') AS can, EXISTS (SELECT 1 FROM writer_roles WHERE role = $1) AS known", [role]);
    expect(rows[0]).toEqual({ can: false, known: false });
  });

  it('is refused when it does not exist', async () => {
    const error = await migrate(database.pool, { writer: { role: `${role}_missing` } }).then(() => undefined, (failure: unknown) => failure);
    expect(error).toMatchObject({ reason: 'writer_role', message: expect.stringContaining('does not exist') });
  });

  it('is the owner itself: refused', async () => {
    const { rows } = await database.pool.query<{ me: string }>('SELECT current_user AS me');
    const error = await migrate(database.pool, { writer: { role: rows[0]!.me } }).then(() => undefined, (failure: unknown) => failure);
    expect(error).toMatchObject({ reason: 'writer_role' });
  });
});
