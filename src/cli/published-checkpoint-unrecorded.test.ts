/**
 * A server whose published-checkpoint cannot be written (a full disk, a read-only remount of
 * its data dir; here a writer that fails as they do) stops signing new checkpoints until the
 * file is written again, says why on /healthz (503, rule published-checkpoint-unrecorded,
 * naming the file and the error) and on /metrics, and records and signs again by itself once
 * the write works. Before (the files review), it went on signing and serving with /healthz 200:
 * the checkpoints signed meanwhile were published but unknown to the guard, and a restart on a
 * backup taken in between was accepted without a word. And the start refuses a data dir others
 * may write, and a FIFO in the file's place, rather than trusting or waiting on it.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTimeout } from '../core/timeout.ts';
import { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import { buildServer } from '../server/app.ts';
import type { Pool } from '../store/pool.ts';
import { generateSignerKey, openCheckpoint, parseVerifierKey } from '../tlog/index.ts';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { until } from '../../test/support/until.ts';
import { PublishedCheckpointGuard, publishedCheckpointUnrecordedRule, type FollowOptions } from './published-checkpoint.ts';
import { publishedCheckpointFileName, type NoteWriter } from './published-checkpoint-file.ts';
import { Failure } from './output.ts';
import { replaceFile } from './replace-file.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-unrecorded-'));
const key = generateSignerKey('unrecorded.test/log');
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
  rmSync(folder, { recursive: true, force: true });
});

/** How long a look or a tick may take to show, on a machine busy with other test files. */
const seenWithin = { withinMs: 10_000, everyMs: 20 };

/**
 * The file's writer, failing while `failing` is set as a full disk fails: each attempt under a
 * new temporary name, quoted in the error as Node quotes it.
 */
class FlakyDisk {
  failing: { code: string; text: string } | undefined;
  attempts = 0;
  readonly write: NoteWriter = async (file, note) => {
    this.attempts += 1;
    if (this.failing !== undefined) {
      const { code, text } = this.failing;
      throw Object.assign(new Error(`${code}: ${text}, open '${file}.${process.pid}.${this.attempts}.tmp'`), { code });
    }
    await replaceFile(file, note, { mode: 0o644, folderSync: 'required' });
  };
}

interface Server {
  ledger: Ledger;
  guard: PublishedCheckpointGuard;
  app: FastifyInstance;
  file: string;
  close(): Promise<void>;
}

/** serve's steps around the ledger (the start check, Ledger.open, following), and its API. */
async function startServer(pool: Pool, name: string, disk: FlakyDisk, options: { checkpointIntervalMs?: number; follow?: FollowOptions; onError?: (error: unknown, context: string) => void; onRecovered?: (message: string) => void } = {}): Promise<Server> {
  const dataDir = mkdtempSync(join(folder, `${name}-`));
  const guard = await PublishedCheckpointGuard.check(pool, dataDir, [key.signerKey]);
  const ledger = await Ledger.open({
    logSealingKey: testSealingKey, pool, logSignerKey: key.signerKey, checkpointIntervalMs: options.checkpointIntervalMs ?? 3_600_000,
    ...(options.onError === undefined ? {} : { onError: options.onError }),
    ...(options.onRecovered === undefined ? {} : { onRecovered: options.onRecovered }),
  });
  await guard.follow(ledger, { ...options.follow, write: disk.write });
  const app = await buildServer({ ledger, pool, logger: false });
  return {
    ledger, guard, app, file: join(dataDir, publishedCheckpointFileName),
    async close() {
      await app.close();
      await ledger.close();
      await guard.stop();
    },
  };
}

let organisations = 0;
async function register(ledger: Ledger, count: number): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    organisations += 1;
    const answer = await ledger.submit('organisation.register', { name: `Org ${organisations}`, country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
    if (!answer.ok) throw new Error(answer.error.message);
  }
}

function recordedSize(file: string): number {
  return openCheckpoint(readFileSync(file, 'utf8'), parseVerifierKey(key.verifierKey)).checkpoint.size;
}

async function checkpointsStored(): Promise<number> {
  return (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tlog_checkpoints')).rows[0]!.n;
}

async function headSize(): Promise<number> {
  return Number((await database.pool.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
}

const full = { code: 'ENOSPC', text: 'no space left on device' };

describe('a published-checkpoint that cannot be written', () => {
  it('holds the signing after the first checkpoint it could not record, answers /healthz 503 naming the file and the error, and signs again once it is written', async () => {
    const disk = new FlakyDisk();
    const server = await startServer(database.pool, 'signed', disk);
    const { ledger, app, file } = server;
    const checkpointer = ledger.checkpointer!;
    const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;
    try {
      await register(ledger, 2);
      const first = (await checkpointer.checkpointNow())!.size;
      expect(recordedSize(file)).toBe(first);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

      disk.failing = full;
      await register(ledger, 1);
      const failure = await checkpointer.checkpointNow().then(() => undefined, (error: unknown) => error as Error);
      // Committed, so served, before the write was tried: the one checkpoint the file misses.
      expect(failure?.message).toBe(`couldn't record a checkpoint in ${file}, which guards against starting on a database that went back (it records size ${first}): ENOSPC: no space left on device, open`);
      // The reason once: pino's error serializer appends a cause's message to the error's own.
      expect(failure?.cause).toBeUndefined();
      const stored = await checkpointsStored();
      expect(recordedSize(file)).toBe(first);

      const health = await app.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(503);
      const problem = health.json();
      expect(problem).toMatchObject({ code: 'unavailable', rule: publishedCheckpointUnrecordedRule, details: { file, recordedSize: first, unrecordedSize: first + 1, error: 'ENOSPC: no space left on device, open' } });
      expect(problem.detail).toContain(`${file}, which guards against starting on a database that went back, records the checkpoint of size ${first}, but this server has signed or seen one of size ${first + 1} and could not record it since `);
      expect(problem.detail).toContain('so this server signs no new checkpoint until the file is written again');
      expect(problem.detail).not.toContain('.tmp');
      expect(await metrics()).toMatch(/^chipledger_checkpoint_signing_held 1$/m);

      // Held: more events, and a signing asked for, sign nothing; the ledger keeps committing.
      await register(ledger, 2);
      await expect(checkpointer.checkpointNow()).rejects.toThrow(failure!.message);
      expect(await checkpointsStored()).toBe(stored);
      expect(recordedSize(file)).toBe(first);

      // The disk has room again: the checkpoint owed is written first, then the head is signed.
      disk.failing = undefined;
      const next = (await checkpointer.checkpointNow())!.size;
      expect(next).toBe(first + 3);
      expect(recordedSize(file)).toBe(next);
      expect(checkpointer.held).toBeUndefined();
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect(await metrics()).toMatch(/^chipledger_checkpoint_signing_held 0$/m);
    } finally {
      await server.close();
    }
  });

  it('holds a server whose write of a checkpoint another server signed failed, until a look records it', async () => {
    const signingDisk = new FlakyDisk();
    const lookingDisk = new FlakyDisk();
    const a = await startServer(database.pool, 'a', signingDisk);
    const b = await startServer(database.pool, 'b', lookingDisk, { follow: { intervalMs: 50 } });
    try {
      const before = recordedSize(b.file);
      lookingDisk.failing = { code: 'EROFS', text: 'read-only file system' };
      await register(a.ledger, 1);
      const signed = (await a.ledger.checkpointer!.checkpointNow())!.size;
      await until("B's look fails to record A's checkpoint", () => b.ledger.checkpointer!.held !== undefined, seenWithin);
      const health = await b.app.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ rule: publishedCheckpointUnrecordedRule, details: { file: b.file, recordedSize: before, unrecordedSize: signed, error: 'EROFS: read-only file system, open' } });
      // B signs nothing while held, though it is asked to.
      await register(b.ledger, 1);
      const stored = await checkpointsStored();
      await expect(b.ledger.checkpointer!.checkpointNow()).rejects.toThrow(/^couldn't record a checkpoint in .* EROFS: read-only file system, open$/);
      expect(await checkpointsStored()).toBe(stored);
      // Writable again: B's next look records the database's newest, and B signs again.
      lookingDisk.failing = undefined;
      await until("B's look records A's checkpoint", () => b.ledger.checkpointer!.held === undefined, seenWithin);
      expect(recordedSize(b.file)).toBe(signed);
      expect((await b.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect((await b.ledger.checkpointer!.checkpointNow())!.size).toBe(signed + 1);
      expect(recordedSize(b.file)).toBe(signed + 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('says since when it could not record from the first write that failed, not the latest larger one', async () => {
    const signingDisk = new FlakyDisk();
    const lookingDisk = new FlakyDisk();
    const a = await startServer(database.pool, 'since-a', signingDisk);
    const b = await startServer(database.pool, 'since-b', lookingDisk, { follow: { intervalMs: 50 } });
    /** What B's /healthz says it could not record, and since when. */
    const behind = async () => (await b.app.inject({ method: 'GET', url: '/healthz' })).json().details as { since: string; unrecordedSize: number };
    try {
      lookingDisk.failing = { code: 'EROFS', text: 'read-only file system' };
      await register(a.ledger, 1);
      const signed = (await a.ledger.checkpointer!.checkpointNow())!.size;
      await until("B's look fails to record A's checkpoint", () => b.ledger.checkpointer!.held !== undefined, seenWithin);
      const { since } = await behind();
      // Later, a larger checkpoint B's look fails to record too: the outage is as old as before.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await register(a.ledger, 1);
      const larger = (await a.ledger.checkpointer!.checkpointNow())!.size;
      expect(larger).toBeGreaterThan(signed);
      await until("B's look fails to record A's larger checkpoint", () => b.guard.behind?.details?.unrecordedSize === larger, seenWithin);
      expect(await behind()).toMatchObject({ since, unrecordedSize: larger });
      lookingDisk.failing = undefined;
      await until("B's look records A's larger checkpoint", () => b.ledger.checkpointer!.held === undefined, seenWithin);
      expect(recordedSize(b.file)).toBe(larger);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('says the outage once while its ticks fail, then records and signs the head by itself once the write works', async () => {
    const disk = new FlakyDisk();
    const errors: string[] = [];
    const recoveries: string[] = [];
    const server = await startServer(database.pool, 'ticking', disk, {
      checkpointIntervalMs: 200, follow: { intervalMs: 3_600_000 },
      onError: (error, context) => errors.push(`${context}: ${(error as Error).message}`),
      onRecovered: (message) => recoveries.push(message),
    });
    const { ledger, file } = server;
    try {
      await register(ledger, 1);
      const signedHead = await headSize();
      await until('a tick signs and records the head', () => existsSync(file) && recordedSize(file) === signedHead, seenWithin);
      disk.failing = full;
      await register(ledger, 1);
      await until('a tick signs and fails to record', () => ledger.checkpointer!.held !== undefined, seenWithin);
      const stored = await checkpointsStored();
      // Idle (the head is the checkpoint owed), the ticks try the write again too, and do not
      // count as signing working again.
      const failedAt = disk.attempts;
      await until('idle ticks try the write again', () => disk.attempts >= failedAt + 2, seenWithin);
      expect(recoveries).toEqual([]);
      const attempts = disk.attempts;
      await register(ledger, 2);
      await until('more ticks try the write again', () => disk.attempts >= attempts + 3, seenWithin);
      expect(await checkpointsStored()).toBe(stored);
      // Each attempt under another temporary name: still one reason, said once.
      expect(errors).toEqual([expect.stringMatching(/^couldn't sign a checkpoint \(each reason is said once until signing works again\): couldn't record a checkpoint in .* ENOSPC: no space left on device, open$/)]);
      expect(recoveries).toEqual([]);

      disk.failing = undefined;
      const head = await headSize();
      await until('the head is signed and recorded', () => recordedSize(file) === head, seenWithin);
      await until('said once', () => recoveries.length > 0, seenWithin);
      expect(recoveries).toEqual([expect.stringMatching(/^checkpoint signing works again, after \d+ failed ticks? over /)]);
      expect(ledger.checkpointer!.held).toBeUndefined();
      expect(errors).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});

describe('a published-checkpoint the start cannot trust', () => {
  // The files review: whoever could write the data dir could delete the file, and the next
  // start recorded whatever the database held: the guard was off for it.
  it('is refused, exit 2, when the data dir is open to others to write (serve, and admin commands with DATABASE_URL)', async () => {
    const dataDir = mkdtempSync(join(folder, 'open-'));
    chmodSync(dataDir, 0o777);
    const refusal = await PublishedCheckpointGuard.check(database.pool, dataDir, [key.signerKey], 'refusing to write to this database').then(() => undefined, (error: unknown) => error as Failure);
    expect(refusal).toBeInstanceOf(Failure);
    expect(refusal?.exitCode).toBe(2);
    expect(refusal?.message).toMatch(new RegExp(`^refusing to write to this database: CHIPLEDGER_DATA_DIR: ${dataDir} may be written by its group or others \\(mode 777\\); .* run chmod 700 ${dataDir}, `));
  });


  // The files review: whoever could write the data dir could put a FIFO there, and the start's
  // read of it waited for a writer for ever.
  it('is refused at start when it is a FIFO, at once', async () => {
    const dataDir = mkdtempSync(join(folder, 'fifo-'));
    const file = join(dataDir, publishedCheckpointFileName);
    execFileSync('mkfifo', [file]);
    const refusal = await withTimeout(PublishedCheckpointGuard.check(database.pool, dataDir, [key.signerKey]), 5_000, 'the start waited on the FIFO').then(() => undefined, (error: unknown) => error as Error);
    expect(refusal).toBeInstanceOf(Failure);
    expect(refusal?.message).toBe(`refusing to start: ${file}, where this server records the newest checkpoint it published, is not a file; if you mean to serve this database anyway (monitors and witnesses of the log will see it go back or fork), move ${file} away (keep it: it records what was published) and start again`);
  });
});
