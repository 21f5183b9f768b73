/**
 * schema-functions.json is what this release's migrations make of the schema's functions: held
 * here to a freshly migrated database. A migration that adds or replaces a function changes
 * it; make it anew with
 *
 *   CHIPLEDGER_WRITE_SCHEMA_FUNCTIONS=1 npx vitest run src/store/schema-functions.test.ts
 *
 * and read the diff: every name in it is a function the migration meant to change. And a
 * function replaced in a database is found, as `chipledger check` finds it.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { asServerAdmin, createTestDatabase, databaseUrlOf, type TestDatabase } from '../../test/database.ts';
import { migrate } from './migrate.ts';
import { createPool } from './pool.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { checkListingName, expectedFunctionDigests, functionDifferences, schemaFunctionDigests } from './schema-functions.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => database?.drop());

describe("the schema's functions", () => {
  it("are this release's, as schema-functions.json holds them", async () => {
    const found = await schemaFunctionDigests(database.pool);
    if (process.env.CHIPLEDGER_WRITE_SCHEMA_FUNCTIONS === '1') {
      writeFileSync(new URL('./schema-functions.json', import.meta.url), `${JSON.stringify(found, null, 2)}\n`);
    }
    expect(Object.keys(found)).toContain('ledger_violations()');
    expect(Object.keys(found)).toContain(checkListingName);
    expect(functionDifferences(found, expectedFunctionDigests()), 'schema-functions.json is not what the migrations make: make it anew (see the header of this file)').toEqual([]);
  });

  it('name one replaced, one dropped, one added, and a re-check part taken off its listing', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      await client.query(`CREATE OR REPLACE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text)
        LANGUAGE sql STABLE AS $$ SELECT NULL::text, NULL::text, NULL::text WHERE false $$`);
      await client.query('DROP FUNCTION ledger_clock_ahead_ms_max()');
      await client.query('CREATE FUNCTION ledger_helper_of_mine() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query("DELETE FROM ledger_checks WHERE part = 'ledger_check_event_rows'");
      return schemaFunctionDigests(client);
    });
    expect(functionDifferences(found, expectedFunctionDigests()).map((violation) => [violation.subject, violation.detail.split(';')[0]])).toEqual([
      ['ledger_clock_ahead_ms_max()', 'missing: this release\'s migrations make it'],
      ['ledger_violations()', 'not this release\'s definition (it was replaced)'],
      [checkListingName, 'not this release\'s definition (it was replaced)'],
      ['ledger_helper_of_mine()', 'a function no migration of this release makes'],
    ]);
  });

  it("are the same in a database whose owner keeps the tables in a schema of its own (a DATABASE_URL owner's \"$user\" schema)", async () => {
    const name = `t_own_schema_${randomBytes(6).toString('hex')}`;
    await asServerAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
    const pool = createPool({ url: databaseUrlOf(name), connectionsMax: 2, applicationName: 'own-schema' });
    try {
      await pool.query('CREATE SCHEMA AUTHORIZATION CURRENT_USER');
      // Every migration applies there (070's functions once named public), and the tables are there.
      await migrate(pool);
      const schema = (await pool.query<{ schema: string }>("SELECT relnamespace::regnamespace::text AS schema FROM pg_class WHERE oid = 'ledger_checks'::regclass")).rows[0]!.schema;
      expect(schema).not.toBe('public');
      expect(functionDifferences(await schemaFunctionDigests(pool), expectedFunctionDigests())).toEqual([]);
    } finally {
      await pool.end();
      await asServerAdmin((admin) => admin.query(`DROP DATABASE ${name}`));
    }
  });
});
