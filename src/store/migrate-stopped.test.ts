/**
 * A migration that stops itself (its own RAISE, SQLSTATE P0001: rows it will not change, a
 * server it cannot run on; 027, 050) is refused in one line with its HINT, which says what a
 * person must do (s21 ledger review, F1: the HINT was dropped, and the stop came out as an
 * "unexpected error" with a stack). Any other failure stays an error with its cause, its HINT
 * said too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { applyMigration, MigrationRefused, type Migration } from './migrate.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => database?.drop());

async function failureOf(migration: Migration): Promise<unknown> {
  const client = await database.pool.connect();
  try {
    return await applyMigration(database.pool, client, migration).then(() => undefined, (error: unknown) => error);
  } finally {
    client.release();
  }
}

describe('a migration that fails', () => {
  it('is refused in one line with its HINT where it stops itself, and nothing of it is applied', async () => {
    const refusal = await failureOf({
      version: 991, name: '991_stops.sql', checksum: 'x',
      sql: `CREATE TABLE stopped_half_way (n integer);
        DO $$ BEGIN RAISE EXCEPTION 'units record one GPU under several serials: %', 'GPU-1 (serials A, B)' USING HINT = 'decide which unit each GPU is, then migrate again'; END $$;`,
    });
    expect(refusal).toBeInstanceOf(MigrationRefused);
    expect(refusal).toMatchObject({ reason: 'stopped', versions: [991] });
    expect((refusal as Error).message).toBe("couldn't apply migration 991_stops.sql: units record one GPU under several serials: GPU-1 (serials A, B); decide which unit each GPU is, then migrate again (nothing of it was applied)");
    const left = await database.pool.query(`SELECT to_regclass('stopped_half_way') AS table, (SELECT count(*)::int FROM schema_migrations WHERE version = 991) AS recorded`);
    expect(left.rows).toEqual([{ table: null, recorded: 0 }]);
  });

  it('stays an error with its cause where the database refused a statement, and says its HINT', async () => {
    const failure = await failureOf({ version: 992, name: '992_broken.sql', checksum: 'x', sql: 'SELECT no_such_function(1)' });
    expect(failure).not.toBeInstanceOf(MigrationRefused);
    expect((failure as Error).message).toMatch(/^couldn't apply migration 992_broken\.sql: function no_such_function\(integer\) does not exist; No function matches the given name and argument types\./);
    expect((failure as Error).cause).toMatchObject({ code: '42883' });
  });
});
