/**
 * How a ledger batch reaches PostgreSQL: every table it changed, its events, idempotency
 * answers, log tiles and the new head, then COMMIT, in as few round trips as the data allows.
 * Runs inside the batch's transaction: after beginBatch (store/ledger-tables.ts), or
 * opening it with openAtHeadSql in the same round trip.
 */
import pg from 'pg';
import { copyIn, copyStatement, encodeCopyBinary, type CopyColumn, type CopyValue } from './copy-binary.ts';
import { prepared, type PoolClient } from './pool.ts';
import { readerSetsOf, type ReaderSetRow } from './reader-sets.ts';
import { assertLogHead, tableOrder, tables, type LogHead, type TableName, type TableRows } from './ledger-tables.ts';
import type { TileRow } from './tlog-tables.ts';
import type { Custody, UnitRow } from '../ledger/rows.ts';

/** Per table: a plain INSERT for rows the batch made, and an upsert for rows that exist. */
const writeSql = new Map<TableName, { insert: string; upsert: string }>(
  tableOrder.map((name) => {
    const shape = tables[name];
    const columns = shape.columns.join(', ');
    const insert = `INSERT INTO ${name} (${columns}) SELECT ${columns} FROM json_populate_recordset(NULL::${name}, $1::json)`;
    const updates = shape.columns.filter((column) => !shape.key.includes(column)).map((column) => `${column} = EXCLUDED.${column}`);
    const conflict = shape.insertOnly || updates.length === 0 ? '' : ` ON CONFLICT (${shape.key.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
    return [name, { insert, upsert: `${insert}${conflict}` }];
  }),
);

/**
 * From this many rows a table's batch rows (events, their readers, manifest rows, new
 * units) travel in statements of their own: scalar arrays through unnest cost about a third
 * less than JSON for a manifest (bench/experiments/manifest-sql.ts), and COPY less again
 * (store/copy-binary.ts). Below it they stay in the batch's one round trip: a ledger batch
 * of about 64 bookings whose events went by COPY (from 16 events) ran at 5,100–5,400
 * bookings/s against 5,900–6,200 (`npm run bench -- ledger --bookings 40000`, two pairs).
 */
export const bulkRowsMin = 256;

/**
 * From this many bytes of tile hashes (two full tiles) a batch sends them as one binary
 * parameter, at the cost of a round trip of its own: as hex inside the batch's text, the
 * tiles of a 2,048-leaf batch (8 full tiles and two partial ones, 82 KiB) took 6.5 ms to
 * write, as binary 1.3 ms (bench/experiments/tile-writes.ts): about 60 µs a KiB, so at
 * 16 KiB binary saves about 1 ms against a local round trip of 0.1–0.3 ms. A small
 * batch's partial tiles stay in its one round trip.
 */
const binaryTileBytesMin = 16 * 1024;

/** Bulk rows the batch made: COPY (store/copy-binary.ts). */
const bulkInserts: Partial<{ [T in TableName]: (rows: TableRows[T]) => Step }> = {
  shipment_serials: (rows) => copy('shipment_serials', serialColumns, rows.map((row) => [row.shipment_id, row.serial, row.live]), 40 * rows.length),
  units: (rows) => {
    // gpu_uuid_shipped travels only when a unit has it: one booked and shipped in this batch.
    // A manifest's new units are all without it, which the column's default says (037).
    const columns = rows.some((unit) => unit.gpu_uuid_shipped) ? [...unitColumns, gpuUuidShippedColumn] : unitColumns;
    return copy('units', columns, rows.map((unit) => columns.map((column) => unit[column.name as keyof UnitRow])), 80 * rows.length);
  },
};

/** Bulk rows that exist (units returned and listed again): scalar arrays through unnest. */
const bulkUpserts: Partial<{ [T in TableName]: (rows: TableRows[T]) => Step }> = {
  units: (rows) => ({
    text: `INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq, ever_shipped, gpu_uuid_shipped)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::boolean[], $10::boolean[])
       ON CONFLICT (serial) DO UPDATE SET gpu_uuid = EXCLUDED.gpu_uuid, product_id = EXCLUDED.product_id, recipient_org_id = EXCLUDED.recipient_org_id,
         custody = EXCLUDED.custody, shipment_id = EXCLUDED.shipment_id, site_id = EXCLUDED.site_id, updated_seq = EXCLUDED.updated_seq, ever_shipped = EXCLUDED.ever_shipped,
         gpu_uuid_shipped = EXCLUDED.gpu_uuid_shipped`,
    values: [
      rows.map((row) => row.serial), rows.map((row) => row.gpu_uuid), rows.map((row) => row.product_id), rows.map((row) => row.recipient_org_id),
      rows.map((row) => row.custody), rows.map((row) => row.shipment_id), rows.map((row) => row.site_id), rows.map((row) => row.updated_seq),
      rows.map((row) => row.ever_shipped), rows.map((row) => row.gpu_uuid_shipped),
    ],
  }),
};

export interface EventWrite {
  seq: number;
  at: string;
  kind: string;
  actor: string;
  subject_id: string | null;
  org_ids: string[];
  canonical: Buffer;
  /** The lines of the serial list whose digest the event records (ledger/events.ts recordSerials). */
  serial_lines?: string[] | null;
  /** The records the event is about besides its subject (ledger/handler.ts EventPart.moreSubjectIds): event_subjects rows. */
  more_subject_ids?: string[];
}

export interface IdempotencyWrite {
  scope: string;
  key: string;
  request_hash: Buffer;
  status: number;
  response: unknown;
  created_at: string;
}

/**
 * Set-based changes to the units of a shipment, which may be 100,000 rows nobody loaded: a
 * step of their custody (shipping also marks them shipped, and their GPU UUIDs as shipped
 * with them), or the release of what a booking that ended unshipped claimed (GPU UUIDs that
 * never shipped are let go, migrations 033 and 037). The batch's loaded units already carry
 * the same change.
 */
export type UnitsChange =
  | { kind: 'custody'; shipment_id: string; from: Custody; to: Custody; seq: number; markShipped: boolean }
  | { kind: 'release'; shipment_id: string; seq: number };

/** The log's part of a batch: the tiles its leaves made and the head after it. */
export interface LogWrite {
  tiles: TileRow[];
  head: LogHead;
}

export interface BatchWrites {
  /** Rows the batch made, per table: no row has their key yet (plain INSERT or COPY). */
  inserted: Partial<TableRows>;
  /** Rows that exist, changed by the batch, per table (upserts). */
  updated: Partial<TableRows>;
  /** Shipments that ended (delivered, cancelled, expired): their manifest rows stop being live. */
  endedShipments: string[];
  /** Releases before the units rows, custody steps after them (rowSteps says why). */
  unitsChanges: UnitsChange[];
  /** Licences whose named parties are rewritten (amendments): old rows go first. */
  replacedPartiesOf: string[];
  events: EventWrite[];
  idempotency: IdempotencyWrite[];
}

/**
 * Writes a batch and commits it, in as few round trips as the data allows: every step
 * whose data is small goes into one multi-statement text, with the values as escaped
 * literals (JSON for rows, dollar-quoted; hex for bytes). Only bulk rows (from
 * bulkRowsMin: big batches' events, manifests of thousands of serials) travel in statements
 * of their own, by COPY or as parameters. Steps keep their order: parents before children,
 * freed serials and released claims before new manifest rows and units, custody changes
 * after the rows, and the tiles, head update and COMMIT last.
 *
 * `log` may be a function: it is called once the row steps are on their way, so a big
 * batch's leaves are hashed while PostgreSQL writes its events (the tiles and the new root
 * are needed only at the end).
 *
 * `opening`: statements that go first, in the same round trip: a batch sent ahead opens its
 * transaction there (store/ledger-tables.ts openAtHeadSql), so it is one round trip in all.
 *
 * Returns the head it committed.
 *
 * Crash note: a failure in any statement aborts the transaction (the caller rolls back);
 * a connection lost during the final text leaves the outcome unknown until the next read.
 */
export async function writeBatchAndCommit(client: PoolClient, writes: BatchWrites, log: LogWrite | (() => Promise<LogWrite>), opening?: string): Promise<LogHead> {
  const sender = new StepSender(client);
  if (opening !== undefined) sender.add(inline(opening));
  for (const step of rowSteps(writes)) sender.add(step);
  let written: LogWrite;
  try {
    // What is queued above travels and runs in PostgreSQL while the log hashes its leaves.
    written = typeof log === 'function' ? await log() : log;
    const { head } = written;
    assertLogHead(head);
  } catch (error) {
    // The caller rolls back when this throws: nothing queued may reach PostgreSQL after that,
    // where it would run outside the transaction and stay written.
    await sender.abandon();
    throw error;
  }
  if (written.tiles.length > 0) sender.add(tileStep(written.tiles));
  // The head's time (log_head.at) is not written here: the trigger of migration 031 sets it
  // to the batch's newest event's and refuses the batch if an event is dated before the head's.
  sender.add(inline(`UPDATE log_head SET size = ${integer(written.head.size)}, root = ${bytes(written.head.root)} WHERE id = 1`));
  sender.add(inline('COMMIT'));
  await sender.done();
  return written.head;
}

/** The batch's row changes, events and idempotency answers, in the order they must run. */
function rowSteps(writes: BatchWrites): Step[] {
  const steps: Step[] = [];
  if (writes.replacedPartiesOf.length > 0) {
    steps.push(inline(`DELETE FROM licence_parties WHERE licence_id IN (SELECT json_array_elements_text(${json(writes.replacedPartiesOf)}))`));
  }
  // Before new manifest rows go in: a serial freed in this batch may be listed again.
  if (writes.endedShipments.length > 0) {
    steps.push(inline(`UPDATE shipment_serials SET live = false WHERE live AND shipment_id IN (SELECT json_array_elements_text(${json(writes.endedShipments)}))`));
  }
  for (const name of tableOrder) {
    // Claims released before the batch's units are written, right after the shipments that
    // ended them (the trigger of 033 reads their status): a GPU UUID let go may be taken by
    // a unit this batch lists.
    if (name === 'shipment_serials') steps.push(...writes.unitsChanges.filter((change) => change.kind === 'release').map((change) => inline(unitsChangeSql(change))));
    for (const [rows, bulk, sql] of [[writes.inserted[name], bulkInserts[name], writeSql.get(name)!.insert], [writes.updated[name], bulkUpserts[name], writeSql.get(name)!.upsert]] as const) {
      if (rows === undefined || rows.length === 0) continue;
      // The rows go in through a function: a replacement string would read "$$", "$&" and
      // "$'" inside the row text as patterns (a name holding "$$" was stored with one "$").
      steps.push(bulk && rows.length >= bulkRowsMin ? bulk(rows as never) : inline(sql.replace('$1', () => json(rows))));
    }
  }
  for (const change of writes.unitsChanges) if (change.kind === 'custody') steps.push(inline(unitsChangeSql(change)));
  steps.push(...eventSteps(writes.events));
  if (writes.idempotency.length > 0) steps.push(idempotencyStep(writes.idempotency));
  return steps;
}

function unitsChangeSql(change: UnitsChange): string {
  const shipment = pg.escapeLiteral(change.shipment_id);
  if (change.kind === 'release') {
    return `UPDATE units SET gpu_uuid = NULL, updated_seq = ${integer(change.seq)} WHERE shipment_id = ${shipment} AND NOT gpu_uuid_shipped AND gpu_uuid IS NOT NULL`;
  }
  // A unit with a GPU UUID ships with it: that GPU UUID is the unit's from now on (037).
  const shipped = change.markShipped ? ', ever_shipped = true, gpu_uuid_shipped = gpu_uuid IS NOT NULL' : '';
  return `UPDATE units SET custody = ${pg.escapeLiteral(change.to)}, updated_seq = ${integer(change.seq)}${shipped} WHERE shipment_id = ${shipment} AND custody = ${pg.escapeLiteral(change.from)}`;
}

function eventSteps(events: EventWrite[]): Step[] {
  if (events.length === 0) return [];
  const readers = readerSetsOf(events);
  // Thousands of events as one JSON literal cost PostgreSQL far more than typed arrays do
  // (bench/tlog-append.ts: 150 µs against 15 µs an event): big batches send parameters.
  if (events.length >= bulkRowsMin) return [...bulkEventSteps(events, readers), ...serialListSteps(events), ...moreSubjectSteps(events)];
  const rows = events.map(({ serial_lines: _lines, more_subject_ids: _subjects, ...event }) => ({ ...event, canonical: event.canonical.toString('hex') }));
  return [
    inline(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
      SELECT seq, at, kind, actor, subject_id, org_ids, decode(canonical, 'hex')
      FROM json_to_recordset(${json(rows)}) AS e(seq bigint, at timestamptz, kind text, actor text, subject_id text, org_ids text[], canonical text)`),
    ...(readers.length === 0 ? [] : [inline(`INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets)
      SELECT org_id, first_seq, last_seq, offsets FROM json_to_recordset(${json(readers)}) AS r(org_id text, first_seq bigint, last_seq bigint, offsets int2[])`)]),
    ...serialListSteps(events),
    ...moreSubjectSteps(events),
  ];
}

const moreSubjectColumns: CopyColumn[] = [{ name: 'subject_id', type: 'text' }, { name: 'seq', type: 'int8' }];

/**
 * The further subjects of the batch's events (event_subjects, migration 038), in the batch's
 * transaction with the events, so a history never lacks an event that committed. Only unit
 * events have any: a batch of bookings sends no statement for them.
 */
function moreSubjectSteps(events: EventWrite[]): Step[] {
  const rows = events.flatMap((event) => (event.more_subject_ids ?? []).map((subjectId) => ({ subject_id: subjectId, seq: event.seq })));
  if (rows.length === 0) return [];
  if (rows.length >= bulkRowsMin) return [copy('event_subjects', moreSubjectColumns, rows.map((row) => [row.subject_id, row.seq]), 48 * rows.length)];
  return [inline(`INSERT INTO event_subjects (subject_id, seq) SELECT subject_id, seq FROM json_to_recordset(${json(rows)}) AS s(subject_id text, seq bigint)`)];
}

const serialListColumns: CopyColumn[] = [{ name: 'seq', type: 'int8' }, { name: 'lines', type: 'text[]' }];

/** The serial lists of events that record one by digest: a manifest's 100,000 lines by COPY. */
function serialListSteps(events: EventWrite[]): Step[] {
  const listed = events.filter((event) => event.serial_lines !== undefined && event.serial_lines !== null);
  if (listed.length === 0) return [];
  const lines = listed.reduce((sum, event) => sum + event.serial_lines!.length, 0);
  if (lines >= bulkRowsMin) {
    const bytes = listed.reduce((sum, event) => sum + event.serial_lines!.reduce((length, line) => length + line.length + 4, 32), 0);
    return [copy('event_serials', serialListColumns, listed.map((event) => [event.seq, event.serial_lines!]), bytes)];
  }
  const rows = listed.map((event) => ({ seq: event.seq, lines: event.serial_lines }));
  return [inline(`INSERT INTO event_serials (seq, lines) SELECT seq, lines FROM json_to_recordset(${json(rows)}) AS s(seq bigint, lines text[])`)];
}

const serialColumns: CopyColumn[] = [{ name: 'shipment_id', type: 'text' }, { name: 'serial', type: 'text' }, { name: 'live', type: 'bool' }];
const unitColumns: CopyColumn[] = [
  { name: 'serial', type: 'text' }, { name: 'gpu_uuid', type: 'text' }, { name: 'product_id', type: 'text' }, { name: 'recipient_org_id', type: 'text' },
  { name: 'custody', type: 'text' }, { name: 'shipment_id', type: 'text' }, { name: 'site_id', type: 'text' }, { name: 'updated_seq', type: 'int8' },
  { name: 'ever_shipped', type: 'bool' },
];
const gpuUuidShippedColumn: CopyColumn = { name: 'gpu_uuid_shipped', type: 'bool' };
const eventColumns: CopyColumn[] = [
  { name: 'seq', type: 'int8' }, { name: 'at', type: 'timestamptz' }, { name: 'kind', type: 'text' }, { name: 'actor', type: 'text' },
  { name: 'subject_id', type: 'text' }, { name: 'org_ids', type: 'text[]' }, { name: 'canonical', type: 'bytea' },
];
const readerColumns: CopyColumn[] = [{ name: 'org_id', type: 'text' }, { name: 'first_seq', type: 'int8' }, { name: 'last_seq', type: 'int8' }, { name: 'offsets', type: 'int2[]' }];

/** Many events go by COPY (store/copy-binary.ts): for 2,048 of them, p50 31 ms against 50 ms with unnest. */
function bulkEventSteps(events: EventWrite[], readers: ReaderSetRow[]): Step[] {
  const bytes = events.reduce((sum, event) => sum + event.canonical.length + 120, 0);
  return [
    copy('events', eventColumns, events.map((event) => [event.seq, event.at, event.kind, event.actor, event.subject_id, event.org_ids, event.canonical]), bytes),
    ...(readers.length === 0 ? [] : [copy('event_reader_sets', readerColumns, readers.map((set) => [set.org_id, set.first_seq, set.last_seq, set.offsets]), 64 * readers.length + 6 * events.length)]),
  ];
}

function idempotencyStep(entries: IdempotencyWrite[]): Step {
  const rows = entries.map((entry) => ({ ...entry, request_hash: entry.request_hash.toString('hex') }));
  return inline(`INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at)
    SELECT scope, key, decode(request_hash, 'hex'), status, response, created_at
    FROM json_to_recordset(${json(rows)}) AS i(scope text, key text, request_hash text, status int, response json, created_at timestamptz)`);
}

/**
 * A tile the batch widened is rewritten whole. The trigger of migration 018 refuses a
 * rewrite that would narrow it or change a hash it holds, so a row changed behind our back
 * fails the batch instead of being kept (or silently skipped, as a conditional upsert did).
 */
const tileUpsert = 'ON CONFLICT (level, index) DO UPDATE SET width = EXCLUDED.width, hashes = EXCLUDED.hashes';

function tileStep(tiles: TileRow[]): Step {
  if (tiles.reduce((bytes, tile) => bytes + tile.hashes.length, 0) >= binaryTileBytesMin) {
    const hashes = packed(tiles.map((tile) => tile.hashes));
    return {
      text: `INSERT INTO tlog_tiles (level, index, width, hashes)
        SELECT t.level, t.index, t.width, substring($4::bytea FROM t.start FOR t.width * 32)
        FROM unnest($1::smallint[], $2::bigint[], $3::smallint[], $5::int[]) AS t(level, index, width, start) ${tileUpsert}`,
      values: [tiles.map((tile) => tile.level), tiles.map((tile) => tile.index), tiles.map((tile) => tile.width), hashes.bytes, hashes.starts],
    };
  }
  const rows = tiles.map((tile) => ({ level: tile.level, index: tile.index, width: tile.width, hashes: tile.hashes.toString('hex') }));
  return inline(`INSERT INTO tlog_tiles (level, index, width, hashes)
    SELECT level, index, width, decode(hashes, 'hex') FROM json_to_recordset(${json(rows)}) AS t(level smallint, index bigint, width smallint, hashes text) ${tileUpsert}`);
}

/**
 * Byte strings as one binary parameter: node-postgres sends a Buffer as binary, but a
 * Buffer[] as hex text. SQL cuts each one out with substring(bytes FROM start FOR length);
 * substring counts from 1.
 */
export function packed(parts: Buffer[]): { bytes: Buffer; starts: number[]; lengths: number[] } {
  const starts: number[] = [];
  const lengths: number[] = [];
  let at = 1;
  for (const part of parts) {
    starts.push(at);
    lengths.push(part.length);
    at += part.length;
  }
  return { bytes: Buffer.concat(parts), starts, lengths };
}

/**
 * One statement: inline text (joined with its neighbours into one round trip),
 * parameterised, or a COPY with its encoded rows.
 */
interface Step {
  text: string;
  values?: unknown[];
  copyData?: Buffer;
}

const inline = (text: string): Step => ({ text });
const copy = (table: string, columns: readonly CopyColumn[], rows: ReadonlyArray<readonly CopyValue[]>, sizeHint: number): Step => ({
  text: copyStatement(table, columns), copyData: encodeCopyBinary(columns, rows, sizeHint),
});

/**
 * Sends steps in order without making the caller wait for each: inline texts are joined
 * into one round trip, and every other step (COPY, parameters) goes on a chain that sends
 * it when the one before has answered, so PostgreSQL works through them while the caller
 * goes on (the log hashing its leaves). node-postgres would queue a busy client's queries
 * itself, but that is deprecated (gone in pg 9). After a failure nothing more is sent;
 * done() sends what is left and throws the first failure. abandon() sends nothing more and
 * returns once the step in flight has answered: then the client is free for ROLLBACK.
 */
class StepSender {
  private texts: string[] = [];
  private chain: Promise<void> = Promise.resolve();
  private abandoned = false;

  constructor(private readonly client: PoolClient) {}

  add(step: Step): void {
    if (step.values === undefined && step.copyData === undefined) {
      this.texts.push(step.text);
      return;
    }
    this.sendTexts();
    const { text, values, copyData } = step;
    this.send(copyData !== undefined ? () => copyIn(this.client, text, copyData) : () => this.client.query(prepared(text, values!)));
  }

  async done(): Promise<void> {
    this.sendTexts();
    await this.chain;
  }

  async abandon(): Promise<void> {
    this.abandoned = true;
    await this.chain.catch(() => {});
  }

  private sendTexts(): void {
    if (this.texts.length === 0) return;
    const text = this.texts.join(';\n');
    this.texts = [];
    this.send(() => this.client.query(text));
  }

  private send(step: () => Promise<unknown>): void {
    this.chain = this.chain.then(async () => {
      if (!this.abandoned) await step();
    });
    // Awaited in done(); a failure before then must not count as unhandled.
    this.chain.catch(() => {});
  }
}

const dollarTag = '$cl$';

/** A JSON value as an SQL literal of type json. */
function json(value: unknown): string {
  const text = JSON.stringify(value);
  // Dollar quoting passes the text as it is, so nothing has to be escaped: pg.escapeLiteral
  // walks every character in JavaScript, about 1.5% of the server's CPU under load. The
  // tag must not occur in the text; if a value holds it, escape the usual way.
  return text.includes(dollarTag) ? `${pg.escapeLiteral(text)}::json` : `${dollarTag}${text}${dollarTag}::json`;
}

function integer(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`assertion failed: ${value} is not a safe integer`);
  return String(value);
}

/** Bytes as an SQL expression of type bytea: decode() reads the same whatever the session's standard_conforming_strings ('\x…' does not). */
function bytes(value: Buffer): string {
  return `decode('${value.toString('hex')}', 'hex')`;
}
