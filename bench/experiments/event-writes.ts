/**
 * The event rows of a 2,048-event batch (about 300 bytes of canonical JSON each), written
 * three ways, in turn batch by batch on fresh databases of one durable embedded PostgreSQL:
 * - INSERT from unnest(arrays) with the canonical bytes as a bytea[] parameter, which
 *   node-postgres sends as hex text that PostgreSQL parses back, element by element;
 * - the same with the canonical bytes as one binary parameter, each event's bytes cut out
 *   of it in SQL (as store/batch-writes.ts sends tiles);
 * - COPY in the binary format (store/copy-binary.ts), as store/batch-writes.ts sends them.
 * Each way once into the real events table (with its indexes and reader sets) and once
 * into a table with only (seq, canonical) and its primary key: the benchmark's floor. Not
 * part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/event-writes.ts [batches]
 */
import { packed } from '../../src/store/batch-tile-writes.ts';
import { copyIn, copyStatement, encodeCopyBinary, type CopyColumn } from '../../src/store/copy-binary.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createPool, type PoolClient } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { percentile } from '../stats.ts';
import { entry } from '../tlog-append.ts';

const batches = Number(process.argv[2] ?? 200);
const batchEvents = 2048;
const at = '2026-02-01T00:00:00.000Z';

interface Batch {
  seqs: number[];
  canonicals: Buffer[];
}

function batchOf(index: number): Batch {
  const seqs = Array.from({ length: batchEvents }, (_, offset) => index * batchEvents + offset);
  return { seqs, canonicals: seqs.map((seq) => entry(seq)) };
}

const fullColumns = (batch: Batch) => [batch.seqs, batch.seqs.map(() => at), batch.seqs.map(() => 'shipment.book'), batch.seqs.map(() => 'TOK-bench'), batch.seqs.map((seq) => `S-${seq}`), batch.seqs.map(() => 'ORG-1')];
/** The batch's one reader set (every event is ORG-1's), by parameters. */
const readers = (client: PoolClient, batch: Batch) => client.query('INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets) VALUES ($1, $2, $3, $4::int2[])',
  ['ORG-1', batch.seqs[0], batch.seqs.at(-1), batch.seqs.map((seq) => seq - batch.seqs[0]!)]);

const eventColumns: CopyColumn[] = [
  { name: 'seq', type: 'int8' }, { name: 'at', type: 'timestamptz' }, { name: 'kind', type: 'text' }, { name: 'actor', type: 'text' },
  { name: 'subject_id', type: 'text' }, { name: 'org_ids', type: 'text[]' }, { name: 'canonical', type: 'bytea' },
];
const readerColumns: CopyColumn[] = [{ name: 'org_id', type: 'text' }, { name: 'first_seq', type: 'int8' }, { name: 'last_seq', type: 'int8' }, { name: 'offsets', type: 'int2[]' }];
const floorColumns: CopyColumn[] = [{ name: 'seq', type: 'int8' }, { name: 'canonical', type: 'bytea' }];

const ways: Record<string, { table: 'events' | 'floor'; write: (client: PoolClient, batch: Batch) => Promise<unknown> }> = {
  'events, bytea[] (hex text)': {
    table: 'events',
    write: async (client, batch) => {
      await client.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
        SELECT seq, at, kind, actor, subject_id, string_to_array(org_ids, ' '), canonical
        FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[]) AS e(seq, at, kind, actor, subject_id, org_ids, canonical)`,
      [...fullColumns(batch), batch.canonicals]);
      await readers(client, batch);
    },
  },
  'events, one binary bytea': {
    table: 'events',
    write: async (client, batch) => {
      const { bytes, starts, lengths } = packed(batch.canonicals);
      await client.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
        SELECT seq, at, kind, actor, subject_id, string_to_array(org_ids, ' '), substring($7::bytea FROM start FOR length)
        FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $8::int[], $9::int[]) AS e(seq, at, kind, actor, subject_id, org_ids, start, length)`,
      [...fullColumns(batch), bytes, starts, lengths]);
      await readers(client, batch);
    },
  },
  'events, COPY binary': {
    table: 'events',
    write: async (client, batch) => {
      await copyIn(client, copyStatement('events', eventColumns), encodeCopyBinary(eventColumns, batch.seqs.map((seq, i) => [seq, at, 'shipment.book', 'TOK-bench', `S-${seq}`, ['ORG-1'], batch.canonicals[i]!])));
      await copyIn(client, copyStatement('event_reader_sets', readerColumns), encodeCopyBinary(readerColumns, [['ORG-1', batch.seqs[0]!, batch.seqs.at(-1)!, batch.seqs.map((seq) => seq - batch.seqs[0]!)]]));
    },
  },
  'floor, bytea[] (hex text)': {
    table: 'floor',
    write: (client, batch) => client.query('INSERT INTO floor_events (seq, canonical) SELECT * FROM unnest($1::bigint[], $2::bytea[])', [batch.seqs, batch.canonicals]),
  },
  'floor, one binary bytea': {
    table: 'floor',
    write: (client, batch) => {
      const { bytes, starts, lengths } = packed(batch.canonicals);
      return client.query('INSERT INTO floor_events (seq, canonical) SELECT seq, substring($2::bytea FROM start FOR length) FROM unnest($1::bigint[], $3::int[], $4::int[]) AS e(seq, start, length)', [batch.seqs, bytes, starts, lengths]);
    },
  },
  'floor, COPY binary': {
    table: 'floor',
    write: (client, batch) => copyIn(client, copyStatement('floor_events', floorColumns), encodeCopyBinary(floorColumns, batch.seqs.map((seq, i) => [seq, batch.canonicals[i]!]))),
  },
};

const server = await startBenchServer('event-writes');
try {
  const pools = await Promise.all(Object.values(ways).map(async (way, i) => {
    const pool = createPool({ url: await server.createDatabase(`events_${i}`), connectionsMax: 1, applicationName: 'event-writes' });
    if (way.table === 'events') await migrate(pool);
    else await pool.query('CREATE TABLE floor_events (seq bigint PRIMARY KEY, canonical bytea NOT NULL)');
    return pool;
  }));
  const clients = await Promise.all(pools.map((pool) => pool.connect()));
  const spent = Object.keys(ways).map(() => [] as number[]);
  for (let index = 0; index < batches; index += 1) {
    const batch = batchOf(index);
    for (const [i, way] of Object.values(ways).entries()) {
      await clients[i]!.query('BEGIN');
      const started = performance.now();
      await way.write(clients[i]!, batch);
      await clients[i]!.query('COMMIT');
      spent[i]!.push(performance.now() - started);
    }
  }
  for (const [i, name] of Object.keys(ways).entries()) {
    const sorted = Float64Array.from(spent[i]!).sort();
    const mean = spent[i]!.reduce((a, b) => a + b, 0) / batches;
    console.log(`${name.padEnd(28)} per batch (with COMMIT): p50 ${percentile(sorted, 50).toFixed(2)} ms, mean ${mean.toFixed(2)} ms = ${Math.round((batchEvents * 1000) / mean).toLocaleString('en-US')} rows/s`);
  }
  for (const client of clients) client.release();
  await Promise.all(pools.map((pool) => pool.end()));
} finally {
  await server.stop();
}
