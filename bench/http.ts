/**
 * `npm run bench -- http`: bookings per second and latency through the real HTTP API.
 *
 * One durable embedded PostgreSQL (bench/database.ts); the world of bench/ledger-world.ts built
 * through the ledger in this process, plus an exporter bearer token (token.create as the
 * system); then `chipledger serve` (src/cli/main.ts) in a SEPARATE Node process on that database,
 * with a generated log signing key, so the server and the load generator never share one event
 * loop. 50 keep-alive connections POST /v1/shipments (1-10 units, a fresh Idempotency-Key each)
 * after a short warm-up, then GET /v1/shipments/:id for reference. Afterwards: every answer must
 * be 201 (200 for the reads), `ledger_violations()` must be empty, the shipment rows must equal
 * the 201 answers, and the server must exit 0 on SIGTERM.
 *
 * Options (all optional):
 *   --bookings N      timed bookings (20000)
 *   --connections N   concurrent keep-alive connections, one worker each (50)
 *   --warmup N        bookings before the timed run, not timed (1000)
 *   --reads N         timed GET /v1/shipments/:id after the bookings (5000); 0 skips
 *   --cpu-prof        run the server with node --cpu-prof; the profile's folder is printed
 *                     (summarise with bench/cpuprofile-summary.ts)
 *   --pg-stats        load pg_stat_statements and print PostgreSQL's execution time per statement
 *                     during the timed bookings
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ledger } from '../src/ledger/ledger.ts';
import { systemActor } from '../src/ledger/permissions.ts';
import { createPool, type Pool } from '../src/store/pool.ts';
import { generateSignerKey } from '../src/tlog/index.ts';
import { cpuSecondsBetween, startBenchServer, writerUrlOf } from './database.ts';
import { drive, HttpLoadClient, type HttpAnswer, type LoadResult } from './http-load.ts';
import { startServerProcess, type ServerProcess } from './http-server.ts';
import { buildBenchWorld, workload, type BenchWorld, type Booking } from './ledger-world.ts';
import { formatCount, round, seededRandom } from './stats.ts';

const workloadSeed = 20_260_201;
const bookingDeadlineMs = 30 * 24 * 3600 * 1000;
const goalBookingsPerSecond = 3_000;
const goalP99Ms = 100;

interface Metrics {
  batches: number;
  commands: number;
  commitSeconds: number;
  /** Batches that read no rows (the row cache), and of those, batches sent ahead (applied before their lock, one round trip). */
  cachedBatches: number;
  aheadBatches: number;
  /** Server-side time of POST /v1/shipments (Fastify's reply.elapsedTime), sum and count. */
  bookSeconds: number;
  bookCount: number;
}

async function readMetrics(client: HttpLoadClient): Promise<Metrics> {
  const answer = await client.request({ method: 'GET', path: '/metrics' });
  if (answer.status !== 200) throw new Error(`GET /metrics answered ${answer.status}`);
  const value = (pattern: RegExp) => Number(pattern.exec(answer.body)?.[1] ?? Number.NaN);
  return {
    batches: value(/^chipledger_sequencer_batches_total (\S+)$/m),
    commands: value(/^chipledger_sequencer_commands_total (\S+)$/m),
    commitSeconds: value(/^chipledger_sequencer_commit_seconds_total (\S+)$/m),
    cachedBatches: value(/^chipledger_sequencer_cached_batches_total (\S+)$/m),
    aheadBatches: value(/^chipledger_sequencer_ahead_batches_total (\S+)$/m),
    bookSeconds: value(/^chipledger_http_request_duration_seconds_sum\{method="POST",route="\/v1\/shipments"\} (\S+)$/m),
    bookCount: value(/^chipledger_http_request_duration_seconds_count\{method="POST",route="\/v1\/shipments"\} (\S+)$/m),
  };
}

function positive(text: string | undefined, fallback: number, name: string, allowZero = false): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) throw new Error(`--${name} must be a whole number${allowZero ? '' : ' above 0'}, got "${text}"`);
  return value;
}

/** The exporter's bearer secret, made through the ledger the way `chipledger token create` does. */
async function exporterToken(ledger: Ledger, world: BenchWorld): Promise<string> {
  const answer = await ledger.submit('token.create', { organisationId: world.exporterOrgId, role: 'exporter', label: 'bench http' }, systemActor);
  if (!answer.ok) throw new Error(`couldn't create the exporter token: ${answer.error.code}: ${answer.error.message}`);
  return String(answer.body.secret);
}

async function check(pool: Pool): Promise<{ violations: number; shipmentRows: number; details: string[] }> {
  const violations = (await pool.query<{ invariant: string; subject: string; detail: string }>('SELECT * FROM ledger_violations()')).rows;
  const rows = Number((await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM shipments')).rows[0]!.n);
  return { violations: violations.length, shipmentRows: rows, details: violations.slice(0, 5).map((v) => `${v.invariant} ${v.subject}: ${v.detail}`) };
}

/** PostgreSQL's execution time per statement in this database since the last reset. */
async function statementStats(pool: Pool): Promise<Array<{ calls: number; totalMs: number; query: string }>> {
  const rows = (await pool.query<{ calls: string; total_ms: number; query: string }>(
    `SELECT calls, total_exec_time AS total_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query
     FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
     ORDER BY total_exec_time DESC LIMIT 14`,
  )).rows;
  return rows.map((row) => ({ calls: Number(row.calls), totalMs: Number(row.total_ms), query: row.query }));
}

function statusText(statuses: Record<string, number>): string {
  return Object.entries(statuses).sort().map(([status, count]) => `${status}: ${formatCount(count)}`).join(', ');
}

function non(expected: number, statuses: Record<string, number>): number {
  return Object.entries(statuses).reduce((sum, [status, count]) => sum + (status === String(expected) ? 0 : count), 0);
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args,
    options: { bookings: { type: 'string' }, connections: { type: 'string' }, warmup: { type: 'string' }, reads: { type: 'string' }, 'cpu-prof': { type: 'boolean' }, 'pg-stats': { type: 'boolean' } },
    strict: true,
  });
  const bookingsCount = positive(values.bookings, 20_000, 'bookings');
  const connections = positive(values.connections, 50, 'connections');
  const warmupCount = positive(values.warmup, 1_000, 'warmup', true);
  const readsCount = positive(values.reads, 5_000, 'reads', true);
  const profileDir = values['cpu-prof'] ? mkdtempSync(join(tmpdir(), 'chipledger-bench-http-prof-')) : null;

  const pgStats = values['pg-stats'] ?? false;
  const database = await startBenchServer('http', { statementStats: pgStats });
  let pool: Pool | null = null;
  let server: ServerProcess | null = null;
  let client: HttpLoadClient | null = null;
  try {
    console.log(`http benchmark on ${database.description}`);
    const url = await database.createDatabase('bench_http');
    pool = createPool({ url, connectionsMax: 4, applicationName: 'chipledger-bench-http' });
    const ledger = await Ledger.open({ pool });
    const world = await buildBenchWorld(ledger);
    const token = await exporterToken(ledger, world);
    await ledger.close();

    const { signerKey } = generateSignerKey('chipledger.bench/log');
    server = await startServerProcess({ databaseUrl: url, writerUrl: await writerUrlOf(url), logSignerKey: signerKey, ...(profileDir ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}) });
    console.log(`server: chipledger serve, pid ${server.pid}, ${server.url} (separate Node process, log level warn)`);
    console.log(`node ${process.version}; ${connections} keep-alive connections (plain HTTP/1.1 over TCP sockets, bench/http-load.ts); warm-up ${formatCount(warmupCount)}, timed ${formatCount(bookingsCount)} bookings; workload seed ${workloadSeed}\n`);

    client = new HttpLoadClient(server.url, connections);
    const bookings = workload(warmupCount + bookingsCount, seededRandom(workloadSeed));
    const deadline = new Date(Date.now() + bookingDeadlineMs).toISOString();
    const runId = `${process.pid}-${Date.now().toString(36)}`;
    const headers = { authorization: `Bearer ${token}` };
    const shipmentIds: string[] = [];
    const book = (offset: number) => (index: number) => {
      const booking: Booking = bookings[offset + index]!;
      const pair = world.pairs[booking.pair]!;
      return {
        method: 'POST' as const, path: '/v1/shipments',
        headers: { ...headers, 'idempotency-key': `bench-http-${runId}-${offset + index}` },
        body: JSON.stringify({ exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: booking.units, deadline }),
      };
    };
    const remember = (_index: number, answer: HttpAnswer) => {
      if (answer.status === 201) shipmentIds.push(String((JSON.parse(answer.body) as { shipmentId: string }).shipmentId));
    };

    const warmup = warmupCount > 0 ? await drive(client, warmupCount, connections, 201, book(0), remember) : null;
    if (warmup) console.log(`warm-up: ${formatCount(warmup.requests)} bookings, ${formatCount(warmup.perSecond)}/s, p99 ${round(warmup.p99Ms, 1)} ms (${statusText(warmup.statuses)})`);

    if (pgStats) await pool.query('SELECT pg_stat_statements_reset()');
    const metricsBefore = await readMetrics(client);
    const serverCpuBefore = server.cpuSeconds();
    const pgBefore = database.cpuTicks();
    const load = await drive(client, bookingsCount, connections, 201, book(warmupCount), remember);
    const serverCpu = server.cpuSeconds() - serverCpuBefore;
    const postgresCpu = cpuSecondsBetween(pgBefore, database.cpuTicks());
    const metricsAfter = await readMetrics(client);
    const statements = pgStats ? await statementStats(pool) : null;

    let reads: LoadResult | null = null;
    let readsServerCpu = 0;
    if (readsCount > 0 && shipmentIds.length > 0) {
      const before = server.cpuSeconds();
      reads = await drive(client, readsCount, connections, 200, (index) => ({ method: 'GET', path: `/v1/shipments/${shipmentIds[index % shipmentIds.length]!}`, headers }));
      readsServerCpu = server.cpuSeconds() - before;
    }
    const socketsOpened = client.socketsOpened;
    client.close();
    client = null;
    const stopped = await server.stop();
    const serverOutput = server.outputTail();
    server = null;
    const checked = await check(pool);

    const created = (warmup?.statuses['201'] ?? 0) + (load.statuses['201'] ?? 0);
    const non201 = non(201, load.statuses) + (warmup ? non(201, warmup.statuses) : 0);
    const non200Reads = reads ? non(200, reads.statuses) : 0;
    const rowsMatch = checked.shipmentRows === created;
    const batches = metricsAfter.batches - metricsBefore.batches;
    const commands = metricsAfter.commands - metricsBefore.commands;
    const commitMs = (metricsAfter.commitSeconds - metricsBefore.commitSeconds) * 1000;
    const serverSideMs = ((metricsAfter.bookSeconds - metricsBefore.bookSeconds) * 1000) / (metricsAfter.bookCount - metricsBefore.bookCount);
    const cores = availableParallelism();
    // The CPU ceiling: were every core busy with nothing but these three processes, at
    // the CPU each booking cost in this run, this many bookings a second would fit.
    const cpuPerBooking = (serverCpu + postgresCpu + load.clientCpuSeconds) / load.requests;
    const cpuCeiling = cores / cpuPerBooking;

    console.log(`POST /v1/shipments, ${connections} connections`);
    console.log(`  ${formatCount(load.requests)} bookings in ${round(load.seconds, 2)} s: ${formatCount(load.perSecond)} bookings/s`);
    console.log(`  latency (client, request to last byte): p50 ${round(load.p50Ms, 2)} ms, p90 ${round(load.p90Ms, 2)} ms, p99 ${round(load.p99Ms, 2)} ms, max ${round(load.maxMs, 1)} ms`);
    console.log(`  answers: ${statusText(load.statuses)}${load.firstUnexpected ? `; first unexpected: ${load.firstUnexpected}` : ''}`);
    console.log(`  server side: ${round(serverSideMs, 2)} ms mean per booking inside Fastify; sequencer ${formatCount(batches)} batches, ${round(commands / batches, 1)} commands per batch, ${round(commitMs / batches, 2)} ms per batch, inside batches ${round((100 * commitMs) / 1000 / load.seconds, 1)}% of the wall time; ${formatCount(metricsAfter.cachedBatches - metricsBefore.cachedBatches)} read no rows, ${formatCount(metricsAfter.aheadBatches - metricsBefore.aheadBatches)} sent ahead`);
    console.log(`  CPU over ${round(load.seconds, 2)} s wall (${cores} cores = ${round(cores * load.seconds, 1)} core-s): server ${round(serverCpu, 2)} s, postgres ${round(postgresCpu, 2)} s, load generator ${round(load.clientCpuSeconds, 2)} s`);
    console.log(`    per booking: server ${round((1000 * serverCpu) / load.requests, 3)} ms, postgres ${round((1000 * postgresCpu) / load.requests, 3)} ms, load generator ${round((1000 * load.clientCpuSeconds) / load.requests, 3)} ms`);
    console.log(`  CPU ceiling: ${cores} cores ÷ ${round(1000 * cpuPerBooking, 3)} ms of CPU per booking = ${formatCount(cpuCeiling)} bookings/s with every core busy; the run used ${round((100 * load.perSecond) / cpuCeiling, 0)}% of it`);
    console.log(`  sockets opened by the client: ${socketsOpened} (keep-alive holds when this is ${connections})`);
    if (statements) {
      const total = statements.reduce((sum, row) => sum + row.totalMs, 0);
      console.log(`  pg_stat_statements during the timed bookings: top statements ${round(total / 1000, 2)} s of execution, ${round(total / batches, 2)} ms per batch, ${round((1000 * total) / load.requests, 1)} µs per booking`);
      for (const row of statements) {
        console.log(`    ${round(row.totalMs / batches, 3).toFixed(3).padStart(7)} ms/batch ${formatCount(row.calls).padStart(7)} calls ${round((1000 * row.totalMs) / load.requests, 1).toFixed(1).padStart(6)} µs/booking  ${row.query}`);
      }
    }
    if (reads) {
      console.log(`GET /v1/shipments/:id, ${connections} connections (reference)`);
      console.log(`  ${formatCount(reads.requests)} reads in ${round(reads.seconds, 2)} s: ${formatCount(reads.perSecond)} reads/s; p50 ${round(reads.p50Ms, 2)} ms, p99 ${round(reads.p99Ms, 2)} ms, max ${round(reads.maxMs, 1)} ms`);
      console.log(`  CPU: server ${round(readsServerCpu, 2)} s (${round((1000 * readsServerCpu) / reads.requests, 3)} ms per read), load generator ${round(reads.clientCpuSeconds, 2)} s`);
      console.log(`  answers: ${statusText(reads.statuses)}${reads.firstUnexpected ? `; first unexpected: ${reads.firstUnexpected}` : ''}`);
    }
    console.log(`server stop (SIGTERM): exit code ${stopped.code}${stopped.signal ? `, signal ${stopped.signal}` : ''}, ${round(stopped.ms, 0)} ms`);
    if (stopped.code !== 0) console.log(`--- server output ---\n${serverOutput}`);
    console.log(`checks: shipment rows ${formatCount(checked.shipmentRows)} (${rowsMatch ? 'matches' : 'DOES NOT MATCH'} the ${formatCount(created)} 201 answers), invariant violations: ${checked.violations}`);
    for (const detail of checked.details) console.log(`  ${detail}`);
    if (profileDir) console.log(`server CPU profile: ${readdirSync(profileDir).map((file) => join(profileDir, file)).join(', ') || `none written in ${profileDir}`}`);

    const violations = checked.violations + (rowsMatch ? 0 : 1);
    const goals = {
      bookingsPerSecond3k: load.perSecond >= goalBookingsPerSecond,
      p99Under100ms: load.p99Ms < goalP99Ms,
      all201: non201 === 0,
      zeroViolations: violations === 0,
      serverExit0: stopped.code === 0,
    };
    console.log(`\nsummary: ${formatCount(load.perSecond)} bookings/s (goal ${formatCount(goalBookingsPerSecond)}), p99 ${round(load.p99Ms, 1)} ms (goal < ${goalP99Ms} ms) with ${connections} connections; non-201: ${non201}; invariant violations: ${violations}; server exit ${stopped.code}`);
    return {
      bench: 'http',
      connections,
      bookings: load.requests,
      warmup: warmupCount,
      seconds: round(load.seconds, 2),
      bookingsPerSecond: Math.round(load.perSecond),
      p50Ms: round(load.p50Ms, 2),
      p90Ms: round(load.p90Ms, 2),
      p99Ms: round(load.p99Ms, 2),
      maxMs: round(load.maxMs, 1),
      statuses: load.statuses,
      non201,
      serverSideMeanMs: round(serverSideMs, 2),
      commandsPerBatch: round(commands / batches, 1),
      batchMs: round(commitMs / batches, 2),
      cpuSeconds: { server: round(serverCpu, 2), postgres: round(postgresCpu, 2), loadGenerator: round(load.clientCpuSeconds, 2) },
      cpuCeilingBookingsPerSecond: Math.round(cpuCeiling),
      reads: reads ? { count: reads.requests, perSecond: Math.round(reads.perSecond), p50Ms: round(reads.p50Ms, 2), p99Ms: round(reads.p99Ms, 2), serverCpuMsPerRead: round((1000 * readsServerCpu) / reads.requests, 3), non200: non200Reads } : null,
      shipmentRows: checked.shipmentRows,
      violations,
      serverExitCode: stopped.code,
      goals,
    };
  } finally {
    client?.close();
    if (server) await server.stop().catch(() => {});
    await pool?.end();
    await database.stop();
  }
}
