/**
 * Bulk rows into PostgreSQL with COPY … FROM STDIN in the binary format.
 *
 * Why: the big writes of a batch (thousands of events, a manifest's serials and units)
 * cost PostgreSQL far less this way than as INSERT … SELECT FROM unnest(arrays).
 * - COPY inserts rows in groups, with fewer WAL records, and parses no array text.
 * - Binary values need no parsing at all. Text COPY would send bytea as hex, which
 *   PostgreSQL parses back byte by byte.
 * Measured with 2,048 events of 300 bytes and their readers, with COMMIT, on one durable
 * PostgreSQL (bench/experiments/event-writes.ts): p50 31 ms, against 50 ms with the bytes
 * as a bytea[] and 37.5 ms with them as one binary parameter cut up in SQL.
 *
 * Reads go the other way for the same reason: a million events for the log's audit come
 * back as their bytes, where a SELECT sends each as hex text that node-postgres parses back
 * (readValuesOfOneColumn, below).
 *
 * COPY checks every constraint and fires every trigger, as INSERT does, and runs inside the
 * batch's transaction, so what the database enforces is unchanged. It cannot upsert, so it
 * serves only tables whose batch rows are all new.
 *
 * The format: https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
 * Values are written by hand for the few column types we send. pg-copy-streams carries the
 * bytes; pg-copy-streams-binary would encode them, but it brings six dependencies of its
 * own for what is a hundred lines here.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type pg from 'pg';
import { assert } from '../core/errors.ts';

export type CopyType = 'int2' | 'int4' | 'int8' | 'bool' | 'text' | 'text[]' | 'int2[]' | 'bytea' | 'timestamptz';
export type CopyValue = number | string | boolean | Buffer | readonly string[] | readonly number[] | null;

export interface CopyColumn {
  name: string;
  type: CopyType;
}

/** Strings up to this length are tried as ASCII, byte by byte (CopyWriter#ascii). */
const asciiCopyMax = 64;
const signature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const textOid = 25;
const int2Oid = 21;
/** PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC. */
const postgresEpochMs = Date.UTC(2000, 0, 1);

/** A growing buffer with the big-endian writes the format needs. */
class CopyWriter {
  private buffer: Buffer;
  private at = 0;

  constructor(sizeHint: number) {
    this.buffer = Buffer.allocUnsafe(Math.max(1024, sizeHint));
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, this.at + bytes));
    this.buffer.copy(grown, 0, 0, this.at);
    this.buffer = grown;
  }

  byte(value: number): void {
    this.room(1);
    this.at = this.buffer.writeUInt8(value, this.at);
  }

  int16(value: number): void {
    this.room(2);
    this.at = this.buffer.writeInt16BE(value, this.at);
  }

  int32(value: number): void {
    this.room(4);
    this.at = this.buffer.writeInt32BE(value, this.at);
  }

  /** A safe integer as int64, without a BigInt: the high and the low 32 bits. */
  int64(value: number): void {
    this.room(8);
    const high = Math.floor(value / 0x1_0000_0000);
    this.buffer.writeInt32BE(high, this.at);
    this.at = this.buffer.writeUInt32BE(value - high * 0x1_0000_0000, this.at + 4);
  }

  bytes(value: Buffer): void {
    this.room(value.length);
    this.at += value.copy(this.buffer, this.at);
  }

  /** A UTF-8 string with its length in front, in one pass (a UTF-16 unit is at most 3 bytes). */
  text(value: string): void {
    this.room(4 + 3 * value.length);
    if (value.length <= asciiCopyMax && this.ascii(value)) return;
    const start = this.at + 4;
    const length = this.buffer.write(value, start, 'utf8');
    this.buffer.writeInt32BE(length, this.at);
    this.at = start + length;
  }

  /**
   * A short ASCII string (ids, serials) byte by byte: Buffer#write's native call costs more
   * than copying a dozen characters. Encoding a 100,000-serial manifest's units and rows
   * took 110 ms with Buffer#write alone, 75 ms with this. Answers false at the first
   * character that is not ASCII (text() then writes the string over again).
   */
  private ascii(value: string): boolean {
    const buffer = this.buffer;
    const start = this.at + 4;
    for (let i = 0; i < value.length; i += 1) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) return false;
      buffer[start + i] = code;
    }
    buffer.writeInt32BE(value.length, this.at);
    this.at = start + value.length;
    return true;
  }

  /** Where the next byte goes. */
  get position(): number {
    return this.at;
  }

  /** The bytes written at [start, end) once more: a run of values already encoded. */
  repeat(start: number, end: number): void {
    const length = end - start;
    this.room(length);
    this.buffer.copyWithin(this.at, start, end);
    this.at += length;
  }

  /** Writes a length now and sets it later, once what follows is written. */
  lengthSlot(): number {
    this.int32(0);
    return this.at;
  }

  fillLength(slotEnd: number): void {
    this.buffer.writeInt32BE(this.at - slotEnd, slotEnd - 4);
  }

  done(): Buffer {
    return this.buffer.subarray(0, this.at);
  }
}

function fail(column: CopyColumn, row: number, why: string): never {
  throw new Error(`assertion failed: COPY value for ${column.name} in row ${row} ${why}`);
}

/**
 * Microseconds since 2000 for the time strings we store. A batch's events share one
 * time, so the last one is kept: checking the spelling costs more than the rest of a row.
 */
let lastTime = { text: '', micros: 0 };
function microsSince2000(column: CopyColumn, value: unknown, row: number): number {
  if (value === lastTime.text) return lastTime.micros;
  // Only the one spelling we store (Date#toISOString): anything finer than a
  // millisecond would be cut off by Date.parse without a word.
  if (typeof value !== 'string') fail(column, row, `is not an ISO 8601 string: ${String(value)}`);
  const ms = Date.parse(value);
  if (!Number.isFinite(ms) || new Date(ms).toISOString() !== value) fail(column, row, `is not a UTC time as toISOString writes it: ${value}`);
  lastTime = { text: value, micros: (ms - postgresEpochMs) * 1000 };
  return lastTime.micros;
}

function writeValue(writer: CopyWriter, column: CopyColumn, value: CopyValue, row: number): void {
  if (value === null) {
    writer.int32(-1);
    return;
  }
  switch (column.type) {
    case 'int2':
    case 'int4':
    case 'int8': {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(column, row, `is not a safe integer: ${String(value)}`);
      if (column.type === 'int2') {
        if (value < -32_768 || value > 32_767) fail(column, row, `does not fit int2: ${value}`);
        writer.int32(2);
        writer.int16(value);
      } else if (column.type === 'int4') {
        if (value < -2_147_483_648 || value > 2_147_483_647) fail(column, row, `does not fit int4: ${value}`);
        writer.int32(4);
        writer.int32(value);
      } else {
        writer.int32(8);
        writer.int64(value);
      }
      return;
    }
    case 'bool':
      if (typeof value !== 'boolean') fail(column, row, `is not a boolean: ${String(value)}`);
      writer.int32(1);
      writer.byte(value ? 1 : 0);
      return;
    case 'text':
      if (typeof value !== 'string') fail(column, row, `is not a string: ${String(value)}`);
      writer.text(value);
      return;
    case 'bytea':
      if (!Buffer.isBuffer(value)) fail(column, row, 'is not a Buffer');
      writer.int32(value.length);
      writer.bytes(value);
      return;
    case 'timestamptz':
      writer.int32(8);
      writer.int64(microsSince2000(column, value, row));
      return;
    case 'text[]': {
      if (!Array.isArray(value)) fail(column, row, 'is not an array of strings');
      const slot = arrayHeader(writer, textOid, value.length);
      for (const element of value) {
        if (typeof element !== 'string') fail(column, row, 'holds an element that is not a string');
        writer.text(element);
      }
      writer.fillLength(slot);
      return;
    }
    case 'int2[]': {
      if (!Array.isArray(value)) fail(column, row, 'is not an array of integers');
      const slot = arrayHeader(writer, int2Oid, value.length);
      for (const element of value) {
        if (typeof element !== 'number' || !Number.isInteger(element) || element < -32_768 || element > 32_767) fail(column, row, `holds an element that does not fit int2: ${String(element)}`);
        writer.int32(2);
        writer.int16(element);
      }
      writer.fillLength(slot);
      return;
    }
  }
}

/** A one-dimensional array's header (no NULL elements); answers the slot its length fills. */
function arrayHeader(writer: CopyWriter, elementOid: number, length: number): number {
  const slot = writer.lengthSlot();
  writer.int32(length === 0 ? 0 : 1); // dimensions
  writer.int32(0); // no NULL elements
  writer.int32(elementOid);
  if (length > 0) {
    writer.int32(length);
    writer.int32(1); // lower bound
  }
  return slot;
}

/** The COPY BINARY bytes of rows, each a value per column in column order. */
export function encodeCopyBinary(columns: readonly CopyColumn[], rows: ReadonlyArray<readonly CopyValue[]>, sizeHint = 0): Buffer {
  const writer = new CopyWriter(sizeHint || 64 * rows.length + 64);
  writeHeader(writer);
  writeRows(writer, columns, rows, 0, rows.length, asValues);
  writer.int16(-1);
  return writer.done();
}

/** A row that is its values, in column order. */
const asValues = (row: readonly CopyValue[]): readonly CopyValue[] => row;

/**
 * The same bytes as encodeCopyBinary, in pieces of rowsPerPiece rows (the header with the
 * first, the trailer with the last), each encoded only when asked for: PostgreSQL can work
 * through the first while the rest are encoded. `valuesOf` gives a row's values in column
 * order, as its piece is encoded: a batch's 100,000 unit rows were made into arrays of values
 * up front, 30 ms before the COPY could start (s38).
 */
export function encodeCopyBinaryPieces(columns: readonly CopyColumn[], rows: ReadonlyArray<readonly CopyValue[]>, rowsPerPiece: number, sizeHint?: number): Generator<Buffer>;
export function encodeCopyBinaryPieces<T>(columns: readonly CopyColumn[], rows: ReadonlyArray<T>, rowsPerPiece: number, sizeHint: number, valuesOf: (row: T) => readonly CopyValue[]): Generator<Buffer>;
export function* encodeCopyBinaryPieces<T>(columns: readonly CopyColumn[], rows: ReadonlyArray<T>, rowsPerPiece: number, sizeHint = 0, valuesOf = asValues as unknown as (row: T) => readonly CopyValue[]): Generator<Buffer> {
  assert(Number.isSafeInteger(rowsPerPiece) && rowsPerPiece > 0, `a COPY piece holds at least one row, not ${rowsPerPiece}`);
  const pieceHint = Math.ceil(((sizeHint || 64 * rows.length) * rowsPerPiece) / Math.max(1, rows.length)) + 64;
  let from = 0;
  do {
    const to = Math.min(rows.length, from + rowsPerPiece);
    const writer = new CopyWriter(pieceHint);
    if (from === 0) writeHeader(writer);
    writeRows(writer, columns, rows, from, to, valuesOf);
    if (to === rows.length) writer.int16(-1);
    yield writer.done();
    from = to;
  } while (from < rows.length);
}

function writeHeader(writer: CopyWriter): void {
  writer.bytes(signature);
  writer.int32(0); // flags: no OIDs
  writer.int32(0); // no header extension
}

/**
 * The rows, each value checked and encoded, but for a row whose values after the first are
 * those of the row before (the same strings, numbers, nulls; arrays and Buffers the same
 * objects): that row's first value is encoded and the rest copied from the row before's bytes.
 * A manifest's units differ only in their serial, the first column: their encoding took
 * 48-79 ms of a 100,000-serial manifest, value by value.
 */
function writeRows<T>(writer: CopyWriter, columns: readonly CopyColumn[], rows: ReadonlyArray<T>, from: number, to: number, valuesOf: (row: T) => readonly CopyValue[]): void {
  // Indexed loops: entries() made an [index, value] pair per row and per value. A
  // 100,000-serial manifest's units and rows took 155–237 ms to encode with them, 78–191 ms
  // without (bench/experiments/manifest-js.ts, five runs each, alternating).
  let previous: readonly CopyValue[] | undefined;
  // Where the values after the first of the last row encoded value by value lie in the writer.
  let tailStart = 0;
  let tailEnd = 0;
  for (let index = from; index < to; index += 1) {
    const row = valuesOf(rows[index]!);
    if (row.length !== columns.length) throw new Error(`assertion failed: COPY row ${index} has ${row.length} values for ${columns.length} columns`);
    writer.int16(columns.length);
    if (columns.length === 0) continue;
    writeValue(writer, columns[0]!, row[0]!, index);
    if (previous !== undefined && sameAfterFirst(previous, row)) {
      writer.repeat(tailStart, tailEnd);
      continue;
    }
    tailStart = writer.position;
    for (let at = 1; at < columns.length; at += 1) writeValue(writer, columns[at]!, row[at]!, index);
    tailEnd = writer.position;
    previous = row;
  }
}

/** Whether the two rows' values after the first are the same values (arrays and Buffers by identity). */
function sameAfterFirst(a: readonly CopyValue[], b: readonly CopyValue[]): boolean {
  for (let at = 1; at < a.length; at += 1) if (a[at] !== b[at]) return false;
  return true;
}

/** The COPY statement for a table and its columns (names are ours, never a caller's). */
export function copyStatement(table: string, columns: readonly CopyColumn[]): string {
  return `COPY ${table} (${columns.map((column) => column.name).join(', ')}) FROM STDIN (FORMAT binary)`;
}

/**
 * Sends encoded rows with COPY on this client, inside whatever transaction it has open:
 * one buffer, or pieces as they come (encodeCopyBinaryPieces).
 * A refused row (a constraint, a trigger) rejects with PostgreSQL's error, as INSERT would;
 * the transaction is then aborted and the caller rolls back.
 */
export async function copyIn(client: pg.ClientBase, statement: string, data: Buffer | AsyncIterable<Buffer>): Promise<void> {
  await pipeline(Readable.from(Buffer.isBuffer(data) ? [data] : data), client.query(copyFrom(statement)));
}

/**
 * Runs COPY (query) TO STDOUT on this client and returns everything it sent. Binary is
 * exact: node-postgres would decode a binary field of a SELECT as UTF-8 text, changing
 * bytes that are not valid UTF-8 (a tampered event); COPY hands over the bytes as they are.
 */
export async function copyOut(client: pg.ClientBase, statement: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of client.query(copyTo(statement))) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The values of a COPY BINARY output with one column and no NULLs, laid out as each
 * value's length (4 bytes, big-endian), a zero byte, then its bytes: the tuples without their
 * field counts. The zero byte is RFC 6962's leaf prefix, so a log entry's leaf input is a view
 * of the buffer, hashed with no copy (store/packed-entries.ts). The buffer is not a slice of a
 * shared pool, so it can be moved to another thread.
 */
export function readValuesOfOneColumn(data: Buffer): { bytes: Buffer; count: number } {
  if (data.length < signature.length + 10 || !data.subarray(0, signature.length).equals(signature)) {
    throw new Error('assertion failed: COPY output does not start with the binary signature');
  }
  let at = signature.length + 4;
  at += 4 + data.readUInt32BE(at); // the header extension
  // Each tuple gives up its 2-byte field count and gains the zero byte: never longer.
  const bytes = Buffer.allocUnsafeSlow(data.length - at);
  let written = 0;
  let count = 0;
  for (;;) {
    const fields = data.readInt16BE(at);
    at += 2;
    if (fields === -1) break;
    if (fields !== 1) throw new Error(`assertion failed: COPY tuple ${count} has ${fields} fields, not 1`);
    const length = data.readInt32BE(at);
    if (length < 0) throw new Error(`assertion failed: COPY tuple ${count} is NULL`);
    written += data.copy(bytes, written, at, at + 4);
    bytes[written] = 0;
    written += 1;
    written += data.copy(bytes, written, at + 4, at + 4 + length);
    at += 4 + length;
    count += 1;
  }
  if (at !== data.length) throw new Error(`assertion failed: COPY output has ${data.length - at} bytes after its trailer`);
  return { bytes: bytes.subarray(0, written), count };
}
