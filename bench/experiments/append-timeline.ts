/**
 * Where a sustained append's batch spends its time: the tlog benchmark's write path
 * (bench/tlog-append.ts) with each step's send and answer, and the hashing's start and end,
 * marked from the batch's start (medians over the batches), then PostgreSQL's own time per
 * statement (pg_stat_statements, which adds a little to each). What it showed in session 23:
 * the events' COPY was the critical path, the opening waited for the rows' encoding, and the
 * readers' COPY cost a round trip of its own (docs/BENCHMARKS.md).
 *
 *   node --import tsx bench/experiments/append-timeline.ts [leaves] [batchLeaves]
 */
import { TransparencyLog } from '../../src/ledger/log/transparency-log.ts';
import { adoptLogKey } from '../../src/ledger/log/keys.ts';
import { openAtHeadSql, type StoredHead } from '../../src/store/head-lock.ts';
import { writeBatchAndCommit, type EventWrite } from '../../src/store/batch-writes.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createPool, type PoolClient } from '../../src/store/pool.ts';
import { readHead } from '../../src/store/tlog-tables.ts';
import { generateSignerKey, parseSignerKey } from '../../src/tlog/index.ts';
import { startBenchServer } from '../database.ts';
import { entry } from '../tlog-append.ts';

const leaves = Number(process.argv[2] ?? 200_000);
const batchLeaves = Number(process.argv[3] ?? 2_048);

/** The step a statement is, by its text. */
function stepOf(text: string): string {
  if (text.includes('ledger_lock_expected_head')) return 'opening';
  if (text.includes('COPY events')) return 'events COPY';
  if (text.includes('COPY event_reader_sets')) return 'readers COPY';
  if (text.includes('INTO tlog_tiles')) return 'tiles';
  if (text.includes('COMMIT')) return 'head and COMMIT';
  return text.replace(/\s+/g, ' ').slice(0, 40);
}

/** Marks, on each call of `mark`, the time since the batch started. */
class Marks {
  private readonly times = new Map<string, number[]>();
  batchStart = 0;

  mark(name: string): void {
    const list = this.times.get(name) ?? [];
    list.push(performance.now() - this.batchStart);
    this.times.set(name, list);
  }

  medians(): Array<[string, number]> {
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    return [...this.times].map(([name, values]): [string, number] => [name, median(values)]).sort((a, b) => a[1] - b[1]);
  }
}

/** Wraps the client's query so that each statement marks when it was sent and answered; returns what undoes it. */
function markStatements(client: PoolClient, marks: Marks): () => void {
  const target = client as unknown as { query: (...args: unknown[]) => unknown };
  const unwrapped = target.query;
  const original = unwrapped.bind(client);
  target.query = (...args: unknown[]) => {
    const step = stepOf(typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: unknown })?.text ?? '?'));
    marks.mark(`${step} sent`);
    const result = original(...args);
    const answered = () => marks.mark(`${step} answered`);
    if (result instanceof Promise) result.then(answered, answered);
    else (result as NodeJS.EventEmitter).once('finish', answered).once('error', answered);
    return result;
  };
  return () => {
    target.query = unwrapped;
  };
}

const server = await startBenchServer('append-timeline', { statementStats: true });
try {
  const pool = createPool({ url: await server.createDatabase('append_timeline'), connectionsMax: 2, applicationName: 'append-timeline' });
  await migrate(pool);
  await adoptLogKey(pool, parseSignerKey(generateSignerKey('bench/timeline').signerKey));
  const log = new TransparencyLog(pool);
  const marks = new Marks();
  const client = await pool.connect();
  let head: StoredHead = await readHead(client);
  const unmark = markStatements(client, marks);
  for (let first = 0; first < leaves; first += batchLeaves) {
    const events: EventWrite[] = Array.from({ length: batchLeaves }, (_, offset) => ({
      seq: first + offset, at: '2026-02-01T00:00:00.000Z', kind: 'shipment.book', actor: 'TOK-bench-exporter', subject_id: `SHP-${first + offset}`, org_ids: ['ORG-1'], canonical: entry(first + offset),
    }));
    marks.batchStart = performance.now();
    await log.prepare(client, head);
    const at = head;
    head = await writeBatchAndCommit(client, { inserted: {}, updated: {}, unitsChanges: [], unitStages: [], replacedPartiesOf: [], events, idempotency: [] }, async () => {
      marks.mark('hashing starts');
      const appended = await log.append(client, at, events.map((event) => ({ seq: event.seq, canonical: event.canonical })));
      marks.mark('hashing ends');
      return { tiles: appended.tiles, head: { size: at.size + batchLeaves, root: appended.root }, seal: appended.seal };
    }, openAtHeadSql(at));
    marks.mark('committed');
  }
  unmark();
  client.release();
  console.log(`${leaves} leaves in batches of ${batchLeaves}: medians from a batch's start`);
  for (const [name, ms] of marks.medians()) console.log(`  ${ms.toFixed(2).padStart(7)} ms  ${name}`);
  const { rows } = await pool.query<{ statement: string; calls: string; ms: string }>(`SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 64) AS statement, calls, round(mean_exec_time::numeric, 3) AS ms
    FROM pg_stat_statements WHERE calls >= $1 ORDER BY total_exec_time DESC LIMIT 8`, [Math.floor(leaves / batchLeaves)]);
  console.log('PostgreSQL, mean time per statement (pg_stat_statements):');
  for (const row of rows) console.log(`  ${String(row.ms).padStart(7)} ms  ${row.statement}`);
  await pool.end();
} finally {
  await server.stop();
}
