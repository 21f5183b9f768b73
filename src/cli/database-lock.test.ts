/**
 * The data-dir lock of the embedded PostgreSQL: a lock naming our own pid, or a pid whose
 * process started at another time (pids start over after a container restart), is stale; a
 * live holder is respected. Only `serve` lends its server: an admin command is refused another
 * admin command's server (which that one stops when it finishes), not serve's.
 *
 * Waiting for it: an admin command that finds serve still starting waits for its URL and then
 * uses its server (or goes on alone if that serve dies meanwhile); serve that finds an admin
 * command's lock waits for its release; each wait is said once and bounded; two serves refuse
 * each other at once.
 *
 * Taking it: a lock being written (empty, or half there) is in use, never cleared while young;
 * a stale lock is cleared only while it is still the file judged stale; and of several
 * processes racing for a stale lock exactly one takes it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { processStartTime } from '../store/processes.ts';
import type { Config } from './config.ts';
import { DataDirInUse, readLock, releaseLock, takeLock, updateLock, type LockContent } from './database-lock.ts';
import { openDatabase, StoppedWhileWaiting, type Database, type OpenOptions } from './database.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-database-lock-'));
const lockPath = join(folder, 'chipledger.lock');
const config = {
  database: { kind: 'embedded', dataDir: join(folder, 'pg') },
  dataDir: folder,
} as Config;
const hasProc = existsSync('/proc/self/stat');
const opened: Database[] = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const database of opened.reverse()) await database.close().catch(() => {});
  for (const child of children) child.kill('SIGKILL');
  rmSync(folder, { recursive: true, force: true });
});

async function open(name: string, exclusive: boolean, options: Partial<OpenOptions> = {}): Promise<Database> {
  const database = await openDatabase(config, { exclusive, connectionsMax: 2, applicationName: name, ...options });
  opened.push(database);
  return database;
}

async function close(database: Database): Promise<void> {
  opened.splice(opened.indexOf(database), 1);
  await database.close();
}

function writeStaleLock(content: Partial<LockContent>): void {
  writeFileSync(lockPath, JSON.stringify({ url: 'postgres://chipledger:gone@127.0.0.1:1/chipledger', lends: true, command: 'chipledger-serve', startTime: null, ...content }), { mode: 0o600 });
}

function liveBystander(): number {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

/** A pid no process has: one that just exited. */
function deadPid(): number {
  return spawnSync('true').pid!;
}

/** The lock folder's files besides the lock: temporary, moved-aside and clearing files must not be left. */
function leftovers(folderPath: string): string[] {
  return readdirSync(folderPath).filter((name) => name.startsWith('chipledger.lock.'));
}

const owner = { lends: true, command: 'chipledger-serve' };

describe('the data-dir lock', () => {
  it('treats a lock naming our own pid as stale: a previous process with our pid was killed', async () => {
    writeStaleLock({ pid: process.pid, startTime: processStartTime(process.pid) });
    const database = await open('chipledger-serve', true);
    expect(database.origin).toBe('embedded');
    expect((await database.pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(statSync(lockPath).mode & 0o777).toBe(0o600);
    const lock = readLock(lockPath)!;
    expect(lock.pid).toBe(process.pid);
    expect(lock.startTime).toBe(processStartTime(process.pid));
    expect(lock.dataDir).toBe(realpathSync(folder));
    await close(database);
    expect(existsSync(lockPath)).toBe(false);
  });

  it.skipIf(!hasProc)('treats a lock naming a live pid with another start time as stale', async () => {
    const pid = liveBystander();
    const startTime = processStartTime(pid)!;
    expect(startTime).toMatch(/^\d+$/);
    writeStaleLock({ pid, startTime: String(Number(startTime) - 1) });
    const database = await open('chipledger-serve', true);
    expect(database.origin).toBe('embedded');
    await close(database);
  });

  it('respects a live holder: same pid and start time', async () => {
    const pid = liveBystander();
    writeStaleLock({ pid, startTime: processStartTime(pid) });
    await expect(open('chipledger-serve', true)).rejects.toThrow(DataDirInUse);
    rmSync(lockPath);
  });

  it('lends serve\'s server to an admin command, but refuses one admin command another\'s', async () => {
    const serve = await open('chipledger-serve', true);
    const admin = await open('chipledger-token', false);
    expect(admin.origin).toBe('shared');
    expect((await admin.pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await close(admin);
    expect((await serve.pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await close(serve);

    const owner = await open('chipledger-demo', false);
    expect(owner.origin).toBe('embedded');
    const refused = await open('chipledger-check', false).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DataDirInUse);
    expect((refused as Error).message).toContain('is used by chipledger-demo');
    expect((refused as Error).message).toContain('run this command again once it has');
    expect(readFileSync(lockPath, 'utf8')).not.toContain('"lends":true');
    await close(owner);
  });
});

describe('waiting for the holder of the data-dir lock', () => {
  const later = (ms: number, action: () => unknown) => new Promise<void>((done) => setTimeout(() => { action(); done(); }, ms));

  it('has an admin command wait for a serve that is still starting, then use its server', async () => {
    const serve = await open('chipledger-serve', true);
    const started = readLock(lockPath)!;
    // As the lock reads while serve starts PostgreSQL (a fresh cluster takes seconds): no URL yet.
    updateLock(lockPath, { ...started, url: '' });
    const notices: string[] = [];
    const admin = open('chipledger-organisation', false, { notice: (line) => notices.push(line) });
    await later(800, () => updateLock(lockPath, started));
    const shared = await admin;
    expect(shared.origin).toBe('shared');
    expect((await shared.pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(notices).toEqual([`waiting for the chipledger serve (pid ${process.pid}) that is starting the embedded PostgreSQL in ${folder}…`]);
    await close(shared);
    await close(serve);
  });

  it('has an admin command go on alone when the starting serve it waits for dies', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    children.push(child);
    writeStaleLock({ pid: child.pid!, startTime: processStartTime(child.pid!), url: '' });
    const notices: string[] = [];
    const admin = open('chipledger-check', false, { notice: (line) => notices.push(line) });
    await later(600, () => child.kill('SIGKILL'));
    const alone = await admin;
    expect(alone.origin).toBe('embedded');
    expect(notices).toHaveLength(1);
    expect(readLock(lockPath)).toMatchObject({ pid: process.pid, lends: false, command: 'chipledger-check' });
    await close(alone);
  });

  it('has an admin command give up on a serve that does not finish starting in time', async () => {
    const pid = liveBystander();
    writeStaleLock({ pid, startTime: processStartTime(pid), url: '' });
    const refused = await open('chipledger-token', false, { lockWaitMs: 600, notice: () => {} }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DataDirInUse);
    expect((refused as Error).message).toBe(`the chipledger serve (pid ${pid}) has not finished starting the embedded PostgreSQL in ${folder} after 0.6 s; see its log, and run this command again once it serves`);
    rmSync(lockPath);
  });

  it('has serve wait for an admin command to finish, then start PostgreSQL itself', async () => {
    const admin = await open('chipledger-migrate', false, { createsCluster: true });
    expect(admin.origin).toBe('embedded');
    const notices: string[] = [];
    const serve = open('chipledger-serve', true, { notice: (line) => notices.push(line) });
    await later(800, () => void close(admin));
    const started = await serve;
    expect(started.origin).toBe('embedded');
    expect((await started.pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(notices).toEqual([`waiting for chipledger-migrate (chipledger process ${process.pid}) to finish with the embedded PostgreSQL in ${folder}…`]);
    await close(started);
  });

  it('has serve stop waiting, having started nothing, once a stop is asked for', async () => {
    const pid = liveBystander();
    writeStaleLock({ pid, startTime: processStartTime(pid), lends: false, command: 'chipledger-check' });
    let asked = false;
    const startedMs = Date.now();
    const waiting = open('chipledger-serve', true, { notice: () => {}, stopAsked: () => asked }).catch((error: unknown) => error);
    await later(400, () => (asked = true));
    const stopped = await waiting;
    expect(stopped).toBeInstanceOf(StoppedWhileWaiting);
    expect(Date.now() - startedMs).toBeLessThan(2_000);
    // The lock is still the admin command's.
    expect(readLock(lockPath)).toMatchObject({ pid, command: 'chipledger-check' });
    rmSync(lockPath);
  });

  it('has serve give up on an admin command that holds the lock too long, and refuse another serve at once, starting or not', async () => {
    const pid = liveBystander();
    writeStaleLock({ pid, startTime: processStartTime(pid), lends: false, command: 'chipledger-check' });
    const refused = await open('chipledger-serve', true, { lockWaitMs: 600, notice: () => {} }).catch((error: unknown) => error);
    expect((refused as Error).message).toBe(`the embedded PostgreSQL in ${folder} is still used by chipledger-check (chipledger process ${pid}) after 0.6 s; stop that process, or give this server its own CHIPLEDGER_DATA_DIR`);
    for (const url of ['', 'postgres://chipledger:x@127.0.0.1:1/chipledger']) {
      writeStaleLock({ pid, startTime: processStartTime(pid), lends: true, command: 'chipledger-serve', url });
      const notices: string[] = [];
      const startedMs = Date.now();
      await expect(open('chipledger-serve', true, { notice: (line) => notices.push(line) })).rejects.toThrow(/is run by chipledger process \d+; stop that process first/);
      expect(Date.now() - startedMs).toBeLessThan(5_000);
      expect(notices).toEqual([]);
    }
    rmSync(lockPath);
  });
});

describe('taking the data-dir lock', () => {
  const lockFolder = join(folder, 'taking');
  const path = join(lockFolder, 'chipledger.lock');
  mkdirSync(lockFolder);

  it('leaves a lock alone that is being written (empty or half there), and clears one that stayed damaged', () => {
    for (const text of ['', '{"pid":12']) {
      writeFileSync(path, text, { mode: 0o600 });
      expect(() => takeLock(path, owner)).toThrow(/the lock .* is being written by another chipledger process; try again in a moment/);
      expect(readFileSync(path, 'utf8')).toBe(text);
    }
    const longAgo = (Date.now() - limits.damagedLockInUseMs - 5_000) / 1000;
    utimesSync(path, longAgo, longAgo);
    expect(takeLock(path, owner)).toBe(null);
    expect(readLock(path)).toMatchObject({ pid: process.pid, url: '' });
    releaseLock(path);
    expect(existsSync(path)).toBe(false);
    expect(leftovers(lockFolder)).toEqual([]);
  });

  it('refuses an empty lock in openDatabase too, before starting PostgreSQL', async () => {
    writeFileSync(lockPath, '', { mode: 0o600 });
    await expect(open('chipledger-check', false)).rejects.toThrow(DataDirInUse);
    expect(readFileSync(lockPath, 'utf8')).toBe('');
    expect(existsSync(join(folder, 'pg', 'postmaster.pid'))).toBe(false);
    rmSync(lockPath);
  });

  it('does not remove a fresh lock that replaced the stale one it judged', () => {
    writeFileSync(path, JSON.stringify({ pid: deadPid(), startTime: null, url: '', lends: true, command: 'chipledger-serve' }), { mode: 0o600 });
    const bystander = liveBystander();
    const fresh = JSON.stringify({ pid: bystander, startTime: processStartTime(bystander), url: '', lends: true, command: 'chipledger-check' });
    // Another process clears the stale lock and takes the name between our look and our clearing.
    const steps = { judgedStale: () => { rmSync(path); writeFileSync(path, fresh, { mode: 0o600 }); } };
    expect(takeLock(path, owner, steps)).toMatchObject({ pid: bystander, url: '', command: 'chipledger-check' });
    expect(readFileSync(path, 'utf8')).toBe(fresh);
    expect(leftovers(lockFolder)).toEqual([]);
    rmSync(path);
  });

  it('lets one process at a time clear a stale lock, and clears a clearing lock its clearer left', () => {
    const stale = JSON.stringify({ pid: deadPid(), startTime: null, url: '', lends: true, command: 'chipledger-serve' });
    writeFileSync(path, stale, { mode: 0o600 });
    const clearer = liveBystander();
    writeFileSync(`${path}.clearing`, JSON.stringify({ pid: clearer, startTime: processStartTime(clearer), url: '', lends: false, command: 'chipledger-check' }), { mode: 0o600 });
    expect(() => takeLock(path, owner)).toThrow(new RegExp(`chipledger process ${clearer} is clearing a stale lock`));
    expect(readFileSync(path, 'utf8')).toBe(stale);

    writeFileSync(`${path}.clearing`, JSON.stringify({ pid: deadPid(), startTime: null, url: '', lends: false, command: 'chipledger-check' }), { mode: 0o600 });
    expect(takeLock(path, owner)).toBe(null);
    expect(readLock(path)?.pid).toBe(process.pid);
    releaseLock(path);
    expect(leftovers(lockFolder)).toEqual([]);
  });

  it('takes a lock written in another data dir as stale, however live its process, and says so naming both', () => {
    const bystander = liveBystander();
    const live = { pid: bystander, startTime: processStartTime(bystander), url: 'postgres://chipledger:x@127.0.0.1:1/chipledger', lends: true, command: 'chipledger-serve' };
    const here = realpathSync(lockFolder);
    writeFileSync(path, JSON.stringify({ ...live, dataDir: '/srv/chipledger-original' }), { mode: 0o600 });
    const notices: string[] = [];
    expect(takeLock(path, owner, { notice: (line) => notices.push(line) })).toBe(null);
    expect(notices).toEqual([`the lock ${path} was written in the data dir /srv/chipledger-original, not this one (${here}): it came with a copy of that folder, so it is stale here and no process of that folder is used`]);
    expect(readLock(path)).toMatchObject({ pid: process.pid, dataDir: here });
    releaseLock(path);
    expect(leftovers(lockFolder)).toEqual([]);

    // Its own data dir's, reached through a symbolic link or not, it is the live holder's.
    writeFileSync(path, JSON.stringify({ ...live, dataDir: here }), { mode: 0o600 });
    expect(takeLock(path, owner)).toMatchObject({ pid: bystander });
    const linked = join(folder, 'linked');
    symlinkSync(lockFolder, linked);
    expect(takeLock(join(linked, 'chipledger.lock'), owner)).toMatchObject({ pid: bystander });
    rmSync(linked);
    rmSync(path);
  });

  it('never removes a lock that names another process on release', () => {
    const bystander = liveBystander();
    const theirs = JSON.stringify({ pid: bystander, startTime: processStartTime(bystander), url: '', lends: true, command: 'chipledger-serve' });
    writeFileSync(path, theirs, { mode: 0o600 });
    releaseLock(path);
    expect(readFileSync(path, 'utf8')).toBe(theirs);
    rmSync(path);
  });

  it('of several processes racing for a stale lock, exactly one takes it', async () => {
    const racers = await startRacers(path, 6);
    try {
      // A race is won or lost in microseconds: a lock cleared by whoever judged it stale lost about
      // two rounds in five here, so eight rounds all but always catch it.
      for (let round = 0; round < 8; round += 1) {
        writeFileSync(path, JSON.stringify({ pid: deadPid(), startTime: null, url: '', lends: true, command: 'chipledger-serve' }), { mode: 0o600 });
        const results = await racers.race();
        const winners = results.filter((result) => result.outcome === 'took');
        expect(winners, JSON.stringify(results)).toHaveLength(1);
        // A loser finds the winner's lock (held), or another loser clearing the stale one (DataDirInUse).
        for (const loser of results.filter((result) => result.outcome !== 'took')) expect(['held', 'DataDirInUse'], JSON.stringify(results)).toContain(loser.outcome);
        expect(readLock(path)?.pid).toBe(winners[0]!.pid);
        await racers.release(winners[0]!.pid);
        expect(existsSync(path)).toBe(false);
        expect(leftovers(lockFolder)).toEqual([]);
      }
    } finally {
      racers.stop();
    }
  }, 120_000);
});

interface RaceResult {
  pid: number;
  outcome: string;
}

/**
 * Processes that each take the lock when told: all wait for one instant, then call takeLock
 * at once, report, and hold what they took until told to release it.
 */
async function startRacers(path: string, count: number): Promise<{ race(): Promise<RaceResult[]>; release(pid: number): Promise<void>; stop(): void }> {
  const module = resolve(import.meta.dirname, 'database-lock.ts');
  const script = `
    import { createInterface } from 'node:readline';
    import { takeLock, releaseLock } from ${JSON.stringify(module)};
    const path = ${JSON.stringify(path)};
    const say = (message) => process.stdout.write(JSON.stringify(message) + '\\n');
    createInterface({ input: process.stdin }).on('line', (line) => {
      const [command, at] = line.split(' ');
      if (command === 'release') { releaseLock(path); say({ pid: process.pid, outcome: 'released' }); return; }
      while (Date.now() < Number(at)) {} // everyone starts at the same instant
      let outcome;
      try { outcome = takeLock(path, { lends: true, command: 'racer' }) === null ? 'took' : 'held'; } catch (error) { outcome = error.name; if (outcome !== 'DataDirInUse') outcome += ': ' + error.message; }
      say({ pid: process.pid, outcome });
    });
    say({ pid: process.pid, outcome: 'ready' });
  `;
  const file = join(folder, 'racer.mjs');
  writeFileSync(file, script);
  const root = resolve(import.meta.dirname, '../..');
  const racers = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    const lines: RaceResult[] = [];
    const waiting: Array<(result: RaceResult) => void> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const result = JSON.parse(line) as RaceResult;
      const next = waiting.shift();
      if (next) next(result);
      else lines.push(result);
    });
    const nextLine = (): Promise<RaceResult> => (lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise((done) => waiting.push(done)));
    return { child, nextLine };
  });
  await Promise.all(racers.map(async (racer) => expect((await racer.nextLine()).outcome).toBe('ready')));
  return {
    async race() {
      const at = Date.now() + 300;
      for (const racer of racers) racer.child.stdin!.write(`go ${at}\n`);
      return Promise.all(racers.map((racer) => racer.nextLine()));
    },
    async release(pid) {
      const racer = racers.find((candidate) => candidate.child.pid === pid)!;
      racer.child.stdin!.write('release\n');
      expect((await racer.nextLine()).outcome).toBe('released');
    },
    stop() {
      for (const racer of racers) racer.child.stdin!.end();
    },
  };
}
