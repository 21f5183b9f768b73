/**
 * JSON numbers that JSON.parse rounds to a whole number. JSON.parse reads every number as
 * the nearest double, before any schema sees it, so `1e-400` is read as 0,
 * `4.9999999999999999` as 5 and `199.999999999999999` as 200: a value that is not whole
 * comes out whole and passes every integer check (units, minor units, a threshold it then
 * lands exactly on). The server and the CLI refuse such a token rather than send or store
 * the changed value.
 *
 * The rule has no false positives for honest serialisers: one that writes a double's
 * shortest round-trip form or 17 significant digits writes a whole double as a whole number
 * and a fraction as a token whose double is a fraction, so only a token whose double is
 * whole (Number.isInteger, 0 and -0 included) while its digits are not is refused. Whether
 * the digits are whole is decided exactly, on the token's digits and exponent, with no
 * floating point.
 */
import { assert } from './errors.ts';
import { cut } from './text.ts';

/** Characters of a number token a refusal quotes: a token may be megabytes of digits. */
export const quotedNumberLengthMax = 40;

const minus = 0x2d;
const plus = 0x2b;
const decimalPoint = 0x2e;
const zero = 0x30;
const nine = 0x39;
const lowerE = 0x65;
const upperE = 0x45;

const isDigit = (code: number): boolean => code >= zero && code <= nine;

/** Whether a character outside a string, in JSON text JSON.parse has read, starts a number: a '-' or a digit. */
export const startsNumber = (code: number): boolean => code === minus || isDigit(code);

/**
 * The index just past the number token that starts at `start` (a '-' or a digit) in JSON text
 * that JSON.parse has read: a number ends at the first character that no number holds.
 */
export function numberTokenEnd(text: string, start: number): number {
  let end = start;
  for (;;) {
    const code = text.charCodeAt(end);
    if (!(isDigit(code) || code === decimalPoint || code === lowerE || code === upperE || code === minus || code === plus)) return end;
    end += 1;
  }
}

/**
 * Digits before the point up to which a value's first digit after the point decides whether
 * its double is whole. A first digit of 1 to 8 puts the value at least 0.1 from any whole
 * number; under 10^14 the double is within half a unit in the last place of the value, at
 * most 10^14 × 2^-53 < 0.012, so it is not whole either. (At 16 digits that bound passes 0.5:
 * 9007199254740991.4 is read as 9007199254740991.)
 */
const integerDigitsNearMax = 14;

/**
 * Whether the number token text[start, end) (JSON's grammar: -?int(.frac)?(e[+-]?exp)?) is
 * not whole but JSON.parse reads it as a whole double. A token of digits alone is whole and
 * costs one look at each character; one whose digits are whole (`5.000`, `1.5e1`), and the
 * usual fraction (`26.6`, `0.5`: integerDigitsNearMax), are decided without making a string;
 * only a fraction near a whole number, or past 10^14, is given to Number.
 */
export function roundedToWholeAt(text: string, start: number, end: number): boolean {
  let at = text.charCodeAt(start) === minus ? start + 1 : start;
  const integerStart = at;
  while (at < end && isDigit(text.charCodeAt(at))) at += 1;
  const integerEnd = at;
  let fractionStart = at;
  let fractionEnd = at;
  if (at < end && text.charCodeAt(at) === decimalPoint) {
    fractionStart = at + 1;
    at = fractionStart;
    while (at < end && isDigit(text.charCodeAt(at))) at += 1;
    fractionEnd = at;
  }
  // A token of digits alone (the common case: a count, an amount) is whole.
  if (at === end && fractionStart === fractionEnd) return false;
  const integerDigits = integerEnd - integerStart;
  const digits = integerDigits + (fractionEnd - fractionStart);
  const exponent = at < end ? exponentOf(text, at, end, digits) : 0;
  // The token's value is the digits, integer then fraction, with the decimal point after
  // `point` of them; it is whole when every digit after the point is 0.
  const point = integerDigits + exponent;
  for (let index = Math.max(0, point); index < digits; index += 1) {
    const code = text.charCodeAt(index < integerDigits ? integerStart + index : fractionStart + index - integerDigits);
    if (code === zero) continue;
    // Not whole; whether its double is whole is, for the usual fraction, its first digit's to say.
    if (index === point && point <= integerDigitsNearMax && code !== nine) return false;
    return Number.isInteger(Number(text.slice(start, end)));
  }
  return false;
}

/** Whether `token`, one JSON number, is not whole but JSON.parse reads it as a whole double. */
export function roundedToWhole(token: string): boolean {
  return roundedToWholeAt(token, 0, token.length);
}

/**
 * The exponent of the token whose `e` is at `at`, as a signed count of places the decimal
 * point moves. Past `digits` places either way, a larger move changes nothing (every digit is
 * then before the point, or after it), so it stops counting there: `1e-999999999` costs what
 * `1e-9` does, whatever the exponent's size.
 */
function exponentOf(text: string, at: number, end: number, digits: number): number {
  const code = text.charCodeAt(at);
  assert(code === lowerE || code === upperE, 'a JSON number token has only an exponent after its digits');
  let index = at + 1;
  const sign = text.charCodeAt(index) === minus ? -1 : 1;
  if (text.charCodeAt(index) === minus || text.charCodeAt(index) === plus) index += 1;
  assert(index < end, 'a JSON number token has digits in its exponent');
  let magnitude = 0;
  for (; index < end && magnitude <= digits; index += 1) magnitude = magnitude * 10 + text.charCodeAt(index) - zero;
  return sign * magnitude;
}

/**
 * What a refusal says of a rounded token: the token as written (cut) and the whole number
 * JSON reads it as (`-1e-400` is read as -0, said as 0).
 */
export function roundedNumberWords(token: string): { number: string; readAs: string } {
  return { number: cut(token, quotedNumberLengthMax), readAs: String(Number(token)) };
}
