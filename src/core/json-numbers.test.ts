/**
 * Number tokens JSON.parse rounds to a whole number (json-numbers.ts): refused only when the
 * token's digits are not whole and its double is; never a token an honest serialiser writes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { numberTokenEnd, roundedNumberWords, roundedToWhole, roundedToWholeAt } from './json-numbers.ts';

/** The rule, by exact arithmetic: the token's value (digits × 10^-scale) is not whole, and its double is. */
function roundedExactly(token: string): boolean {
  const [, digitsBefore, digitsAfter = '', exponent = '0'] = /^-?([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(token)!;
  const scale = digitsAfter.length - Number(exponent);
  const whole = scale <= 0 || BigInt(`${digitsBefore}${digitsAfter}`) % 10n ** BigInt(scale) === 0n;
  return !whole && Number.isInteger(Number(token));
}

describe('roundedToWhole', () => {
  it.each([
    '5', '5.0', '5.000', '1e3', '1.5e1', '-0', '0', '0.0', '-0.0', '30.3', '0.1', '1e-7', '0.10000000000000001',
    '-5', '100E+2', '1.23e2', '12300e-2', '120e-1', '0e-400', '0.000e999999999', '1e400', '-1e400', '1.5',
    '9007199254740993', '123456789012345678901234567890', '4.5', '4.999999999999999', '0.5e1', '5e-1',
  ])('lets %s through: whole as written, or a fraction JSON.parse keeps a fraction', (token) => {
    expect(roundedToWhole(token)).toBe(false);
  });

  it.each([
    ['1e-400', '0'], ['-1e-400', '0'], ['4.9999999999999999', '5'], ['1000000000.00000001', '1000000000'],
    ['9007199254740991.4', '9007199254740991'], ['199.999999999999999', '200'],
    // The exponent moves the point: digits that look whole are not, and the other way round.
    ['49999999999999999e-16', '5'], ['0.49999999999999999e1', '5'], ['1E-324', '0'], ['2e-324', '0'],
    ['123456789012345678901.5', '123456789012345680000'], ['1.0000000000000000000000001e24', '1e+24'],
  ])('refuses %s, which JSON.parse reads as %s', (token, readAs) => {
    expect(roundedToWhole(token)).toBe(true);
    expect(roundedNumberWords(token).readAs).toBe(readAs);
  });

  it('decides an absurd exponent as fast as a small one, either way', () => {
    const started = performance.now();
    for (let round = 0; round < 1_000; round += 1) {
      expect(roundedToWhole('1e-999999999')).toBe(true);
      expect(roundedToWhole('-1.5e-9999999999999999999999999')).toBe(true);
      expect(roundedToWhole('1.5e999999999')).toBe(false);
      expect(roundedToWhole('0e-999999999')).toBe(false);
    }
    // 4,000 decisions; padding the exponent out to its value would take minutes for one.
    expect(performance.now() - started).toBeLessThan(2_000);
    // An exponent whose leading zeros hide a small value is still read as that value.
    expect(roundedToWhole('1.5e+0000000000000000000001')).toBe(false);
    expect(roundedToWhole('15e-0000000000000000000001')).toBe(false);
    expect(roundedToWhole('4.9999999999999999e00000000000000000000')).toBe(true);
  });

  it('never refuses what JSON.stringify or toPrecision(17) writes for a finite double', () => {
    fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (value) => {
      expect(roundedToWhole(JSON.stringify(value))).toBe(false);
      // toPrecision writes `e+`, which JSON takes; it never writes a bare point.
      expect(roundedToWhole(value.toPrecision(17))).toBe(false);
    }), { numRuns: 10_000 });
  });

  it('agrees with exact arithmetic (BigInt) on tokens near whole numbers, at every size and exponent', () => {
    const digit = fc.constantFrom('0', '0', '0', '9', '9', '9', '1', '4', '5', '8');
    const digits = (lengthMax: number) => fc.array(digit, { maxLength: lengthMax }).map((list) => list.join(''));
    // A fraction that starts with a run of 0s or 9s, as one rounded away does, then anything.
    const fraction = fc.tuple(fc.constantFrom('0', '9'), fc.integer({ min: 0, max: 25 }), digit, digits(8)).map(([run, length, first, rest]) => `${run.repeat(length)}${first}${rest}`);
    const token = fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 9 }), fc.oneof(digits(3), digits(20)), fc.option(fraction), fc.option(fc.integer({ min: -40, max: 40 })))
      .map(([negative, lead, integer, fraction, exponent]) => `${negative ? '-' : ''}${lead}${integer}${fraction === null ? '' : `.${fraction}`}${exponent === null ? '' : `e${exponent}`}`);
    fc.assert(fc.property(token, (text) => {
      expect(roundedToWhole(text), text).toBe(roundedExactly(text));
      const zeroLed = text.replace(/^(-?)[1-9]/, '$10');
      expect(roundedToWhole(zeroLed), zeroLed).toBe(roundedExactly(zeroLed));
    }), { numRuns: 20_000 });
  });

  it('refuses a nonzero whole number with a nonzero digit far enough after the point to be rounded away (0.000…1 stays a fraction)', () => {
    fc.assert(fc.property(fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }).filter((whole) => whole !== 0), fc.integer({ min: 17, max: 400 }), fc.integer({ min: 1, max: 9 }), (whole, zeros, digit) => {
      const token = `${whole}.${'0'.repeat(zeros)}${digit}`;
      expect(roundedToWhole(token), token).toBe(true);
      expect(roundedToWhole(`${whole}.${'0'.repeat(zeros)}0`)).toBe(false);
    }));
  });
});

describe('numberTokenEnd and roundedToWholeAt', () => {
  it('find a token in JSON text where it ends, and decide it in place', () => {
    const text = '{"units":4.9999999999999999,"n":[-1e-400],"m":5.0}';
    const start = text.indexOf('4.');
    const end = numberTokenEnd(text, start);
    expect(text.slice(start, end)).toBe('4.9999999999999999');
    expect(roundedToWholeAt(text, start, end)).toBe(true);
    const negative = text.indexOf('-1');
    expect(text.slice(negative, numberTokenEnd(text, negative))).toBe('-1e-400');
    const last = text.indexOf('5.0');
    expect(numberTokenEnd(text, last)).toBe(text.length - 1);
    expect(roundedToWholeAt(text, last, text.length - 1)).toBe(false);
  });

  it('quotes a long token cut to a bound', () => {
    const token = `1.${'0'.repeat(1_000_000)}1`;
    expect(roundedToWhole(token)).toBe(true);
    expect(roundedNumberWords(token)).toEqual({ number: `1.${'0'.repeat(38)}…`, readAs: '1' });
  });
});
