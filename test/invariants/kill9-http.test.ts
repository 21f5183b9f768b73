/**
 * kill -9 of the real server in the middle of an HTTP load. `chipledger serve` runs as a
 * child process on the test database; 16 concurrent HTTP clients book shipments (every
 * other one with its serial manifest, then shipped), each request with its own
 * Idempotency-Key. After some hundreds of 2xx answers (acknowledgements) we SIGKILL the
 * server while requests are in flight: those fail with a network error and count as
 * unacknowledged. Then we restart the server (same settings; its start-up checks must pass)
 * and check from the outside:
 * - every acknowledged booking is there (GET /v1/shipments/:id) at its acknowledged status
 *   or later;
 * - re-POSTing every acknowledged request with its key and body answers the same body with
 *   Idempotent-Replayed: true, and changes nothing in the database;
 * - re-POSTing every unacknowledged request either replays (it had committed) or applies it,
 *   once: afterwards every booking key has exactly one shipment, and the shipments and
 *   shipped shipments are exactly as many as the booking and ship keys;
 * - ledger_violations() is empty and the events are gapless.
 * Two kill/restart rounds on the same database, then a SIGTERM that must stop it with exit 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/ledger/permissions.ts';
import { findFreePort } from '../../src/store/embedded.ts';
import { generateSignerKey } from '../../src/tlog/index.ts';
import { createTestDatabase, type TestDatabase } from '../database.ts';
import { buildWorld, expectOk, type World } from '../world.ts';
import { checkEventsGapless } from '../support/checks.ts';
import { httpClient, type HttpAnswer, type HttpClient } from '../support/http-client.ts';
import { killAllServers, startServe, type ServeProcess } from '../support/http-serve.ts';

/** Concurrent HTTP clients of the load. */
const clients = 16;
/** Acknowledgements after which the server is killed, per round. */
const killAfter = [200, 200] as const;
/** A server must print its URL and answer /healthz within this (a loaded 2-core machine). */
const startTimeoutMs = 45_000;
/** One HTTP request may take this long. */
const requestTimeoutMs = 15_000;
/** The load must reach its kill point within this. */
const loadTimeoutMs = 30_000;

interface Sent {
  kind: 'book' | 'ship';
  path: string;
  key: string;
  body: Record<string, unknown>;
}

interface Acked extends Sent {
  status: number;
  answer: Record<string, unknown>;
}

/** Statuses a shipment may have reached after an acknowledged answer put it in `status`. */
const atLeast = {
  booked: ['booked', 'shipped', 'cleared', 'delivered'],
  shipped: ['shipped', 'cleared', 'delivered'],
};

let database: TestDatabase;
let world: World;
let token = '';
let env: Record<string, string>;
let dataDir = '';
/** Booking deadline of every request (the server's clock is the real one). */
let deadline = '';
/** The server of the current round. */
let server: ServeProcess | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000_000, allocationUnits: 2_000_000 });
  // The served ledger runs on the real clock: keep the world's licences valid whatever today is.
  expectOk(await world.ledger.submit('licence.amend', { licenceId: world.exportLicenceId, reason: 'valid for the kill -9 test', validTo: '2099-01-01T00:00:00Z' }, world.actors.bis));
  expectOk(await world.ledger.submit('licence.amend', { licenceId: world.importLicenceId, reason: 'valid for the kill -9 test', validTo: '2099-01-01T00:00:00Z' }, world.actors.mofcom));
  token = String(expectOk(await world.ledger.submit('token.create', { organisationId: world.actors.exporter.orgId, role: 'exporter', label: 'kill9-http' }, systemActor)).secret);
  await world.ledger.close(); // the server is the only writer from here on
  dataDir = mkdtempSync(join(tmpdir(), 'chipledger-kill9-http-'));
  deadline = new Date(Date.now() + 7 * 86_400_000).toISOString();
  env = {
    DATABASE_URL: database.url,
    CHIPLEDGER_HOST: '127.0.0.1',
    CHIPLEDGER_PORT: String(await findFreePort()),
    CHIPLEDGER_DATA_DIR: dataDir,
    CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('log.kill9-http.test').signerKey,
    CHIPLEDGER_LOG_LEVEL: 'warn',
    // No timed sweeps: each is an event, and one landing mid-check would change the snapshot.
    CHIPLEDGER_SWEEP_INTERVAL_MS: '3600000',
  };
});

afterAll(async () => {
  await killAllServers();
  await database?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function ok(answer: HttpAnswer): boolean {
  return answer.status >= 200 && answer.status < 300;
}

/** Runs `work` over `items`, at most `limit` at a time; the results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  }));
  return results;
}

function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${timeoutMs} ms`)), timeoutMs)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The load: `clients` loops booking (and shipping) until `killAt` acknowledgements, when the
 * server is SIGKILLed with the other loops' requests in flight.
 */
async function loadAndKill(round: number, live: ServeProcess, killAt: number): Promise<{ acked: Acked[]; unacked: Sent[]; inFlightAtKill: number }> {
  const client = httpClient(live.url, token, { connections: clients, timeoutMs: requestTimeoutMs });
  const acked: Acked[] = [];
  const unacked: Sent[] = [];
  const refused: string[] = [];
  let inFlight = 0;
  let inFlightAtKill = -1;
  const kill = () => {
    if (inFlightAtKill >= 0) return;
    inFlightAtKill = inFlight;
    process.kill(live.pid, 'SIGKILL');
  };
  const attempt = async (sent: Sent): Promise<Acked | undefined> => {
    inFlight += 1;
    let answer: HttpAnswer;
    try {
      answer = await client.send('POST', sent.path, { body: sent.body, headers: { 'idempotency-key': sent.key } });
    } catch {
      unacked.push(sent);
      return undefined;
    } finally {
      inFlight -= 1;
    }
    if (!ok(answer)) {
      refused.push(`${sent.kind} ${sent.key}: ${answer.status} ${JSON.stringify(answer.body)}`);
      return undefined;
    }
    const done: Acked = { ...sent, status: answer.status, answer: answer.body as Record<string, unknown> };
    acked.push(done);
    if (acked.length >= killAt) kill();
    return done;
  };
  const pairs = [
    { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport },
    { exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport },
  ];
  const worker = async (index: number) => {
    for (let n = 0; n < 10_000 && inFlightAtKill < 0; n += 1) {
      const name = `KH${round}-${index}-${n}`;
      const units = 1 + ((index + n) % 4);
      const withSerials = n % 2 === 0;
      const body = {
        ...pairs[(index + n) % pairs.length]!, productId: world.productId, units, deadline, reference: name,
        ...(withSerials ? { serials: Array.from({ length: units }, (_, i) => `${name}-${i}`) } : {}),
      };
      const booked = await attempt({ kind: 'book', path: '/v1/shipments', key: `${name}-book`, body });
      if (!booked) return;
      if (!withSerials || inFlightAtKill >= 0) continue;
      if (!(await attempt({ kind: 'ship', path: `/v1/shipments/${String(booked.answer.shipmentId)}/ship`, key: `${name}-ship`, body: {} }))) return;
    }
  };
  const workers = Promise.all(Array.from({ length: clients }, (_, index) => worker(index)));
  try {
    await within(workers, loadTimeoutMs, `round ${round}: the load reaching ${killAt} acknowledgements`);
  } finally {
    kill(); // in every case: the load timed out, or a worker was refused, or all stopped
    client.close();
  }
  expect(refused, 'the load was refused (every request should be accepted)').toEqual([]);
  const exit = await within(live.exited, 10_000, 'the killed server exiting');
  expect(exit.signal, `the server had exited before the kill:\n${live.log()}`).toBe('SIGKILL');
  return { acked, unacked, inFlightAtKill };
}

async function snapshot(): Promise<unknown> {
  const result = await database.pool.query(`SELECT (SELECT size FROM log_head) AS size, (SELECT count(*)::int FROM shipments) AS shipments,
    (SELECT count(*)::int FROM idempotency_keys) AS keys, (SELECT sum(reserved_units)::int FROM allocations) AS reserved,
    (SELECT sum(shipped_units)::int FROM allocations) AS shipped, (SELECT count(*)::int FROM units) + (SELECT count(*)::int FROM moved_manifest_lines) AS serials`);
  return result.rows[0];
}

async function checkDatabase(): Promise<void> {
  expect((await database.pool.query('SELECT * FROM ledger_violations()')).rows).toEqual([]);
  await checkEventsGapless(database.pool);
}

/**
 * The restart and every check. `acked` holds the acknowledgements of all rounds so far;
 * `unacked` this round's unanswered requests, which are retried here and then join `acked`.
 */
async function restartAndCheck(acked: Acked[], unacked: Sent[]): Promise<{ replayed: number; applied: number }> {
  server = await startServe(env, startTimeoutMs);
  const client: HttpClient = httpClient(server.url, token, { connections: clients, timeoutMs: requestTimeoutMs });
  const post = (sent: Sent) => client.send('POST', sent.path, { body: sent.body, headers: { 'idempotency-key': sent.key } });
  try {
    await checkDatabase();

    // Every acknowledged booking is there, at its acknowledged status or later.
    const bookings = acked.filter((entry) => entry.kind === 'book');
    const shippedIds = new Set(acked.filter((entry) => entry.kind === 'ship').map((entry) => entry.path.split('/')[3]!));
    const ids = bookings.map((entry) => String(entry.answer.shipmentId));
    expect(new Set(ids).size, 'two acknowledged bookings got the same shipment').toBe(ids.length);
    const found = await mapLimit(bookings, clients, async (entry) => ({ entry, answer: await client.send('GET', `/v1/shipments/${String(entry.answer.shipmentId)}`) }));
    for (const { entry, answer } of found) {
      const id = String(entry.answer.shipmentId);
      expect(answer.status, `acknowledged shipment ${id} (key ${entry.key}) after the restart: ${JSON.stringify(answer.body)}`).toBe(200);
      const shipment = answer.body as { status: string; units: number; reference: string };
      expect(atLeast[shippedIds.has(id) ? 'shipped' : 'booked'], `status of ${id} (key ${entry.key})`).toContain(shipment.status);
      expect({ units: shipment.units, reference: shipment.reference }).toEqual({ units: entry.body.units, reference: entry.body.reference });
    }

    // Re-POSTing every acknowledged request replays its answer and changes nothing.
    const before = await snapshot();
    const retries = await mapLimit(acked, clients, post);
    retries.forEach((retry, index) => {
      const first = acked[index]!;
      const same = retry.status === first.status && isDeepStrictEqual(retry.body, first.answer) && retry.headers['idempotent-replayed'] === 'true';
      expect(same, `retry of ${first.kind} key ${first.key}: first ${first.status} ${JSON.stringify(first.answer)}, retry ${retry.status} ${JSON.stringify(retry.body)} replayed=${String(retry.headers['idempotent-replayed'])}`).toBe(true);
    });
    expect(await snapshot(), 'replaying acknowledged requests changed the database').toEqual(before);

    // Re-POSTing each unacknowledged request replays it (it had committed) or applies it, once.
    // Bookings first: an unacknowledged ship's booking was acknowledged, so order only matters for clarity.
    const pending = [...unacked].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'book' ? -1 : 1));
    const firstRetries = await mapLimit(pending, clients, post);
    let replayed = 0;
    firstRetries.forEach((retry, index) => {
      const sent = pending[index]!;
      expect(ok(retry), `retry of unacknowledged ${sent.kind} key ${sent.key}: ${retry.status} ${JSON.stringify(retry.body)}`).toBe(true);
      if (retry.headers['idempotent-replayed'] === 'true') replayed += 1;
    });
    const secondRetries = await mapLimit(pending, clients, post);
    secondRetries.forEach((retry, index) => {
      const first = firstRetries[index]!;
      expect({ status: retry.status, body: retry.body, replayed: retry.headers['idempotent-replayed'] }, `second retry of ${pending[index]!.key}`).toEqual({ status: first.status, body: first.body, replayed: 'true' });
    });
    pending.forEach((sent, index) => acked.push({ ...sent, status: firstRetries[index]!.status, answer: firstRetries[index]!.body as Record<string, unknown> }));

    // Now every request ever sent is acknowledged: one shipment per booking key, one shipping per ship key.
    const bookKeys = acked.filter((entry) => entry.kind === 'book');
    const shipKeys = new Set(acked.filter((entry) => entry.kind === 'ship').map((entry) => entry.key));
    const counts = await database.pool.query<{ shipments: number; references: number; shipped: number }>(
      `SELECT count(*)::int AS shipments, count(DISTINCT reference)::int AS references, (count(*) FILTER (WHERE status <> 'booked'))::int AS shipped FROM shipments`,
    );
    expect(counts.rows[0]).toEqual({ shipments: bookKeys.length, references: bookKeys.length, shipped: shipKeys.size });
    const byReference = await database.pool.query<{ reference: string; id: string }>('SELECT reference, id FROM shipments');
    const idOf = new Map(byReference.rows.map((row) => [row.reference, row.id]));
    for (const entry of bookKeys) expect(idOf.get(String(entry.body.reference)), `booking key ${entry.key}`).toBe(String(entry.answer.shipmentId));

    await checkDatabase();
    return { replayed, applied: pending.length - replayed };
  } finally {
    client.close();
  }
}

describe('kill -9 of the HTTP server mid-load, then restart', () => {
  const acked: Acked[] = [];
  killAfter.forEach((point, index) => {
    const round = index + 1;
    it(`keeps every acknowledged request after a kill at ${point} acknowledgements (round ${round})`, async () => {
      const started = Date.now();
      server ??= await startServe(env, startTimeoutMs);
      const load = await loadAndKill(round, server, point);
      server = undefined;
      expect(load.acked.length).toBeGreaterThanOrEqual(point);
      expect(load.inFlightAtKill, 'no request was in flight at the kill').toBeGreaterThan(0);
      acked.push(...load.acked);
      const retried = await restartAndCheck(acked, load.unacked);
      console.log(`kill9-http round ${round}: ${load.acked.length} acknowledged, ${load.inFlightAtKill} in flight at the kill, ${load.unacked.length} unacknowledged (${retried.replayed} had committed, ${retried.applied} applied on retry); ${Date.now() - started} ms`);
    }, 90_000);
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(server, 'no server is running after the last round').toBeDefined();
    const live = server!;
    live.child.kill('SIGTERM');
    expect(await within(live.exited, 35_000, 'the server stopping on SIGTERM'), live.log()).toEqual({ code: 0, signal: null });
    server = undefined;
    await checkDatabase();
  }, 60_000);
});
