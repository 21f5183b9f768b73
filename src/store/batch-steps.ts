/**
 * How a ledger batch's statements travel: each a step (inline text, parameterised, or COPY),
 * sent in order without waiting for each, inline texts joined into one round trip; and the
 * SQL literals inline texts are written with.
 */
import pg from 'pg';
import { pollingTurn } from '../core/turns.ts';
import { copyIn, copyStatement, encodeCopyBinaryPieces, type CopyColumn, type CopyValue } from './copy-binary.ts';
import { prepared, type PoolClient } from './pool.ts';

/**
 * From this many rows a table's batch rows (events, new units) travel in statements of their
 * own: scalar arrays through unnest cost about a third less than JSON for a manifest
 * (session 4, docs/BENCHMARKS.md; its experiment went with migration 075), and COPY less again
 * (store/copy-binary.ts). Below it they stay in the batch's one round trip: a ledger batch
 * of about 64 bookings whose events went by COPY (from 16 events) ran at 5,100–5,400
 * bookings/s against 5,900–6,200 (`npm run bench -- ledger --bookings 40000`, two pairs).
 */
export const bulkRowsMin = 256;

/**
 * One statement: inline text (joined with its neighbours into one round trip),
 * parameterised, or a COPY with its encoded rows.
 */
export interface Step {
  text: string;
  values?: unknown[];
  /** A COPY's rows, encoded piece by piece as the COPY takes them. */
  copyPieces?: () => AsyncIterable<Buffer>;
}

/**
 * Rows of a COPY a piece: PostgreSQL starts on the first while the rest are encoded. A
 * 2,048-event batch took 2 ms to encode whole before its COPY could start (bench/
 * experiments/append-timeline.ts); in pieces of 256 its first rows go after a quarter of a
 * millisecond, and the rest follow as they are encoded.
 */
const copyPieceRows = 256;

export const inline = (text: string): Step => ({ text });
/** A COPY of the rows, each made into its values (in column order) as its piece is encoded. */
export const copy = <T>(table: string, columns: readonly CopyColumn[], rows: ReadonlyArray<T>, valuesOf: (row: T) => readonly CopyValue[], sizeHint: number): Step => ({
  text: copyStatement(table, columns), copyPieces: () => withTurns(encodeCopyBinaryPieces(columns, rows, copyPieceRows, sizeHint, valuesOf)),
});

/**
 * The pieces, with one turn of the event loop that reads the sockets after the first: the
 * COPY's go-ahead is read and the first piece sent then. The rest follow at once: PostgreSQL
 * goes through rows faster than it would get them between the log's hashing of its leaves.
 */
async function* withTurns(pieces: Iterable<Buffer>): AsyncGenerator<Buffer> {
  let first = true;
  for (const piece of pieces) {
    yield piece;
    if (first) await pollingTurn();
    first = false;
  }
}

/**
 * Sends steps in order without making the caller wait for each: inline texts are joined
 * into one round trip, and every other step (COPY, parameters) goes on a chain that sends
 * it when the one before has answered (at once when none is in flight), so PostgreSQL works
 * through them while the caller goes on (the log hashing its leaves). node-postgres would
 * queue a busy client's queries itself, but that is deprecated (gone in pg 9). After a
 * failure nothing more is sent; done() sends what is left and throws the first failure.
 * abandon() sends nothing more and returns once the step in flight has answered: then the
 * client is free for ROLLBACK.
 */
export class StepSender {
  private texts: string[] = [];
  private chain: Promise<void> = Promise.resolve();
  /** The chain has answered every step it sent, all without failure: the next may go at once. */
  private quiet = true;
  private abandoned = false;

  constructor(private readonly client: PoolClient) {}

  add(step: Step): void {
    if (step.values === undefined && step.copyPieces === undefined) {
      this.texts.push(step.text);
      return;
    }
    this.flush();
    const { text, values, copyPieces } = step;
    this.send(copyPieces !== undefined ? () => copyIn(this.client, text, copyPieces()) : () => this.client.query(prepared(text, values!)));
  }

  async done(): Promise<void> {
    this.flush();
    await this.chain;
  }

  async abandon(): Promise<void> {
    this.abandoned = true;
    await this.chain.catch(() => {});
  }

  /** Sends the inline texts added so far now, as one round trip, instead of with the next. */
  flush(): void {
    if (this.texts.length === 0) return;
    const text = this.texts.join(';\n');
    this.texts = [];
    this.send(() => this.client.query(text));
  }

  private send(step: () => Promise<unknown>): void {
    const run = async (): Promise<void> => {
      if (!this.abandoned) await step();
    };
    // With nothing in flight (and nothing failed) the step goes now, not a microtask later:
    // after whatever the caller does next, such as encoding a big batch's events or hashing
    // its leaves, which PostgreSQL's part of the step should overlap.
    const link = this.quiet ? run() : this.chain.then(run);
    this.quiet = false;
    this.chain = link;
    link.then(() => {
      if (this.chain === link) this.quiet = true;
    }, () => {});
    // Awaited in done(); a failure before then must not count as unhandled.
  }
}

const dollarTag = '$cl$';

/** A JSON value as an SQL literal of type json. */
export function json(value: unknown): string {
  const text = JSON.stringify(value);
  // Dollar quoting passes the text as it is, so nothing has to be escaped: pg.escapeLiteral
  // walks every character in JavaScript, about 1.5% of the server's CPU under load. The
  // tag must not occur in the text; if a value holds it, escape the usual way.
  return text.includes(dollarTag) ? `${pg.escapeLiteral(text)}::json` : `${dollarTag}${text}${dollarTag}::json`;
}

/**
 * A PostgreSQL array literal of the values, cast to `type`[], for unnest: every string between
 * double quotes with its backslashes and quotes escaped (so braces, commas, spaces and the word
 * NULL stay text), null as NULL, whole numbers and booleans as they are; dollar-quoted as json().
 */
export function arrayLiteral(values: ReadonlyArray<string | number | boolean | null>, type: string): string {
  let text = '{';
  for (let index = 0; index < values.length; index += 1) {
    const value = values[index]!;
    if (index > 0) text += ',';
    if (value === null) text += 'NULL';
    else if (typeof value === 'string') text += `"${value.replace(/[\\"]/g, '\\$&')}"`;
    else if (typeof value === 'number') text += integer(value);
    else if (typeof value === 'boolean') text += value ? 'true' : 'false';
    else throw new Error(`assertion failed: an array literal's values are strings, whole numbers, booleans or null, not ${typeof value}`);
  }
  text += '}';
  return `${text.includes(dollarTag) ? pg.escapeLiteral(text) : `${dollarTag}${text}${dollarTag}`}::${type}[]`;
}

export function integer(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`assertion failed: ${value} is not a safe integer`);
  return String(value);
}

/** Bytes as an SQL expression of type bytea: decode() reads the same whatever the session's standard_conforming_strings ('\x…' does not). */
export function bytes(value: Buffer): string {
  return `decode('${value.toString('hex')}', 'hex')`;
}
