/**
 * The full re-check in parts (migration 041): ledger_violations() runs each part that
 * ledger_checks lists, in order. A part created and not listed would check nothing while
 * every test of its clause still read it directly, so the listing is checked against the
 * functions themselves; and a listed part is run, its rows in its place among the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
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

  it('runs each listed part in its position, and names a part that is not listed instead of running it', async () => {
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
      const found = (await client.query<{ invariant: string; subject: string }>('SELECT * FROM ledger_violations()')).rows;
      // The unlisted part is not run, and is named as one the re-check left out.
      expect(found.map((row) => `${row.invariant} ${row.subject}`)).toEqual(['probe first', 'probe last', 'ledger-checks ledger_check_probe_unlisted']);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('refuses a part taken out of the listing or changed in it: a listing only grows', async () => {
    const parts = async () => (await database.pool.query<{ parts: number }>('SELECT count(*)::int AS parts FROM ledger_checks')).rows[0]!.parts;
    const before = await parts();
    expect(before).toBeGreaterThanOrEqual(17);
    for (const statement of ['DELETE FROM ledger_checks', `UPDATE ledger_checks SET part = 'ledger_check_event_times' WHERE part = 'ledger_check_site_counts'`, 'TRUNCATE ledger_checks']) {
      await expect(database.pool.query(statement), statement).rejects.toMatchObject({ code: '23001', message: expect.stringMatching(/^ledger_checks lists the parts of the re-check; a part is added, never taken out or changed \((DELETE|UPDATE|TRUNCATE) refused\)$/) });
    }
    expect(await parts()).toBe(before);
  });

  it('refuses a listed name that is not a part', async () => {
    await expect(database.pool.query(`INSERT INTO ledger_checks (position, part) VALUES (7, 'ledger_violations')`)).rejects.toMatchObject({ code: '23514' });
  });
});
