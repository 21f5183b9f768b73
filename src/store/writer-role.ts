/**
 * The role the ledger and the API write as: one that may read and write rows, and nothing more.
 *
 * The database's triggers keep the record whole against a buggy or hostile writer (an event is
 * never deleted, a checkpoint never changed, a shipment keeps its booking: migrations 018, 028,
 * 055). A connection that owns the tables, or is a superuser, switches them all off with one
 * statement (`ALTER TABLE … DISABLE TRIGGER`, `SET session_replication_role = replica`), and
 * may drop or alter any table. So migrations run as the owner (the embedded cluster's
 * superuser, or DATABASE_URL's user), and every other connection of a chipledger process logs in
 * as a writer role that owns nothing: on the embedded cluster `chipledger_writer`, made here
 * with a password derived from the superuser's; with DATABASE_URL, the role of
 * DATABASE_WRITER_URL, which the operator makes (without it, the server writes as
 * DATABASE_URL's user, as before, and the triggers defend against mistakes only).
 *
 * After a migration run that has a writer to serve, the owner gives each writer recorded in
 * writer_roles (migration 058) exactly `writerRights` and `writerSequenceRights`, table by table,
 * under the migrations' lock: what it lacks is granted, what it holds beyond them revoked, and a
 * writer that could still get around the triggers is refused (writerRoleProblem,
 * writerCreationProblem). A table this build does not list is read-only to the writer; a test
 * holds the list to the schema. README, "The database's roles", says what this does not stop.
 */
import { createHmac } from 'node:crypto';
import type pg from 'pg';
import { scramVerifier } from './embedded-password.ts';

/** The writer role of the embedded cluster. */
export const embeddedWriterRole = 'chipledger_writer';

type Right = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

const readOnly: readonly Right[] = ['SELECT'];
/** Rows added, never changed (their triggers refuse a change too). */
const appendOnly: readonly Right[] = ['SELECT', 'INSERT'];
/** Rows added and changed (UPDATE also gives SELECT … FOR UPDATE's row locks). */
const changing: readonly Right[] = ['SELECT', 'INSERT', 'UPDATE'];

/**
 * What the writer may do to each table. DELETE only where the ledger deletes: a licence's
 * parties are replaced whole by an amendment, and a lapse is removed once the sweep has acted
 * on it. No TRUNCATE, REFERENCES or TRIGGER anywhere.
 */
export const writerRights: Readonly<Record<string, readonly Right[]>> = {
  allocations: changing,
  event_reader_sets: appendOnly,
  event_serials: appendOnly,
  event_serials_from: appendOnly,
  event_subjects: appendOnly,
  events: appendOnly,
  idempotency_keys: appendOnly,
  ledger_checks: readOnly,
  licence_lapses: ['SELECT', 'INSERT', 'DELETE'],
  licence_parties: ['SELECT', 'INSERT', 'DELETE'],
  licence_versions: appendOnly,
  licences: changing,
  log_head: ['SELECT', 'UPDATE'],
  log_head_unsealed: readOnly,
  // Written by 075's trigger as the owner only, as a unit moves: a writer that could write them could rewrite a shipment's manifest.
  moved_manifest_lines: readOnly,
  organisations: changing,
  products: changing,
  // Written by 070's triggers as the owner only: a writer that could write them could cancel a change it made.
  reservation_changes: readOnly,
  reservation_checks: readOnly,
  licence_shipped_changes: readOnly,
  schema_migrations: readOnly,
  shipments: changing,
  sites: changing,
  tlog_checkpoints: appendOnly,
  tlog_cosignatures: changing,
  tlog_keys: appendOnly,
  tlog_tiles: changing,
  tokens: changing,
  units: changing,
  units_gpu_uuid_legacy: readOnly,
  writer_roles: readOnly,
};

/** What the writer may do with each sequence: USAGE, to take the next value a column's default asks for. */
export const writerSequenceRights: Readonly<Record<string, readonly 'USAGE'[]>> = {
  tlog_keys_written_order: ['USAGE'],
};

/** The embedded writer's password: derived from the superuser's, so nothing more is kept on disk, and one-way (it reveals nothing of the superuser's). */
export function derivedWriterPassword(superuserPassword: string): string {
  return createHmac('sha256', superuserPassword).update('chipledger writer role').digest('hex');
}

/**
 * The embedded cluster's writer, from its superuser's URL (same server and database): the URL
 * that logs in as it, its role, and its password, which the migrations' step makes it log in
 * with (so a cluster made before writer roles gets one).
 */
export function embeddedWriter(superuserUrl: string): { url: string; role: string; password: string } {
  const url = new URL(superuserUrl);
  const password = derivedWriterPassword(decodeURIComponent(url.password));
  url.password = password;
  url.username = embeddedWriterRole;
  return { url: url.toString(), role: embeddedWriterRole, password };
}

/** The role a writer URL logs in as. */
export function roleOfUrl(url: string): string {
  return decodeURIComponent(new URL(url).username);
}

/**
 * Makes `role` a login role with `password` where the owner may make roles (the embedded
 * cluster's superuser), or sets its password again, and takes away any setting it gave itself
 * (a role may ALTER ROLE itself SET search_path or default_transaction_read_only, which stopped
 * every later start) and any expiry. Cluster-wide: the caller holds a lock that keeps two
 * processes from writing the role's row at once (PostgreSQL refuses the second, "tuple
 * concurrently updated"). The password goes as a SCRAM verifier, never in clear.
 */
export async function ensureWriterLogin(client: Pick<pg.ClientBase, 'query' | 'escapeIdentifier' | 'escapeLiteral'>, role: string, password: string): Promise<void> {
  const found = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  const verb = found.rowCount === 0 ? 'CREATE' : 'ALTER';
  const who = client.escapeIdentifier(role);
  await client.query(`${verb} ROLE ${who} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT VALID UNTIL 'infinity' PASSWORD ${client.escapeLiteral(scramVerifier(password))}`);
  const { rows } = await client.query<{ database: string }>('SELECT current_database() AS database');
  await client.query(`ALTER ROLE ${who} RESET ALL; ALTER ROLE ${who} IN DATABASE ${client.escapeIdentifier(rows[0]!.database)} RESET ALL`);
}

/** The roles whose members may run programs or read and write files on the database's machine. */
const serverFileRoles = ['pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'];

/** Why `role` cannot be the writer (it could switch the triggers off, or make itself a role that can), or undefined. */
export async function writerRoleProblem(client: Pick<pg.ClientBase, 'query'>, role: string): Promise<string | undefined> {
  // has_parameter_privilege is PostgreSQL 15's: named in a query on 13 or 14, it fails the
  // whole query when it is parsed, whatever guards it, so it is sent only where it exists.
  const { rows: [server] } = await client.query<{ num: string }>("SELECT current_setting('server_version_num') AS num");
  const parameterRights = Number(server!.num) >= 150_000;
  const { rows } = await client.query<{ exists: boolean; super: boolean; createrole: boolean; bypassrls: boolean; owner: boolean; files: string | null; memberOf: string | null; replica: boolean }>(
    `SELECT r.rolname IS NOT NULL AS exists, coalesce(r.rolsuper, false) AS super, coalesce(r.rolcreaterole, false) AS createrole,
       coalesce(r.rolbypassrls, false) AS bypassrls,
       r.rolname IS NOT NULL AND (r.rolname = current_user OR pg_has_role(r.oid, (SELECT relowner FROM pg_class WHERE oid = 'schema_migrations'::regclass), 'MEMBER')) AS owner,
       (SELECT string_agg(f.rolname, ', ') FROM pg_roles f WHERE f.rolname = ANY($2) AND r.oid IS NOT NULL AND pg_has_role(r.oid, f.oid, 'MEMBER')) AS files,
       (SELECT string_agg(g.rolname, ', ' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) AS "memberOf",
       ${parameterRights ? "r.oid IS NOT NULL AND has_parameter_privilege(r.oid, 'session_replication_role', 'SET')" : 'false'} AS replica
     FROM (SELECT $1::name AS wanted) w LEFT JOIN pg_roles r ON r.rolname = w.wanted`, [role, serverFileRoles]);
  const found = rows[0]!;
  if (!found.exists) return `the writer role ${role} does not exist; make it (CREATE ROLE ${role} LOGIN PASSWORD …) as the database's administrator`;
  if (found.super) return `the writer role ${role} is a superuser, who can switch the database's triggers off`;
  if (found.owner) return `the writer role ${role} is, or is a member of, the owner of chipledger's tables, who can switch their triggers off (a member through SET ROLE, inheriting or not); give the writer a role of its own`;
  if (found.createrole) return `the writer role ${role} has CREATEROLE, with which it can make itself a member of the tables' owner`;
  if (found.replica) return `the writer role ${role} may SET session_replication_role (GRANT SET ON PARAMETER), which switches every trigger off`;
  if (found.files !== null) return `the writer role ${role} is a member of ${found.files}, which runs programs or reads and writes files on the database's machine`;
  // SET ROLE takes another role's attributes and rights whole (a superuser's, one that may SET
  // session_replication_role, one that may DELETE), inheriting or not: a writer belongs to none.
  if (found.memberOf !== null) return `the writer role ${role} is a member of ${found.memberOf}, whose attributes and rights it takes with SET ROLE (inheriting or not), which chipledger does not check; a writer belongs to no other role: revoke that membership`;
  if (found.bypassrls) return `the writer role ${role} has BYPASSRLS, which a writer needs for nothing; give the writer a role without it`;
  return undefined;
}

/**
 * Why `role` could still make what shadows chipledger's tables or functions in a trigger's view,
 * or undefined. The triggers name tables and functions without a schema: a temporary table
 * (pg_temp is searched first for tables) or an object in a schema the writer may create in
 * (its own, which the default search_path "$user", public puts first, or any other it could
 * name in its search_path) would be what a trigger checks a write against. Asked after
 * grantWriterRights, which takes away what its owner may.
 */
export async function writerCreationProblem(client: Pick<pg.ClientBase, 'query'>, role: string): Promise<string | undefined> {
  const { rows } = await client.query<{ database: string; temp: boolean; schemas: boolean; creates: string | null }>(
    `SELECT current_database() AS database, has_database_privilege($1, current_database(), 'TEMPORARY') AS temp,
       has_database_privilege($1, current_database(), 'CREATE') AS schemas,
       (SELECT string_agg(n.nspname, ', ' ORDER BY n.nspname) FROM pg_namespace n WHERE has_schema_privilege($1, n.oid, 'CREATE')) AS creates`, [role]);
  const found = rows[0]!;
  const shadow = 'which a trigger would read in place of the table of the same name';
  if (found.temp) return `the writer role ${role} may make temporary tables in database ${found.database}, ${shadow}; as the database's owner, run REVOKE TEMPORARY ON DATABASE ${found.database} FROM PUBLIC (PostgreSQL grants it to everyone; chipledger does so itself where DATABASE_URL's user owns the database)`;
  if (found.schemas) return `the writer role ${role} may make schemas in database ${found.database}, whose tables ${shadow}; revoke CREATE ON DATABASE ${found.database} from it`;
  if (found.creates !== null) return `the writer role ${role} may create objects in schema ${found.creates} (it owns it, or CREATE was granted to it, to a role it belongs to, or to PUBLIC as PostgreSQL before 15 does in public), whose tables and functions a trigger would use in place of chipledger's; revoke that right, or drop or give away that schema`;
  return undefined;
}

/**
 * The writer roles this database has: those named in writer_roles (migration 058) when a
 * migration run granted them, still the same roles (a role dropped and made again under the
 * name, say for reports, has another oid and is not one). Retire a writer with
 * DELETE FROM writer_roles, as the owner.
 */
export async function knownWriterRoles(client: Pick<pg.ClientBase, 'query'>): Promise<string[]> {
  const { rows } = await client.query<{ role: string }>('SELECT w.role FROM writer_roles w JOIN pg_roles r ON r.rolname = w.role AND r.oid = w.role_oid ORDER BY w.role');
  return rows.map((row) => row.role);
}

/** Records `role` as one of this database's writers, for later migration runs (knownWriterRoles). */
export async function recordWriterRole(client: Pick<pg.ClientBase, 'query'>, role: string): Promise<void> {
  await client.query(`INSERT INTO writer_roles (role, role_oid) SELECT rolname, oid FROM pg_roles WHERE rolname = $1
    ON CONFLICT (role) DO UPDATE SET role_oid = EXCLUDED.role_oid, recorded_at = now()`, [role]);
}

const tableRights = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] as const;
const sequenceRights = ['USAGE', 'SELECT', 'UPDATE'] as const;
/** The table rights that may also be granted on columns alone. */
const columnRights = ['SELECT', 'INSERT', 'UPDATE', 'REFERENCES'] as const;

/**
 * One table's or sequence's rights: those wanted; those the role holds on the whole of it
 * (directly, through PUBLIC or a role it belongs to); and those it holds on it or on any of its
 * columns (a column's grant survives a table's REVOKE of nothing, but not a table's REVOKE).
 */
interface RelationRights {
  name: string;
  kind: 'TABLE' | 'SEQUENCE';
  wanted: readonly string[];
  whole: string[];
  any: string[];
}

async function relationRights(client: Pick<pg.ClientBase, 'query'>, role: string): Promise<RelationRights[]> {
  const { rows } = await client.query<{ name: string; sequence: boolean; whole: string[]; columns: string[] }>(
    `SELECT c.relname AS name, c.relkind = 'S' AS sequence,
       CASE WHEN c.relkind = 'S' THEN array(SELECT p FROM unnest($2::text[]) p WHERE has_sequence_privilege($1, c.oid, p))
            ELSE array(SELECT p FROM unnest($3::text[]) p WHERE has_table_privilege($1, c.oid, p)) END AS whole,
       CASE WHEN c.relkind = 'S' THEN '{}'::text[]
            ELSE array(SELECT p FROM unnest($4::text[]) p WHERE has_any_column_privilege($1, c.oid, p)) END AS columns
     FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S') ORDER BY c.relname`,
    [role, sequenceRights, tableRights, columnRights]);
  return rows.map((row) => ({
    name: row.name,
    kind: row.sequence ? 'SEQUENCE' : 'TABLE',
    wanted: row.sequence ? writerSequenceRights[row.name] ?? [] : writerRights[row.name] ?? readOnly,
    whole: row.whole,
    any: [...new Set([...row.whole, ...row.columns])],
  }));
}

/**
 * Gives `role` exactly `writerRights` on every table of the schema (a table not listed: SELECT
 * only) and `writerSequenceRights` on every sequence (one not listed: nothing), CONNECT and
 * USAGE on the schema, and nothing it could shadow a table with (writerCreationProblem), in
 * the caller's transaction, as the tables' owner. Only what differs is changed: a start whose
 * writer already holds its rights writes nothing (`check` on a read-only connection). Returns
 * why the rights still differ after (a right held through PUBLIC or a role the writer belongs
 * to, which revoking from the writer does not take), or undefined.
 */
export async function grantWriterRights(client: Pick<pg.ClientBase, 'query' | 'escapeIdentifier'>, role: string): Promise<string | undefined> {
  const who = client.escapeIdentifier(role);
  const { rows: [place] } = await client.query<{ database: string; schema: string; ownsDatabase: boolean; connect: boolean; usage: boolean; temp: boolean; create: boolean }>(
    `SELECT current_database() AS database, current_schema() AS schema,
       pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') AS "ownsDatabase",
       has_database_privilege($1, current_database(), 'CONNECT') AS connect, has_schema_privilege($1, current_schema(), 'USAGE') AS usage,
       has_database_privilege($1, current_database(), 'TEMPORARY') AS temp, has_database_privilege($1, current_database(), 'CREATE') AS create`, [role]);
  const database = client.escapeIdentifier(place!.database);
  const schema = client.escapeIdentifier(place!.schema);
  const statements: string[] = [];
  if (!place!.connect) statements.push(`GRANT CONNECT ON DATABASE ${database} TO ${who}`);
  if (!place!.usage) statements.push(`GRANT USAGE ON SCHEMA ${schema} TO ${who}`);
  // TEMPORARY, which PostgreSQL grants to PUBLIC, taken from everyone where this owner owns
  // the database (chipledger makes no temporary table); CREATE never the writer's own.
  if (place!.temp || place!.create) statements.push(`REVOKE CREATE, TEMPORARY ON DATABASE ${database} FROM ${who}`);
  if (place!.temp && place!.ownsDatabase) statements.push(`REVOKE TEMPORARY ON DATABASE ${database} FROM PUBLIC`);
  const before = await relationRights(client, role);
  for (const relation of before) {
    const name = client.escapeIdentifier(relation.name);
    const extra = relation.any.filter((right) => !relation.wanted.includes(right));
    const missing = relation.wanted.filter((right) => !relation.whole.includes(right));
    // A table's REVOKE takes the right from its columns too.
    if (extra.length > 0) statements.push(`REVOKE ${extra.join(', ')} ON ${relation.kind} ${name} FROM ${who}`);
    if (missing.length > 0) statements.push(`GRANT ${missing.join(', ')} ON ${relation.kind} ${name} TO ${who}`);
  }
  if (statements.length > 0) await client.query(statements.join(';\n'));
  // Read again only where something changed: a start with nothing to change reads the rights once.
  for (const relation of statements.length > 0 ? await relationRights(client, role) : before) {
    const extra = relation.any.filter((right) => !relation.wanted.includes(right));
    if (extra.length > 0) return `the writer role ${role} holds ${extra.join(', ')} on ${relation.name} (or on some of its columns) through PUBLIC, or by another grantor's grant, which chipledger does not give it and cannot take; revoke ${extra.join(', ')} ON ${relation.name} from that grantee, as that grantor`;
  }
  return undefined;
}
