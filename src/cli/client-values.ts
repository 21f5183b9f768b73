/**
 * The values of client commands' options, checked before anything is sent: a mistake on the
 * command line is a usage error (exit 2) that names the option and what was typed, as
 * `shipments book --units` is, never a refusal by the server (exit 1). A body assembled from
 * options is checked against the command's own schema (src/ledger/schemas.ts), the one the
 * API checks it with, so the problem is said in terms of the option that gave the field.
 */
import type { z } from 'zod';
import { limits } from '../core/limits.ts';
import { instantForm, tokenSecretPrefix } from '../ledger/schemas.ts';
import { Failure, printableJson } from './output.ts';

const usage = (message: string) => new Failure(message, 2);
/**
 * A value typed on the command line as a refusal quotes it: a token's secret typed in the wrong
 * place (an id, a number) is never quoted back, into a terminal's scrollback or a CI log.
 */
export function quoted(text: string): string {
  return text.startsWith(tokenSecretPrefix) ? "(a token's secret, not shown)" : printableJson(text, 'one line');
}

const tokenIdInSecret = new RegExp(`^${tokenSecretPrefix}(TOK-[0-9]{1,16})_`);

/** What to do about a token's secret typed on a command line: revoke its token, named where the secret carries its id. */
export function revokeAdvice(secret: string): string {
  const carried = tokenIdInSecret.exec(secret)?.[1];
  return carried === undefined ? 'if it is one, treat it as leaked and revoke its token' : `treat it as leaked and revoke its token: chipledger token revoke ${carried}`;
}

/** A whole number from `min` to `max` as typed: digits only, so 1e3, 0x10, " 7" and 1.5 are refused, not read as something else. */
export function wholeNumber(option: string, text: string, min: number, max: number): number {
  const value = /^(0|[1-9][0-9]{0,15})$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) throw usage(`${option} must be a whole number from ${min.toLocaleString('en-US')} to ${max.toLocaleString('en-US')}; got ${quoted(text)}`);
  return value;
}

/** A count of units, as every units field of the API bounds it (limits.unitsMax). */
export function unitsOf(option: string, text: string): number {
  return wholeNumber(option, text, 1, limits.unitsMax);
}

/** A decimal such as -33.8688 or 151.2, from `min` to `max`; no exponent, no sign but '-'. */
export function decimalIn(option: string, text: string, min: number, max: number): number {
  const value = /^-?[0-9]{1,3}(\.[0-9]{1,12})?$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) throw usage(`${option} must be a decimal number from ${min} to ${max}, such as 41.0347; got ${quoted(text)}`);
  return value;
}

/**
 * What a span reaching the ledger's longest deadline (limits.bookingDeadlineMaxMs, 365 days)
 * is shortened by. The span is counted from this machine's clock and the ledger judges the
 * deadline from its own time, so `--deadline 365d` was refused whenever this clock read even a
 * second ahead. Five minutes: the drift the ledger takes between its servers' clocks
 * (limits.clockBehindLedgerMsMax).
 */
export const deadlineSpanClockMarginMs = 5 * 60_000;

/**
 * An ISO 8601 time with offset, or a span from now: 30d, 12h, 90m. A span within
 * deadlineSpanClockMarginMs of the longest deadline gives that longest less the margin; a
 * longer one is sent as it is, for the ledger to refuse.
 */
export function parseDeadline(text: string, now: Date): string {
  const span = /^([1-9][0-9]{0,4})([dhm])$/.exec(text);
  if (span) {
    const unitMs = { d: 86_400_000, h: 3_600_000, m: 60_000 }[span[2] as 'd' | 'h' | 'm'];
    const spanMs = Number(span[1]) * unitMs;
    const longestMs = limits.bookingDeadlineMaxMs - deadlineSpanClockMarginMs;
    return new Date(now.getTime() + (spanMs <= limits.bookingDeadlineMaxMs ? Math.min(spanMs, longestMs) : spanMs)).toISOString();
  }
  const instant = instantText(text);
  if (instant !== undefined) return instant;
  throw new Failure(`--deadline must be a time such as 2026-12-31T18:00:00Z, or a span from now such as 30d, 12h or 90m; got ${quoted(text)}`, 2);
}

/**
 * An ISO 8601 time with its offset, whose day its month has and whose hour is 00 to 23, in UTC
 * as the API answers it; undefined for anything else. The hour is bounded here because
 * Date.parse takes ISO 8601's 24:00 (2027-01-01T24:00:00Z as 2 January, 00:00), which the
 * API's schema refuses (RFC 3339 has no hour 24): read, it would send another instant than the
 * one typed, and a validity would end at the start of the next day without a word.
 */
function instantText(text: string): string | undefined {
  const valid = /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) && !Number.isNaN(Date.parse(text)) && dayExists(text);
  return valid ? new Date(text).toISOString() : undefined;
}

/** Whether the date's day is in its month: Date.parse takes 2026-02-30 for 2 March, which would book another deadline than the one typed. */
function dayExists(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * An instant as `--deadline` reads one (instantText: the form, and a day its month has),
 * but only as a time: a deadline may be a span from now (30d), and a licence's validity is a
 * date of its document, never counted from when the command ran.
 */
export function instantOf(option: string, text: string): string {
  const instant = instantText(text);
  if (instant !== undefined) return instant;
  throw usage(`${option} must be ${instantForm}; got ${quoted(text)}`);
}

/** A day (YYYY-MM-DD) that its month has, checked as a time's day is (dayExists). */
export function dayOf(option: string, text: string): string {
  if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(text) && dayExists(text)) return text;
  throw usage(`${option} must be a day such as 2026-07-01; got ${quoted(text)}`);
}

/**
 * The digits after the point of an ISO 4217 currency's minor unit, where they are not 2, for
 * the currencies a licence's value may be in (src/core/currencies.ts). ISO 4217's own table,
 * not Intl's: ICU gives the digits a price is shown with (IQD 0, where its minor unit, the
 * fils, is a thousandth), which would read a value 1,000 times too large.
 */
const minorUnitDigitsOtherThanTwo: Readonly<Record<string, number>> = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
};

/**
 * A licence's value, given in minor units (valueMinor), in its currency's units: 100000 USD
 * cents is "1,000.00 USD", 100000 JPY "100,000 JPY". Digits, not a double's arithmetic, so a
 * value up to limits.valueMinorMax is exact. Anything else a server sends is shown as it came,
 * with the currency, not guessed at.
 */
export function amountOf(valueMinor: unknown, currency: unknown): string {
  const code = String(currency);
  if (!Number.isSafeInteger(valueMinor) || (valueMinor as number) < 0) return `${String(valueMinor)} (minor units) ${code}`;
  const digits = minorUnitDigitsOtherThanTwo[code] ?? 2;
  const text = String(valueMinor).padStart(digits + 1, '0');
  const whole = BigInt(text.slice(0, text.length - digits)).toLocaleString('en-US');
  return `${digits === 0 ? whole : `${whole}.${text.slice(text.length - digits)}`} ${code}`;
}

/** A page size, as the list commands check it. */
export function pageLimitOf(text: string | undefined): number | undefined {
  return text === undefined ? undefined : wholeNumber('--limit', text, 1, limits.pageSizeMax);
}

/**
 * An id as one URL path segment. encodeURIComponent leaves "." and ".." as they are, and a URL
 * resolves those (escaped as %2E too), so `licences issue ..` would POST to /v1/issue and
 * `shipments cancel ..` to /v1/cancel: refused, like an empty id. `examples` are ids of the
 * kind the command takes, for the refusal.
 */
export function idSegment(id: string, examples = 'L-7, A-12 or SITE-3'): string {
  if (id === '' || id === '.' || id === '..') throw usage(`${quoted(id)} is not an id (ids look like ${examples})`);
  // Sent as the path, it would be printed in every note of a retry and in an unknown outcome's rerun line.
  if (id.startsWith(tokenSecretPrefix)) throw usage(`a token's secret was given where an id goes (ids look like ${examples}); nothing was sent. ${revokeAdvice(id)}`);
  return `/${encodeURIComponent(id)}`;
}

/** Commander's collector for an option that may be given more than once. */
export function repeated(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * A body from --body with the fields the options gave added, and which fields those were. A
 * field given both ways is refused rather than one silently winning: the user meant one of
 * them, and which is not ours to guess.
 */
export function withFields(body: Record<string, unknown>, fields: Record<string, unknown>, optionOf: Readonly<Record<string, string>>): { body: Record<string, unknown>; fromOptions: Set<string> } {
  const merged = { ...body };
  const fromOptions = new Set<string>();
  for (const [field, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (Object.hasOwn(body, field)) throw usage(`${optionOf[field] ?? field} and the body's ${field} both give ${field}; give it once; nothing was sent`);
    merged[field] = value;
    fromOptions.add(field);
  }
  return { body: merged, fromOptions };
}

/**
 * Checks a body against the command's schema, before it is sent: the first problem names the
 * option that gave the field, or the body's field, with the schema's words. Required fields
 * that nothing gave are said together, by their options.
 */
export function checkBody(schema: z.ZodType, assembled: { body: Record<string, unknown>; fromOptions: ReadonlySet<string> }, optionOf: Readonly<Record<string, string>>, required: readonly string[] = []): void {
  const { body, fromOptions } = assembled;
  const missing = required.filter((field) => body[field] === undefined);
  if (missing.length > 0) {
    throw usage(`missing ${missing.map((field) => optionOf[field] ?? field).join(', ')} (or ${missing.length === 1 ? 'its field' : 'their fields'} ${missing.join(', ')} in --body); nothing was sent`);
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String);
  const field = path[0];
  // A field the body gave is the body's; one an option gave, or that nothing gave (the
  // currency a --value needs), is said by its option.
  const givenByBody = field !== undefined && Object.hasOwn(body, field) && !fromOptions.has(field);
  const where = field === undefined ? 'the body' : !givenByBody && optionOf[field] !== undefined ? `${optionOf[field]} (${path.join('.')})` : `the body's ${path.join('.')}`;
  throw usage(`${where}: ${issue.message}; nothing was sent`);
}
