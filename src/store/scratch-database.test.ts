/**
 * The replay's database (scratch-database.ts) refused in words that say what to grant. The one
 * made is tested in cli/check-replay.test.ts, which counts such databases: made here, beside it,
 * one would be counted there.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { asServerAdmin, databaseUrlOf } from '../../test/database.ts';
import { createScratchDatabase, ScratchDatabaseRefused } from './scratch-database.ts';

it('is refused, saying to grant CREATEDB, to a role that may not create databases', async () => {
  const role = `no_createdb_${randomBytes(4).toString('hex')}`;
  await asServerAdmin((admin) => admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'replay'`));
  try {
    const url = new URL(databaseUrlOf('postgres'));
    url.username = role;
    url.password = 'replay';
    const made = createScratchDatabase(url.toString(), 'chipledger-test-scratch');
    await expect(made).rejects.toThrow(ScratchDatabaseRefused);
    await expect(made).rejects.toThrow(/^couldn't make a database to replay the log into: the role of DATABASE_URL may not create databases \(permission denied to create database\); grant it CREATEDB/);
  } finally {
    await asServerAdmin((admin) => admin.query(`DROP ROLE ${role}`));
  }
});
