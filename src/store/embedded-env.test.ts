/**
 * The embedded PostgreSQL never inherits our settings: its superuser can read its processes'
 * environment (pg_read_binary_file('/proc/<pid>/environ')), so a CHIPLEDGER_* variable there
 * (the log signing key, a token) or DATABASE_URL would be handed to whoever holds the database
 * password. Our own process keeps them.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from './embedded.ts';
import { withoutOurSettings } from './embedded-env.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-embedded-env-'));
const hasProc = existsSync('/proc/self/environ');
const secrets = {
  CHIPLEDGER_LOG_SIGNER_KEY: 'PRIVATE+KEY+env.test+00000000+never-in-postgres',
  CHIPLEDGER_TOKEN: 'clt_never_in_postgres',
  DATABASE_URL: 'postgres://someone:never-in-postgres@db.example/chipledger',
};
const saved = new Map(Object.keys(secrets).map((name) => [name, process.env[name]]));
afterAll(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  rmSync(folder, { recursive: true, force: true });
});

function expectNoSettings(environment: string[]): void {
  expect(environment.filter((entry) => /^(CHIPLEDGER_|DATABASE_URL=)/.test(entry))).toEqual([]);
  expect(environment.join('\n')).not.toContain('never-in-postgres');
}

describe('the embedded PostgreSQL environment', () => {
  it.skipIf(!hasProc)('holds none of our settings, in the postmaster nor in a backend', async () => {
    Object.assign(process.env, secrets);
    const dataDir = join(folder, 'pg');
    const database = await startEmbeddedPostgres({ dataDir, durable: false });
    try {
      expect(process.env).toMatchObject(secrets); // taken out only while PostgreSQL was spawned
      const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const postmasterEnvironment = readFileSync(`/proc/${postmaster}/environ`, 'utf8').split('\0');
      expect(postmasterEnvironment.some((entry) => entry.startsWith('PATH=')), 'the environment was read').toBe(true);
      expectNoSettings(postmasterEnvironment);
      // A backend writes its process title over its /proc environ; a program it runs gets the real one.
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        await client.query('CREATE TEMPORARY TABLE environment (entry text)');
        await client.query("COPY environment FROM PROGRAM 'env'");
        const backendEnvironment = (await client.query<{ entry: string }>('SELECT entry FROM environment')).rows.map((row) => row.entry);
        expect(backendEnvironment.some((entry) => entry.startsWith('PATH=')), 'the environment was read').toBe(true);
        expectNoSettings(backendEnvironment);
      } finally {
        await client.end();
      }
    } finally {
      await database.stop();
    }
  });

  it('puts the settings back only when the last of several overlapping starts has finished', async () => {
    process.env.CHIPLEDGER_TOKEN = secrets.CHIPLEDGER_TOKEN;
    let finishFirst: () => void = () => {};
    const first = withoutOurSettings(() => new Promise<void>((done) => (finishFirst = done)));
    let seenBySecond: string | undefined = 'not run';
    const second = withoutOurSettings(async () => {
      await first;
      seenBySecond = process.env.CHIPLEDGER_TOKEN; // where the second start would spawn
    });
    try {
      expect(process.env.CHIPLEDGER_TOKEN).toBeUndefined();
    } finally {
      // Both starts end whatever the check found: one left open would keep the count of
      // starts above zero for every later start in this worker, which would then never put
      // the settings back.
      finishFirst();
      await Promise.allSettled([first, second]);
    }
    expect(seenBySecond).toBeUndefined();
    expect(process.env.CHIPLEDGER_TOKEN).toBe(secrets.CHIPLEDGER_TOKEN);
  });
});
