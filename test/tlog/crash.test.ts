/**
 * kill -9 during sustained appends. A child process books without end through a Ledger that
 * signs a checkpoint every 50 ms; we kill it at three points, and after each kill open a new
 * Ledger on the same database (its start-up check re-audits the whole log and throws if it
 * cannot prove it) and check invariant 5 from the outside:
 * - every acknowledged booking's event is a leaf: an inclusion proof against the new root
 *   verifies for its canonical bytes;
 * - every checkpoint ever published (collected from tlog_checkpoints right before each kill)
 *   is consistent with the new checkpoint: the consistency proof verifies;
 * - `log verify` over HTTP, with the state it saved after the previous restart, passes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.ts';
import { verifyCommand } from '../../src/cli/log/commands.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import { systemActor } from '../../src/ledger/permissions.ts';
import { buildServer } from '../../src/server/app.ts';
import { createPool } from '../../src/store/pool.ts';
import { generateSignerKey, leafHash, openCheckpoint, parseVerifierKey, verifyConsistency, verifyInclusion } from '../../src/tlog/index.ts';
import { createTestDatabase, type TestDatabase } from '../database.ts';
import { buildWorld, type World } from '../world.ts';
import type { AppendChildConfig } from './append-child.ts';
import { captured } from './harness.ts';
import { testSealingKey } from '../support/sealing-key.ts';

const worldClock = '2026-02-01T00:00:00Z';
const childPath = fileURLToPath(new URL('./append-child.ts', import.meta.url));
const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));
const logKey = generateSignerKey('log.crash.test');
const verifier = parseVerifierKey(logKey.verifierKey);
const folder = mkdtempSync(join(tmpdir(), 'chipledger-crash-'));
const stateFile = join(folder, 'verify.state');
let database: TestDatabase;
let world: World;
let auditorToken = '';

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000_000, allocationUnits: 2_000_000 });
  const token = await world.ledger.submit('token.create', { organisationId: world.actors.auditor.orgId, role: 'auditor', label: 'crash' }, systemActor);
  auditorToken = String(token.ok && token.body.secret);
  await world.ledger.close(); // the child is the only writer from here on
});
afterAll(async () => {
  await database?.drop();
  rmSync(folder, { recursive: true, force: true });
});

interface Published {
  size: number;
  note: string;
}

/** Runs the child until `acks` bookings are acknowledged, collects the checkpoints, kills it. */
async function runAndKill(acks: number, workers: number): Promise<{ ids: string[]; published: Published[]; biggestBatch: number }> {
  const config: AppendChildConfig = {
    clock: worldClock, signerKey: logKey.signerKey, exporter: world.actors.exporter, productId: world.productId,
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, workers,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', childPath, database.url, JSON.stringify(config)], { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const ids: string[] = [];
  let biggestBatch = 0;
  let stderr = '';
  let buffered = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  const enough = new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const line = JSON.parse(buffered.slice(0, end)) as { type: string; id?: string; batch?: number };
        buffered = buffered.slice(end + 1);
        if (line.type === 'ack') ids.push(line.id!);
        biggestBatch = Math.max(biggestBatch, line.batch ?? 0);
      }
      if (ids.length >= acks) resolve();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    void exited.then(() => reject(new Error(`the child exited after ${ids.length} acknowledgements: ${stderr.slice(-2_000)}`)));
  });
  await enough;
  // Every checkpoint published so far; taken while the child still appends and signs.
  const published = (await database.pool.query<Published>('SELECT size, signed_note AS note FROM tlog_checkpoints ORDER BY size')).rows;
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return { ids: [...ids], published, biggestBatch };
}

/** The restart and every check of invariant 5. */
async function restartAndCheck(acknowledged: string[], published: Published[]): Promise<void> {
  const pool = createPool({ url: database.url, connectionsMax: 6, applicationName: 'tlog-crash-restart' });
  // Ledger.open runs the start-up check: a log it cannot prove makes this throw.
  const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: new ManualClock(worldClock), logSignerKey: logKey.signerKey, checkpointIntervalMs: 3_600_000 });
  try {
    const latest = (await ledger.checkpointer!.checkpointNow())!;
    const { size, rootHash } = openCheckpoint(latest.signed_note, verifier).checkpoint;
    const rows = (await pool.query<{ subject_id: string; seq: number; canonical: Buffer }>(
      "SELECT subject_id, seq, canonical FROM events WHERE kind = 'shipment.book' AND subject_id = ANY($1)", [acknowledged])).rows;
    const bySubject = new Map(rows.map((row) => [row.subject_id, row]));
    for (const id of acknowledged) {
      const row = bySubject.get(id);
      expect(row, `acknowledged shipment ${id} has no event after the restart`).toBeDefined();
      const proof = await ledger.log.inclusionProof(row!.seq, size);
      expect(verifyInclusion(leafHash(row!.canonical), row!.seq, size, proof, rootHash), `event ${row!.seq} of ${id} is not in the log of size ${size}`).toBe(true);
    }
    for (const checkpoint of published) {
      const old = openCheckpoint(checkpoint.note, verifier).checkpoint;
      const proof = await ledger.log.consistencyProof(old.size, size);
      expect(verifyConsistency(old.size, size, proof, old.rootHash, rootHash), `checkpoint ${old.size} is not consistent with ${size}`).toBe(true);
    }
    await verifyOverHttp(ledger, pool);
  } finally {
    await ledger.close();
    await pool.end();
  }
}

async function verifyOverHttp(ledger: Ledger, pool: ReturnType<typeof createPool>): Promise<void> {
  const app = await buildServer({ ledger, pool, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const capture = captured();
    await verifyCommand({ url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, key: logKey.verifierKey, token: auditorToken, state: stateFile }, capture.deps);
    expect(capture.out[0]).toMatch(/^ok: log\.crash\.test size \d+ .* entries hashed/);
  } finally {
    await app.close();
  }
}

describe('kill -9 during sustained appends, then restart', () => {
  const acknowledged: string[] = [];
  const published: Published[] = [];
  // The last round has enough callers for batches of hundreds of events, which go by COPY.
  for (const [round, acks, workers] of [[1, 150, 16], [2, 400, 16], [3, 700, 16], [4, 3000, 600]] as const) {
    it(`keeps every acknowledged event and every published checkpoint after a kill at ${acks} acknowledgements from ${workers} callers (round ${round})`, async () => {
      const run = await runAndKill(acks, workers);
      expect(run.ids.length).toBeGreaterThanOrEqual(acks);
      if (workers > 256) expect(run.biggestBatch, 'a batch big enough to write its events by COPY').toBeGreaterThanOrEqual(256);
      acknowledged.push(...run.ids);
      published.push(...run.published.filter((checkpoint) => !published.some((seen) => seen.size === checkpoint.size)));
      expect(published.length).toBeGreaterThan(0);
      await restartAndCheck(acknowledged, published);
    }, 90_000);
  }
});
