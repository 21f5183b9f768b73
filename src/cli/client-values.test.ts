import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { amountOf, idSegment, instantOf, parseDeadline, quoted } from './client-values.ts';
import { Failure } from './output.ts';

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

describe('instants', () => {
  const now = new Date('2026-03-01T00:00:00Z');
  it('refuse hour 24 (Date.parse reads 24:00 as the next day, the API refuses it) as a usage error, as any malformed time', () => {
    for (const typed of ['2027-01-01T24:00:00Z', '2027-01-01T24:00Z', '2027-01-01T24:00:00.000+08:00', '2027-01-01T25:00:00Z']) {
      expect(() => instantOf('--valid-to', typed), typed).toThrow(new Failure(`--valid-to must be a date and time with its offset, such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00; got "${typed}"`, 2));
      expect(() => parseDeadline(typed, now), typed).toThrow(Failure);
    }
    // The hours either side of it are taken.
    expect(instantOf('--valid-to', '2027-01-01T23:59:59Z')).toBe('2027-01-01T23:59:59.000Z');
    expect(instantOf('--valid-to', '2027-01-02T00:00:00Z')).toBe('2027-01-02T00:00:00.000Z');
    expect(instantOf('--valid-from', '2027-01-01T20:00:00-04:00')).toBe('2027-01-02T00:00:00.000Z');
  });
});

describe("a token's secret typed where an id or a number goes", () => {
  const secret = 'clt_TOK-7_s3cr3tS3cr3tS3cr3t';
  it('is refused as an id before anything is sent, without quoting it, naming the token to revoke', () => {
    expect(() => idSegment(secret)).toThrow(new Failure("a token's secret was given where an id goes (ids look like L-7, A-12 or SITE-3); nothing was sent. treat it as leaked and revoke its token: chipledger token revoke TOK-7", 2));
    expect(idSegment('L-7')).toBe('/L-7');
  });

  it('is never quoted back by a refusal', () => {
    expect(quoted(secret)).toBe("(a token's secret, not shown)");
    expect(() => parseDeadline(secret, new Date('2026-03-01T00:00:00Z'))).toThrow(Failure);
    try {
      parseDeadline(secret, new Date('2026-03-01T00:00:00Z'));
    } catch (error) {
      expect((error as Error).message).not.toContain('s3cr3t');
    }
  });
});
