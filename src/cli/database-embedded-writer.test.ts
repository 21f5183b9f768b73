/**
 * The embedded cluster's writer (store/writer-role.ts): every connection but the migrations'
 * logs in as chipledger_writer, and a cluster made before the writer existed (no such role)
 * gets it, with its rights, at its next start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { readLock } from './database-lock.ts';
import { readConfig } from './config.ts';
import { openDatabase, type Database } from './database.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-embedded-writer-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

async function open(): Promise<Database> {
  const read = readConfig({ CHIPLEDGER_DATA_DIR: join(folder, 'data') }, {}, folder);
  if (!read.ok) throw new Error(read.problems.join('; '));
  return openDatabase(read.config, { exclusive: false, createsCluster: true, connectionsMax: 2, applicationName: 'chipledger-test', notice: () => {} });
}

/** Runs `sql` as the cluster's superuser, whose URL the lock of the open database holds. */
async function asSuperuser(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: readLock(join(folder, 'data', 'chipledger.lock'))!.url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('the embedded writer', () => {
  it('is who the pool logs in as, and is made again with its rights on a cluster that has none', async () => {
    let database = await open();
    try {
      expect((await database.pool.query('SELECT current_user AS who')).rows).toEqual([{ who: 'chipledger_writer' }]);
      // As a cluster made before this release: no writer role at all.
      await database.pool.end();
      await asSuperuser('DROP OWNED BY chipledger_writer; DROP ROLE chipledger_writer');
    } finally {
      await database.close();
    }
    database = await open();
    try {
      expect(database.applied).toEqual([]);
      expect((await database.pool.query('SELECT current_user AS who, count(*)::int AS events FROM events')).rows).toEqual([{ who: 'chipledger_writer', events: 0 }]);
      await expect(database.pool.query('DELETE FROM events')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await database.close();
    }
  });
});
