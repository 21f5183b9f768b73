/**
 * An admin command that meets the write path's "not now" (isTransientDatabaseError) says so
 * in one line, with what to do (run it again), not as a bug with its stack. First for real:
 * `check` under the operator's lock_timeout while a table is held under ACCESS EXCLUSIVE (a
 * migration, a VACUUM FULL, an ALTER TABLE holds one so). Then each other SQLSTATE as
 * reportFailure says it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { main, reportFailure, withoutPassword } from './program.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-program-lock-'));
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
  rmSync(folder, { recursive: true, force: true });
});

describe('an admin command under a table lock, with an operator\'s lock_timeout (55P03)', () => {
  it('check says it in one line, and to run it again', async () => {
    const url = new URL(database.url);
    url.searchParams.set('options', '-c lock_timeout=200');
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE allocations IN ACCESS EXCLUSIVE MODE');
      const { output, err } = recordingOutput();
      const code = await main(['check'], { CHIPLEDGER_DATA_DIR: join(folder, 'data'), DATABASE_URL: url.toString() }, output);
      expect(code).toBe(1);
      expect(err).toEqual([
        `chipledger: the database couldn't run a statement now: canceling statement due to lock timeout (55P03), at the PostgreSQL of DATABASE_URL (${withoutPassword(url.toString())}); a lock not had in time (another session holds what the statement needs): run the command again`,
      ]);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      await locker.end();
    }
  });
});

describe('reportFailure of the other "not now" SQLSTATEs', () => {
  it.each([
    ['40P01', 'deadlock detected', 'a deadlock with another session, which PostgreSQL broke by failing this statement'],
    ['40001', 'could not serialize access due to concurrent update', 'a serialization failure (another session changed what this transaction read)'],
    ['25P03', 'terminating connection due to idle-in-transaction timeout', 'a transaction left idle past idle_in_transaction_session_timeout'],
    ['53100', 'could not extend file: No space left on device', "the database's disk full"],
    ['53200', 'out of memory', 'the database out of memory'],
  ])('%s (%s): one line, no stack, run the command again', (code, message, words) => {
    const { output, err } = recordingOutput();
    expect(reportFailure(Object.assign(new Error(message), { code }), output)).toBe(1);
    expect(err).toEqual([`chipledger: the database couldn't run a statement now: ${message} (${code}), at PostgreSQL; ${words}: run the command again`]);
  });

  it('a SQLSTATE that says a bug (42P01) is still shown with its stack', () => {
    const { output, err } = recordingOutput();
    reportFailure(Object.assign(new Error('relation "allocations" does not exist'), { code: '42P01' }), output);
    expect(err.join('\n')).toMatch(/^chipledger: unexpected error: .*relation "allocations" does not exist\n\s+at /);
  });
});
