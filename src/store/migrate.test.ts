import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { migrate } from './migrate.ts';

let database: TestDatabase;
afterAll(async () => database?.drop());

describe('migrate', () => {
  it('applies once, and concurrent starts do not race', async () => {
    database = await createTestDatabase();
    const again = await Promise.all([migrate(database.pool), migrate(database.pool), migrate(database.pool)]);
    expect(again.flat()).toEqual([]);
    const rows = await database.pool.query('SELECT count(*)::int AS n FROM schema_migrations');
    expect(rows.rows[0].n).toBeGreaterThan(0);
    const violations = await database.pool.query('SELECT * FROM ledger_violations()');
    expect(violations.rows).toEqual([]);
  });
});
