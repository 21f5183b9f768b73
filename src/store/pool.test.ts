/**
 * Times read back as they were written: every year from 1 to 9999, whatever time zone the
 * session has. Dates too, and a date or time in any style but ISO is refused, not passed on.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { createPool } from './pool.ts';
import { isDatabaseUnavailable } from './database-unavailable.ts';
import { parseDate, parseTimestamptz } from './type-parsers.ts';
import { sessionSettingsSql, setUpSession } from './session-settings.ts';

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

describe('date as the pool reads it', () => {
  it("keeps PostgreSQL's ISO text, spells other years as toISOString does, and refuses any other style", () => {
    expect(parseDate('2026-11-01')).toBe('2026-11-01');
    expect(parseDate('0001-01-01')).toBe('0001-01-01');
    expect(parseDate('0001-01-01 BC')).toBe('0000-01-01');
    expect(parseDate('0044-03-15 BC')).toBe('-000043-03-15');
    expect(parseDate('10000-01-01')).toBe('+010000-01-01');
    for (const text of ['01/11/2026', '01.11.2026', 'Sun Nov 01 2026', 'infinity', '2026-11-01 00:00:00']) {
      expect(() => parseDate(text), text).toThrow(/^a date PostgreSQL wrote as .*, not in the ISO style \(DateStyle ISO\) that chipledger reads$/);
    }
  });

  it('reads every connection of the pool in the ISO style, even when its session was set otherwise since', async () => {
    const client = await database.pool.connect();
    try {
      expect((await client.query<{ day: string }>("SELECT '2026-11-01'::date AS day")).rows[0]!.day).toBe('2026-11-01');
      await client.query("SET DateStyle = 'SQL, DMY'");
      await expect(client.query("SELECT '2026-11-01'::date AS day")).rejects.toThrow('a date PostgreSQL wrote as "01/11/2026", not in the ISO style');
    } finally {
      await client.query(sessionSettingsSql);
      client.release();
    }
  });
});

describe("a new connection's session set-up", () => {
  it('fails the first use of a connection lost while it is set up, with the error of a lost connection, and the next use gets a fresh one', async () => {
    const pool = createPool({ url: database.url, connectionsMax: 2, applicationName: 'chipledger-test' });
    const options = (pool as unknown as { options: { onConnect: (client: pg.ClientBase) => Promise<void> } }).options;
    const setUp = options.onConnect;
    let ended = 0;
    // The server ends the first connection's session just before its set-up is sent.
    options.onConnect = async (client) => {
      if (ended === 0) {
        ended += 1;
        await database.pool.query('SELECT pg_terminate_backend($1)', [(client as unknown as { processID: number }).processID]);
      }
      return setUp(client);
    };
    try {
      const failed = await pool.query('SELECT 1').then(() => expect.fail('a query ran on a connection whose session was not set up'), (error: unknown) => error);
      expect(isDatabaseUnavailable(failed), String(failed)).toBe(true);
      expect((await pool.query<{ digits: string }>("SELECT current_setting('extra_float_digits') AS digits")).rows[0]!.digits).toBe('3');
    } finally {
      await pool.end();
    }
  });

  it('says which settings it could not make, when the server refuses them', async () => {
    const refused = Object.assign(new Error('unrecognized configuration parameter "extra_float_digits"'), { code: '42704' });
    const client = { query: () => Promise.reject(refused) } as unknown as Pick<pg.ClientBase, 'query'>;
    const failed = await setUpSession(client, 1_000).then(() => expect.fail('set up'), (error: unknown) => error as Error);
    expect(failed.message).toBe(`couldn't set a new PostgreSQL session as chipledger reads and writes by (${sessionSettingsSql}): unrecognized configuration parameter "extra_float_digits"`);
    expect(failed.cause).toBe(refused);
  });
});
