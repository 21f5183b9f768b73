/**
 * What each part of an event row costs PostgreSQL: a 2,048-event batch (about 300 bytes of
 * canonical JSON each, one reader organisation, distinct subjects) sent by COPY as
 * store/batch-writes.ts sends it, with COMMIT, into tables that differ in one part each.
 * Every variant has its own database of one durable embedded PostgreSQL; they take turns
 * batch by batch, so all see the same machine. The figures behind "Left open" in
 * docs/BENCHMARKS.md (what storing less per event would buy). Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/event-parts.ts [batches]
 *
 * Variants:
 * - as stored: the events table with its subject index over the events that do not make a
 *   record and the check that those that do name it by their seq (migration 053), and a
 *   reader set (migration 012) per organisation and batch, as store/batch-writes.ts writes them;
 * - as before 053: the subject index over every event, no check;
 * - without 053's check, and with it written with split_part (PostgreSQL 14 and later);
 * - a reader row per event: the layout before migration 012, one (org_id, seq) row per event
 *   and organisation;
 * - org_ids as text: the array column as plain text (is array input the cost?);
 * - hash subject index: the subject index as a hash index over every event;
 * - no readers: the events alone, with their subject index;
 * - no readers, no subject index: the events table with its primary key (and 053's check).
 * Every event of the batch is a booking: it makes the shipment it is about.
 */
import { copyIn, copyStatement, encodeCopyBinary, type CopyColumn, type CopyValue } from '../../src/store/copy-binary.ts';
import { migrate } from '../../src/store/migrate.ts';
import { recordMakingKinds } from '../../src/store/event-queries.ts';
import { createPool, type PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { readerSetsOf } from '../../src/store/reader-sets.ts';
import { percentile } from '../stats.ts';
import { entry } from '../tlog-append.ts';

const batches = Number(process.argv[2] ?? 150);
const batchEvents = 2048;
const at = '2026-02-01T00:00:00.000Z';

const eventColumns: CopyColumn[] = [
  { name: 'seq', type: 'int8' }, { name: 'at', type: 'timestamptz' }, { name: 'kind', type: 'text' }, { name: 'actor', type: 'text' },
  { name: 'subject_id', type: 'text' }, { name: 'org_ids', type: 'text[]' }, { name: 'canonical', type: 'bytea' },
];
const textOrgColumns = eventColumns.map((column): CopyColumn => (column.name === 'org_ids' ? { name: 'org_ids', type: 'text' } : column));
const readerSetColumns: CopyColumn[] = [{ name: 'org_id', type: 'text' }, { name: 'first_seq', type: 'int8' }, { name: 'last_seq', type: 'int8' }, { name: 'offsets', type: 'int2[]' }];
const readerRowColumns: CopyColumn[] = [{ name: 'org_id', type: 'text' }, { name: 'seq', type: 'int8' }];

interface Batch {
  seqs: number[];
  canonicals: Buffer[];
}

const eventRows = (batch: Batch, orgs: CopyValue): CopyValue[][] => batch.seqs.map((seq, i) => [seq, at, 'shipment.book', 'TOK-bench', `SHP-${seq}`, orgs, batch.canonicals[i]!]);
const copyEvents = (client: PoolClient, batch: Batch, columns = eventColumns, orgs: CopyValue = ['ORG-1']) =>
  copyIn(client, copyStatement('events', columns), encodeCopyBinary(columns, eventRows(batch, orgs)));
const copyReaderSets = (client: PoolClient, batch: Batch) => {
  const sets = readerSetsOf(batch.seqs.map((seq) => ({ seq, org_ids: ['ORG-1'] })));
  return copyIn(client, copyStatement('event_reader_sets', readerSetColumns), encodeCopyBinary(readerSetColumns, sets.map((set) => [set.org_id, set.first_seq, set.last_seq, set.offsets])));
};
const readerRows = 'CREATE TABLE event_readers (org_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (org_id, seq))';
const copyReaderRows = (client: PoolClient, batch: Batch) => copyIn(client, copyStatement('event_readers', readerRowColumns), encodeCopyBinary(readerRowColumns, batch.seqs.map((seq) => ['ORG-1', seq])));
const hashSubjectIndex = 'DROP INDEX events_subject; CREATE INDEX events_subject ON events USING hash (subject_id)';

/** The kinds 053 leaves out of the subject index, as its check lists them. */
const creationKinds = recordMakingKinds.map((kind) => `'${kind}'`).join(', ');

const dropCheck = 'ALTER TABLE events DROP CONSTRAINT events_creation_subject_carries_seq';
const writeAsStored = async (client: PoolClient, batch: Batch) => {
  await copyEvents(client, batch);
  await copyReaderSets(client, batch);
};

const variants: Record<string, { setup?: string; write: (client: PoolClient, batch: Batch) => Promise<void> }> = {
  'as stored': { write: writeAsStored },
  'as before 053': { setup: `${dropCheck}; DROP INDEX events_subject; CREATE INDEX events_subject ON events (subject_id, seq)`, write: writeAsStored },
  'without 053\'s check': { setup: dropCheck, write: writeAsStored },
  '053\'s check with split_part': {
    setup: `${dropCheck}; ALTER TABLE events ADD CONSTRAINT events_creation_subject CHECK (split_part(subject_id, '-', -1) = seq::text OR kind NOT IN (${creationKinds}))`,
    write: writeAsStored,
  },
  'a reader row per event': { setup: readerRows, write: async (client, batch) => { await copyEvents(client, batch); await copyReaderRows(client, batch); } },
  'org_ids as text': {
    // The update guard of migration 028 names the column: it goes first (no event is updated here).
    setup: 'DROP TRIGGER events_keep_columns ON events; ALTER TABLE events ALTER COLUMN org_ids TYPE text',
    write: async (client, batch) => { await copyEvents(client, batch, textOrgColumns, 'ORG-1'); await copyReaderSets(client, batch); },
  },
  'hash subject index': { setup: hashSubjectIndex, write: writeAsStored },
  'no readers': { write: async (client, batch) => { await copyEvents(client, batch); } },
  'no readers, no subject index': { setup: 'DROP INDEX events_subject', write: async (client, batch) => { await copyEvents(client, batch); } },
};

const server = await startBenchServer('event-parts');
try {
  const names = Object.keys(variants);
  const pools = await Promise.all(names.map(async (name, i) => {
    const pool = createPool({ url: await server.createDatabase(`event_parts_${i}`), connectionsMax: 1, applicationName: 'event-parts' });
    await migrate(pool);
    const setup = variants[name]!.setup;
    if (setup) await pool.query(setup);
    return pool;
  }));
  const clients = await Promise.all(pools.map((pool) => pool.connect()));
  const spent = names.map(() => [] as number[]);
  for (let index = 0; index < batches; index += 1) {
    const seqs = Array.from({ length: batchEvents }, (_, offset) => index * batchEvents + offset);
    const batch = { seqs, canonicals: seqs.map((seq) => entry(seq)) };
    for (const [i, name] of names.entries()) {
      await clients[i]!.query('BEGIN');
      const started = performance.now();
      await variants[name]!.write(clients[i]!, batch);
      await clients[i]!.query('COMMIT');
      spent[i]!.push(performance.now() - started);
    }
  }
  const asStored = percentile(Float64Array.from(spent[0]!).sort(), 50);
  for (const [i, name] of names.entries()) {
    const p50 = percentile(Float64Array.from(spent[i]!).sort(), 50);
    console.log(`${name.padEnd(30)} p50 ${p50.toFixed(2).padStart(6)} ms a batch with COMMIT (${(p50 - asStored).toFixed(2).padStart(6)} ms against as stored)`);
  }
  for (const client of clients) client.release();
  await Promise.all(pools.map((pool) => pool.end()));
} finally {
  await server.stop();
}
