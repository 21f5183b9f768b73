/**
 * How a tenant's page of events reads at 1,000,000 events: the reader rows (event_readers,
 * one per event and organisation) against which a page is found, for a tenant that reads a
 * quarter of the log and one that reads one event in a thousand, at the start and deep in
 * the log, and an authority (no reader filter) for comparison. The layout question behind
 * bench/experiments/event-parts.ts: rows per event cost the writes, and buy these reads.
 * Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/event-reads.ts
 */
import { copyIn, copyStatement, encodeCopyBinary, type CopyColumn } from '../../src/store/copy-binary.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { listEvents, type Viewer } from '../../src/store/read-queries.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';
import { entry } from '../tlog-append.ts';

const events = 1_000_000;
const chunk = 50_000;
const eventColumns: CopyColumn[] = [
  { name: 'seq', type: 'int8' }, { name: 'at', type: 'timestamptz' }, { name: 'kind', type: 'text' }, { name: 'actor', type: 'text' },
  { name: 'subject_id', type: 'text' }, { name: 'org_ids', type: 'text[]' }, { name: 'canonical', type: 'bytea' },
];
const readerColumns: CopyColumn[] = [{ name: 'org_id', type: 'text' }, { name: 'seq', type: 'int8' }];
/** ORG-A to ORG-D read a quarter of the events each; ORG-RARE one in a thousand. */
const readersOf = (seq: number): string[] => [`ORG-${'ABCD'[seq % 4]}`, ...(seq % 1000 === 0 ? ['ORG-RARE'] : [])];

const server = await startBenchServer('event-reads');
try {
  const pool = createPool({ url: await server.createDatabase('event_reads'), connectionsMax: 2, applicationName: 'event-reads' });
  await migrate(pool);
  const client = await pool.connect();
  for (let from = 0; from < events; from += chunk) {
    const seqs = Array.from({ length: chunk }, (_, offset) => from + offset);
    await copyIn(client, copyStatement('events', eventColumns), encodeCopyBinary(eventColumns, seqs.map((seq) => [seq, '2026-02-01T00:00:00.000Z', 'shipment.book', 'TOK-bench', `S-${seq}`, readersOf(seq), entry(seq)])));
    await copyIn(client, copyStatement('event_readers', readerColumns), encodeCopyBinary(readerColumns, seqs.flatMap((seq) => readersOf(seq).map((org) => [org, seq]))));
  }
  await client.query('VACUUM ANALYZE');
  client.release();
  const cases: Array<[string, string | null, number | null]> = [
    ['a quarter of the log, first page', 'ORG-A', null], ['a quarter of the log, after event 900,000', 'ORG-A', 900_000],
    ['one event in 1,000, first page', 'ORG-RARE', null], ['one event in 1,000, after event 500,000', 'ORG-RARE', 500_000],
    ['an authority, after event 500,000', null, 500_000],
  ];
  for (const [name, orgId, after] of cases) {
    const viewer: Viewer = { orgId, allocations: 'related' };
    const times: number[] = [];
    let rows = 0;
    for (let run = 0; run < 21; run += 1) {
      const started = performance.now();
      rows = (await listEvents(pool, viewer, { after, limit: 100 })).rows.length;
      times.push(performance.now() - started);
    }
    console.log(`${name.padEnd(44)} ${rows} events a page, median ${median(times).toFixed(2)} ms`);
  }
  await pool.end();
} finally {
  await server.stop();
}
