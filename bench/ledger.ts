/**
 * `npm run bench -- ledger`: bookings per second through the ledger's sequencer against
 * the same bookings through a typical one-transaction-per-booking baseline, then a
 * 100,000-serial manifest import. Every phase runs on a fresh database of one durable
 * PostgreSQL, and every phase ends by re-checking all invariants.
 *
 * Options (all optional):
 *   --bookings N            ledger bookings (100000)
 *   --callers N             concurrent in-process callers (64)
 *   --baseline-bookings N   baseline bookings (10000); 0 skips the baseline
 *   --baseline-connections N  pool size of the baseline (64)
 *   --batch-commands-max N  the sequencer's batch bound (the ledger's default)
 *   --skip-floor            skip the floor (the run's SQL replayed without JavaScript; bench/ledger-floor.ts)
 *   --row-cache-rows N      rows per table the sequencer keeps between batches (the ledger's default); 0 reads every batch's rows
 *   --manifest-runs N       timed 100,000-serial imports, median reported (3); 0 skips
 *   --manifest-serials N    serials per import (100000)
 *   --sweep A,B,..          extra runs on fresh databases with these batchCommandsMax values
 *   --sweep-callers A,B,..  ... and these caller counts (default: --callers)
 *   --sweep-bookings N      bookings per sweep run (30000)
 *   --profile               time every statement the ledger sends; print where a batch goes
 *   --pg-stats              load pg_stat_statements and print server time per statement
 */
import { parseArgs } from 'node:util';
import { Ledger } from '../src/ledger/ledger.ts';
import { limits } from '../src/core/limits.ts';
import { createPool, type Pool } from '../src/store/pool.ts';
import { cpuSecondsBetween, startBenchServer, writerUrlOf, type BenchServer } from './database.ts';
import { bookBaseline } from './ledger-baseline.ts';
import { buildBenchWorld, workload, type BenchWorld, type Booking } from './ledger-world.ts';
import { QueryTimer } from './query-timer.ts';
import { StatementRecorder, replayEventsOnly, replaySegments, replayStatements, type FloorResult, type Recorded } from './ledger-floor.ts';
import { formatCount, median, percentile, round, seededRandom } from './stats.ts';

const workloadSeed = 20_260_201;
const bookingDeadlineMs = 30 * 24 * 3600 * 1000;

interface LoadResult {
  bookings: number;
  accepted: number;
  refused: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  nodeCpuSeconds: number;
  postgresCpuSeconds: number;
  firstRefusal: string | null;
}

interface CheckResult {
  violations: number;
  shipmentRows: number;
  details: string[];
}

type BookOne = (booking: Booking) => Promise<{ ok: true } | { ok: false; reason: string }>;

/** N callers, each booking the next shipment of the list as soon as its last is answered. */
async function drive(server: BenchServer, bookings: Booking[], callers: number, bookOne: BookOne): Promise<LoadResult> {
  const latencies = new Float64Array(bookings.length);
  let next = 0;
  let accepted = 0;
  let refused = 0;
  let firstRefusal: string | null = null;
  const pgBefore = server.cpuTicks();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const caller = async () => {
    for (let index = next++; index < bookings.length; index = next++) {
      const sent = performance.now();
      const answer = await bookOne(bookings[index]!);
      latencies[index] = performance.now() - sent;
      if (answer.ok) accepted += 1;
      else {
        refused += 1;
        firstRefusal ??= answer.reason;
      }
    }
  };
  await Promise.all(Array.from({ length: callers }, caller));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const postgresCpuSeconds = cpuSecondsBetween(pgBefore, server.cpuTicks());
  latencies.sort();
  return {
    bookings: bookings.length, accepted, refused, seconds, perSecond: bookings.length / seconds,
    p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: latencies[latencies.length - 1] ?? 0,
    nodeCpuSeconds: (cpu.user + cpu.system) / 1e6, postgresCpuSeconds, firstRefusal,
  };
}

function ledgerBooker(ledger: Ledger, world: BenchWorld): BookOne {
  const deadline = new Date(Date.now() + bookingDeadlineMs).toISOString();
  return async (booking) => {
    const pair = world.pairs[booking.pair]!;
    const answer = await ledger.submit('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: booking.units, deadline,
    }, world.exporter);
    return answer.ok ? { ok: true } : { ok: false, reason: `${answer.error.code}: ${answer.error.message}` };
  };
}

async function check(pool: Pool): Promise<CheckResult> {
  const violations = (await pool.query<{ invariant: string; subject: string; detail: string }>('SELECT * FROM ledger_violations()')).rows;
  const rows = Number((await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM shipments')).rows[0]!.n);
  return { violations: violations.length, shipmentRows: rows, details: violations.slice(0, 5).map((v) => `${v.invariant} ${v.subject}: ${v.detail}`) };
}

interface LedgerSession {
  pool: Pool;
  ledger: Ledger;
  world: BenchWorld;
  timer: QueryTimer | null;
  /** With a floor: what the ledger sends is recorded, and a copy of the database as it was before the load waits at floor.url. */
  floor: { recorder: StatementRecorder; url: string } | null;
  close(): Promise<void>;
}

interface SessionOptions {
  batchCommandsMax?: number;
  rowCacheRows?: number;
  profile?: boolean;
  floor?: boolean;
}

function ledgerOptions(options: SessionOptions) {
  return {
    ...(options.batchCommandsMax ? { batchCommandsMax: options.batchCommandsMax } : {}),
    ...(options.rowCacheRows !== undefined ? { rowCacheRows: options.rowCacheRows } : {}),
  };
}

async function openLedger(server: BenchServer, name: string, options: SessionOptions): Promise<LedgerSession> {
  let prebuilt: BenchWorld | null = null;
  let floor: LedgerSession['floor'] = null;
  let url: string;
  if (options.floor) {
    // The world is built once, then copied: one copy for the ledger, one for the replay.
    const worldUrl = await server.createDatabase(`${name}_world`);
    const setupPool = createPool({ url: worldUrl, connectionsMax: 2, applicationName: `chipledger-bench-${name}-world` });
    const setup = await Ledger.open({ pool: setupPool });
    prebuilt = await buildBenchWorld(setup);
    await setup.close();
    await setupPool.end();
    url = await server.createDatabase(name, `${name}_world`);
    floor = { recorder: new StatementRecorder(), url: await server.createDatabase(`${name}_floor`, `${name}_world`) };
  } else {
    url = await server.createDatabase(name);
  }
  // As a server writes: as the writer role, not the owner.
  const pool = createPool({ url: await writerUrlOf(url), connectionsMax: 8, applicationName: `chipledger-bench-${name}` });
  const timer = options.profile ? new QueryTimer() : null;
  timer?.attach(pool);
  floor?.recorder.attach(pool);
  const ledger = await Ledger.open({ pool, ...ledgerOptions(options) });
  const world = prebuilt ?? (await buildBenchWorld(ledger));
  timer?.reset();
  return {
    pool, ledger, world, timer, floor,
    async close() {
      await ledger.close();
      await pool.end();
    },
  };
}

function printLoad(title: string, result: LoadResult, checked: CheckResult): void {
  console.log(`${title}`);
  console.log(`  ${formatCount(result.bookings)} bookings in ${round(result.seconds, 2)} s: ${formatCount(result.perSecond)} bookings/s`);
  console.log(`  latency per booking: p50 ${round(result.p50Ms, 2)} ms, p99 ${round(result.p99Ms, 2)} ms, max ${round(result.maxMs, 1)} ms`);
  console.log(`  CPU: node ${round(result.nodeCpuSeconds, 2)} s, postgres ${round(result.postgresCpuSeconds, 2)} s (${round((1000 * result.nodeCpuSeconds) / result.bookings, 3)} + ${round((1000 * result.postgresCpuSeconds) / result.bookings, 3)} ms per booking)`);
  console.log(`  accepted ${formatCount(result.accepted)}, refused ${formatCount(result.refused)}${result.firstRefusal ? ` (first: ${result.firstRefusal})` : ''}`);
  console.log(`  shipment rows ${formatCount(checked.shipmentRows)} (${checked.shipmentRows === result.accepted ? 'matches' : 'DOES NOT MATCH'} accepted), invariant violations: ${checked.violations}`);
  for (const detail of checked.details) console.log(`    ${detail}`);
}

function printProfile(session: LedgerSession, result: LoadResult, before: SequencerCounts): void {
  if (!session.timer) return;
  const now = session.ledger.sequencer.stats;
  const stats = { batches: now.batches - before.batches, commands: now.commands - before.commands, commitSecondsTotal: now.commitSecondsTotal - before.commitSecondsTotal };
  const batchMs = stats.commitSecondsTotal * 1000;
  const statementMs = session.timer.totalMs();
  console.log(`  profile: ${formatCount(stats.batches)} batches, ${round(stats.commands / stats.batches, 1)} commands per batch on average`);
  console.log(`    per batch: ${round(batchMs / stats.batches, 2)} ms from BEGIN to answers, of which ${round(statementMs / stats.batches, 2)} ms waiting on statements (send to reply) and ${round((batchMs - statementMs) / stats.batches, 2)} ms in JavaScript`);
  console.log(`    wall time spent inside batches: ${round((100 * batchMs) / 1000 / result.seconds, 1)}%`);
  for (const timing of session.timer.report().slice(0, 14)) {
    console.log(`    ${round(timing.totalMs / stats.batches, 3).toFixed(3).padStart(8)} ms/batch ${formatCount(timing.calls).padStart(8)} calls  ${timing.statement}`);
  }
}

type SequencerCounts = { batches: number; commands: number; commitSecondsTotal: number; cachedBatches: number; aheadBatches: number };

interface Floors {
  replay: FloorResult;
  eventsOnly: FloorResult;
}

async function runLedgerLoad(server: BenchServer, bookings: Booking[], callers: number, options: SessionOptions & { name: string }): Promise<{ session: LedgerSession; result: LoadResult; checked: CheckResult; before: SequencerCounts; floors: Floors | null }> {
  const session = await openLedger(server, options.name, options);
  const { batches, commands, commitSecondsTotal, cachedBatches, aheadBatches } = session.ledger.sequencer.stats;
  const sizeBefore = Number((await session.pool.query<{ size: number }>('SELECT size FROM log_head')).rows[0]!.size);
  session.floor?.recorder.start();
  const result = await drive(server, bookings, callers, ledgerBooker(session.ledger, session.world));
  const statements = session.floor?.recorder.take() ?? [];
  const checked = await check(session.pool);
  let floors: Floors | null = null;
  if (session.floor) {
    const replay = await replayStatements(session.floor.url, statements, result.bookings);
    const batchSize = Math.max(1, Math.round((session.ledger.sequencer.stats.commands - commands) / (session.ledger.sequencer.stats.batches - batches)));
    floors = { replay, eventsOnly: await replayEventsOnly(session.pool, sizeBefore, session.floor.url, batchSize) };
  }
  return { session, result, checked, before: { batches, commands, commitSecondsTotal, cachedBatches, aheadBatches }, floors };
}

/** Server-side time per statement (pg_stat_statements), for the whole ledger database. */
async function printStatementStats(pool: Pool, bookings: number): Promise<void> {
  const rows = (await pool.query<{ calls: number; total_ms: number; plan_ms: number; toplevel: boolean; query: string }>(
    `SELECT calls, total_exec_time AS total_ms, total_plan_time AS plan_ms, toplevel, left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query
     FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
     ORDER BY total_exec_time + total_plan_time DESC LIMIT 20`,
  )).rows;
  const total = rows.filter((row) => row.toplevel).reduce((sum, row) => sum + Number(row.total_ms) + Number(row.plan_ms), 0);
  console.log(`  pg_stat_statements (server planning + execution, includes world setup; "nested" runs inside a trigger or function and counts in its caller too): top-level statements ${round(total / 1000, 2)} s, ${round((1000 * total) / bookings, 1)} µs per booking`);
  console.log('    exec ms  plan ms    calls  µs/booking');
  for (const row of rows) {
    const ms = Number(row.total_ms) + Number(row.plan_ms);
    console.log(`    ${round(Number(row.total_ms), 0).toFixed(0).padStart(7)} ${round(Number(row.plan_ms), 0).toFixed(0).padStart(8)} ${formatCount(Number(row.calls)).padStart(8)} ${round((1000 * ms) / bookings, 1).toFixed(1).padStart(10)}  ${row.toplevel ? '' : '(nested) '}${row.query}`);
  }
}

/**
 * Books a fresh shipment, then times one manifest.attach of `serials` serials end to end,
 * `runs` times. With a floor, each run's statements are replayed on the copy afterwards
 * (the booking untimed, the attach timed): the same SQL with no JavaScript.
 */
interface ManifestTimings {
  timings: number[];
  floorMs: number[];
  /** CPU each import took in this process (the ledger's JavaScript, and node-postgres) and in PostgreSQL: steadier than wall time on a shared machine. */
  nodeCpuMs: number[];
  postgresCpuMs: number[];
}

async function timeManifests(server: BenchServer, session: LedgerSession, runs: number, serials: number): Promise<ManifestTimings> {
  const { ledger, world } = session;
  const pair = world.pairs[0]!;
  const deadline = new Date(Date.now() + bookingDeadlineMs).toISOString();
  const timings: number[] = [];
  const nodeCpuMs: number[] = [];
  const postgresCpuMs: number[] = [];
  const segments: Recorded[][] = [];
  for (let run = 0; run < runs; run += 1) {
    const booked = await ledger.submit('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: serials, deadline,
    }, world.exporter);
    if (!booked.ok) throw new Error(`couldn't book the manifest shipment: ${booked.error.message}`);
    const bookingStatements = session.floor?.recorder.take() ?? [];
    const list = Array.from({ length: serials }, (_, index) => `MB${run}-SN-${String(index).padStart(6, '0')}`);
    const pgBefore = server.cpuTicks();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const attached = await ledger.submit('manifest.attach', { shipmentId: String(booked.body.shipmentId), serials: list }, world.exporter);
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    nodeCpuMs.push((cpu.user + cpu.system) / 1000);
    postgresCpuMs.push(1000 * cpuSecondsBetween(pgBefore, server.cpuTicks()));
    if (!attached.ok) throw new Error(`the manifest import was refused: ${attached.error.message}`);
    if (attached.body.serialCount !== serials) throw new Error(`the manifest import recorded ${String(attached.body.serialCount)} serials, not ${serials}`);
    timings.push(ms);
    segments.push(bookingStatements, session.floor?.recorder.take() ?? []);
  }
  if (!session.floor) return { timings, floorMs: [], nodeCpuMs, postgresCpuMs };
  const replayed = await replaySegments(session.floor.url, segments);
  return { timings, floorMs: replayed.filter((_, index) => index % 2 === 1), nodeCpuMs, postgresCpuMs };
}

async function runBaseline(server: BenchServer, bookings: Booking[], callers: number, connections: number): Promise<{ result: LoadResult; checked: CheckResult }> {
  const url = await server.createDatabase('bench_baseline');
  const setupPool = createPool({ url, connectionsMax: 4, applicationName: 'chipledger-bench-baseline-setup' });
  const setupLedger = await Ledger.open({ pool: setupPool });
  const world = await buildBenchWorld(setupLedger);
  await setupLedger.close();
  const pool = createPool({ url, connectionsMax: connections, applicationName: 'chipledger-bench-baseline' });
  try {
    const deadline = new Date(Date.now() + bookingDeadlineMs).toISOString();
    const result = await drive(server, bookings, callers, (booking) => bookBaseline(pool, world, booking, deadline));
    return { result, checked: await check(pool) };
  } finally {
    await pool.end();
    await setupPool.end();
  }
}

function numberList(text: string | undefined): number[] {
  if (text === undefined || text === '') return [];
  return text.split(',').map((part) => {
    const value = Number(part);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`expected a list of positive whole numbers, got "${text}"`);
    return value;
  });
}

function positive(text: string | undefined, fallback: number, name: string, allowZero = false): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) throw new Error(`--${name} must be a whole number${allowZero ? '' : ' above 0'}, got "${text}"`);
  return value;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args,
    options: {
      bookings: { type: 'string' }, callers: { type: 'string' }, 'baseline-bookings': { type: 'string' }, 'baseline-connections': { type: 'string' },
      'batch-commands-max': { type: 'string' }, 'row-cache-rows': { type: 'string' }, 'skip-floor': { type: 'boolean' }, 'manifest-runs': { type: 'string' }, 'manifest-serials': { type: 'string' },
      sweep: { type: 'string' }, 'sweep-callers': { type: 'string' }, 'sweep-bookings': { type: 'string' }, profile: { type: 'boolean' }, 'pg-stats': { type: 'boolean' },
    },
    strict: true,
  });
  const bookingsCount = positive(values.bookings, 100_000, 'bookings');
  const callers = positive(values.callers, 64, 'callers');
  const baselineCount = positive(values['baseline-bookings'], 10_000, 'baseline-bookings', true);
  const baselineConnections = positive(values['baseline-connections'], 64, 'baseline-connections');
  const batchCommandsMax = positive(values['batch-commands-max'], limits.batchCommandsMax, 'batch-commands-max');
  const rowCacheRows = positive(values['row-cache-rows'], limits.rowCacheRowsPerTableMax, 'row-cache-rows', true);
  const manifestRuns = positive(values['manifest-runs'], 3, 'manifest-runs', true);
  const manifestSerials = positive(values['manifest-serials'], limits.shipmentSerialsMax, 'manifest-serials');
  const sweep = numberList(values.sweep);
  const sweepCallers = numberList(values['sweep-callers']);
  const sweepBookings = positive(values['sweep-bookings'], 30_000, 'sweep-bookings');
  const profile = values.profile ?? false;

  const pgStats = values['pg-stats'] ?? false;
  const server = await startBenchServer('ledger', { statementStats: pgStats });
  try {
    console.log(`ledger benchmark on ${server.description}`);
    console.log(`node ${process.version}; ${callers} concurrent callers; batchCommandsMax ${batchCommandsMax}; row cache ${rowCacheRows} rows a table; workload seed ${workloadSeed}\n`);
    // One seeded list; every phase books a prefix of it.
    const bookings = workload(Math.max(bookingsCount, baselineCount, sweep.length + sweepCallers.length > 0 ? sweepBookings : 0), seededRandom(workloadSeed));

    const { session, result, checked, before, floors } = await runLedgerLoad(server, bookings.slice(0, bookingsCount), callers, { batchCommandsMax, rowCacheRows, profile, floor: !values['skip-floor'], name: 'bench_ledger' });
    printLoad(`ledger (sequencer, group commit)`, result, checked);
    const after = session.ledger.sequencer.stats;
    console.log(`  batches: ${formatCount(after.batches - before.batches)}, of which ${formatCount(after.cachedBatches - before.cachedBatches)} read no rows and ${formatCount(after.aheadBatches - before.aheadBatches)} were sent ahead`);
    if (floors) {
      console.log(`  floor, the same SQL without JavaScript: the ledger's ${formatCount(floors.replay.statements)} statements replayed in order on a copy of the database as it was before the run, one connection: ${round(floors.replay.seconds, 2)} s, ${formatCount(floors.replay.perSecond)} bookings/s; the ledger reached ${round((100 * result.perSecond) / floors.replay.perSecond, 0)}% of it`);
      console.log(`  floor, events only: the run's ${formatCount(result.accepted)} event rows (seq, canonical bytes; primary key only), one durable transaction per ${formatCount(Math.round(result.accepted / floors.eventsOnly.statements))}: ${round(floors.eventsOnly.seconds, 2)} s, ${formatCount(floors.eventsOnly.perSecond)} events/s`);
    }
    printProfile(session, result, before);
    if (pgStats) await printStatementStats(session.pool, result.bookings);
    let manifestMs: number[] = [];
    let manifestFloorMs: number[] = [];
    let manifestCpu: Pick<ManifestTimings, 'nodeCpuMs' | 'postgresCpuMs'> = { nodeCpuMs: [], postgresCpuMs: [] };
    let afterManifests = checked;
    try {
      if (manifestRuns > 0) {
        session.timer?.reset();
        ({ timings: manifestMs, floorMs: manifestFloorMs, ...manifestCpu } = await timeManifests(server, session, manifestRuns, manifestSerials));
        afterManifests = await check(session.pool);
        console.log(`\nmanifest import: ${formatCount(manifestSerials)} serials in one manifest.attach, end to end`);
        console.log(`  runs: ${manifestMs.map((ms) => `${round(ms, 0)} ms`).join(', ')}; median ${round(median(manifestMs), 0)} ms; invariant violations after: ${afterManifests.violations}`);
        console.log(`  CPU per import: node ${manifestCpu.nodeCpuMs.map((ms) => round(ms, 0)).join(', ')} ms, median ${round(median(manifestCpu.nodeCpuMs), 0)} ms; postgres ${manifestCpu.postgresCpuMs.map((ms) => round(ms, 0)).join(', ')} ms, median ${round(median(manifestCpu.postgresCpuMs), 0)} ms`);
        if (manifestFloorMs.length > 0) console.log(`  floor, the same SQL without JavaScript (replayed on the copy): ${manifestFloorMs.map((ms) => `${round(ms, 0)} ms`).join(', ')}; median ${round(median(manifestFloorMs), 0)} ms`);
        if (session.timer) {
          for (const timing of session.timer.report().slice(0, 8)) console.log(`    ${round(timing.totalMs / manifestRuns, 1).toFixed(1).padStart(8)} ms/import ${timing.statement}`);
        }
      }
    } finally {
      await session.close();
    }

    let baseline: { result: LoadResult; checked: CheckResult } | null = null;
    if (baselineCount > 0) {
      baseline = await runBaseline(server, bookings.slice(0, baselineCount), callers, baselineConnections);
      console.log('');
      printLoad(`baseline (one transaction per booking, SELECT ... FOR UPDATE, ${baselineConnections} connections)`, baseline.result, baseline.checked);
    }

    const sweepResults: Array<{ batchCommandsMax: number; callers: number; bookingsPerSecond: number; p50Ms: number; p99Ms: number; violations: number }> = [];
    for (const sweepCallerCount of sweepCallers.length > 0 ? sweepCallers : sweep.length > 0 ? [callers] : []) {
      for (const size of sweep.length > 0 ? sweep : [batchCommandsMax]) {
        const sweepRun = await runLedgerLoad(server, bookings.slice(0, sweepBookings), sweepCallerCount, { batchCommandsMax: size, rowCacheRows, name: 'bench_sweep' });
        await sweepRun.session.close();
        const { result: r, checked: c } = sweepRun;
        sweepResults.push({ batchCommandsMax: size, callers: sweepCallerCount, bookingsPerSecond: Math.round(r.perSecond), p50Ms: round(r.p50Ms, 2), p99Ms: round(r.p99Ms, 2), violations: c.violations + (c.shipmentRows === r.accepted ? 0 : 1) });
      }
    }
    if (sweepResults.length > 0) {
      console.log(`\nsweep (${formatCount(sweepBookings)} bookings each, fresh database each)`);
      console.log('  callers  batchCommandsMax  bookings/s    p50 ms    p99 ms  violations');
      for (const row of sweepResults) {
        console.log(`  ${String(row.callers).padStart(7)}  ${String(row.batchCommandsMax).padStart(16)}  ${formatCount(row.bookingsPerSecond).padStart(10)}  ${row.p50Ms.toFixed(2).padStart(8)}  ${row.p99Ms.toFixed(2).padStart(8)}  ${String(row.violations).padStart(10)}`);
      }
    }

    const violations = afterManifests.violations + (checked.shipmentRows === result.accepted ? 0 : 1)
      + (baseline ? baseline.checked.violations + (baseline.checked.shipmentRows === baseline.result.accepted ? 0 : 1) : 0);
    const ratio = baseline ? result.perSecond / baseline.result.perSecond : null;
    console.log(`\nsummary: ledger ${formatCount(result.perSecond)} bookings/s (goal 20,000)${baseline ? `, baseline ${formatCount(baseline.result.perSecond)} bookings/s, ratio ${round(ratio!, 1)}x (goal 10x)` : ''}${manifestMs.length > 0 ? `, ${formatCount(manifestSerials)}-serial manifest ${round(median(manifestMs), 0)} ms (goal < 1,000 ms)` : ''}; invariant violations: ${violations}`);
    return {
      bench: 'ledger',
      bookings: result.bookings,
      callers,
      batchCommandsMax,
      bookingsPerSecond: Math.round(result.perSecond),
      floorBookingsPerSecond: floors ? Math.round(floors.replay.perSecond) : null,
      ledgerToFloor: floors ? round(result.perSecond / floors.replay.perSecond, 2) : null,
      eventsOnlyFloorPerSecond: floors ? Math.round(floors.eventsOnly.perSecond) : null,
      p50Ms: round(result.p50Ms, 2),
      p99Ms: round(result.p99Ms, 2),
      accepted: result.accepted,
      baselineBookings: baseline?.result.bookings ?? 0,
      baselineBookingsPerSecond: baseline ? Math.round(baseline.result.perSecond) : null,
      baselineP50Ms: baseline ? round(baseline.result.p50Ms, 2) : null,
      baselineP99Ms: baseline ? round(baseline.result.p99Ms, 2) : null,
      ratio: ratio === null ? null : round(ratio, 2),
      violations,
      manifestSerials,
      manifest100kMs: manifestMs.length > 0 ? Math.round(median(manifestMs)) : null,
      manifestRunsMs: manifestMs.map((ms) => Math.round(ms)),
      manifestFloorMs: manifestFloorMs.length > 0 ? Math.round(median(manifestFloorMs)) : null,
      manifestNodeCpuMs: manifestCpu.nodeCpuMs.length > 0 ? Math.round(median(manifestCpu.nodeCpuMs)) : null,
      manifestPostgresCpuMs: manifestCpu.postgresCpuMs.length > 0 ? Math.round(median(manifestCpu.postgresCpuMs)) : null,
      ...(sweepResults.length > 0 ? { sweep: sweepResults } : {}),
      goals: {
        bookingsPerSecond20k: result.perSecond >= 20_000,
        ratio10x: ratio === null ? null : ratio >= 10,
        manifestUnder1s: manifestMs.length > 0 ? median(manifestMs) < 1_000 : null,
        zeroViolations: violations === 0,
      },
    };
  } finally {
    await server.stop();
  }
}
