/**
 * The database's own functions held to this release's: `chipledger check` runs the re-check
 * that lives in the database (ledger_violations() and its parts, migration 041 and after), and
 * whoever holds the owner's or the superuser's credentials, whom the check is meant to catch,
 * could replace any of them (CREATE OR REPLACE FUNCTION ledger_violations() … WHERE false) and
 * have it say "no violations" (the s32 review). So before its answer is believed, every
 * function of the schema is compared with what this release's migrations make of it: each one's
 * language, volatility, strictness, security, settings, result and source text, as a digest
 * (schema-functions.json, made from a freshly migrated database and held to it by
 * schema-functions.test.ts), and the listing of the re-check's parts (ledger_checks). The
 * source text is compared as stored (prosrc), which PostgreSQL keeps as written, so the digest
 * is the same on every version the ledger runs on. Functions of an extension are not ours and
 * are left out.
 */
import { readFileSync } from 'node:fs';
import type { Pool, PoolClient } from './pool.ts';
import type { Violation } from './violations.ts';

type Queryable = Pool | PoolClient;

/** The name under which the listing of the re-check's parts is held, beside the functions. */
export const checkListingName = 'ledger_checks (the re-check\'s parts, in order)';

/**
 * Each function of the ledger's schema that no extension owns, by its signature, with the digest
 * of its definition; and the re-check's listing. The ledger's schema is where its tables are:
 * public, or a DATABASE_URL owner's own schema, which the default search_path ("$user", public)
 * puts first; a check that looked in public alone named every function of such a database missing.
 */
export async function schemaFunctionDigests(db: Queryable): Promise<Record<string, string>> {
  const functions = await db.query<{ name: string; digest: string }>(
    `SELECT p.oid::regprocedure::text AS name,
            md5(concat_ws(E'\\n', l.lanname, p.provolatile, p.proisstrict, p.prosecdef, pg_get_function_result(p.oid),
                          coalesce(array_to_string(p.proconfig, ','), ''), p.prosrc)) AS digest
     FROM pg_proc p
     JOIN pg_namespace n ON n.oid = p.pronamespace
     JOIN pg_language l ON l.oid = p.prolang
     WHERE n.oid = (SELECT relnamespace FROM pg_class WHERE oid = 'ledger_checks'::regclass)
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
     ORDER BY 1`,
  );
  const listing = await db.query<{ digest: string }>(`SELECT md5(coalesce(string_agg(position || ':' || part, ',' ORDER BY position), '')) AS digest FROM ledger_checks`);
  return { ...Object.fromEntries(functions.rows.map((row) => [row.name, row.digest])), [checkListingName]: listing.rows[0]!.digest };
}

/** This release's digests (schema-functions.json). */
export function expectedFunctionDigests(): Record<string, string> {
  return JSON.parse(readFileSync(new URL('./schema-functions.json', import.meta.url), 'utf8')) as Record<string, string>;
}

/** Where the database's functions are not this release's: each one missing, changed, or made by no migration of it. */
export function functionDifferences(found: Record<string, string>, expected: Record<string, string>): Violation[] {
  const violations: Violation[] = [];
  const said = 'the re-check runs in the database, so its answer is not this release\'s until this is put right (apply the migrations to a database restored from a backup, or ask who holds the owner\'s credentials)';
  for (const [name, digest] of Object.entries(expected)) {
    if (found[name] === undefined) violations.push({ invariant: 'schema', subject: name, detail: `missing: this release's migrations make it; ${said}` });
    else if (found[name] !== digest) violations.push({ invariant: 'schema', subject: name, detail: `not this release's definition (it was replaced); ${said}` });
  }
  for (const name of Object.keys(found)) {
    if (expected[name] === undefined) violations.push({ invariant: 'schema', subject: name, detail: `a function no migration of this release makes; ${said}` });
  }
  return violations;
}

/** The schema's functions against this release's, as violations for `chipledger check`. */
export async function schemaFunctionViolations(db: Queryable): Promise<Violation[]> {
  return functionDifferences(await schemaFunctionDigests(db), expectedFunctionDigests());
}
