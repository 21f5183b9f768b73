/**
 * The full re-check in parts (migration 041): ledger_violations() runs each part that
 * ledger_checks lists, in order. A part created and not listed would check nothing while
 * every test of its clause still read it directly, so the listing is checked against the
 * functions themselves; and a listed part is run, its rows in its place among the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { migrate } from './migrate.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  await migrate(database.pool);
});
afterAll(async () => {
  await database?.drop();
});

describe('ledger_violations() in parts', () => {
  it('lists every part there is, and only parts there are', async () => {
    const functions = (await database.pool.query<{ name: string }>(
      `SELECT p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = current_schema() AND p.proname LIKE 'ledger\\_check\\_%' ORDER BY 1`,
    )).rows.map((row) => row.name);
    const listed = (await database.pool.query<{ part: string }>('SELECT part FROM ledger_checks ORDER BY part')).rows.map((row) => row.part);
    expect(functions.length).toBeGreaterThanOrEqual(17);
    expect(listed).toEqual(functions);
  });

  it('runs each listed part in its position, and no part that is not listed', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      const part = (name: string, subject: string) => client.query(
        `CREATE FUNCTION ${name}() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$ SELECT 'probe', '${subject}', 'planted' $$`,
      );
      await part('ledger_check_probe_first', 'first');
      await part('ledger_check_probe_last', 'last');
      await part('ledger_check_probe_unlisted', 'unlisted');
      await client.query(`INSERT INTO ledger_checks (position, part) VALUES (1, 'ledger_check_probe_first'), (100000, 'ledger_check_probe_last')`);
      const found = (await client.query<{ subject: string }>('SELECT * FROM ledger_violations()')).rows;
      expect(found.map((row) => row.subject)).toEqual(['first', 'last']);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('refuses a listed name that is not a part', async () => {
    await expect(database.pool.query(`INSERT INTO ledger_checks (position, part) VALUES (7, 'ledger_violations')`)).rejects.toMatchObject({ code: '23514' });
  });
});
