/**
 * The data-dir lock of the embedded PostgreSQL: a lock naming our own pid, or a pid whose
 * process started at another time (pids start over after a container restart), is stale; a
 * live holder is respected. Only `serve` lends its server: an admin command is refused another
 * admin command's server (which that one stops when it finishes), not serve's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processStartTime } from '../store/processes.ts';
import type { Config } from './config.ts';
import { DataDirInUse, openDatabase, readLock, type Database, type LockContent } from './database.ts';

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

async function open(name: string, exclusive: boolean): Promise<Database> {
  const database = await openDatabase(config, { exclusive, connectionsMax: 2, applicationName: name });
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
