/**
 * How PostgreSQL's values come back to us: the type parsers every pg connection of the process
 * uses (set once, when this module loads; pool.ts imports it), and the strict readers of
 * PostgreSQL's ISO dates and times.
 * int8 (bigint) comes back as a JS bigint only where we ask for it; counts and sequence
 * numbers we keep below 2^53 are parsed as numbers.
 */
import pg from 'pg';

// int8: sequence numbers and counts stay far below 2^53; value_minor is bigint-safe by
// the limit valueMinorMax. Parse to number, asserting safety.
pg.types.setTypeParser(20, (text: string) => {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`int8 value ${text} exceeds 2^53`);
  return value;
});
// date stays a 'YYYY-MM-DD' string: no time-zone shift.
pg.types.setTypeParser(1082, parseDate);
// timestamptz becomes an ISO 8601 string in UTC: rows stay plain JSON all the way to
// the events and the API, with one spelling of time.
pg.types.setTypeParser(1184, parseTimestamptz);

/** PostgreSQL's ISO output of a date: the year (four digits or more), month and day, maybe BC. */
const dateText = /^(\d{4,})-(\d\d)-(\d\d)( BC)?$/;

/**
 * A date as PostgreSQL writes it in the ISO style, as 'YYYY-MM-DD' (a year outside 1 to 9999
 * as toISOString writes one: sign and six digits, 1 BC the year 0). Anything else is refused,
 * as parseTimestamptz refuses: the identity passed '01/11/2026' (DateStyle 'SQL, DMY') on to
 * the API and to string comparisons with ISO days (shipment-checks.ts, a booking's period) unnoticed.
 */
export function parseDate(text: string): string {
  const parts = dateText.exec(text);
  if (parts === null) throw new Error(`a date PostgreSQL wrote as ${JSON.stringify(text)}, not in the ISO style (DateStyle ISO) that chipledger reads`);
  const [, year, month, day, beforeChrist] = parts;
  if (year!.length === 4 && beforeChrist === undefined) return text;
  const number = beforeChrist ? 1 - Number(year) : Number(year);
  const spelt = number >= 0 && number <= 9999 ? String(number).padStart(4, '0') : `${number < 0 ? '-' : '+'}${String(Math.abs(number)).padStart(6, '0')}`;
  return `${spelt}-${month}-${day}`;
}

/** PostgreSQL's ISO output of a timestamptz: date, time, fraction, the session's offset (hours, maybe minutes and seconds), maybe BC. */
const timestamptzText = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

/**
 * A timestamptz as PostgreSQL writes it (DateStyle ISO, which every connection of the pool
 * sets: sessionSettingsSql; the session's time zone is whatever the server has, and any
 * offset reads right), to ISO 8601 in UTC, read field by field. new Date(text) read
 * '0050-01-01 00:00:00+00' as 1950 (years below 100 are taken as 19xx), and an offset with
 * seconds, as a non-UTC session writes for dates before time zones (+08:05:43), as no date
 * at all. Milliseconds are kept, as the API writes them.
 */
export function parseTimestamptz(text: string): string {
  const parts = timestamptzText.exec(text);
  if (parts === null) throw new Error(`a timestamptz PostgreSQL wrote as ${JSON.stringify(text)}, not in the ISO style (DateStyle ISO, PostgreSQL's default) that chipledger reads`);
  const [, year, month, day, hour, minute, second, fraction = '', sign, offsetHours, offsetMinutes = '0', offsetSeconds = '0', beforeChrist] = parts;
  const at = new Date(0);
  // setUTCFullYear, unlike Date.UTC, takes years below 100 as they are; 1 BC is the year 0
  // (a session west of UTC writes 0001-01-01T00:00Z so).
  at.setUTCFullYear(beforeChrist ? 1 - Number(year) : Number(year), Number(month) - 1, Number(day));
  at.setUTCHours(Number(hour), Number(minute), Number(second), Number(fraction.padEnd(3, '0').slice(0, 3)));
  const offsetMs = (Number(offsetHours) * 3600 + Number(offsetMinutes) * 60 + Number(offsetSeconds)) * 1000;
  return new Date(at.getTime() - (sign === '+' ? offsetMs : -offsetMs)).toISOString();
}
