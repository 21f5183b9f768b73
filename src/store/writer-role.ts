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
 * After every migration run the owner grants the writer exactly `writerRights` (and
 * `writerSequenceRights`), table by table, and revokes whatever else it held, under the migrations' lock. A table this build does not
 * list is read-only to the writer; a test holds the list to the schema.
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
/** Rows added and changed (UPDATE also takes SELECT … FOR UPDATE's row locks). */
const changing: readonly Right[] = ['SELECT', 'INSERT', 'UPDATE'];

/**
 * What the writer may do to each table. DELETE only where the ledger deletes: a licence's
 * parties are replaced whole by an amendment, and a lapse is removed once the sweep has acted
 * on it. No TRUNCATE, REFERENCES or TRIGGER anywhere.
 */
export const writerRights: Readonly<Record<string, readonly Right[]>> = {
  allocations: changing,
  event_reader_sets: changing,
  event_serials: appendOnly,
  event_serials_from: appendOnly,
  event_subjects: appendOnly,
  events: appendOnly,
  idempotency_keys: appendOnly,
  ledger_checks: readOnly,
  licence_lapses: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  licence_parties: ['SELECT', 'INSERT', 'DELETE'],
  licence_versions: appendOnly,
  licences: changing,
  log_head: ['SELECT', 'UPDATE'],
  organisations: changing,
  products: changing,
  schema_migrations: readOnly,
  shipment_serials: changing,
  shipments: changing,
  sites: changing,
  tlog_checkpoints: appendOnly,
  tlog_cosignatures: changing,
  tlog_keys: changing,
  tlog_tiles: changing,
  tokens: changing,
  units: changing,
  units_gpu_uuid_legacy: readOnly,
};

/** What the writer may do with each sequence: USAGE, to take the next value a column's default asks for. */
export const writerSequenceRights: Readonly<Record<string, readonly 'USAGE'[]>> = {
  tlog_keys_written_order: ['USAGE'],
};

/** The embedded writer's password: derived from the superuser's, so nothing more is kept on disk, and one-way (it reveals nothing of the superuser's). */
export function derivedWriterPassword(superuserPassword: string): string {
  return createHmac('sha256', superuserPassword).update('chipledger writer role').digest('hex');
}

/** The URL that logs in as the embedded writer, from the superuser's URL (same server and database). */
export function embeddedWriterUrl(superuserUrl: string): string {
  const url = new URL(superuserUrl);
  url.password = derivedWriterPassword(decodeURIComponent(url.password));
  url.username = embeddedWriterRole;
  return url.toString();
}

/** The role a writer URL logs in as. */
export function roleOfUrl(url: string): string {
  return decodeURIComponent(new URL(url).username);
}

/**
 * Makes `role` a login role with `password` where the owner may make roles (the embedded
 * cluster's superuser), or sets its password again. Cluster-wide: the caller holds a lock that
 * keeps two processes from writing the role's row at once (PostgreSQL refuses the second,
 * "tuple concurrently updated"). The password goes as a SCRAM verifier, never in clear.
 */
export async function ensureWriterLogin(client: Pick<pg.ClientBase, 'query' | 'escapeIdentifier' | 'escapeLiteral'>, role: string, password: string): Promise<void> {
  const found = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  const verb = found.rowCount === 0 ? 'CREATE' : 'ALTER';
  await client.query(`${verb} ROLE ${client.escapeIdentifier(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD ${client.escapeLiteral(scramVerifier(password))}`);
}

/** Why `role` cannot be the writer (it could switch the triggers off, or make itself a role that can), or undefined. */
export async function writerRoleProblem(client: Pick<pg.ClientBase, 'query'>, role: string): Promise<string | undefined> {
  const { rows } = await client.query<{ exists: boolean; super: boolean; createrole: boolean; bypassrls: boolean; owner: boolean }>(
    `SELECT r.rolname IS NOT NULL AS exists, coalesce(r.rolsuper, false) AS super, coalesce(r.rolcreaterole, false) AS createrole,
       coalesce(r.rolbypassrls, false) AS bypassrls,
       r.rolname IS NOT NULL AND (r.rolname = current_user OR pg_has_role(r.oid, (SELECT relowner FROM pg_class WHERE oid = 'schema_migrations'::regclass), 'USAGE')) AS owner
     FROM (SELECT $1::name AS wanted) w LEFT JOIN pg_roles r ON r.rolname = w.wanted`, [role]);
  const found = rows[0]!;
  if (!found.exists) return `the writer role ${role} does not exist; make it (CREATE ROLE ${role} LOGIN PASSWORD …) as the database's administrator`;
  if (found.super) return `the writer role ${role} is a superuser, who can switch the database's triggers off`;
  if (found.owner) return `the writer role ${role} is, or acts as, the owner of chipledger's tables, who can switch their triggers off; give the writer a role of its own`;
  if (found.createrole) return `the writer role ${role} has CREATEROLE, with which it can make itself a member of the tables' owner`;
  if (found.bypassrls) return `the writer role ${role} has BYPASSRLS; give the writer a role without it`;
  return undefined;
}

/**
 * Why `role` could still make what shadows chipledger's tables or functions in a trigger's view,
 * or undefined. The triggers name tables and functions without a schema: a temporary table
 * (pg_temp is searched first for tables) or an object in a schema the writer may create in,
 * put before the real one by its own search_path, would be what a trigger checks a write
 * against. Asked after grantWriterRights, which takes away what its owner may.
 */
export async function writerCreationProblem(client: Pick<pg.ClientBase, 'query'>, role: string): Promise<string | undefined> {
  const { rows } = await client.query<{ database: string; schema: string; temp: boolean; schemas: boolean; create: boolean }>(
    `SELECT current_database() AS database, current_schema() AS schema, has_database_privilege($1, current_database(), 'TEMPORARY') AS temp,
       has_database_privilege($1, current_database(), 'CREATE') AS schemas, has_schema_privilege($1, current_schema(), 'CREATE') AS create`, [role]);
  const found = rows[0]!;
  const shadow = 'which a trigger would read in place of the table of the same name';
  if (found.temp) return `the writer role ${role} may make temporary tables in database ${found.database}, ${shadow}; as the database's owner, run REVOKE TEMPORARY ON DATABASE ${found.database} FROM PUBLIC (PostgreSQL grants it to everyone)`;
  if (found.schemas) return `the writer role ${role} may make schemas in database ${found.database}, whose tables ${shadow}; revoke CREATE ON DATABASE ${found.database} from it`;
  if (found.create) return `the writer role ${role} may create objects in schema ${found.schema}, whose functions a trigger would call in place of PostgreSQL's; as the schema's owner, run REVOKE CREATE ON SCHEMA ${found.schema} FROM PUBLIC (PostgreSQL before 15 grants it to everyone)`;
  return undefined;
}

/**
 * The writer roles this database has: those granted a right on schema_migrations (every writer
 * may read it) other than its owner's own and PUBLIC's.
 */
export async function knownWriterRoles(client: Pick<pg.ClientBase, 'query'>): Promise<string[]> {
  const { rows } = await client.query<{ role: string }>(
    `SELECT DISTINCT r.rolname AS role FROM pg_class c, aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
     WHERE c.oid = 'schema_migrations'::regclass AND a.grantee <> c.relowner ORDER BY 1`);
  return rows.map((row) => row.role);
}

/**
 * Grants `role` exactly `writerRights` on every table of the schema (a table not listed: SELECT
 * only) and `writerSequenceRights` on every sequence (one not listed: nothing), revoking anything else it held, in the caller's transaction. Run as the tables' owner.
 */
export async function grantWriterRights(client: Pick<pg.ClientBase, 'query' | 'escapeIdentifier'>, role: string): Promise<void> {
  const { rows } = await client.query<{ name: string; sequence: boolean; schema: string; database: string; ownsDatabase: boolean }>(
    `SELECT c.relname AS name, c.relkind = 'S' AS sequence, current_schema() AS schema, current_database() AS database,
       pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') AS "ownsDatabase" FROM pg_class c
     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S') ORDER BY c.relname`);
  const who = client.escapeIdentifier(role);
  const statements: string[] = [];
  if (rows.length > 0) {
    const database = client.escapeIdentifier(rows[0]!.database);
    const schema = client.escapeIdentifier(rows[0]!.schema);
    // Nothing the writer could shadow a table or a function with (writerCreationProblem):
    // TEMPORARY, which PostgreSQL grants to PUBLIC, taken from everyone where this owner owns
    // the database (chipledger makes no temporary table); CREATE never the writer's own.
    if (rows[0]!.ownsDatabase) statements.push(`REVOKE TEMPORARY ON DATABASE ${database} FROM PUBLIC`);
    statements.push(`REVOKE CREATE, TEMPORARY ON DATABASE ${database} FROM ${who}`);
    statements.push(`GRANT CONNECT ON DATABASE ${database} TO ${who}`);
    statements.push(`REVOKE CREATE ON SCHEMA ${schema} FROM ${who}`);
    statements.push(`GRANT USAGE ON SCHEMA ${schema} TO ${who}`);
  }
  for (const relation of rows) {
    const name = client.escapeIdentifier(relation.name);
    const kind = relation.sequence ? 'SEQUENCE' : 'TABLE';
    const rights = relation.sequence ? writerSequenceRights[relation.name] ?? [] : writerRights[relation.name] ?? readOnly;
    statements.push(`REVOKE ALL ON ${kind} ${name} FROM ${who}`);
    if (rights.length > 0) statements.push(`GRANT ${rights.join(', ')} ON ${kind} ${name} TO ${who}`);
  }
  await client.query(statements.join(';\n'));
}
