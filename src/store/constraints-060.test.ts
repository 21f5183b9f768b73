/**
 * Migration 060: the log's head carries a seal (ledger/log/head-seal.ts), and the head the
 * migration found, which nothing had sealed, is recorded where the writer may only read it.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, inRolledBack } from '../../test/support/rolled-back.ts';
import { worldPerFile } from '../../test/world.ts';
import { listMigrations } from './migrate.ts';

let database: TestDatabase;
worldPerFile((_world, madeDatabase) => {
  database = madeDatabase;
});

const migration060 = () => listMigrations().find((each) => each.version === 60)!;

describe("the head's seal and the head the migration found (060)", () => {
  it('records the head it finds, as it stands, whatever was written before', async () => {
    const recorded = await inRolledBack(database.pool, async (client) => {
      // As before 060: no seal, no record; then the migration as it runs on such a database.
      await client.query('DROP TABLE log_head_unsealed; ALTER TABLE log_head DROP COLUMN seal');
      await client.query(migration060().sql);
      const { rows: [head] } = await client.query<{ size: string; root: Buffer; seal: Buffer | null }>('SELECT size, root, seal FROM log_head');
      const { rows } = await client.query<{ size: string; root: Buffer }>('SELECT size, root FROM log_head_unsealed');
      return { head: head!, rows };
    });
    expect(Number(recorded.head.size)).toBeGreaterThan(0);
    expect(recorded.head.seal).toBeNull();
    expect(recorded.rows).toEqual([{ size: recorded.head.size, root: recorded.head.root }]);
  });

  it('refuses a seal of another length than an HMAC-SHA-256, and lets the writer only read the record', async () => {
    expect(await firstRefusal(database.writerPool, ["UPDATE log_head SET seal = '\\x00'::bytea"])).toMatchObject({ code: '23514' });
    expect((await database.writerPool.query('SELECT count(*)::int AS n FROM log_head_unsealed')).rows[0].n).toBe(1);
    for (const statement of ['INSERT INTO log_head_unsealed (size, root) SELECT size + 1, root FROM log_head', 'UPDATE log_head_unsealed SET size = size', 'DELETE FROM log_head_unsealed']) {
      expect(await firstRefusal(database.writerPool, [statement]), statement).toMatchObject({ code: '42501' });
    }
  });
});
