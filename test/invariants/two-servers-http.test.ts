/**
 * Two real `chipledger serve` processes on one database (DESIGN.md: "Several server processes
 * may run against one database ... correctness must hold then too"), both signing the
 * transparency log with the same key. Concurrent HTTP load goes through both at once, all on
 * the same allocations so that their batches contend:
 * - 1,200 bookings with unique Idempotency-Keys, for more units than the allocations hold, so
 *   that some are refused with 409 insufficient_units;
 * - bookings with serials are shipped, and some others cancelled, through the OTHER server;
 * - some requests are replayed on the other server (same answer, Idempotent-Replayed: true),
 *   some sent to both servers at the same moment (one applies, the other replays), and one
 *   key is reused with a different body (422 idempotency_mismatch);
 * - the recipient reads fresh bookings through the other server (its own: 200; another
 *   recipient's: 404);
 * - a watcher fetches checkpoints from both servers while the load runs.
 * Afterwards, from the database and over HTTP: ledger_violations() is empty; the events are
 * gapless; one shipment per accepted booking key and none for a refused one; reserved and
 * shipped units of every allocation equal the sums of the accepted, not-cancelled shipments
 * (and never exceed the allocation); every checkpoint either server served opens with the log
 * key and is consistent with the newest one (a consistency proof fetched from the other
 * server); the newest root is the Merkle root of the events' canonical bytes. Then SIGTERM
 * stops both servers with exit 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/ledger/permissions.ts';
import { findFreePort } from '../../src/store/embedded.ts';
import { generateSignerKey, leafHash, openCheckpoint, parseVerifierKey, rootOf, verifyConsistency, type Checkpoint } from '../../src/tlog/index.ts';
import { createTestDatabase, type TestDatabase } from '../database.ts';
import { buildWorld, expectOk, type World } from '../world.ts';
import { checkEventsGapless, checkNoOverAllocation } from '../support/checks.ts';
import { httpClient, type HttpAnswer, type HttpClient } from '../support/http-client.ts';
import { killAllServers, startServe, type ServeProcess } from '../support/http-serve.ts';
import { mapLimit, postRetrying, sleep, waitFor, within, type RetryStats } from '../support/two-servers.ts';

/** Bookings in all, split evenly over the two servers. */
const bookings = 1_200;
/** Concurrent clients per server. */
const clientsPerServer = 8;
/** Units of each allocation: the bookings ask for about 1,500 per allocation pair. */
const allocationUnits = 1_000;
/** Servers start in parallel; each must be ready within this (a loaded 2-core machine). */
const startTimeoutMs = 30_000;
/** One HTTP request may take this long. */
const requestTimeoutMs = 15_000;
/** The whole load must finish within this. */
const loadTimeoutMs = 35_000;

interface Spec {
  index: number;
  /** The server that books it (0 or 1); ships, cancels and replays go to the other one. */
  home: 0 | 1;
  key: string;
  body: { exportAllocationId: string; importAllocationId: string; productId: string; units: number; deadline: string; reference: string; serials?: string[] };
  /** Ship it through the other server once booked (the bookings with serials). */
  ship: boolean;
  /** Cancel it through the other server once booked. */
  cancel: boolean;
  /** Re-POST it on the other server after its answer: the same answer, replayed. */
  replayOther: boolean;
  /** POST it to both servers at the same moment. */
  concurrentDuplicate: boolean;
  /** Re-POST its key on the other server with a different body: 422. */
  mismatch: boolean;
  /** The recipient (alpha) reads it through the other server once booked. */
  recipientRead: boolean;
}

interface Outcome {
  spec: Spec;
  accepted: boolean;
  shipmentId?: string;
  shipped: boolean;
  cancelled: boolean;
}

let database: TestDatabase;
let world: World;
let exporterToken = '';
let recipientToken = '';
let logKey: { signerKey: string; verifierKey: string };
const dataDirs: string[] = [];
const servers: ServeProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 4 * allocationUnits, allocationUnits });
  // The served ledgers run on the real clock: keep the world's licences valid whatever today is.
  expectOk(await world.ledger.submit('licence.amend', { licenceId: world.exportLicenceId, reason: 'valid for the two-server test', validTo: '2099-01-01T00:00:00Z' }, world.actors.bis));
  expectOk(await world.ledger.submit('licence.amend', { licenceId: world.importLicenceId, reason: 'valid for the two-server test', validTo: '2099-01-01T00:00:00Z' }, world.actors.mofcom));
  exporterToken = String(expectOk(await world.ledger.submit('token.create', { organisationId: world.actors.exporter.orgId, role: 'exporter', label: 'two-servers exporter' }, systemActor)).secret);
  recipientToken = String(expectOk(await world.ledger.submit('token.create', { organisationId: world.actors.alpha.orgId, role: 'recipient', label: 'two-servers recipient' }, systemActor)).secret);
  await world.ledger.close(); // the two servers are the only writers from here on
  logKey = generateSignerKey('log.two-servers.test');
  const envs = await Promise.all([0, 1].map(async (n) => {
    const dataDir = mkdtempSync(join(tmpdir(), `chipledger-two-servers-${n}-`));
    dataDirs.push(dataDir);
    return {
      DATABASE_URL: database.url,
      CHIPLEDGER_HOST: '127.0.0.1',
      CHIPLEDGER_PORT: String(await findFreePort()),
      CHIPLEDGER_DATA_DIR: dataDir,
      CHIPLEDGER_LOG_SIGNER_KEY: logKey.signerKey,
      CHIPLEDGER_LOG_LEVEL: 'warn',
      // No timed sweeps: each is an event, and one landing mid-check would change the counts.
      CHIPLEDGER_SWEEP_INTERVAL_MS: '3600000',
    };
  }));
  expect(envs[0]!.CHIPLEDGER_PORT).not.toBe(envs[1]!.CHIPLEDGER_PORT);
  const started = await Promise.allSettled(envs.map((env) => startServe(env, startTimeoutMs)));
  for (const result of started) if (result.status === 'fulfilled') servers.push(result.value);
  for (const result of started) if (result.status === 'rejected') throw result.reason;
});

afterAll(async () => {
  await killAllServers();
  await database?.drop();
  for (const dataDir of dataDirs) rmSync(dataDir, { recursive: true, force: true });
});

function makeSpecs(deadline: string): Spec[] {
  const pairs = [
    { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport },
    { exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport },
  ];
  return Array.from({ length: bookings }, (_, index) => {
    const name = `ts-${index}`;
    // 1 to 4 units, each size as often on both allocation pairs; a quarter with serials, on both.
    const units = 1 + ((index + Math.floor(index / 4)) % 4);
    const withSerials = index % 8 === 1 || index % 8 === 6;
    return {
      index,
      home: (index % 2) as 0 | 1,
      key: `${name}-book`,
      body: {
        ...pairs[Math.floor(index / 2) % 2]!, productId: world.productId, units, deadline, reference: name,
        ...(withSerials ? { serials: Array.from({ length: units }, (_, i) => `TS-${index}-SN${i}`) } : {}),
      },
      ship: withSerials,
      cancel: !withSerials && index % 10 === 6,
      replayOther: index % 37 === 5,
      concurrentDuplicate: index % 97 === 11,
      mismatch: index === 601,
      recipientRead: index % 29 === 3,
    };
  });
}

interface Observed {
  server: number;
  note: string;
  checkpoint: Checkpoint;
}

describe('two chipledger servers on one database, under concurrent HTTP load', () => {
  it('keeps every invariant with both servers writing at once', async () => {
    const started = Date.now();
    expect(servers).toHaveLength(2);
    const exporter: HttpClient[] = servers.map((server) => httpClient(server.url, exporterToken, { connections: clientsPerServer + 4, timeoutMs: requestTimeoutMs }));
    const recipient: HttpClient[] = servers.map((server) => httpClient(server.url, recipientToken, { connections: 2, timeoutMs: requestTimeoutMs }));
    const verifier = parseVerifierKey(logKey.verifierKey);
    const stats: RetryStats = { retried503: 0 };
    const unexpected: string[] = [];
    const note = (what: string, answer: HttpAnswer) => unexpected.push(`${what}: ${answer.status} ${JSON.stringify(answer.body)} replayed=${String(answer.headers['idempotent-replayed'])}`);
    let replays = 0;
    let duplicates = 0;
    let refused = 0;
    const acceptedBy = [0, 0];
    try {
      // Both servers publish the configured key.
      for (const client of exporter) expect((await client.send('GET', '/v1/log/key')).body).toBe(`${logKey.verifierKey}\n`);

      const deadline = new Date(Date.now() + 7 * 86_400_000).toISOString();
      const specs = makeSpecs(deadline);

      // While the load runs, a watcher fetches checkpoints from both servers in turn.
      const observed: Observed[] = [];
      let loadDone = false;
      const watcher = (async () => {
        for (let turn = 0; !loadDone; turn += 1) {
          const server = turn % 2;
          const answer = await exporter[server]!.send('GET', '/v1/log/checkpoint');
          if (answer.status === 200 && typeof answer.body === 'string') {
            observed.push({ server, note: answer.body, checkpoint: openCheckpoint(answer.body, verifier).checkpoint });
          } else if (answer.status !== 404) {
            note(`checkpoint from server ${server}`, answer);
          }
          await sleep(200);
        }
      })();

      const run = async (spec: Spec): Promise<Outcome> => {
        const home = spec.home;
        const other = 1 - home;
        const book = (server: number) => postRetrying(exporter[server]!, '/v1/shipments', spec.key, spec.body, stats);
        let answer: HttpAnswer;
        if (spec.concurrentDuplicate) {
          const both = await Promise.all([book(home), book(other)]);
          duplicates += 1;
          const [first, second] = both;
          if (first.status !== second.status || !isDeepStrictEqual(first.body, second.body)) {
            note(`concurrent duplicate ${spec.key} on server ${home}`, first);
            note(`concurrent duplicate ${spec.key} on server ${other}`, second);
          }
          const replayedFlags = both.map((one) => one.headers['idempotent-replayed'] === 'true');
          if (replayedFlags.filter(Boolean).length !== 1) unexpected.push(`concurrent duplicate ${spec.key}: replayed flags ${JSON.stringify(replayedFlags)} (exactly one must replay)`);
          answer = replayedFlags[0] ? second : first;
        } else {
          answer = await book(home);
        }
        const outcome: Outcome = { spec, accepted: false, shipped: false, cancelled: false };
        if (answer.status === 201) {
          outcome.accepted = true;
          outcome.shipmentId = String((answer.body as { shipmentId: unknown }).shipmentId);
          acceptedBy[home]! += 1;
        } else if (answer.status === 409 && (answer.body as { code?: string }).code === 'insufficient_units') {
          refused += 1;
        } else {
          note(`booking ${spec.key} on server ${home}`, answer);
          return outcome;
        }

        if (spec.replayOther) {
          const again = await book(other);
          replays += 1;
          if (again.status !== answer.status || !isDeepStrictEqual(again.body, answer.body) || again.headers['idempotent-replayed'] !== 'true') {
            note(`replay of ${spec.key} on server ${other} (first ${answer.status} ${JSON.stringify(answer.body)})`, again);
          }
        }
        if (spec.mismatch) {
          const different = await postRetrying(exporter[other]!, '/v1/shipments', spec.key, { ...spec.body, units: spec.body.units + 1 }, stats);
          if (different.status !== 422 || (different.body as { code?: string }).code !== 'idempotency_mismatch') note(`${spec.key} with a different body on server ${other}`, different);
        }
        if (!outcome.accepted) return outcome;

        if (spec.recipientRead) {
          const read = await recipient[other]!.send('GET', `/v1/shipments/${outcome.shipmentId}`);
          const own = spec.body.exportAllocationId === world.allocations.alphaExport;
          const body = read.body as { id?: string; status?: string; units?: number; recipientId?: string };
          const fine = own
            ? read.status === 200 && body.id === outcome.shipmentId && body.status === 'booked' && body.units === spec.body.units && body.recipientId === world.actors.alpha.orgId
            : read.status === 404;
          if (!fine) note(`recipient read of ${outcome.shipmentId} (${own ? 'its own' : "another recipient's"}) on server ${other}`, read);
        }
        if (spec.ship) {
          const shipped = await postRetrying(exporter[other]!, `/v1/shipments/${outcome.shipmentId}/ship`, `ts-${spec.index}-ship`, {}, stats);
          if (shipped.status === 200) outcome.shipped = true;
          else note(`ship of ${outcome.shipmentId} on server ${other}`, shipped);
        } else if (spec.cancel) {
          const cancelled = await postRetrying(exporter[other]!, `/v1/shipments/${outcome.shipmentId}/cancel`, `ts-${spec.index}-cancel`, { reason: 'two-server test' }, stats);
          if (cancelled.status === 200) outcome.cancelled = true;
          else note(`cancel of ${outcome.shipmentId} on server ${other}`, cancelled);
        }
        return outcome;
      };

      // Each server's bookings are worked off by its own clients, both servers at once.
      const loadStarted = Date.now();
      let outcomes: Outcome[];
      try {
        const perServer = await within(Promise.all([0, 1].map((server) => mapLimit(specs.filter((spec) => spec.home === server), clientsPerServer, run))), loadTimeoutMs, 'the load through both servers');
        outcomes = perServer.flat().sort((a, b) => a.spec.index - b.spec.index);
      } finally {
        loadDone = true;
        await watcher.catch((error: unknown) => unexpected.push(`checkpoint watcher: ${String(error)}`));
      }
      const loadMs = Date.now() - loadStarted;
      expect(unexpected, 'unexpected answers during the load').toEqual([]);

      const accepted = outcomes.filter((outcome) => outcome.accepted);
      expect(accepted.length + refused, 'every booking was accepted or refused for units').toBe(bookings);
      expect(refused, 'no booking was refused: the load did not exhaust the allocations').toBeGreaterThan(0);
      expect(acceptedBy[0], 'server 0 accepted no booking').toBeGreaterThan(0);
      expect(acceptedBy[1], 'server 1 accepted no booking').toBeGreaterThan(0);
      expect(duplicates).toBeGreaterThan(0);
      expect(replays).toBeGreaterThan(0);

      // The database: no violation, gapless events, no over-allocation.
      expect((await database.pool.query('SELECT * FROM ledger_violations()')).rows).toEqual([]);
      const size = await checkEventsGapless(database.pool);
      await checkNoOverAllocation(database.pool);

      // One shipment per accepted booking key, the one its answer named, in the state we left it.
      const rows = (await database.pool.query<{ id: string; reference: string; status: string; units: number; export_allocation_id: string; import_allocation_id: string; serial_count: number }>(
        'SELECT id, reference, status, units, export_allocation_id, import_allocation_id, serial_count FROM shipments',
      )).rows;
      expect(rows.length, 'shipment rows vs accepted bookings').toBe(accepted.length);
      expect(new Set(rows.map((row) => row.reference)).size, 'a booking key made two shipments').toBe(rows.length);
      const byReference = new Map(rows.map((row) => [row.reference, row]));
      const mismatched: string[] = [];
      for (const outcome of accepted) {
        const row = byReference.get(outcome.spec.body.reference);
        const status = outcome.shipped ? 'shipped' : outcome.cancelled ? 'cancelled' : 'booked';
        const expected = { id: outcome.shipmentId, status, units: outcome.spec.body.units, export: outcome.spec.body.exportAllocationId, import: outcome.spec.body.importAllocationId, serials: outcome.spec.body.serials?.length ?? 0 };
        const actual = row && { id: row.id, status: row.status, units: row.units, export: row.export_allocation_id, import: row.import_allocation_id, serials: row.serial_count };
        if (!isDeepStrictEqual(actual, expected)) mismatched.push(`${outcome.spec.key}: expected ${JSON.stringify(expected)}, found ${JSON.stringify(actual)}`);
      }
      expect(mismatched, 'shipments that differ from their answers').toEqual([]);
      const bookEvents = await database.pool.query<{ count: number }>("SELECT count(*)::int AS count FROM events WHERE kind = 'shipment.book'");
      expect(bookEvents.rows[0]!.count, 'shipment.book events vs accepted bookings').toBe(accepted.length);

      // Every key we sent is stored once: bookings (accepted or refused), ships, cancels.
      const keysSent = bookings + accepted.filter((outcome) => outcome.shipped || outcome.cancelled).length;
      const storedKeys = await database.pool.query<{ count: number; distinct: number }>(
        'SELECT count(*)::int AS count, count(DISTINCT key)::int AS distinct FROM idempotency_keys WHERE scope = $1', [world.actors.exporter.orgId],
      );
      expect(storedKeys.rows[0], 'stored idempotency keys').toEqual({ count: keysSent, distinct: keysSent });

      // Reserved and shipped units per allocation are the sums of the accepted, not-cancelled shipments.
      const expectedUnits = new Map<string, { reserved: number; shipped: number }>();
      for (const id of Object.values(world.allocations)) expectedUnits.set(id, { reserved: 0, shipped: 0 });
      for (const outcome of accepted) {
        if (outcome.cancelled) continue;
        for (const id of [outcome.spec.body.exportAllocationId, outcome.spec.body.importAllocationId]) {
          const sums = expectedUnits.get(id)!;
          if (outcome.shipped) sums.shipped += outcome.spec.body.units;
          else sums.reserved += outcome.spec.body.units;
        }
      }
      const allocations = (await database.pool.query<{ id: string; units: number; reserved_units: number; shipped_units: number }>(
        'SELECT id, units, reserved_units, shipped_units FROM allocations WHERE id = ANY($1) ORDER BY id', [Object.values(world.allocations)],
      )).rows;
      expect(allocations).toHaveLength(4);
      for (const allocation of allocations) {
        expect({ reserved: allocation.reserved_units, shipped: allocation.shipped_units }, `allocation ${allocation.id}`).toEqual(expectedUnits.get(allocation.id));
        expect(allocation.reserved_units + allocation.shipped_units, `allocation ${allocation.id} over its units`).toBeLessThanOrEqual(allocation.units);
      }
      for (const pair of [world.allocations.alphaExport, world.allocations.betaExport]) {
        const requested = specs.filter((spec) => spec.body.exportAllocationId === pair).reduce((sum, spec) => sum + spec.body.units, 0);
        expect(requested, 'the load must ask for more than an allocation holds').toBeGreaterThan(allocationUnits);
        const refusedHere = outcomes.filter((outcome) => !outcome.accepted && outcome.spec.body.exportAllocationId === pair).length;
        expect(refusedHere, `no booking on ${pair} was refused for units`).toBeGreaterThan(0);
      }

      // The log: both servers' newest checkpoint covers the whole stream, the same note from both.
      const newest = await waitFor(async () => {
        const answers = await Promise.all(exporter.map((client) => client.send('GET', '/v1/log/checkpoint')));
        if (!answers.every((answer) => answer.status === 200 && typeof answer.body === 'string')) return undefined;
        const opened = answers.map((answer) => openCheckpoint(answer.body as string, verifier).checkpoint);
        if (!opened.every((checkpoint) => checkpoint.size === size)) return undefined;
        expect(answers[1]!.body, 'the two servers serve different newest checkpoints').toBe(answers[0]!.body);
        return opened[0]!;
      }, 10_000, 100, `a checkpoint of size ${size} on both servers`);
      const leaves = (await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events ORDER BY seq')).rows.map((row) => leafHash(row.canonical));
      expect(leaves).toHaveLength(size);
      const root = rootOf(leaves);
      expect(newest.rootHash.equals(root), 'the newest checkpoint root is not the root of the events').toBe(true);
      const head = (await database.pool.query<{ size: number; root: Buffer }>('SELECT size, root FROM log_head')).rows[0]!;
      expect({ size: head.size, root: head.root.toString('base64') }).toEqual({ size, root: root.toString('base64') });

      // Every checkpoint seen during the load: never shrinking per server, its root that of its
      // prefix of the events, and consistent with the newest by a proof from the other server.
      expect(observed.length, 'the watcher saw no checkpoint during the load').toBeGreaterThan(0);
      expect(new Set(observed.map((one) => one.server)).size, 'checkpoints were seen from one server only').toBe(2);
      for (const server of [0, 1]) {
        const sizes = observed.filter((one) => one.server === server).map((one) => one.checkpoint.size);
        expect(sizes, `checkpoint sizes served by server ${server} went back`).toEqual([...sizes].sort((a, b) => a - b));
      }
      const distinct = [...new Map(observed.map((one) => [`${one.checkpoint.size}/${one.server}`, one])).values()];
      const inconsistent: string[] = [];
      await mapLimit(distinct, 4, async (one) => {
        const from = one.checkpoint.size;
        if (!rootOf(leaves.slice(0, from)).equals(one.checkpoint.rootHash)) inconsistent.push(`size ${from} (server ${one.server}): root is not that of the first ${from} events`);
        const proofAnswer = await exporter[1 - one.server]!.send('GET', `/v1/log/proof/consistency?from=${from}&to=${size}`);
        if (proofAnswer.status !== 200) return void inconsistent.push(`consistency proof ${from}..${size}: ${proofAnswer.status} ${JSON.stringify(proofAnswer.body)}`);
        const proof = (proofAnswer.body as { hashes: string[] }).hashes.map((hash) => Buffer.from(hash, 'base64'));
        if (!verifyConsistency(from, size, proof, one.checkpoint.rootHash, newest.rootHash)) inconsistent.push(`size ${from} (server ${one.server}) is not consistent with size ${size}`);
      });
      expect(inconsistent).toEqual([]);
      // And every checkpoint either server ever stored.
      const stored = (await database.pool.query<{ size: number; root: Buffer; signed_note: string }>('SELECT size, root, signed_note FROM tlog_checkpoints ORDER BY size')).rows;
      for (const row of stored) {
        const opened = openCheckpoint(row.signed_note, verifier).checkpoint;
        expect({ size: opened.size, matches: opened.rootHash.equals(row.root) && row.root.equals(rootOf(leaves.slice(0, row.size))) }, `stored checkpoint ${row.size}`).toEqual({ size: row.size, matches: true });
      }

      const shipped = accepted.filter((outcome) => outcome.shipped).length;
      const cancelled = accepted.filter((outcome) => outcome.cancelled).length;
      console.log(`two-servers-http: ${bookings} bookings in ${loadMs} ms (${acceptedBy[0]} + ${acceptedBy[1]} accepted by servers 0 + 1, ${refused} refused for units), ${shipped} shipped and ${cancelled} cancelled through the other server, ${replays} cross-server replays, ${duplicates} concurrent duplicates, ${stats.retried503} 503s retried; ${observed.length} checkpoints watched (${distinct.length} distinct), ${stored.length} stored, log size ${size}; ${Date.now() - started} ms`);
    } finally {
      for (const client of [...exporter, ...recipient]) client.close();
    }
  }, 60_000);

  it('stops both servers cleanly on SIGTERM', async () => {
    expect(servers).toHaveLength(2);
    for (const server of servers) server.child.kill('SIGTERM');
    const exits = await Promise.all(servers.map((server, n) => within(server.exited, 35_000, `server ${n} stopping on SIGTERM`)));
    exits.forEach((exit, n) => expect(exit, servers[n]!.log()).toEqual({ code: 0, signal: null }));
    expect((await database.pool.query('SELECT * FROM ledger_violations()')).rows).toEqual([]);
    await checkEventsGapless(database.pool);
  }, 40_000);
});
