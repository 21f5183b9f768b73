import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { listMigrations, migrate } from './migrate.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => database?.drop());

describe('migrate', () => {
  it('applies once, and concurrent starts do not race', async () => {
    const again = await Promise.all([migrate(database.pool), migrate(database.pool), migrate(database.pool)]);
    expect(again.flat()).toEqual([]);
    const rows = await database.pool.query('SELECT count(*)::int AS n FROM schema_migrations');
    expect(rows.rows[0].n).toBeGreaterThan(0);
    const violations = await database.pool.query('SELECT * FROM ledger_violations()');
    expect(violations.rows).toEqual([]);
  });

  it('turns reader rows into reader sets that stand for the same pairs (migration 012, on the tables as 011 left them)', async () => {
    const sets = listMigrations().find((migration) => migration.version === 12)!;
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      // Back to the layout 004 made, with rows across several runs of 2,048 seqs.
      await client.query('DROP TABLE event_reader_sets');
      await client.query('CREATE TABLE event_readers (org_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (org_id, seq))');
      await client.query(`INSERT INTO event_readers (org_id, seq)
        SELECT 'ORG-DENSE', s FROM generate_series(0, 5000) AS s
        UNION ALL SELECT 'ORG-SPARSE', s FROM generate_series(7, 100000, 997) AS s
        UNION ALL SELECT 'ORG-ONE', 2047`);
      const before = (await client.query('SELECT org_id, seq FROM event_readers ORDER BY org_id, seq')).rows;
      await client.query(sets.sql);
      const after = (await client.query(`SELECT r.org_id, r.first_seq + d.delta AS seq FROM event_reader_sets r CROSS JOIN LATERAL unnest(r.offsets) AS d(delta)
        ORDER BY r.org_id, seq`)).rows;
      expect(after).toEqual(before);
      expect((await client.query("SELECT count(*)::int AS n FROM event_reader_sets WHERE org_id = 'ORG-DENSE'")).rows[0].n).toBe(3);
      expect((await client.query("SELECT to_regclass('event_readers') AS gone")).rows[0].gone).toBeNull();
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
