/**
 * How a ledger batch reaches PostgreSQL: every table it changed, its events, idempotency
 * answers, log tiles and the new head, then COMMIT, in as few round trips as the data allows.
 * Runs inside the batch's transaction: after beginBatch (store/head-lock.ts), or
 * opening it with openAtHeadSql in the same round trip. This module orders the steps and
 * writes the tables'; batch-event-writes.ts and batch-tile-writes.ts make the events' and the
 * tiles', and batch-steps.ts sends them.
 */
import pg from 'pg';
import { assert } from '../core/errors.ts';
import type { CopyColumn, CopyValue } from './copy-binary.ts';
import type { PoolClient } from './pool.ts';
import { tableOrder, tables, type TableName, type TableRows } from './ledger-tables.ts';
import { assertLogHead, type LogHead, type StoredHead } from './head-lock.ts';
import { arrayLiteral, bulkRowsMin, bytes, copy, inline, integer, json, StepSender, type Step } from './batch-steps.ts';
import { eventSteps, readerStep } from './batch-event-writes.ts';
import { tileStep } from './batch-tile-writes.ts';
import type { TileRow } from './tlog-tables.ts';
import type { Custody, ShipmentRow, UnitRow } from '../ledger/rows.ts';

/**
 * The shipments columns' types, for their arrays. Shipments are the rows every booking makes,
 * 64 a batch, and go in as one array a column through unnest: PostgreSQL read 64 rows from JSON
 * (json_populate_recordset, each row's names matched to columns) in 0.75 ms and from arrays in
 * 0.25 ms, and the INSERT with its triggers took 2.9-3.0 ms against 3.4-3.5 (EXPLAIN ANALYZE,
 * medians of 60, s38); the text is a third as long. The other tables' rows are few a batch,
 * and some have array columns, which unnest cannot take as a column of arrays, so they stay JSON.
 * store/ledger-tables.test.ts holds these to the table's own types.
 */
export const shipmentColumnTypes: { readonly [C in keyof ShipmentRow]: string } = {
  id: 'text', exporter_org_id: 'text', recipient_org_id: 'text', product_id: 'text', origin: 'character(2)', destination: 'character(2)',
  export_allocation_id: 'text', import_allocation_id: 'text', units: 'integer', status: 'text', booked_at: 'timestamp with time zone',
  deadline: 'timestamp with time zone', reference: 'text', serial_count: 'integer', demo: 'boolean', created_seq: 'bigint', updated_seq: 'bigint',
};

/** Where a table's inline rows are read from: arrays for shipments (shipmentColumnTypes), JSON for the rest. */
function rowsSource(name: TableName, rows: ReadonlyArray<object>): string {
  if (name !== 'shipments') return `json_populate_recordset(NULL::${name}, ${json(rows)})`;
  const columns = tables.shipments.columns as ReadonlyArray<keyof ShipmentRow>;
  const shipments = rows as ReadonlyArray<ShipmentRow>;
  return `unnest(${columns.map((column) => arrayLiteral(shipments.map((row) => row[column]), shipmentColumnTypes[column])).join(', ')}) AS r(${columns.join(', ')})`;
}

/** Per table: a plain INSERT for rows the batch made, and an upsert for rows that exist, each before and after its rows' source. */
const writeSql = new Map<TableName, { insert: string; conflict: string }>(
  tableOrder.map((name) => {
    const shape = tables[name];
    const columns = shape.columns.join(', ');
    const updates = (shape.changing ?? shape.columns.filter((column) => !shape.key.includes(column))).map((column) => `${column} = EXCLUDED.${column}`);
    const conflict = shape.insertOnly || updates.length === 0 ? '' : ` ON CONFLICT (${shape.key.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
    return [name, { insert: `INSERT INTO ${name} (${columns}) SELECT ${columns} FROM `, conflict }];
  }),
);

/** Bulk rows the batch made: COPY (store/copy-binary.ts). */
const bulkInserts: Partial<{ [T in TableName]: (rows: TableRows[T]) => Step }> = {
  units: (rows) => {
    // gpu_uuid_shipped travels only when a unit has it: one booked and shipped in this batch.
    // A manifest's new units are all without it, which the column's default says (037).
    const shipped = rows.some((unit) => unit.gpu_uuid_shipped);
    return copy('units', shipped ? [...unitColumns, gpuUuidShippedColumn] : unitColumns, rows, shipped ? unitValuesShipped : unitValues, 80 * rows.length);
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
  /**
   * The head's seal (ledger/log/head-seal.ts), written as given: a new head's from a process
   * that holds the log's key, null from one that does not; for a head that stays as it was
   * (a batch that appends nothing), the seal it had, which the caller passes on.
   */
  seal: Buffer | null;
}

export interface BatchWrites {
  /** Rows the batch made, per table: no row has their key yet (plain INSERT or COPY). */
  inserted: Partial<TableRows>;
  /** Rows that exist, changed by the batch, per table (upserts). */
  updated: Partial<TableRows>;
  /** Releases before the units rows, custody steps after them (rowSteps says why). */
  unitsChanges: UnitsChange[];
  /**
   * Units as they left a shipment this batch had listed them in, in order (ledger/state.ts
   * unitStages): written before the units' rows, so that the database sees each move and keeps
   * the line it leaves in that shipment (migration 075).
   */
  unitStages: UnitRow[];
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
 * of their own, by COPY or as parameters. Steps keep their order: parents before children
 * (so shipments that ended before the units listed again), released claims before the units,
 * custody changes after the rows, and the tiles, the events' readers, head update and COMMIT last.
 *
 * `log` may be a function: it is called once the row steps are on their way, so a big
 * batch's leaves are hashed while PostgreSQL writes its events (the tiles and the new root
 * are needed only at the end).
 *
 * `opening`: statements that go first, in the same round trip: a batch sent ahead opens its
 * transaction there (store/head-lock.ts openAtHeadSql), so a small batch is one round trip
 * in all. A big one's opening goes alone, at once, and runs while its rows are made.
 *
 * `commitQueued` is called just before COMMIT joins the steps. A failure before it (the log's
 * append, a bug in making the steps) can have committed nothing, whatever it is, and the
 * caller may run the batch again; only after it may the outcome be unknown.
 *
 * Returns the head it committed.
 *
 * Crash note: a failure in any statement aborts the transaction (the caller rolls back);
 * a connection lost during the final text leaves the outcome unknown until the next read.
 */
export async function writeBatchAndCommit(client: PoolClient, writes: BatchWrites, log: LogWrite | (() => Promise<LogWrite>), opening?: string, commitQueued?: () => void): Promise<StoredHead> {
  const sender = new StepSender(client);
  let written: LogWrite;
  try {
    if (opening !== undefined) {
      sender.add(inline(opening));
      // A big batch takes its lock while its rows are made: its events' COPY waits for the
      // opening's answer anyway. A small batch keeps its one round trip.
      if (writes.events.length >= bulkRowsMin) sender.flush();
    }
    for (const step of rowSteps(writes)) sender.add(step);
    // What is queued above travels and runs in PostgreSQL while the log hashes its leaves.
    written = typeof log === 'function' ? await log() : log;
    assertLogHead(written.head);
    if (written.tiles.length > 0) sender.add(tileStep(written.tiles));
    // After the tiles, whose big rows go as a statement of their own: the readers travel with the head and COMMIT.
    const readers = readerStep(writes.events);
    if (readers !== undefined) sender.add(readers);
  } catch (error) {
    // The caller rolls back when this throws, and some steps may be on their way already
    // (a big batch's opening, its events' COPY): nothing queued may reach PostgreSQL after
    // the ROLLBACK, where it would run outside the transaction and stay written.
    await sender.abandon();
    throw error;
  }
  // The head's time (log_head.at) is not written here: the trigger of migration 031 sets it
  // to the batch's newest event's and refuses the batch if an event is dated before the head's.
  const seal = written.seal === null ? 'NULL' : bytes(written.seal);
  sender.add(inline(`UPDATE log_head SET size = ${integer(written.head.size)}, root = ${bytes(written.head.root)}, seal = ${seal} WHERE id = 1`));
  commitQueued?.();
  sender.add(inline('COMMIT'));
  await sender.done();
  return { ...written.head, seal: written.seal };
}

/** The batch's row changes, events and idempotency answers, in the order they must run. */
function rowSteps(writes: BatchWrites): Step[] {
  const steps: Step[] = [];
  if (writes.replacedPartiesOf.length > 0) {
    steps.push(inline(`DELETE FROM licence_parties WHERE licence_id IN (SELECT json_array_elements_text(${json(writes.replacedPartiesOf)}))`));
  }
  for (const name of tableOrder) {
    // Claims released before the batch's units are written, right after the shipments that
    // ended them (the trigger of 033 reads their status): a GPU UUID let go may be taken by
    // a unit this batch lists.
    if (name === 'units') {
      steps.push(...writes.unitsChanges.filter((change) => change.kind === 'release').map((change) => inline(unitsChangeSql(change))));
      for (const round of stageRounds(writes.unitStages)) steps.push(rowsStep('units', round, true));
    }
    for (const [rows, upsert] of [[writes.inserted[name], false], [writes.updated[name], true]] as const) {
      if (rows !== undefined && rows.length > 0) steps.push(rowsStep(name, rows, upsert));
    }
  }
  for (const change of writes.unitsChanges) if (change.kind === 'custody') steps.push(inline(unitsChangeSql(change)));
  steps.push(...eventSteps(writes.events));
  if (writes.idempotency.length > 0) steps.push(idempotencyStep(writes.idempotency));
  return steps;
}

/**
 * The units' stages as statements can take them: one upsert touches a row once, so a unit
 * staged twice (listed in three shipments of the batch) goes in a second round, after the first.
 */
function stageRounds(stages: readonly UnitRow[]): UnitRow[][] {
  const rounds: UnitRow[][] = [];
  const seen = new Map<string, number>();
  for (const unit of stages) {
    const round = seen.get(unit.serial) ?? 0;
    seen.set(unit.serial, round + 1);
    (rounds[round] ??= []).push(unit);
  }
  return rounds;
}

/**
 * One statement writing rows of a table: new rows by plain INSERT, or rows that may exist by
 * upsert; from bulkRowsMin rows by the table's bulk statement (COPY, unnest) where it has one,
 * inline below it.
 */
function rowsStep<T extends TableName>(name: T, rows: TableRows[T], upsert: boolean): Step {
  const bulk = (upsert ? bulkUpserts : bulkInserts)[name];
  if (bulk !== undefined && rows.length >= bulkRowsMin) return bulk(rows);
  const { insert, conflict } = writeSql.get(name)!;
  return inline(`${insert}${rowsSource(name, rows)}${upsert ? conflict : ''}`);
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

const unitColumns: CopyColumn[] = [
  { name: 'serial', type: 'text' }, { name: 'gpu_uuid', type: 'text' }, { name: 'product_id', type: 'text' }, { name: 'recipient_org_id', type: 'text' },
  { name: 'custody', type: 'text' }, { name: 'shipment_id', type: 'text' }, { name: 'site_id', type: 'text' }, { name: 'updated_seq', type: 'int8' },
  { name: 'ever_shipped', type: 'bool' },
];
const gpuUuidShippedColumn: CopyColumn = { name: 'gpu_uuid_shipped', type: 'bool' };
/**
 * A unit's values in unitColumns' order, and with gpuUuidShippedColumn after them: written out,
 * not looked up by column name, which cost a closure call a value (900,000 for a manifest).
 * Held to the columns' names once, when the module loads.
 */
const unitValues = (unit: UnitRow): CopyValue[] => [unit.serial, unit.gpu_uuid, unit.product_id, unit.recipient_org_id, unit.custody, unit.shipment_id, unit.site_id, unit.updated_seq, unit.ever_shipped];
const unitValuesShipped = (unit: UnitRow): CopyValue[] => [...unitValues(unit), unit.gpu_uuid_shipped];
function assertUnitValuesFollowColumns(): void {
  const columns = [...unitColumns, gpuUuidShippedColumn].map((column) => column.name);
  const named = unitValuesShipped(Object.fromEntries(columns.map((name) => [name, name])) as unknown as UnitRow);
  assert(named.join() === columns.join(), `unitValues gives ${named.join()}, not the columns ${columns.join()}`);
}
assertUnitValuesFollowColumns();

function idempotencyStep(entries: IdempotencyWrite[]): Step {
  const rows = entries.map((entry) => ({ ...entry, request_hash: entry.request_hash.toString('hex') }));
  return inline(`INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at)
    SELECT scope, key, decode(request_hash, 'hex'), status, response, created_at
    FROM json_to_recordset(${json(rows)}) AS i(scope text, key text, request_hash text, status int, response json, created_at timestamptz)`);
}

