/**
 * The session settings chipledger reads and writes by, and how a new connection gets them.
 */
import type pg from 'pg';
import { isDatabaseUnavailable } from './database-unavailable.ts';

/**
 * The session settings chipledger reads and writes by, whatever the server, the database or
 * the role sets (ALTER DATABASE/ROLE … SET, postgresql.conf, a managed service's defaults):
 * - DateStyle 'ISO, YMD': the date and timestamptz parsers (type-parsers.ts) read the ISO style only
 *   ('SQL, DMY' writes 01/11/2026, and every read of a time failed); YMD orders the fields
 *   of any date text the server is given that is not ISO already.
 * - extra_float_digits 3: a double precision (a site's latitude and longitude) is written in
 *   full, so node-postgres's parseFloat gets the very value stored. Below 1 PostgreSQL
 *   rounds it (-12 read 41.0347 as 41), and 3 is exact on PostgreSQL before 12 as well.
 * - standard_conforming_strings on: a backslash in a quoted literal is itself, as the SQL
 *   texts we write assume (off, the '\x…' of a bytea read as escapes and every batch was
 *   refused; they no longer use such literals, but migrations and later texts need not care).
 * Sent as one statement text when a connection is made (pg-pool's onConnect, before the
 * connection serves anyone): one round trip per connection, none per query. Not as startup
 * parameters (the connection option `options: '-c …'`): PgBouncer before 1.20 refuses
 * connections that send one. PgBouncer in transaction pooling carries DateStyle and
 * standard_conforming_strings over to the server connection a transaction lands on (it
 * tracks the settings the server reports), not extra_float_digits: there the strict parsers
 * and the literals that need neither setting are what holds.
 */
export const sessionSettingsSql = "SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET standard_conforming_strings = on";

/**
 * Sets a new connection's session (sessionSettingsSql), bounded by `timeoutMs` (pg-pool's
 * connect bound stops once the connection is made). A failure fails the connect() or query
 * that asked for the connection, which pg-pool then closes: a connection lost or a bound run
 * out keeps its own error (isDatabaseUnavailable reads it), anything else is said as the
 * settings that could not be made.
 */
export async function setUpSession(client: Pick<pg.ClientBase, 'query'>, timeoutMs: number): Promise<void> {
  try {
    await client.query({ text: sessionSettingsSql, query_timeout: timeoutMs } as pg.QueryConfig);
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw error;
    throw new Error(`couldn't set a new PostgreSQL session as chipledger reads and writes by (${sessionSettingsSql}): ${(error as Error).message}`, { cause: error });
  }
}
