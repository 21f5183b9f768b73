/**
 * The guard against a database that went back: a server records the newest checkpoint it
 * signed or saw in its data dir, and refuses to start on a database whose log is shorter than
 * it or has another root at its size. A "restore" here is a second database given fewer of the
 * same first commands (a shorter log; not the same leaves, as each event draws a nonce of its
 * own, so only where the size alone refuses it), or a copy of the database made as a template
 * (backupOf), a backup whose log the original's extends; a fork, one given as many other
 * commands.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ManualClock } from '../core/clock.ts';
import { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { findFreePort } from '../store/embedded.ts';
import { unusedPort } from '../../test/support/port.ts';
import { generateSignerKey, openCheckpoint, parseSignerKey, parseVerifierKey, signCheckpoint } from '../tlog/index.ts';
import { backupOf, createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { organisationRegisterCommand } from './admin.ts';
import { readConfig } from './config.ts';
import { Failure, type Output } from './output.ts';
import { demoKeyFileName } from './log-key.ts';
import { PublishedCheckpointGuard, type FollowOptions } from './published-checkpoint.ts';
import { publishedCheckpointFileName } from './published-checkpoint-file.ts';
import { until } from '../../test/support/until.ts';
import { withTriggerOff } from '../../test/support/tamper.ts';

const root = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-published-'));
const key = generateSignerKey('published.test/log');
const databases: TestDatabase[] = [];
/** The original, a restore of it taken two events back, and a fork of it at its size. */
let original: TestDatabase;
let restored: TestDatabase;
let forked: TestDatabase;

interface Server {
  ledger: Ledger;
  guard: PublishedCheckpointGuard;
  /** As serve stops: the ledger (its last signing), then the guard's looks. */
  close(): Promise<void>;
}

/**
 * serve's steps around the ledger: the start check, Ledger.open, then following the log's
 * checkpoints. `signs: false`: a server without a log key (no checkpointer), which only looks.
 */
async function startServer(pool: Pool, dataDir: string, options: { signs?: boolean; follow?: FollowOptions } = {}): Promise<Server> {
  const signs = options.signs ?? true;
  const guard = await PublishedCheckpointGuard.check(pool, dataDir, signs ? [key.signerKey] : []);
  // An hour between ticks: the tests sign with checkpointNow, at the sizes they choose.
  // One that signs nothing still holds the log's key, to seal its heads (ledger/log/head-seal.ts).
  const signing = signs ? { logSignerKey: key.signerKey, checkpointIntervalMs: 3_600_000 } : { logSealingKey: key.signerKey };
  const ledger = await Ledger.open({ pool, clock: new ManualClock('2026-02-01T00:00:00Z'), logSealingKey: key.signerKey, ...signing });
  await guard.follow(ledger, options.follow);
  return {
    ledger,
    guard,
    async close() {
      await ledger.close();
      await guard.stop();
    },
  };
}

async function register(ledger: Ledger, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const answer = await ledger.submit('organisation.register', { name, country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
    if (!answer.ok) throw new Error(answer.error.message);
  }
}

/** Builds a database's log without a signer (so without checkpoints): `names` registered in order. */
async function fill(database: TestDatabase, names: readonly string[]): Promise<void> {
  const ledger = await Ledger.open({ pool: database.pool, clock: new ManualClock('2026-02-01T00:00:00Z'), logSealingKey: key.signerKey });
  await register(ledger, names);
  await ledger.close();
}

function recorded(dataDir: string): { size: number; root: string } {
  const { checkpoint } = openCheckpoint(readFileSync(join(dataDir, publishedCheckpointFileName), 'utf8'), parseVerifierKey(key.verifierKey));
  return { size: checkpoint.size, root: checkpoint.rootHash.toString('base64') };
}

async function refusal(work: Promise<unknown>): Promise<string> {
  const error = await work.then(() => undefined, (thrown: unknown) => thrown);
  expect(error).toBeInstanceOf(Failure);
  return (error as Failure).message;
}

const first = ['Org A', 'Org B', 'Org C', 'Org D'];

beforeAll(async () => {
  [original, restored, forked] = await Promise.all([createTestDatabase(), createTestDatabase(), createTestDatabase()]);
  databases.push(original, restored, forked);
  await fill(restored, first.slice(0, 2));
  await fill(forked, ['Org W', 'Org X', 'Org Y', 'Org Z']);
});

afterAll(async () => {
  for (const database of databases) await database.drop();
  rmSync(folder, { recursive: true, force: true });
});

describe('the checkpoint a server published, kept in its data dir', () => {
  const dataDir = join(folder, 'server');

  it('is recorded when the server signs, and only grows', async () => {
    mkdirSync(dataDir, { recursive: true });
    const server = await startServer(original.pool, dataDir);
    expect(existsSync(join(dataDir, publishedCheckpointFileName))).toBe(false);
    await register(server.ledger, first);
    const signed = await server.ledger.checkpointer!.checkpointNow();
    expect(recorded(dataDir)).toEqual({ size: signed!.size, root: signed!.root.toString('base64') });
    expect(signed!.size).toBe(first.length);
    await server.close();
  });

  it('refuses a database restored from before it, naming both sizes and roots, and before migrating or signing anything', async () => {
    const before = await original.pool.query('SELECT count(*)::int AS n FROM tlog_checkpoints');
    const message = await refusal(startServer(restored.pool, dataDir));
    const published = recorded(dataDir);
    expect(message).toContain(`transparency log has 2 entries`);
    expect(message).toContain(`fewer than the checkpoint of size ${published.size} (root ${published.root})`);
    expect(message).toContain('restored from an older backup');
    expect(message).toContain(`move ${join(dataDir, publishedCheckpointFileName)} away`);
    expect(message).not.toContain('\n');
    expect((await restored.pool.query('SELECT count(*)::int AS n FROM tlog_checkpoints')).rows[0].n).toBe(0);
    expect((await original.pool.query('SELECT count(*)::int AS n FROM tlog_checkpoints')).rows).toEqual(before.rows);
  });

  it('refuses an admin command that writes on that database too: it would give out published ids again', async () => {
    const read = readConfig({ DATABASE_URL: restored.url, CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_LOG_SIGNER_KEY: key.signerKey });
    if (!read.ok) throw new Error(read.problems.join('; '));
    const lines: string[] = [];
    const output: Output = { out: (line) => lines.push(line), err: (line) => lines.push(line), errStream: { write: () => true } };
    const message = await refusal(organisationRegisterCommand(read.config, { name: 'Org Again', country: 'GB', roles: 'auditor' }, output));
    expect(message).toMatch(/^refusing to write to this database: the database's transparency log has 2 entries/);
    expect(lines).toEqual([]);
    expect((await restored.pool.query('SELECT count(*)::int AS n FROM organisations')).rows).toEqual([{ n: 2 }]);
  });

  it('refuses a database of the same size with another history (a fork), naming both roots', async () => {
    const message = await refusal(startServer(forked.pool, dataDir));
    const published = recorded(dataDir);
    expect(message).toContain(`at size ${published.size} (of 4 entries)`);
    expect(message).toContain(`has root ${published.root}`);
    expect(message).toContain('another history');
    expect((await forked.pool.query('SELECT count(*)::int AS n FROM tlog_checkpoints')).rows[0].n).toBe(0);
  });

  it('refuses a database that never held the log (empty, not migrated), and leaves it unmigrated', async () => {
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    const name = `t_empty_${process.pid}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(inject('databaseUrl'));
    url.pathname = `/${name}`;
    const pool = createPool({ url: url.toString(), connectionsMax: 2, applicationName: 'chipledger-test' });
    try {
      const message = await refusal(startServer(pool, dataDir));
      expect(message).toContain(`transparency log has 0 entries`);
      expect((await pool.query("SELECT to_regclass('events') AS events")).rows[0].events).toBeNull();
    } finally {
      await pool.end();
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('starts on the same database with more events, and records what it signs next', async () => {
    const server = await startServer(original.pool, dataDir);
    await register(server.ledger, ['Org E']);
    await server.ledger.checkpointer!.checkpointNow();
    expect(recorded(dataDir).size).toBe(first.length + 1);
    await server.close();
  });

  it("refuses a checkpoint of another log (the demo's data dir, a production database) as another log's, not as a database that went back", async () => {
    // The newcomer's way there: the demo's data dir left as the default, an admin command run
    // with the production DATABASE_URL. The demo's key is in that data dir, so its checkpoint
    // verifies, and it is larger than the production log.
    const demoDir = join(folder, 'demo');
    mkdirSync(demoDir, { recursive: true });
    const demo = generateSignerKey('demo.published.test/log');
    writeFileSync(join(demoDir, demoKeyFileName), `${demo.signerKey}\n`, { mode: 0o600 });
    const file = join(demoDir, publishedCheckpointFileName);
    writeFileSync(file, signCheckpoint({ origin: 'demo.published.test/log', size: 95, rootHash: Buffer.alloc(32, 9), extensions: [] }, parseSignerKey(demo.signerKey)));
    const anotherLog = `${file} holds a checkpoint of another log (origin demo.published.test/log; this database's log is published.test/log): the data dir is another deployment's (the demo's, say), or the database is; set CHIPLEDGER_DATA_DIR to the folder of this database's own server`;

    const read = readConfig({ DATABASE_URL: original.url, CHIPLEDGER_DATA_DIR: demoDir });
    if (!read.ok) throw new Error(read.problems.join('; '));
    const output: Output = { out: () => {}, err: () => {}, errStream: { write: () => true } };
    const admin = await refusal(organisationRegisterCommand(read.config, { name: 'Org Elsewhere', country: 'GB', roles: 'auditor' }, output));
    expect(admin).toContain(`refusing to write to this database: ${anotherLog}`);
    expect(admin).not.toContain('fewer than');
    // serve, with the log's own key: refused the same way, before the other log's signature is looked at.
    expect(await refusal(startServer(original.pool, demoDir))).toContain(`refusing to start: ${anotherLog}`);
    // A database that records no key yet is compared by the key that will sign it.
    expect(await refusal(PublishedCheckpointGuard.check(restored.pool, demoDir, [key.signerKey]))).toContain(`(origin demo.published.test/log; this database's log is published.test/log)`);
  });

  it('refuses a file changed by hand (its signature no longer verifies), in a line of its own', async () => {
    const file = join(dataDir, publishedCheckpointFileName);
    const good = readFileSync(file, 'utf8');
    // The size changed (2 instead of 5) so that, believed, it would let the restore start.
    writeFileSync(file, good.replace(/\n5\n/, '\n2\n'));
    try {
      const message = await refusal(startServer(restored.pool, dataDir));
      expect(message).toContain(`${file} should hold the newest checkpoint this server published, but it is not a checkpoint signed by a key of this log (${key.verifierKey})`);
      expect(message).toContain('does not verify');
      expect(message).not.toContain('\n');
      // A file of another log, well signed by a key this server does not hold, is said as what it is.
      const other = parseSignerKey(generateSignerKey('other.test/log').signerKey);
      writeFileSync(file, signCheckpoint({ origin: other.name, size: 5, rootHash: Buffer.alloc(32, 9), extensions: [] }, other));
      expect(await refusal(startServer(original.pool, dataDir))).toContain(`${file} holds a checkpoint of another log (origin other.test/log; this database's log is published.test/log)`);
    } finally {
      writeFileSync(file, good);
    }
  });

  it('refuses, while running, to record a checkpoint the recorded one is not part of (the database went back under it)', async () => {
    const guard = await PublishedCheckpointGuard.check(original.pool, dataDir, [key.signerKey]);
    const size = recorded(dataDir).size;
    const rootAt = async (): Promise<Buffer> => Buffer.alloc(32, 7);
    const smaller = { size: size - 1, root: Buffer.alloc(32, 1), signedNote: 'unused\n' };
    await expect(guard.record(smaller, rootAt)).rejects.toThrow(`no longer extends the checkpoint of size ${size}`);
    const larger = { size: size + 1, root: Buffer.alloc(32, 1), signedNote: 'unused\n' };
    await expect(guard.record(larger, rootAt)).rejects.toThrow(`no longer extends the checkpoint of size ${size}`);
    expect(recorded(dataDir).size).toBe(size);
  });

  it('takes, as covered, a smaller checkpoint the log still holds under the recorded one (another server\'s larger one was recorded first)', async () => {
    const guard = await PublishedCheckpointGuard.check(original.pool, dataDir, [key.signerKey]);
    const { size, root } = recorded(dataDir);
    const smallerRoot = Buffer.alloc(32, 3);
    // The log as the database holds it: the recorded root at its size, the smaller one's at its own.
    const rootAt = async (at: number): Promise<Buffer> => (at === size ? Buffer.from(root, 'base64') : smallerRoot);
    const smaller = { size: size - 1, root: smallerRoot, signedNote: 'unused\n' };
    await expect(guard.record(smaller, rootAt)).resolves.toBeUndefined();
    expect(recorded(dataDir)).toMatchObject({ size, root });
    // Another root at the smaller size than the log's is still the database gone back.
    await expect(guard.record({ ...smaller, root: Buffer.alloc(32, 4) }, rootAt)).rejects.toThrow(`no longer extends the checkpoint of size ${size}`);
  });

  it('starts on the restore once the file is moved away (the documented override), and records that database from then on', async () => {
    const file = join(dataDir, publishedCheckpointFileName);
    renameSync(file, `${file}.before-restore`);
    const server = await startServer(restored.pool, dataDir);
    await server.ledger.checkpointer!.checkpointNow();
    expect(recorded(dataDir).size).toBe(2);
    await server.close();
    // The guard holds again, now for the restored database's log.
    expect(await refusal(startServer(forked.pool, dataDir))).toContain('at size 2 (of 4 entries)');
  });
});

/** Between a following server's looks in these tests, for the default's few seconds. */
const lookIntervalMs = 50;
/** How long a look may take to show, on a machine busy with other test files: many periods. */
const lookSeenWithinMs = 5_000;
/** How the tests wait for a look: polled at half its period, for at most lookSeenWithinMs. */
const lookSeen = { withinMs: lookSeenWithinMs, everyMs: lookIntervalMs / 2 };

describe('a server that signs nothing, on a database another server signs', () => {
  /** One database, two servers: A signs, B has no log key (so it only looks). */
  let shared: TestDatabase;
  const signerDir = join(folder, 'signer');
  const lookerDir = join(folder, 'looker');

  beforeAll(async () => {
    shared = await createTestDatabase();
    databases.push(shared);
    mkdirSync(signerDir, { recursive: true });
    mkdirSync(lookerDir, { recursive: true });
  });

  it('records the checkpoints the other signs, within a few looks, so it refuses a backup newer than its start but older than them', async () => {
    const signing = await startServer(shared.pool, signerDir);
    await register(signing.ledger, first.slice(0, 2));
    await signing.ledger.checkpointer!.checkpointNow();
    await signing.close();
    // A third event no checkpoint covers yet, and the backup: its log extends the checkpoint
    // B records at its start, as a backup taken while B runs would (a database is copied only
    // with no session on it, so it is taken before B starts).
    await fill(shared, first.slice(2, 3));
    const backup = await backupOf(shared);
    databases.push(backup);

    const a = await startServer(shared.pool, signerDir);
    const b = await startServer(shared.pool, lookerDir, { signs: false, follow: { intervalMs: lookIntervalMs } });
    expect(b.ledger.checkpointer).toBeUndefined();
    expect(recorded(lookerDir).size).toBe(2);
    await register(a.ledger, first.slice(3));
    const signed = await a.ledger.checkpointer!.checkpointNow();
    await until('B records the checkpoint A signed', () => recorded(lookerDir).size === first.length, lookSeen);
    expect(recorded(lookerDir)).toEqual({ size: signed!.size, root: signed!.root.toString('base64') });
    // A failover under B to a replica as far behind as the backup is said by B's next look.
    await expect(b.guard.seeNow(backup.pool)).rejects.toThrow(`the database's transparency log no longer extends the checkpoint of size ${first.length} this server published (recorded in ${join(lookerDir, publishedCheckpointFileName)}): the database went back while this server ran`);
    await Promise.all([a.close(), b.close()]);

    // The database restored from the backup: B's start is refused, as A's is.
    for (const dataDir of [lookerDir, signerDir]) {
      const message = await refusal(startServer(backup.pool, dataDir, { signs: dataDir === signerDir }));
      expect(message).toContain(`the database's transparency log has 3 entries`);
      expect(message).toContain(`fewer than the checkpoint of size ${first.length}`);
    }
  });

  it("never records a checkpoint row a database user wrote by hand, says so once while it is there, and goes on once it is gone", async () => {
    const errors: string[] = [];
    const recoveries: string[] = [];
    const a = await startServer(shared.pool, signerDir);
    const b = await startServer(shared.pool, lookerDir, { signs: false, follow: { intervalMs: lookIntervalMs, onError: (error, context) => errors.push(`${context}: ${(error as Error).message}`), onRecovered: (message) => recoveries.push(message) } });
    const before = recorded(lookerDir);
    // An event no checkpoint covers yet, and a row for it written by hand: the log's size and
    // root, under the log's key id, but signed by another key of the log's name. Believed, the
    // file would hold a note no key of the log signed, and B's next start would refuse the
    // database's own log.
    await register(a.ledger, ['Org E']);
    const size = first.length + 1;
    const impostor = parseSignerKey(generateSignerKey('published.test/log').signerKey);
    const rootHash = await a.ledger.log.rootAt(size);
    const forged = signCheckpoint({ origin: impostor.name, size, rootHash, extensions: [] }, impostor);
    const keyId = (await shared.pool.query<{ key_id: string }>('SELECT key_id FROM tlog_checkpoints LIMIT 1')).rows[0]!.key_id;
    await shared.pool.query('INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES ($1, $2, $3, $4)', [size, rootHash, keyId, forged]);
    try {
      await expect(b.guard.seeNow(shared.pool)).rejects.toThrow(`the database's newest checkpoint, of size ${size}, is not a checkpoint of that size signed by a key of this log (${key.verifierKey}): it was written or changed by hand, so it is not recorded`);
      await until('B says it', () => errors.length > 0, lookSeen);
      // Several more looks, each failing the same way: still said once.
      await new Promise((done) => setTimeout(done, lookIntervalMs * 6));
      expect(errors).toEqual([expect.stringMatching(new RegExp(`^couldn't record the database's newest checkpoint in ${join(lookerDir, publishedCheckpointFileName)} \\(each reason is said once until it works again\\): the database's newest checkpoint, of size ${size}, is not a checkpoint`))]);
      expect(recorded(lookerDir)).toEqual(before);
    } finally {
      await withTriggerOff(shared.pool, 'tlog_checkpoints', () => shared.pool.query('DELETE FROM tlog_checkpoints WHERE size = $1', [size]));
    }
    await a.ledger.checkpointer!.checkpointNow();
    await until('B records the checkpoint A signed next', () => recorded(lookerDir).size === size, lookSeen);
    // Said once the look that recorded it has ended, which is after the file is written.
    await until('B says recording works again', () => recoveries.length > 0, lookSeen);
    expect(recoveries).toEqual([expect.stringMatching(/^recording the database's newest checkpoint works again, after \d+ failed looks? over /)]);
    await Promise.all([a.close(), b.close()]);
  });
});

/** `chipledger serve` with DATABASE_URL as a child process; resolves when it serves (then stopped) or exits. */
async function serveOn(databaseUrl: string, dataDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Not findFreePort's: another file may be given that one before serve listens (test/support/port.ts).
  const port = await unusedPort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', String(port)], {
    cwd: root, env: { ...env, DATABASE_URL: databaseUrl, CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_LOG_SIGNER_KEY: key.signerKey, CHIPLEDGER_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    if (stdout.includes('chipledger is serving')) child.kill('SIGTERM');
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  // A start that neither serves nor exits is stopped, so that a test fails rather than hangs.
  const stuck = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((done) => child.on('exit', (exitCode) => done(exitCode)));
  clearTimeout(stuck);
  return { code, stdout, stderr };
}

describe('chipledger serve', () => {
  it('makes a data dir that does not exist yet, with DATABASE_URL, and starts on a database that has checkpoints', async () => {
    const dataDir = join(folder, 'never-made', 'data');
    const { stdout, stderr } = await serveOn(original.url, dataDir);
    expect(stderr).not.toMatch(/refusing|ENOENT/);
    expect(stdout).toContain('chipledger is serving');
    expect(existsSync(join(dataDir, publishedCheckpointFileName))).toBe(true);
  });

  it('refuses to start, before listening, on a database behind the checkpoint it published (DATABASE_URL, the file in its data dir)', async () => {
    const dataDir = join(folder, 'served');
    mkdirSync(dataDir, { recursive: true });
    const server = await startServer(original.pool, dataDir);
    await server.ledger.checkpointer!.checkpointNow();
    await server.close();
    const port = await findFreePort();
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', String(port)], {
      cwd: root, env: { ...env, DATABASE_URL: restored.url, CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_LOG_SIGNER_KEY: key.signerKey, CHIPLEDGER_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    // Without the guard it would serve: stopped then, so that the test fails rather than hangs.
    const serving = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((done) => child.on('exit', (exitCode) => done(exitCode)));
    clearTimeout(serving);
    expect(code).toBe(1);
    expect(stdout).not.toContain('chipledger is serving');
    expect(stderr).toMatch(/^chipledger: refusing to start: the database's transparency log has 2 entries .*fewer than the checkpoint of size 5 /m);
  });
});
