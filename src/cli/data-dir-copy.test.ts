/**
 * A data dir copied while its serve runs (a snapshot, cp -a, rsync) carries serve's lock: a live
 * process and its server's URL, both the original's (backup review, finding 1). Admin commands
 * on the copy followed it: `check` checked the original, `token create` wrote into it, and serve
 * on the copy told the operator to stop the original. Now the lock records the data dir it was
 * written in, and a lock naming another is stale; a lock of an older chipledger, which does
 * not say, is believed only once its server says it serves this data dir's cluster. Either
 * way the command says so in one line naming both folders, and works on the copy's own
 * PostgreSQL, or is refused where it may not make one.
 *
 * The original's serve runs in this test process, so the copy's lock names a live process
 * with its true start time; the admin commands on the copy run as child processes, to which
 * this process is that live holder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../ledger/permissions.ts';
import { Ledger } from '../ledger/ledger.ts';
import { migrate } from '../store/migrate.ts';
import { processStartTime } from '../store/processes.ts';
import { servedDataDirectory } from '../store/data-directory.ts';
import type { Config } from './config.ts';
import { readLock } from './database-lock.ts';
import { openDatabase, type Database } from './database.ts';
import { Failure } from './output.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const folder = realpathSync(mkdtempSync(join(tmpdir(), 'chipledger-data-dir-copy-')));
const original = join(folder, 'embA');
const children: ChildProcess[] = [];
let serve: Database;
let ledger: Ledger;

function configOf(dataDir: string): Config {
  return { database: { kind: 'embedded', dataDir: join(dataDir, 'pg') }, dataDir } as Config;
}

beforeAll(async () => {
  serve = await openDatabase(configOf(original), { exclusive: true, createsCluster: true, connectionsMax: 4, applicationName: 'chipledger-serve', notice: () => {} });
  await migrate(serve.pool);
  ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: serve.pool });
  await register('Before the copy');
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await ledger?.close();
  await serve?.close();
  rmSync(folder, { recursive: true, force: true });
});

async function register(name: string): Promise<void> {
  const answer = await ledger.submit('organisation.register', { name, country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
  expect(answer.ok).toBe(true);
}

/** The original data dir copied as `cp -a` copies it, while its serve runs; then one more event in the original only. */
let copies = 0;
async function copyWhileServing(): Promise<string> {
  copies += 1;
  const copy = join(folder, `copy${copies}`);
  const copied = spawnSync('cp', ['-a', original, copy], { encoding: 'utf8' });
  expect(copied.status, copied.stderr).toBe(0);
  await register(`After copy ${copies}`);
  return copy;
}

/** `chipledger ARGS` as a child process, with only the given settings of ours. */
function chipledger(args: string[], extra: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: { ...env, ...extra }, encoding: 'utf8', timeout: 120_000 });
}

async function eventsIn(database: Database): Promise<number> {
  return (await database.pool.query<{ events: number }>('SELECT count(*)::int AS events FROM events')).rows[0]!.events;
}

function liveBystander(): number {
  const child = spawn('sleep', ['120'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

describe('a data dir copied while its serve runs', () => {
  it('records the real path of its data dir in the lock', () => {
    expect(readLock(join(original, 'chipledger.lock'))).toMatchObject({ pid: process.pid, startTime: processStartTime(process.pid), dataDir: original, lends: true });
  });

  it('has `check` on the copy check the copy, not the original its lock names (a live holder: this process)', async () => {
    const copy = await copyWhileServing();
    expect(readLock(join(copy, 'chipledger.lock'))).toMatchObject({ pid: process.pid, startTime: processStartTime(process.pid) });
    const run = chipledger(['check'], { CHIPLEDGER_DATA_DIR: copy });
    expect(run.status, run.stderr).toBe(0);
    // The copy holds the one event made before it; the original holds two.
    expect(run.stdout.trim()).toBe(`Every invariant holds: no violations (1 event in the embedded database of ${copy}).`);
    expect(run.stderr.trim().split('\n')).toEqual([
      `chipledger: the lock ${join(copy, 'chipledger.lock')} was written in the data dir ${original}, not this one (${copy}): it came with a copy of that folder, so it is stale here and no process of that folder is used`,
    ]);
    expect(await eventsIn(serve)).toBe(2);
    // The copy's own PostgreSQL was started, and stopped with the command: no lock is left.
    expect(readLock(join(copy, 'chipledger.lock'))).toBeNull();
  });

  it('believes a lock of an older chipledger (no data dir recorded) only once its server says it serves this cluster', async () => {
    const copy = await copyWhileServing();
    const lockPath = join(copy, 'chipledger.lock');
    const { dataDir: _recorded, ...older } = readLock(lockPath)!;
    writeFileSync(lockPath, JSON.stringify(older), { mode: 0o600 });
    const token = chipledger(['token', 'create', '--org', 'ORG-0', '--role', 'auditor', '--label', 'on the copy'], { CHIPLEDGER_DATA_DIR: copy });
    expect(token.status, token.stderr).toBe(0);
    expect(token.stderr.trim().split('\n')).toEqual([
      `chipledger: the lock ${lockPath} names chipledger-serve (chipledger process ${process.pid}), whose PostgreSQL serves the cluster in ${join(original, 'pg')}, not this one (${join(copy, 'pg')}): it came with a copy of that folder, so it is stale here and no process of that folder is used`,
      expect.stringMatching(/^Token TOK-\S+ for ORG-0 as auditor \("on the copy"\); the secret is shown once:$/),
    ]);
    expect(token.stdout).toMatch(/^clt_\S+\n$/);
    // The token went into the copy (two events, and now the token's), not into the original.
    expect((await serve.pool.query('SELECT id FROM tokens')).rows).toEqual([]);
    const check = chipledger(['check'], { CHIPLEDGER_DATA_DIR: copy });
    expect(check.stdout.trim(), check.stderr).toBe(`Every invariant holds: no violations (3 events in the embedded database of ${copy}).`);
  });

  it('lets serve on the copy start the copy’s own PostgreSQL instead of asking to stop the original', async () => {
    const copy = await copyWhileServing();
    const lockPath = join(copy, 'chipledger.lock');
    // As a serve of the original in another process would have left it: a live pid, its start time, the original's URL.
    const holder = liveBystander();
    const { dataDir: _recorded, ...older } = readLock(lockPath)!;
    writeFileSync(lockPath, JSON.stringify({ ...older, pid: holder, startTime: processStartTime(holder) }), { mode: 0o600 });
    const notices: string[] = [];
    const own = await openDatabase(configOf(copy), { exclusive: true, connectionsMax: 2, applicationName: 'chipledger-serve', notice: (line) => notices.push(line) });
    try {
      expect(own.origin).toBe('embedded');
      // Asked as the superuser, whose URL the lock holds: the pool's writer may not read data_directory.
      expect(await servedDataDirectory({ url: readLock(lockPath)!.url, timeoutMs: 5_000, applicationName: 'chipledger-test' })).toBe(join(copy, 'pg'));
      expect(notices).toEqual([expect.stringContaining(`names chipledger-serve (chipledger process ${holder}), whose PostgreSQL serves the cluster in ${join(original, 'pg')}, not this one (${join(copy, 'pg')})`)]);
      expect(readLock(lockPath)).toMatchObject({ pid: process.pid, dataDir: copy });
    } finally {
      await own.close();
    }
  });

  it('refuses an admin command where only the copied lock is there, no cluster, and leaves no lock', async () => {
    const bare = join(folder, 'bare');
    mkdirSync(bare);
    const lockPath = join(bare, 'chipledger.lock');
    writeFileSync(lockPath, readFileSync(join(original, 'chipledger.lock')), { mode: 0o600 });
    const notices: string[] = [];
    const refused = await openDatabase(configOf(bare), { exclusive: false, connectionsMax: 2, applicationName: 'chipledger-check', notice: (line) => notices.push(line) }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Failure);
    expect((refused as Failure).message).toMatch(new RegExp(`^no chipledger database in ${bare} \\(no PostgreSQL cluster in`));
    expect(notices).toEqual([expect.stringContaining(`was written in the data dir ${original}, not this one (${bare})`)]);
    expect(readLock(lockPath)).toBeNull();
  });

  it('refuses an admin command in one line when the serve its lock names does not answer', async () => {
    const quiet = join(folder, 'quiet');
    mkdirSync(quiet);
    const holder = liveBystander();
    const lockPath = join(quiet, 'chipledger.lock');
    writeFileSync(lockPath, JSON.stringify({ pid: holder, startTime: processStartTime(holder), url: 'postgres://chipledger:gone@127.0.0.1:1/chipledger', lends: true, command: 'chipledger-serve' }), { mode: 0o600 });
    const refused = await openDatabase(configOf(quiet), { exclusive: false, connectionsMax: 2, applicationName: 'chipledger-check', notice: () => {} }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Failure);
    expect((refused as Failure).message).toMatch(new RegExp(`^couldn't reach the PostgreSQL of chipledger-serve \\(chipledger process ${holder}\\), which holds the lock ${lockPath} \\(.*ECONNREFUSED.*\\); if it is stopping, run this command again once it has$`));
    // The lock is the holder's still.
    expect(readLock(lockPath)).toMatchObject({ pid: holder });
  });
});
