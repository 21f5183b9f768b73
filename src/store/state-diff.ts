/**
 * Compares the ledger's state in two databases row by row and column by column: the
 * database a check reads, and the one a replay of its log made (ledger/replay). Each row is
 * read as JSON (`to_jsonb`), so both sides render every value alike (one PostgreSQL server,
 * one release's schema), and the tables are walked in key order through cursors, a page at a
 * time, so a table of millions of rows is never held whole.
 *
 * What is compared is every table the ledger's commands make (the state tables, the lines a
 * unit leaves in a shipment's manifest, the events' rows, their further subjects and serial
 * lists), every column, except what no replay can
 * make again: a token's secret hash (the secret is drawn at random and shown once) and an
 * event's canonical bytes (each holds a random nonce; the replay compares the rest of each
 * event's bytes as it goes). Not compared, as they are not made by the events alone: the log's
 * tables (their hashes cover the nonces), the idempotency answers, the readers' index (laid out
 * per batch), and the sweep's lapse marks (an index the sweep deletes from as it looks, in
 * ticks that find nothing due and write no event; migration 034). The re-check's other parts
 * hold those to the events.
 */
import pg from 'pg';
import { tableOrder, tables } from './ledger-tables.ts';
import { inTransaction, type Pool, type PoolClient } from './pool.ts';
import type { Violation } from './violations.ts';

export interface ComparedTable {
  table: string;
  /** The columns the rows are matched by: the table's primary key, as the schema makes it (not read from the catalogue, which an owner may have changed). */
  key: readonly string[];
  /** Columns no replay makes again. */
  except: readonly string[];
  /**
   * Columns compared as what they hold, not in which order: SQL over the row `t` that gives the
   * column's JSON in one order. The ledger lists these in the order its batch came by them
   * (licences.ts licenceOrgIds: a licence's parties and its allocations' recipients as the batch
   * loaded them, the parties in the query plan's order and the recipients sorted, or as commands
   * made them in memory, which the row cache keeps), which depends on how the commands were
   * batched and cached, not on the events.
   */
  unordered?: Readonly<Record<string, string>>;
}

/** `array` (SQL of a JSON array) with its elements in one order: by their JSON text, in bytes. */
const sortedJson = (array: string): string => `(SELECT coalesce(jsonb_agg(e ORDER BY e::text COLLATE "C"), '[]'::jsonb) FROM jsonb_array_elements(${array}) e)`;

/** A version's snapshot holds its licence's parties in the order its batch held them (ledger/handlers/licences.ts snapshot). */
const snapshotPartiesUnordered = `CASE WHEN jsonb_typeof(t.snapshot::jsonb -> 'parties') = 'array' THEN jsonb_set(t.snapshot::jsonb, '{parties}', ${sortedJson("t.snapshot::jsonb -> 'parties'")}) ELSE t.snapshot::jsonb END`;

export const comparedTables: readonly ComparedTable[] = [
  ...tableOrder.map((table): ComparedTable => ({
    table,
    key: tables[table].key,
    except: table === 'tokens' ? ['secret_hash'] : [],
    ...(table === 'licence_versions' ? { unordered: { snapshot: snapshotPartiesUnordered } } : {}),
  })),
  // Written by the database as units move (migration 075), so not among the tables a batch writes.
  { table: 'moved_manifest_lines', key: ['shipment_id', 'serial'], except: [] },
  { table: 'events', key: ['seq'], except: ['canonical'], unordered: { org_ids: sortedJson('to_jsonb(t.org_ids)') } },
  { table: 'event_subjects', key: ['subject_id', 'seq'], except: [] },
  { table: 'event_serials', key: ['seq'], except: [] },
];

/** The settings a value's JSON text depends on, for the caller's transaction. */
const renderingSql = "SET LOCAL TimeZone = 'UTC'; SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 1";

/** Rows fetched from each side per round trip. */
const pageRows = 2_000;
/** Differences named per table; the rest are counted. */
export const differencesNamedMax = 20;
/** Longest value shown in a difference. */
const shownValueLengthMax = 160;

interface KeyedRow {
  key: string;
  row: string;
}

/**
 * Every row that differs between `database` (the state checked, read in its caller's
 * transaction) and the database of `replayed` (what the log's events make, read here in a
 * read-only snapshot of its own); each side reads one snapshot throughout.
 */
export async function stateDifferences(database: PoolClient, replayed: Pool, invariant: string): Promise<Violation[]> {
  return inTransaction(replayed, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (other) => {
    // Both sides render values alike whatever their role or database sets: times in UTC (a
    // timestamptz's JSON is in the session's time zone), bytes in hex, floats exactly.
    for (const client of [database, other]) await client.query(renderingSql);
    const found: Violation[] = [];
    for (const compared of comparedTables) found.push(...await tableDifferences(database, other, compared, invariant));
    return found;
  });
}

async function tableDifferences(database: PoolClient, replayed: PoolClient, { table, key, except, unordered }: ComparedTable, invariant: string): Promise<Violation[]> {
  const reordered = Object.entries(unordered ?? {}).map(([column, sql]) => `${pg.escapeLiteral(column)}, ${sql}`);
  const row = `to_jsonb(t) - ARRAY[${except.map((column) => pg.escapeLiteral(column)).join(', ')}]::text[]${reordered.length === 0 ? '' : ` || jsonb_build_object(${reordered.join(', ')})`}`;
  const query = `SELECT x.key, x.row FROM (SELECT concat_ws(E'\\x1f', ${key.map((column) => `t.${quoted(column)}::text`).join(', ')}) AS key,
    (${row})::text AS row FROM ${quoted(table)} t) x ORDER BY x.key COLLATE "C"`;
  const one = await RowCursor.open(database, `state_diff_${table}`, query);
  const other = await RowCursor.open(replayed, `state_diff_${table}`, query);
  const found: Violation[] = [];
  let differing = 0;
  const note = (subjectKey: string, detail: string): void => {
    differing += 1;
    if (differing <= differencesNamedMax) found.push({ invariant, subject: `${table} ${subjectKey.split('\x1f').join(' / ')}`, detail });
  };
  let a = await one.next();
  let b = await other.next();
  while (a !== undefined || b !== undefined) {
    const order = a === undefined ? 1 : b === undefined ? -1 : Buffer.compare(Buffer.from(a.key), Buffer.from(b.key));
    if (order < 0) {
      note(a!.key, `the database holds this row (${shownRow(a!.row)}), which no event of the log makes`);
      a = await one.next();
    } else if (order > 0) {
      note(b!.key, `the log's events make this row (${shownRow(b!.row)}), which the database does not hold`);
      b = await other.next();
    } else {
      if (a!.row !== b!.row) note(a!.key, columnsDiffering(a!.row, b!.row));
      a = await one.next();
      b = await other.next();
    }
  }
  await one.close();
  await other.close();
  if (differing > differencesNamedMax) {
    const more = differing - differencesNamedMax;
    found.push({ invariant, subject: table, detail: `and ${more.toLocaleString('en-US')} more rows of ${table} differ from what the log's events make`, standsFor: more });
  }
  return found;
}

function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Paths named per row that differs; the rest are counted. */
const pathsNamedMax = 10;

/**
 * Which columns differ, each with both values; within a JSON column (a licence version's
 * snapshot, an organisation's identifiers), down to the fields that differ
 * (`snapshot.authorisedUnits`), so a long document is not shown whole to say one number.
 */
function columnsDiffering(databaseRow: string, replayedRow: string): string {
  const paths: string[] = [];
  differingPaths(JSON.parse(databaseRow), JSON.parse(replayedRow), '', paths);
  const named = paths.slice(0, pathsNamedMax);
  const more = paths.length - named.length;
  return `${named.join('; ')}${more === 0 ? '' : `; and ${more} more field${more === 1 ? '' : 's'}`}`;
}

function differingPaths(one: unknown, other: unknown, path: string, found: string[]): void {
  if (JSON.stringify(one) === JSON.stringify(other)) return;
  const bothObjects = isRecord(one) && isRecord(other);
  const bothLists = Array.isArray(one) && Array.isArray(other) && one.length === other.length;
  if (!bothObjects && !bothLists) {
    found.push(`${path}: the database holds ${shownValue(one)}, the log's events make ${shownValue(other)}`);
    return;
  }
  const keys = bothLists ? (one as unknown[]).map((_, index) => String(index)) : [...new Set([...Object.keys(one as object), ...Object.keys(other as object)])].sort();
  for (const key of keys) {
    const inner = path === '' ? key : bothLists ? `${path}[${key}]` : `${path}.${key}`;
    differingPaths((one as Record<string, unknown>)[key], (other as Record<string, unknown>)[key], inner, found);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shownValue(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length <= shownValueLengthMax ? text : `${text.slice(0, shownValueLengthMax)}… (${text.length} characters)`;
}

function shownRow(row: string): string {
  return row.length <= shownValueLengthMax ? row : `${row.slice(0, shownValueLengthMax)}… (${row.length} characters)`;
}

/** A server-side cursor in the client's transaction, read a page at a time. */
class RowCursor {
  private page: KeyedRow[] = [];
  private index = 0;
  private done = false;

  private constructor(private readonly client: PoolClient, private readonly name: string) {}

  static async open(client: PoolClient, name: string, query: string): Promise<RowCursor> {
    await client.query(`DECLARE ${quoted(name)} NO SCROLL CURSOR FOR ${query}`);
    return new RowCursor(client, name);
  }

  async next(): Promise<KeyedRow | undefined> {
    if (this.index === this.page.length) {
      if (this.done) return undefined;
      this.page = (await this.client.query<KeyedRow>(`FETCH ${pageRows} FROM ${quoted(this.name)}`)).rows;
      this.index = 0;
      if (this.page.length < pageRows) this.done = true;
      if (this.page.length === 0) return undefined;
    }
    return this.page[this.index++];
  }

  async close(): Promise<void> {
    await this.client.query(`CLOSE ${quoted(this.name)}`);
  }
}
