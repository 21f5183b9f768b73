/**
 * The floor under the ledger benchmark: what PostgreSQL alone costs for the same work.
 *
 * During the ledger run a StatementRecorder keeps every statement the ledger sent, in
 * order. Afterwards they are replayed on a copy of the database as it was before the run
 * (same world, same ids), one after the other on one connection, with no JavaScript in
 * between: the time that takes is what the ledger's SQL costs with zero application
 * work, so no implementation of this schema and write path can be faster on this
 * machine. A second, lower floor: only the event rows (seq and canonical bytes, into a
 * table with just its primary key), in transactions of the ledger's mean batch size:
 * what any durable event log must write per booking. The manifest imports are recorded
 * and replayed the same way, after the bookings, so the copy follows the ledger's database
 * statement for statement.
 */
import pg from 'pg';
import type { Pool, PoolClient } from '../src/store/pool.ts';
import { bulkRowsMin } from '../src/store/batch-steps.ts';
import { packed } from '../src/store/batch-tile-writes.ts';
import { copyIn, copyStatement, encodeCopyBinary } from '../src/store/copy-binary.ts';

/** A statement as sent: text, a parameterised query, or a COPY with the bytes it streamed. */
type Recorded = string | { name?: string; text: string; values?: unknown[] } | { copy: string; chunks: Buffer[] };

/** A COPY … FROM STDIN query is a writable stream: keep what is written to it. */
function recordCopy(query: { text: string; write: (chunk: Buffer, ...rest: unknown[]) => boolean }): Recorded {
  const recorded = { copy: query.text, chunks: [] as Buffer[] };
  const write = query.write.bind(query);
  query.write = (chunk, ...rest) => {
    recorded.chunks.push(Buffer.from(chunk));
    return write(chunk, ...rest);
  };
  return recorded;
}

export class StatementRecorder {
  private readonly statements: Recorded[] = [];
  private recording = false;

  /** Wraps the query method of every client the pool makes from now on. */
  attach(pool: Pool): void {
    pool.on('connect', (client: PoolClient) => {
      const original = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        if (this.recording) {
          const query = args[0] as { text?: string; write?: unknown };
          if (typeof query === 'object' && typeof query.write === 'function') this.statements.push(recordCopy(query as never));
          else this.statements.push(args.length > 1 && typeof args[0] === 'string' ? { text: args[0], values: args[1] as unknown[] } : (args[0] as Recorded));
        }
        return original(...args);
      };
    });
  }

  start(): void {
    this.statements.length = 0;
    this.recording = true;
  }

  /** What was sent since start() or the last take(); recording goes on. */
  take(): Recorded[] {
    return this.statements.splice(0);
  }
}

export type { Recorded };

export interface FloorResult {
  statements: number;
  seconds: number;
  perSecond: number;
}

/** Replays the statements in order on one connection to `url`; `bookings` is how many bookings they made. */
export async function replayStatements(url: string, statements: Recorded[], bookings: number): Promise<FloorResult> {
  const client = new pg.Client({ connectionString: url, application_name: 'chipledger-bench-floor' });
  await client.connect();
  try {
    const started = performance.now();
    for (const statement of statements) {
      if (typeof statement === 'object' && 'copy' in statement) await copyIn(client, statement.copy, Buffer.concat(statement.chunks));
      else await client.query(statement as never);
    }
    const seconds = (performance.now() - started) / 1000;
    return { statements: statements.length, seconds, perSecond: bookings / seconds };
  } finally {
    await client.end();
  }
}

/** Replays segments in order; returns the time of each segment in ms. */
export async function replaySegments(url: string, segments: Recorded[][]): Promise<number[]> {
  const times: number[] = [];
  for (const segment of segments) times.push((await replayStatements(url, segment, 1)).seconds * 1000);
  return times;
}

/** The events of the run, seq and canonical bytes, into a table with only its primary key: one durable transaction per `batch` events. */
export async function replayEventsOnly(sourcePool: Pool, fromSeq: number, url: string, batch: number): Promise<FloorResult> {
  const events = (await sourcePool.query<{ seq: number; canonical: Buffer }>('SELECT seq, canonical FROM events WHERE seq >= $1 ORDER BY seq', [fromSeq])).rows;
  const client = new pg.Client({ connectionString: url, application_name: 'chipledger-bench-floor-events' });
  await client.connect();
  try {
    await client.query('CREATE TABLE floor_events (seq bigint PRIMARY KEY, canonical bytea NOT NULL)');
    const columns = [{ name: 'seq', type: 'int8' }, { name: 'canonical', type: 'bytea' }] as const;
    const started = performance.now();
    for (let offset = 0; offset < events.length; offset += batch) {
      const chunk = events.slice(offset, offset + batch);
      // The cheapest way we know at this size, as the ledger chooses: COPY in the binary
      // format for big batches; for small ones, whose COPY would cost more than it saves,
      // one INSERT with the bytes as one binary parameter.
      if (chunk.length >= bulkRowsMin) {
        await copyIn(client, copyStatement('floor_events', columns), encodeCopyBinary(columns, chunk.map((event) => [event.seq, event.canonical])));
      } else {
        const canonical = packed(chunk.map((event) => event.canonical));
        await client.query('INSERT INTO floor_events (seq, canonical) SELECT seq, substring($2::bytea FROM start FOR length) FROM unnest($1::bigint[], $3::int[], $4::int[]) AS e(seq, start, length)',
          [chunk.map((event) => event.seq), canonical.bytes, canonical.starts, canonical.lengths]);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return { statements: Math.ceil(events.length / batch), seconds, perSecond: events.length / seconds };
  } finally {
    await client.end();
  }
}
