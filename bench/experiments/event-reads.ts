/**
 * How a tenant's page of events reads at 1,000,000 events, written in batches of 2,048 with
 * their reader sets (event_reader_sets, one row per organisation and batch) as the ledger
 * writes them: for a tenant that reads a quarter of the log and one that reads one event in
 * a thousand, at the start and deep in the log; a subject's history; and an authority (no
 * reader filter) for comparison. The layout question behind bench/experiments/event-parts.ts:
 * what the reader rows cost the writes, and what they buy the reads.
 * Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/event-reads.ts
 */
import { copyIn, copyStatement, encodeCopyBinary, type CopyColumn } from '../../src/store/copy-binary.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { listEvents, type Viewer } from '../../src/store/read-queries.ts';
import { readerSetsOf } from '../../src/store/reader-sets.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';
import { entry } from '../tlog-append.ts';

const events = 1_000_000;
const chunk = 50_000;
const eventColumns: CopyColumn[] = [
  { name: 'seq', type: 'int8' }, { name: 'at', type: 'timestamptz' }, { name: 'kind', type: 'text' }, { name: 'actor', type: 'text' },
  { name: 'subject_id', type: 'text' }, { name: 'org_ids', type: 'text[]' }, { name: 'canonical', type: 'bytea' },
];
const readerColumns: CopyColumn[] = [{ name: 'org_id', type: 'text' }, { name: 'first_seq', type: 'int8' }, { name: 'last_seq', type: 'int8' }, { name: 'offsets', type: 'int2[]' }];
const batchEvents = 2048;
/** ORG-A to ORG-D read a quarter of the events each; ORG-RARE one in a thousand. */
const readersOf = (seq: number): string[] => [`ORG-${'ABCD'[seq % 4]}`, ...(seq % 1000 === 0 ? ['ORG-RARE'] : [])];

const server = await startBenchServer('event-reads');
try {
  const pool = createPool({ url: await server.createDatabase('event_reads'), connectionsMax: 2, applicationName: 'event-reads' });
  await migrate(pool);
  const client = await pool.connect();
  for (let from = 0; from < events; from += chunk) {
    const seqs = Array.from({ length: chunk }, (_, offset) => from + offset);
    await copyIn(client, copyStatement('events', eventColumns), encodeCopyBinary(eventColumns, seqs.map((seq) => [seq, '2026-02-01T00:00:00.000Z', 'shipment.book', 'TOK-bench', `SHP-${seq}`, readersOf(seq), entry(seq)])));
    const sets = [];
    for (let first = 0; first < seqs.length; first += batchEvents) {
      sets.push(...readerSetsOf(seqs.slice(first, first + batchEvents).map((seq) => ({ seq, org_ids: readersOf(seq) }))));
    }
    await copyIn(client, copyStatement('event_reader_sets', readerColumns), encodeCopyBinary(readerColumns, sets.map((set) => [set.org_id, set.first_seq, set.last_seq, set.offsets])));
  }
  await client.query('VACUUM ANALYZE');
  const stored = (await client.query<{ sets: number; bytes: number }>("SELECT count(*)::int AS sets, pg_total_relation_size('event_reader_sets')::int AS bytes FROM event_reader_sets")).rows[0]!;
  console.log(`reader sets: ${stored.sets.toLocaleString('en-US')} rows, ${(stored.bytes / 2 ** 20).toFixed(1)} MiB with their index, for ${events.toLocaleString('en-US')} events`);
  client.release();
  const cases: Array<[string, string | null, number | null, string?]> = [
    ['a quarter of the log, first page', 'ORG-A', null], ['a quarter of the log, after event 900,000', 'ORG-A', 900_000],
    ['one event in 1,000, first page', 'ORG-RARE', null], ['one event in 1,000, after event 500,000', 'ORG-RARE', 500_000],
    ['a subject\'s history, as its reader', 'ORG-A', null, 'S-400000'], ['a subject\'s history, not its reader', 'ORG-B', null, 'S-400000'],
    ['an authority, after event 500,000', null, 500_000],
  ];
  for (const [name, orgId, after, subjectId] of cases) {
    const viewer: Viewer = { orgId, allocations: 'related' };
    const times: number[] = [];
    let rows = 0;
    for (let run = 0; run < 21; run += 1) {
      const started = performance.now();
      rows = (await listEvents(pool, viewer, { after, limit: 100 }, subjectId === undefined ? {} : { subjectId })).rows.length;
      times.push(performance.now() - started);
    }
    console.log(`${name.padEnd(44)} ${rows} events a page, median ${median(times).toFixed(2)} ms`);
  }
  await pool.end();
} finally {
  await server.stop();
}
