import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { amountOf } from './client-values.ts';

describe('amountOf', () => {
  it("gives a value in minor units in its currency's units, by ISO 4217's digits", () => {
    expect(amountOf(100_000, 'USD')).toBe('1,000.00 USD');
    expect(amountOf(5, 'EUR')).toBe('0.05 EUR');
    expect(amountOf(0, 'USD')).toBe('0.00 USD');
    expect(amountOf(100_000, 'JPY')).toBe('100,000 JPY');
    expect(amountOf(1_234_567, 'BHD')).toBe('1,234.567 BHD');
    // ISO 4217's minor unit, not the digits ICU shows a price with (0 for IQD).
    expect(amountOf(1_500, 'IQD')).toBe('1.500 IQD');
    // Exact up to the largest value the API takes.
    expect(amountOf(limits.valueMinorMax, 'USD')).toBe('90,071,992,547,409.91 USD');
  });

  it('shows what is not a whole number of minor units as it came, not guessed at', () => {
    expect(amountOf(1.5, 'USD')).toBe('1.5 (minor units) USD');
    expect(amountOf('100', 'USD')).toBe('100 (minor units) USD');
  });
});
