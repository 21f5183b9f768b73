/**
 * A data dir that is a file (or lies below one) is a configuration problem for the commands
 * that open it: one clear line and exit 2, said before the folder is made (ops review: an
 * "unexpected error" with an EEXIST or ENOTDIR stack, exit 1). Client commands, which never
 * open it, are not stopped by a file of that name. A data dir this user cannot write (no
 * permission, a read-only file system) is one clear line and exit 2 as well, from `check`,
 * `migrate` and `serve --demo` alike (CLI review: "unexpected error" with an EACCES stack).
 *
 * Root ignores permissions, so the unwritable folders here are in /sys, which refuses every
 * user: a folder cannot be made at its top (EPERM, or EACCES when not root) and a file cannot
 * be made in /sys/kernel (EACCES; EROFS where /sys is mounted read-only).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../store/embedded.ts';
import { openPathForPostgresUser } from '../store/embedded-postgres-user.ts';
import { Failure } from './output.ts';
import { readConfig } from './config.ts';
import { dataDirAccessProblem, dataDirProblem, dataDirWriteProblem, makeDataDir } from './data-dir.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-data-dir-'));
const file = join(folder, 'afile');
writeFileSync(file, 'not a folder\n');
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const root = fileURLToPath(new URL('../../', import.meta.url));
/** A folder nobody may make files in, root included; undefined where there is no sysfs. */
const unwritableFolder = existsSync('/sys/kernel') && statSync('/sys/kernel').isDirectory() ? '/sys/kernel' : undefined;

/** `chipledger ARGS` as a child process, with only the given settings of ours. */
function chipledger(args: string[], extra: Record<string, string>): { status: number | null; stderr: string } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: { ...env, ...extra }, encoding: 'utf8', timeout: 60_000 });
}

/** One line, exit 2, no stack. */
function expectDataDirProblem(run: { status: number | null; stderr: string }): string {
  expect(run.status, run.stderr).toBe(2);
  expect(run.stderr).not.toMatch(/unexpected error|    at /);
  expect(run.stderr.trim().split('\n'), run.stderr).toHaveLength(1);
  return run.stderr.trim();
}

function problemsOf(dataDir: string): string[] {
  const problem = dataDirProblem(resolve(folder, dataDir));
  return problem === undefined ? [] : [problem];
}

describe('CHIPLEDGER_DATA_DIR', () => {
  it('is refused, naming the file, when it is a file or lies below one', () => {
    expect(problemsOf(file)).toEqual([`CHIPLEDGER_DATA_DIR: ${file} cannot be a folder: it is a file, not a folder; choose another folder, or move the file`]);
    expect(problemsOf(join(file, 'sub', 'deeper'))).toEqual([`CHIPLEDGER_DATA_DIR: ${join(file, 'sub', 'deeper')} cannot be a folder: ${file}, on its path, is a file, not a folder; choose another folder, or move the file`]);
  });

  it('is taken when it is a folder, or a folder still to be made anywhere below one', () => {
    mkdirSync(join(folder, 'made'));
    expect(problemsOf(join(folder, 'made'))).toEqual([]);
    expect(problemsOf(join(folder, 'not', 'yet', 'made'))).toEqual([]);
    expect(problemsOf('relative/below/cwd')).toEqual([]);
  });

  it('does not stop reading the configuration: a client command has no use for the folder', () => {
    expect(readConfig({ CHIPLEDGER_DATA_DIR: file }, {}, folder).ok).toBe(true);
  });

  it('that is a file stops a command with one line and exit 2, not a stack', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'migrate'], { cwd: root, env: { ...env, CHIPLEDGER_DATA_DIR: file }, encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).not.toMatch(/unexpected error|EEXIST|ENOTDIR|    at /);
    expect(run.stderr).toContain(`CHIPLEDGER_DATA_DIR: ${file} cannot be a folder: it is a file`);
  });

  it('that is below a file stops serve --demo with one line and exit 2, before its demo log key is looked for there', async () => {
    const below = join(file, 'data');
    const message = expectDataDirProblem(chipledger(['serve', '--demo'], { CHIPLEDGER_DATA_DIR: below, CHIPLEDGER_PORT: String(await findFreePort()) }));
    expect(message).toBe(`chipledger: CHIPLEDGER_DATA_DIR: ${below} cannot be a folder: ${file}, on its path, is a file, not a folder; choose another folder, or move the file`);
  });
});

describe('CHIPLEDGER_DATA_DIR that cannot be written', () => {
  it('is said as one configuration problem for the codes that mean so, and left alone otherwise', () => {
    const failed = (code: string) => Object.assign(new Error(`${code}: open '/data/chipledger.lock.1.tmp'`), { code });
    expect(dataDirWriteProblem('/data', failed('EACCES'))).toBe('CHIPLEDGER_DATA_DIR: cannot write /data: this user may not write there (EACCES); choose a folder this user can write, or let it write this one');
    expect(dataDirWriteProblem('/data', failed('EPERM'))).toBe('CHIPLEDGER_DATA_DIR: cannot write /data: this user may not write there (EPERM); choose a folder this user can write, or let it write this one');
    expect(dataDirWriteProblem('/data', failed('EROFS'))).toBe('CHIPLEDGER_DATA_DIR: cannot write /data: it is on a read-only file system (EROFS); choose a folder this user can write, or let it write this one');
    expect(dataDirWriteProblem('/data', failed('ENOTDIR'))).toBe('CHIPLEDGER_DATA_DIR: cannot write /data: a file on its path is not a folder (ENOTDIR); choose a folder this user can write, or let it write this one');
    expect(dataDirWriteProblem('/data', failed('ENAMETOOLONG'))).toBe('CHIPLEDGER_DATA_DIR: cannot write /data: its path, or a name on it, is longer than the file system takes (ENAMETOOLONG); choose another folder');
    expect(dataDirWriteProblem('/data', failed('ELOOP'))).toBe('CHIPLEDGER_DATA_DIR: cannot write /data: the symbolic links on its path go round in a loop (or are too many) (ELOOP); choose another folder');
    // A full disk, or a bug, is not the folder's permissions: it keeps its own message (and stack).
    expect(dataDirWriteProblem('/data', failed('ENOSPC'))).toBeUndefined();
    expect(dataDirWriteProblem('/data', new TypeError('x is undefined'))).toBeUndefined();
    expect(dataDirWriteProblem('/data', failed('toString'))).toBeUndefined();
  });

  it.skipIf(unwritableFolder === undefined)('stops migrate (the folder cannot be made, or its lock cannot be written) and serve --demo (its key cannot be written) with one line and exit 2', async () => {
    const notMade = join('/sys', `chipledger-test-${process.pid}`);
    expect(expectDataDirProblem(chipledger(['migrate'], { CHIPLEDGER_DATA_DIR: notMade })))
      .toMatch(new RegExp(`^chipledger: CHIPLEDGER_DATA_DIR: cannot write ${notMade}: .* \\((EPERM|EACCES|EROFS)\\); choose a folder this user can write, or let it write this one$`));
    expect(expectDataDirProblem(chipledger(['migrate'], { CHIPLEDGER_DATA_DIR: unwritableFolder! })))
      .toMatch(/^chipledger: CHIPLEDGER_DATA_DIR: cannot write \/sys\/kernel: .* \((EACCES|EROFS)\); /);
    expect(expectDataDirProblem(chipledger(['serve', '--demo'], { CHIPLEDGER_DATA_DIR: notMade, CHIPLEDGER_PORT: String(await findFreePort()) })))
      .toMatch(new RegExp(`^chipledger: CHIPLEDGER_DATA_DIR: cannot write ${notMade}: .* \\((EPERM|EACCES|EROFS)\\); `));
  });
});

/**
 * A read-only file system of our own (tmpfs mounted ro), where this process may mount one (root
 * with the right, as CI runs); undefined elsewhere. Node's recursive mkdir says ENOENT there,
 * not EROFS, which /sys (EPERM) does not show.
 */
function readOnlyMount(): { path: string; unmount: () => void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const path = mkdtempSync(join(tmpdir(), 'chipledger-read-only-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', path]).status !== 0) {
    rmSync(path, { recursive: true, force: true });
    return undefined;
  }
  return { path, unmount: () => { spawnSync('umount', [path]); rmSync(path, { recursive: true, force: true }); } };
}

describe('CHIPLEDGER_DATA_DIR on a read-only file system', () => {
  const mounted = readOnlyMount();
  afterAll(() => mounted?.unmount());

  // The lifecycle review: `migrate` there printed "unexpected error: Error: ENOENT … mkdir", exit 1.
  it.skipIf(mounted === undefined)('stops migrate and serve --demo with one line naming the read-only file system, exit 2', async () => {
    const dataDir = join(mounted!.path, '.chipledger');
    const said = new RegExp(`^chipledger: CHIPLEDGER_DATA_DIR: cannot write ${dataDir}: it is on a read-only file system \\(EROFS\\); `);
    expect(expectDataDirProblem(chipledger(['migrate'], { CHIPLEDGER_DATA_DIR: dataDir }))).toMatch(said);
    expect(expectDataDirProblem(chipledger(['serve', '--demo'], { CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_PORT: String(await findFreePort()) }))).toMatch(said);
    // Two folders to make, the first of them on the read-only file system: the same.
    expect(() => makeDataDir(join(dataDir, 'deeper'))).toThrow(new Failure(`CHIPLEDGER_DATA_DIR: cannot write ${join(dataDir, 'deeper')}: it is on a read-only file system (EROFS); choose a folder this user can write, or let it write this one`, 2));
  });
});

describe('CHIPLEDGER_DATA_DIR that no folder can have', () => {
  // The files review: `migrate` with a 300-character name printed "unexpected error: Error:
  // ENAMETOOLONG … at mkdirSync", exit 1; a loop of links did the same with ELOOP.
  it('stops migrate with one line and exit 2 when a name on its path is too long, or its links go round', () => {
    const tooLong = join(folder, 'x'.repeat(300));
    expect(expectDataDirProblem(chipledger(['migrate'], { CHIPLEDGER_DATA_DIR: tooLong })))
      .toBe(`chipledger: CHIPLEDGER_DATA_DIR: cannot write ${tooLong}: its path, or a name on it, is longer than the file system takes (ENAMETOOLONG); choose another folder`);
    symlinkSync(join(folder, 'loop-b'), join(folder, 'loop-a'));
    symlinkSync(join(folder, 'loop-a'), join(folder, 'loop-b'));
    const looping = join(folder, 'loop-a', 'data');
    expect(expectDataDirProblem(chipledger(['migrate'], { CHIPLEDGER_DATA_DIR: looping })))
      .toBe(`chipledger: CHIPLEDGER_DATA_DIR: cannot write ${looping}: the symbolic links on its path go round in a loop (or are too many) (ELOOP); choose another folder`);
  });
});

/**
 * Whether every folder above `path` already lets others pass through: openPathForPostgresUser
 * opens each folder up to /, and a test must not open a private one of the machine's (a TMPDIR
 * under /root).
 */
function othersPassAbove(path: string): boolean {
  for (let current = dirname(path); ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) return false;
    if (dirname(current) === current) return true;
  }
}

/** Whether this process may give a folder to another user (root), for the tests of a foreign owner. */
const mayChown = process.geteuid?.() === 0;
/** The account that stands for another local user: `nobody`'s usual id. */
const otherUserId = 65_534;

describe('CHIPLEDGER_DATA_DIR that another user may write', () => {
  // The files review: a folder `nobody` made first with mode 0777 was used by root as it was;
  // `nobody` then put a link in place of pg.password and root's next start chmodded its target
  // (a setuid program lost its bit), and could remove published-checkpoint to switch the guard off.
  it('is refused when its group or others may write it, naming chmod 700', () => {
    const open = join(folder, 'open-to-all');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(dataDirAccessProblem(open)).toBe(`CHIPLEDGER_DATA_DIR: ${open} may be written by its group or others (mode 777); whoever may write it can replace what chipledger keeps there (the database's password, its lock, published-checkpoint); run chmod 700 ${open}, or choose a folder of this user's that only it may write`);
    chmodSync(open, 0o770);
    expect(dataDirAccessProblem(open)).toContain('may be written by its group or others (mode 770)');
    // Read and passed through by others is theirs to decide (as root, PostgreSQL adds o+x itself).
    chmodSync(open, 0o755);
    expect(dataDirAccessProblem(open)).toBeUndefined();
    expect(problemsOf(open)).toEqual([]);
  });

  // The second diff review: a service's data dir that its group may write too (systemd's
  // StateDirectoryMode=0770), met by an admin command run with sudo, was still refused with
  // "run chown root … && chmod 700 …", which shuts the service out.
  it.skipIf(!mayChown)("is refused when another user owns it and others may write it, naming its owner's chmod 700 and sudo -u, chown only for a folder root alone uses (only the data dir: `pg/` inside is postgres's when run as root)", () => {
    const theirs = join(folder, 'theirs');
    mkdirSync(theirs, { mode: 0o770 });
    chmodSync(theirs, 0o770);
    chownSync(theirs, otherUserId, otherUserId);
    const owner = /^nobody:[^:]*:65534:/m.test(readFileSync('/etc/passwd', 'utf8')) ? 'nobody' : `'#${otherUserId}'`;
    expect(dataDirAccessProblem(theirs)).toBe(`CHIPLEDGER_DATA_DIR: ${theirs} belongs to another user (uid ${otherUserId}; chipledger runs as uid 0) and may be written by its group or others (mode 770); whoever may write it can replace what chipledger keeps there (the database's password, its lock, published-checkpoint); have its owner close it to others (sudo -u ${owner} chmod 700 ${theirs}), then run this command as its owner, as the server that uses it runs (sudo -u ${owner} …), or, if every chipledger that uses it runs as root, run chown root ${theirs} && chmod 700 ${theirs}`);
    chmodSync(theirs, 0o777);
    expect(dataDirAccessProblem(theirs)).toContain(`(mode 777); whoever may write it can replace what chipledger keeps there (the database's password, its lock, published-checkpoint); have its owner close it to others (sudo -u ${owner} chmod 700 ${theirs}), then run this command as its owner`);
    // A folder inside it that another user owns (the cluster's, postgres's) is not looked at.
    const mine = join(folder, 'mine');
    mkdirSync(join(mine, 'pg'), { recursive: true });
    chownSync(join(mine, 'pg'), otherUserId, otherUserId);
    expect(dataDirAccessProblem(mine)).toBeUndefined();
  });

  // The diff review: a service's data dir (install -d -m 700 -o chipledger), met by an admin
  // command run with sudo, was refused with "run chown root …", which shuts the service out.
  it.skipIf(!mayChown)('is refused when only another user may write it, naming sudo -u its owner rather than a chown that would take it from its service', () => {
    const service = join(folder, 'service-owned');
    mkdirSync(service, { mode: 0o700 });
    chownSync(service, otherUserId, otherUserId);
    const owner = /^nobody:[^:]*:65534:/m.test(readFileSync('/etc/passwd', 'utf8')) ? 'nobody' : `'#${otherUserId}'`;
    expect(dataDirAccessProblem(service)).toBe(`CHIPLEDGER_DATA_DIR: ${service} belongs to another user (uid ${otherUserId}; chipledger runs as uid 0); whoever may write it can replace what chipledger keeps there (the database's password, its lock, published-checkpoint); run this command as its owner, as the server that uses it runs (sudo -u ${owner} …), or, if every chipledger that uses it runs as root, run chown root ${service}`);
    // An owner without a name (systemd's DynamicUser): its id, as sudo takes it, quoted for the shell.
    const unnamedUserId = 3_999_999;
    chownSync(service, unnamedUserId, unnamedUserId);
    expect(dataDirAccessProblem(service)).toContain(`(sudo -u '#${unnamedUserId}' …)`);
    // Made 0755 by systemd's StateDirectory=: still only its owner may write it.
    chmodSync(service, 0o755);
    expect(dataDirAccessProblem(service)).toContain(`(sudo -u '#${unnamedUserId}' …)`);
  });

  it('is made with mode 0700 when missing, with the folders above it that are missing too', () => {
    const made = join(folder, 'made-private', 'data');
    makeDataDir(made);
    expect(statSync(made).mode & 0o777).toBe(0o700);
    expect(statSync(join(folder, 'made-private')).mode & 0o777).toBe(0o700);
    // A temporary folder of the tests' (mkdtemp: 0700) is taken as it is.
    expect(() => makeDataDir(folder)).not.toThrow();
  });

  // The README review: the README said "mode 0700", and the data dir root's serve made was 0701.
  // As root the embedded PostgreSQL runs as postgres, which must pass through the data dir to
  // reach pg/ inside it; the README now says so (production steps, Running as root).
  it.skipIf(!othersPassAbove(folder))('is opened to others to pass through only (0701) by the embedded start as root, and still trusted', () => {
    const made = join(folder, 'made-for-root', 'data');
    makeDataDir(made);
    const config = readConfig({ CHIPLEDGER_DATA_DIR: made }, {}, folder);
    if (!config.ok) expect.fail(config.problems.join('\n'));
    expect(config.config.database).toEqual({ kind: 'embedded', dataDir: join(made, 'pg') });
    // What startEmbeddedPostgres does as root with the cluster's folder's parent (store/embedded.ts).
    openPathForPostgresUser(dirname(join(made, 'pg')));
    expect(statSync(made).mode & 0o777).toBe(0o701);
    expect(statSync(join(folder, 'made-for-root')).mode & 0o777).toBe(0o701);
    expect(dataDirAccessProblem(made)).toBeUndefined();
    expect(problemsOf(made)).toEqual([]);
  });

  it('is refused by makeDataDir (the commands that write there) as a configuration problem, exit 2', () => {
    const open = join(folder, 'open-again');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const refused = (() => {
      try {
        makeDataDir(open);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(refused).toBeInstanceOf(Failure);
    expect((refused as Failure).exitCode).toBe(2);
    expect((refused as Failure).message).toContain(`run chmod 700 ${open}`);
  });

  it('stops migrate with one line and exit 2, before anything is written there', () => {
    const open = join(folder, 'open-for-migrate');
    mkdirSync(open);
    chmodSync(open, 0o777);
    if (mayChown) chownSync(open, otherUserId, otherUserId);
    const message = expectDataDirProblem(chipledger(['migrate'], { CHIPLEDGER_DATA_DIR: open }));
    expect(message).toMatch(new RegExp(`^chipledger: CHIPLEDGER_DATA_DIR: ${open} .*may be written by its group or others \\(mode 777\\); .*chmod 700 ${open}`));
    expect(readdirSync(open)).toEqual([]);
  });

  it('stops serve --demo on a database of its own with one line and exit 2, before its demo log key is read or made there', async () => {
    const open = join(folder, 'open-for-serve');
    mkdirSync(open);
    chmodSync(open, 0o777);
    // DATABASE_URL: no embedded cluster, so nothing but serve's own start check refuses the folder before the key (none listens there).
    const settings = { CHIPLEDGER_DATA_DIR: open, DATABASE_URL: `postgres://chipledger@127.0.0.1:${await findFreePort()}/chipledger`, CHIPLEDGER_PORT: String(await findFreePort()) };
    const message = expectDataDirProblem(chipledger(['serve', '--demo'], settings));
    expect(message).toMatch(new RegExp(`^chipledger: CHIPLEDGER_DATA_DIR: ${open} may be written by its group or others \\(mode 777\\); .*chmod 700 ${open}`));
    expect(readdirSync(open)).toEqual([]);
  });
});
