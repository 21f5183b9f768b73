/**
 * Times read back as they were written: every year from 1 to 9999, whatever time zone the
 * session has.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { parseTimestamptz } from './pool.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describe('timestamptz as the pool reads it', () => {
  it('reads PostgreSQL\'s ISO text field by field, any offset included', () => {
    expect(parseTimestamptz('0050-01-01 00:00:00+00')).toBe('0050-01-01T00:00:00.000Z');
    expect(parseTimestamptz('0001-01-01 00:00:00+00')).toBe('0001-01-01T00:00:00.000Z');
    expect(parseTimestamptz('9999-12-31 23:59:59.999+00')).toBe('9999-12-31T23:59:59.999Z');
    expect(parseTimestamptz('2026-02-01 08:00:00.123456+08')).toBe('2026-02-01T00:00:00.123Z');
    expect(parseTimestamptz('1900-01-01 08:05:43+08:05:43')).toBe('1900-01-01T00:00:00.000Z');
    expect(parseTimestamptz('2026-01-31 19:30:00-04:30')).toBe('2026-02-01T00:00:00.000Z');
    expect(() => parseTimestamptz('Sat Feb 01 00:00:00 2026 UTC')).toThrow(/not in the ISO style \(DateStyle ISO/);
  });

  it('round-trips the years 1 to 9999 through PostgreSQL, in UTC and in another session time zone', async () => {
    const client = await database.pool.connect();
    try {
      for (const zone of ['UTC', 'Asia/Shanghai', 'America/St_Johns']) {
        await client.query(`SET TimeZone = '${zone}'`);
        for (const at of ['0001-01-01T00:00:00.000Z', '0050-06-15T12:34:56.789Z', '0099-12-31T23:59:59.000Z', '1900-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z']) {
          const read = (await client.query<{ at: string }>('SELECT $1::timestamptz AS at', [at])).rows[0]!.at;
          expect(read, `${at} in ${zone}`).toBe(at);
        }
      }
    } finally {
      await client.query('RESET TimeZone');
      client.release();
    }
  });
});
