/**
 * Exact arithmetic on non-negative rationals, for classification (classification.ts): the
 * decimals of a datasheet, their products and quotients, compared exactly and shown with as
 * many digits as a comparison needs. Small on purpose: product, quotient, comparison and
 * rounding of a handful of datasheet decimals, and the double nearest a value.
 */
import { assert } from '../core/errors.ts';

export interface Rational {
  numerator: bigint;
  /** Always positive. */
  denominator: bigint;
}

/**
 * The decimal a finite number is written as: JavaScript prints the shortest decimal that reads
 * back as the same double, which for a datasheet value is the value as typed ("1670.5").
 */
export function exactDecimal(value: number): Rational {
  const match = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(value));
  assert(match !== null, `exactDecimal needs a finite non-negative number, got ${String(value)}`);
  const [, integerDigits, fractionDigits = '', exponentText = '0'] = match;
  const exponent = Number(exponentText) - fractionDigits.length;
  const digits = BigInt(`${integerDigits}${fractionDigits}`);
  return exponent >= 0 ? { numerator: digits * 10n ** BigInt(exponent), denominator: 1n } : { numerator: digits, denominator: 10n ** BigInt(-exponent) };
}

export function multiply(left: Rational, right: Rational): Rational {
  return { numerator: left.numerator * right.numerator, denominator: left.denominator * right.denominator };
}

/** left − right, for left ≥ right (these rationals are non-negative). */
export function subtract(left: Rational, right: Rational): Rational {
  const numerator = left.numerator * right.denominator - right.numerator * left.denominator;
  assert(numerator >= 0n, 'subtract keeps rationals non-negative');
  return { numerator, denominator: left.denominator * right.denominator };
}

export function divide(dividend: Rational, divisor: Rational): Rational {
  assert(divisor.numerator !== 0n, 'divide by zero (die area is checked positive)');
  return { numerator: dividend.numerator * divisor.denominator, denominator: dividend.denominator * divisor.numerator };
}

export function compare(left: Rational, right: Rational): -1 | 0 | 1 {
  const difference = left.numerator * right.denominator - right.numerator * left.denominator;
  return difference < 0n ? -1 : difference > 0n ? 1 : 0;
}

/** The value rounded half up to `fractionDigits` places, as a rational with denominator 10^digits. */
export function roundTo(value: Rational, fractionDigits: number): Rational {
  const scale = 10n ** BigInt(fractionDigits);
  const scaled = value.numerator * scale * 2n + value.denominator;
  return { numerator: scaled / (value.denominator * 2n), denominator: scale };
}


/** Significant bits of a double. */
const doubleSignificandBits = 53;
/** Exponent of the least significant bit of the smallest subnormal double, 2^-1074. */
const doubleExponentMin = -1074;

/** The double nearest a non-negative rational, ties to even, as Number() rounds a decimal. */
export function nearestDouble(value: Rational): number {
  if (value.numerator === 0n) return 0;
  // value / 2^exponent has 53 bits before the point: bit lengths place it within a factor of
  // two of that, and one comparison settles which side.
  let exponent = value.numerator.toString(2).length - value.denominator.toString(2).length - doubleSignificandBits;
  if (compare(scaleByPowerOfTwo(value, -exponent), { numerator: 2n ** BigInt(doubleSignificandBits), denominator: 1n }) >= 0) exponent += 1;
  // Below the normal range a double has fewer bits: round at its smallest unit instead.
  exponent = Math.max(exponent, doubleExponentMin);
  const scaled = scaleByPowerOfTwo(value, -exponent);
  let significand = scaled.numerator / scaled.denominator;
  const twiceRemainder = 2n * (scaled.numerator % scaled.denominator);
  if (twiceRemainder > scaled.denominator || (twiceRemainder === scaled.denominator && significand % 2n === 1n)) significand += 1n;
  // significand ≤ 2^53 is exact as a number, and so is its product with a power of two that is a double.
  return Number(significand) * 2 ** exponent;
}

function scaleByPowerOfTwo(value: Rational, exponent: number): Rational {
  return exponent >= 0
    ? { numerator: value.numerator << BigInt(exponent), denominator: value.denominator }
    : { numerator: value.numerator, denominator: value.denominator << BigInt(-exponent) };
}

/** The next double above (direction 1) or below (−1) a positive double. */
export function adjacentDouble(number: number, direction: 1 | -1): number {
  assert(number > 0 && Number.isFinite(number), 'adjacentDouble takes a positive finite double');
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, number);
  view.setBigUint64(0, view.getBigUint64(0) + BigInt(direction));
  return view.getFloat64(0);
}

/**
 * Exact: every value shown this way is a decimal (a datasheet figure, or a product of them),
 * whose denominator is a power of ten, so as many digits as the denominator has show all of it.
 */
export function formatExact(value: Rational): string {
  const fractionDigits = value.denominator.toString().length - 1;
  assert(10n ** BigInt(fractionDigits) === value.denominator, 'formatExact is given decimals only');
  return formatRounded(value, fractionDigits);
}

/**
 * Two decimals (as datasheets publish PD), or more where two would make the shown number look
 * equal to the threshold, or on its other side: 5.9199 is shown "5.9199 < 5.92", not "5.92 < 5.92".
 */
export function formatDecisive(value: Rational, thresholds: readonly Rational[]): string {
  // A value other than a threshold differs from it by at least 1 / (both denominators), so
  // rounding to as many decimals as their product has digits lands on the value's side; a
  // value equal to a threshold is shown as it by then too.
  const digitsMax = Math.max(2, ...thresholds.map((threshold) => (value.denominator * threshold.denominator).toString().length));
  for (let digits = 2; digits <= digitsMax; digits++) {
    const shown = roundTo(value, digits);
    if (thresholds.every((threshold) => compare(shown, threshold) === compare(value, threshold))) return formatRounded(value, digits);
  }
  assert(false, 'formatDecisive settles every threshold within digitsMax decimals');
}

/** Rounded half up, trailing zeros dropped, thousands separated: 20919.2 -> "20,919.2". */
export function formatRounded(value: Rational, fractionDigits: number): string {
  const rounded = roundTo(value, fractionDigits);
  const integerPart = rounded.numerator / rounded.denominator;
  const fractionPart = (rounded.numerator % rounded.denominator).toString().padStart(fractionDigits, '0').replace(/0+$/, '');
  const integerText = integerPart.toLocaleString('en-US');
  return fractionPart.length === 0 ? integerText : `${integerText}.${fractionPart}`;
}

export function formatThreshold(threshold: number): string {
  return formatExact(exactDecimal(threshold));
}
