import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { leafHash, leafHashOfInput } from '../tlog/hash.ts';
import { unpackEntries, unpackLeafInputs } from './packed-entries.ts';
import { copyIn, copyOut, copyStatement, encodeCopyBinary, encodeCopyBinaryPieces, readValuesOfOneColumn, type CopyColumn, type CopyValue } from './copy-binary.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  await database.pool.query(`CREATE TABLE copy_probe (
    n int, a smallint, b integer, c bigint, d boolean, e text, f text[], g bytea, h timestamptz, i smallint[],
    CHECK (b IS NULL OR b <> 13)
  )`);
});
afterAll(async () => {
  await database?.drop();
});

const columns: CopyColumn[] = [
  { name: 'n', type: 'int4' }, { name: 'a', type: 'int2' }, { name: 'b', type: 'int4' }, { name: 'c', type: 'int8' }, { name: 'd', type: 'bool' },
  { name: 'e', type: 'text' }, { name: 'f', type: 'text[]' }, { name: 'g', type: 'bytea' }, { name: 'h', type: 'timestamptz' },
  { name: 'i', type: 'int2[]' },
];

/** Text PostgreSQL accepts: no NUL, and well-formed Unicode. */
const pgText = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((value) => !value.includes('\u0000'));
const row = (n: number) => fc.tuple(
  fc.constant(n),
  fc.option(fc.integer({ min: -32_768, max: 32_767 })),
  fc.option(fc.integer({ min: -2_147_483_648, max: 2_147_483_647 }).filter((value) => value !== 13)),
  fc.option(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER })),
  fc.option(fc.boolean()),
  fc.option(pgText),
  fc.option(fc.array(pgText, { maxLength: 4 })),
  fc.option(fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes))),
  fc.option(fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }).map((date) => date.toISOString())),
  fc.option(fc.array(fc.integer({ min: -32_768, max: 32_767 }), { maxLength: 6 })),
);

async function copied(rows: CopyValue[][]): Promise<CopyValue[][]> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('TRUNCATE copy_probe');
    await copyIn(client, copyStatement('copy_probe', columns), encodeCopyBinary(columns, rows));
    const stored = await client.query<Record<string, CopyValue>>('SELECT * FROM copy_probe ORDER BY n');
    // Arrays count from 1 in SQL, as text input makes them (org_ids[1] must mean the first).
    const lowerBounds = await client.query<{ lower: number | null }>(`SELECT DISTINCT array_lower(f, 1) AS lower FROM copy_probe WHERE cardinality(f) > 0
      UNION SELECT DISTINCT array_lower(i, 1) FROM copy_probe WHERE cardinality(i) > 0`);
    expect(lowerBounds.rows.map((bound) => bound.lower).filter((lower) => lower !== 1)).toEqual([]);
    await client.query('ROLLBACK');
    return stored.rows.map((stored) => columns.map((column) => stored[column.name]!));
  } finally {
    client.release();
  }
}

describe('COPY in the binary format', () => {
  it('stores every value as given: integers at their limits, NULLs, any Unicode, empty arrays and strings, every byte, times before 2000', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 30 }).chain((count) => fc.tuple(...Array.from({ length: count }, (_, n) => row(n)))), async (rows) => {
      const written = rows.map((values) => [...values] as CopyValue[]);
      expect(await copied(written)).toEqual(written);
    }), { numRuns: 40 });
  });

  it('encodes a row whose values after the first are the row before\'s (a manifest\'s units) as it encodes that row alone, in pieces too', async () => {
    const headerBytes = 19; // the signature, the flags and the header extension's length
    const trailerBytes = 2;
    const tailColumns = columns.length - 1;
    // A few tails, each the first with one value taken from another row instead: consecutive
    // rows then differ in one column, any one, or in none.
    const tailsOf = (a: CopyValue[], b: CopyValue[], flips: number[]): CopyValue[][] => [a.slice(1), ...flips.map((flip) => a.slice(1).map((value, at) => (at === flip % tailColumns ? b[at + 1]! : value)))];
    await fc.assert(fc.asyncProperty(row(0), row(0), fc.array(fc.nat(), { maxLength: 3 }), fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), async (a, b, flips, picks) => {
      const tails = tailsOf([...a], [...b], flips);
      // Rows share their tails' values, arrays and Buffers included, as a manifest's units share their shipment's.
      const rows = picks.map((pick, n): CopyValue[] => [n, ...tails[pick % tails.length]!]);
      const whole = encodeCopyBinary(columns, rows);
      const alone = rows.map((values) => encodeCopyBinary(columns, [values]).subarray(headerBytes, -trailerBytes));
      expect(whole.equals(Buffer.concat([whole.subarray(0, headerBytes), ...alone, whole.subarray(-trailerBytes)]))).toBe(true);
      expect(Buffer.concat([...encodeCopyBinaryPieces(columns, rows, 3)]).equals(whole)).toBe(true);
      expect(await copied(rows)).toEqual(rows);
    }), { numRuns: 60 });
  });

  it('stores strings either side of the short-ASCII path: 64 and 65 characters, and non-ASCII at the start, middle and end', async () => {
    const texts = ['x'.repeat(64), 'y'.repeat(65), `${'a'.repeat(63)}é`, `é${'b'.repeat(10)}`, `SN-${'0'.repeat(20)}\u4e2d${'1'.repeat(20)}`, 'H200 😀', ''];
    const written = texts.map((text, n): CopyValue[] => [n, null, null, null, null, text, [text, 'ORG-1'], null, null, null]);
    expect(await copied(written)).toEqual(written);
  });

  it('rejects a row the table refuses with PostgreSQL error, and the connection goes on after ROLLBACK', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      const rows = [[1, null, 12, null, null, null, null, null, null, null], [2, null, 13, null, null, null, null, null, null, null]];
      await expect(copyIn(client, copyStatement('copy_probe', columns), encodeCopyBinary(columns, rows))).rejects.toMatchObject({ code: '23514' });
      await client.query('ROLLBACK');
      expect((await client.query('SELECT count(*)::int AS n FROM copy_probe')).rows[0].n).toBe(0);
    } finally {
      client.release();
    }
  });

  it('refuses values it cannot send exactly, naming the column and row', () => {
    const bad: Array<[CopyColumn, CopyValue, RegExp]> = [
      [{ name: 'a', type: 'int2' }, 40_000, /a in row 0 does not fit int2/],
      [{ name: 'b', type: 'int4' }, 2 ** 31, /does not fit int4/],
      [{ name: 'c', type: 'int8' }, 2 ** 53, /not a safe integer/],
      [{ name: 'c', type: 'int8' }, 1.5, /not a safe integer/],
      [{ name: 'e', type: 'text' }, 7, /not a string/],
      [{ name: 'g', type: 'bytea' }, 'abc', /not a Buffer/],
      [{ name: 'h', type: 'timestamptz' }, '2026-02-01T00:00:00.123456Z', /as toISOString writes it/],
      [{ name: 'h', type: 'timestamptz' }, '2026-02-01', /as toISOString writes it/],
      [{ name: 'f', type: 'text[]' }, ['a', 7 as unknown as string], /element that is not a string/],
      [{ name: 'i', type: 'int2[]' }, [1, 32_768], /element that does not fit int2: 32768/],
      [{ name: 'i', type: 'int2[]' }, [0.5], /element that does not fit int2: 0.5/],
      [{ name: 'i', type: 'int2[]' }, 'abc', /not an array of integers/],
    ];
    for (const [column, value, message] of bad) expect(() => encodeCopyBinary([column], [[value]])).toThrow(message);
    expect(() => encodeCopyBinary(columns, [[1]])).toThrow(/row 0 has 1 values for 10 columns/);
  });

  it('reads one column back exactly, as each value\'s length, a zero byte, then its bytes, and refuses output it does not expect', async () => {
    const values = [Buffer.alloc(0), Buffer.from([0xff, 0x00, 0xef, 0xbf, 0xbd]), Buffer.alloc(70_000, 7)];
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await copyIn(client, copyStatement('copy_probe', columns), encodeCopyBinary(columns, values.map((g, n) => [n, null, null, null, null, null, null, g, null, null])));
      const read = readValuesOfOneColumn(await copyOut(client, 'COPY (SELECT g FROM copy_probe ORDER BY n) TO STDOUT (FORMAT binary)'));
      expect(read.count).toBe(3);
      expect(read.bytes).toEqual(Buffer.concat(values.flatMap((value) => [Buffer.from(Uint32Array.of(value.length).buffer).reverse(), Buffer.of(0), value])));
      // The zero byte and the value make RFC 6962's leaf input, a view of the buffer.
      expect(unpackLeafInputs(read).map((input) => leafHashOfInput(input))).toEqual(values.map((value) => leafHash(value)));
      expect(unpackEntries(read)).toEqual(values);
      const twoColumns = await copyOut(client, 'COPY (SELECT n, g FROM copy_probe) TO STDOUT (FORMAT binary)');
      expect(() => readValuesOfOneColumn(twoColumns)).toThrow(/has 2 fields, not 1/);
      const withNull = await copyOut(client, 'COPY (SELECT e FROM copy_probe) TO STDOUT (FORMAT binary)');
      expect(() => readValuesOfOneColumn(withNull)).toThrow(/is NULL/);
      expect(() => readValuesOfOneColumn(Buffer.from('n\tg\n1\t\\x00\n'))).toThrow(/binary signature/);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('encodes the same bytes in pieces, each only when asked for, and stores them as one COPY', async () => {
    const rowsOf = (count: number): CopyValue[][] => Array.from({ length: count }, (_, n) => [n, n % 100, null, n * 1_000_003, n % 2 === 0, `row ${n}`, [`a${n}`], Buffer.alloc(n % 50, n), '2026-02-01T00:00:00.000Z', [n % 300]]);
    for (const count of [0, 1, 255, 256, 257, 600]) {
      const pieces = [...encodeCopyBinaryPieces(columns, rowsOf(count), 256)];
      expect(pieces, `${count} rows`).toHaveLength(Math.max(1, Math.ceil(count / 256)));
      expect(Buffer.concat(pieces).equals(encodeCopyBinary(columns, rowsOf(count))), `${count} rows`).toBe(true);
    }
    // A row that cannot be encoded fails its own piece, not the ones before it.
    const bad = rowsOf(600);
    bad[300]![1] = 40_000;
    const lazily = encodeCopyBinaryPieces(columns, bad, 256);
    expect(lazily.next().done).toBe(false);
    expect(() => lazily.next()).toThrow(/row 300 does not fit int2/);

    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('TRUNCATE copy_probe');
      async function* slowly(): AsyncGenerator<Buffer> {
        for (const piece of encodeCopyBinaryPieces(columns, rowsOf(600), 256)) {
          yield piece;
          await new Promise((resume) => setImmediate(resume));
        }
      }
      await copyIn(client, copyStatement('copy_probe', columns), slowly());
      expect((await client.query('SELECT count(*)::int AS n, sum(n)::int AS total FROM copy_probe')).rows[0]).toEqual({ n: 600, total: (599 * 600) / 2 });
      // A piece that fails to encode ends the COPY with its error, and the connection goes on.
      await client.query('SAVEPOINT before_bad');
      await expect(copyIn(client, copyStatement('copy_probe', columns), (async function* () {
        yield* encodeCopyBinaryPieces(columns, bad, 256);
      })())).rejects.toThrow(/row 300 does not fit int2/);
      await client.query('ROLLBACK TO SAVEPOINT before_bad');
      expect((await client.query('SELECT count(*)::int AS n FROM copy_probe')).rows[0].n).toBe(600);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });
});
