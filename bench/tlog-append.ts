/**
 * The tlog benchmark's write side: synthetic ~300-byte events appended through the real
 * write path (TransparencyLog.append hashes the leaves into tiles; writeBatchAndCommit
 * writes the events, the tiles and the head and commits, one transaction per batch, as
 * the sequencer does), with a Checkpointer signing at its 1 s interval to measure checkpoint
 * lag; and, for reference, bookings end to end through the ledger with and without the log.
 */
import { Checkpointer, checkpointIntervalMs } from '../src/ledger/log/checkpointer.ts';
import { adoptLogKey } from '../src/ledger/log/keys.ts';
import { Ledger, type Answer } from '../src/ledger/ledger.ts';
import type { Actor } from '../src/ledger/permissions.ts';
import type { CommandRequest } from '../src/ledger/schemas.ts';
import { Sequencer } from '../src/ledger/sequencer.ts';
import { TransparencyLog } from '../src/ledger/log/transparency-log.ts';
import { HeadSealer } from '../src/ledger/log/head-seal.ts';
import { systemClock } from '../src/core/clock.ts';
import { openAtHeadSql, type StoredHead } from '../src/store/head-lock.ts';
import { writeBatchAndCommit, type EventWrite } from '../src/store/batch-writes.ts';
import { migrate } from '../src/store/migrate.ts';
import type { Pool } from '../src/store/pool.ts';
import { readHead, type CheckpointRow } from '../src/store/tlog-tables.ts';
import { parseSignerKey } from '../src/tlog/index.ts';
import { buildBenchWorld, workload } from './ledger-world.ts';
import { QueryTimer } from './query-timer.ts';
import { percentile, seededRandom } from './stats.ts';

/** Bytes of every synthetic entry: about a real shipment.book event. */
export const entryBytes = 300;
const entryAt = '2026-02-01T00:00:00.000Z';

/** Writes synthetic entry `index` (exactly entryBytes of JSON) into target at offset. */
export function writeEntry(target: Buffer, offset: number, index: number): void {
  const head = `{"seq":${index},"at":"${entryAt}","kind":"shipment.book","actor":"TOK-bench-exporter","subjectId":"SHP-${index}","input":{"units":1},"pad":"`;
  const written = target.write(head, offset, 'latin1');
  target.fill(0x78, offset + written, offset + entryBytes - 2); // 'x'
  target.write('"}', offset + entryBytes - 2, 'latin1');
}

export function entry(index: number): Buffer {
  const bytes = Buffer.allocUnsafe(entryBytes);
  writeEntry(bytes, 0, index);
  return bytes;
}

/** Records when each checkpoint was signed. */
class TimedCheckpointer extends Checkpointer {
  readonly signed: Array<{ size: number; atMs: number }> = [];

  override async checkpointNow(): Promise<CheckpointRow | undefined> {
    const row = await super.checkpointNow();
    if (row) this.signed.push({ size: row.size, atMs: performance.now() });
    return row;
  }
}

export interface AppendResult {
  leaves: number;
  batches: number;
  seconds: number;
  leavesPerSecond: number;
  /**
   * Milliseconds per batch: the log's hashing and tile building (append, while the event rows
   * travel: wall time, with the turns it gives the event loop), and the whole write from
   * opening (the lock at the expected head) to COMMIT, the append included.
   */
  perBatchMs: { logAppend: number; writeAndCommit: number };
  checkpointLagMs: { p50: number; p99: number; max: number; checkpoints: number };
  /** The append loop's statements, slowest first, in ms per batch (send to reply). */
  statements: Array<{ statement: string; msPerBatch: number }>;
}

/**
 * Appends `leaves` synthetic events in batches of `batchLeaves`, one durable transaction
 * each, while the checkpointer signs every second. Lag of a batch: from its COMMIT to the
 * first checkpoint signed at or beyond its size.
 */
export async function sustainedAppends(pool: Pool, signerKey: string, leaves: number, batchLeaves: number, onProgress: (done: number) => void): Promise<AppendResult> {
  const timer = new QueryTimer();
  timer.attach(pool); // before the first connection: the timer wraps clients as they connect
  await migrate(pool);
  // The key is the log's before anything signs with it, as Ledger.open makes it: a
  // checkpointer signs only with the log's current key (it stops on any other).
  const signer = parseSignerKey(signerKey);
  await adoptLogKey(pool, signer);
  timer.reset(); // only the append loop's statements count
  // Sealed and vouched for as a server's log is (the HMAC a batch, the check a signing).
  const sealer = new HeadSealer(signerKey);
  const log = new TransparencyLog(pool, undefined, sealer);
  const checkpointer = new TimedCheckpointer({ pool, signer, intervalMs: checkpointIntervalMs, sealer });
  const commits: Array<{ size: number; atMs: number }> = [];
  const spent = { logAppend: 0, commit: 0 };
  checkpointer.start();
  const started = performance.now();
  const client = await pool.connect();
  // The only writer: every batch goes at the head the last one left, as the sequencer sends
  // a batch ahead (one round trip that takes the lock at the expected head, writes, commits).
  let head: StoredHead = await readHead(client);
  try {
    for (let first = 0; first < leaves; first += batchLeaves) {
      const count = Math.min(batchLeaves, leaves - first);
      const events: EventWrite[] = Array.from({ length: count }, (_, offset) => ({
        seq: first + offset, at: entryAt, kind: 'shipment.book', actor: 'TOK-bench-exporter', subject_id: `SHP-${first + offset}`, org_ids: ['ORG-1'], canonical: entry(first + offset),
      }));
      // The sequencer's steps for a big batch sent ahead: the opening that takes the lock at
      // the expected head, then the event rows sent, the leaves hashed into tiles while they
      // travel, and the tiles, head and COMMIT.
      const t0 = performance.now();
      await log.prepare(client, head);
      const at = head;
      let hashed = 0;
      const appendLeaves = async () => {
        const started = performance.now();
        const appended = await log.append(client, at, events.map((event) => ({ seq: event.seq, canonical: event.canonical })));
        hashed = performance.now() - started;
        return { tiles: appended.tiles, head: { size: at.size + count, root: appended.root }, seal: appended.seal };
      };
      head = await writeBatchAndCommit(client, { inserted: {}, updated: {}, unitsChanges: [], unitStages: [], replacedPartiesOf: [], events, idempotency: [] }, appendLeaves, openAtHeadSql(at));
      const t3 = performance.now();
      spent.logAppend += hashed;
      spent.commit += t3 - t0;
      commits.push({ size: head.size, atMs: t3 });
      onProgress(head.size);
    }
  } finally {
    client.release();
  }
  const seconds = (performance.now() - started) / 1000;
  // Wait for a checkpoint over the last batch (at most two intervals), then stop signing.
  for (let waited = 0; waited < 2 * checkpointIntervalMs && (checkpointer.signed.at(-1)?.size ?? 0) < leaves; waited += 50) await new Promise((done) => setTimeout(done, 50));
  await checkpointer.stop();
  // A lag over no checkpoints is no figure: say so rather than print NaN.
  if (leaves > 0 && checkpointer.signed.length === 0) throw new Error('the checkpointer signed no checkpoint during the appends; the checkpoint lag cannot be measured');
  return {
    leaves, batches: commits.length, seconds, leavesPerSecond: leaves / seconds,
    perBatchMs: { logAppend: spent.logAppend / commits.length, writeAndCommit: spent.commit / commits.length },
    checkpointLagMs: lagOf(commits, checkpointer.signed),
    statements: statementsPerBatch(timer, commits.length),
  };
}

/**
 * Statement timings per batch; the opening and the head update inline their numbers, so their
 * texts are merged. A big batch's last text opens with its readers (store/batch-writes.ts),
 * and is named for all it holds.
 */
function statementsPerBatch(timer: QueryTimer, batches: number): AppendResult['statements'] {
  const merged = new Map<string, number>();
  for (const timing of timer.report()) {
    const statement = timing.statement
      .replace(/size = \d+, root = '[^']*'?.*/, 'size = …, root = … ; COMMIT')
      .replace(/^INSERT INTO event_reader_sets .*/, 'INSERT INTO event_reader_sets …; UPDATE log_head …; COMMIT')
      .replace(/ledger_lock_expected_head\(\d+, '[^']*'?.*/, 'ledger_lock_expected_head(…)');
    merged.set(statement, (merged.get(statement) ?? 0) + timing.totalMs);
  }
  return [...merged].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([statement, totalMs]) => ({ statement, msPerBatch: totalMs / batches }));
}

function lagOf(commits: Array<{ size: number; atMs: number }>, signed: Array<{ size: number; atMs: number }>): AppendResult['checkpointLagMs'] {
  const lags: number[] = [];
  let next = 0;
  for (const commit of commits) {
    while (next < signed.length && (signed[next]!.size < commit.size || signed[next]!.atMs < commit.atMs)) next += 1;
    if (next < signed.length) lags.push(signed[next]!.atMs - commit.atMs);
  }
  const sorted = Float64Array.from(lags).sort();
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? Number.NaN, checkpoints: new Set(signed.map((row) => row.size)).size };
}

export interface EndToEndResult {
  bookings: number;
  withLogEventsPerSecond: number;
  withoutLogEventsPerSecond: number;
}

type BookOne = (input: CommandRequest<'shipment.book'>, actor: Actor) => Promise<Answer>;

async function bookAll(book: BookOne, world: Awaited<ReturnType<typeof buildBenchWorld>>, bookings: number, callers: number): Promise<number> {
  const list = workload(bookings, seededRandom(20_260_201));
  const deadline = new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString();
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: callers }, async () => {
    for (let index = next++; index < list.length; index = next++) {
      const pair = world.pairs[list[index]!.pair]!;
      const answer = await book({ exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: list[index]!.units, deadline }, world.exporter);
      if (!answer.ok) throw new Error(`booking refused: ${answer.error.message}`);
    }
  }));
  return bookings / ((performance.now() - started) / 1000);
}

/** Bookings through the ledger (log in the batch) and through a sequencer with no log appender. */
export async function endToEnd(withLog: Pool, withoutLog: Pool, signerKey: string, bookings: number, callers: number): Promise<EndToEndResult> {
  const ledger = await Ledger.open({ pool: withLog, logSignerKey: signerKey });
  let withLogRate: number;
  try {
    const world = await buildBenchWorld(ledger);
    withLogRate = await bookAll((input, actor) => ledger.submit('shipment.book', input, actor), world, bookings, callers);
  } finally {
    await ledger.close();
  }
  // The same ledger batches without the log: its world is built through a Ledger, then the
  // bookings go through a bare Sequencer that appends no leaves.
  const setup = await Ledger.open({ pool: withoutLog });
  const world = await buildBenchWorld(setup);
  await setup.close();
  const sequencer = new Sequencer({ pool: withoutLog, clock: systemClock, logAppender: { append: async (_client, head) => ({ root: head.root, tiles: [], seal: null }), prepare: async () => {}, vouch: async () => {}, sealIsOurs: () => true } });
  try {
    const withoutLogRate = await bookAll((input, actor) => sequencer.submit('shipment.book', input, actor), world, bookings, callers);
    return { bookings, withLogEventsPerSecond: withLogRate, withoutLogEventsPerSecond: withoutLogRate };
  } finally {
    await sequencer.close();
  }
}
