import { describe, expect, it } from 'vitest';
import { currencyCodes, isCurrencyCode } from './currencies.ts';

describe('ISO 4217 currency codes', () => {
  it('are the 155 current currencies, three capital letters each, without funds, metals, units of account, XTS, XXX or withdrawn codes', () => {
    expect(currencyCodes.size).toBe(155);
    for (const code of currencyCodes) expect(code).toMatch(/^[A-Z]{3}$/);
    for (const code of ['USD', 'CNY', 'EUR', 'JPY', 'GBP', 'KRW', 'TWD', 'HKD', 'VES', 'VED', 'ZWG', 'SLE', 'XCG', 'XOF']) expect(isCurrencyCode(code), code).toBe(true);
    for (const code of ['ZZZ', 'XXX', 'XTS', 'XAU', 'XDR', 'USN', 'CLF', 'HRK', 'BGN', 'ANG', 'ZWL', 'SLL', 'usd', 'US', 'USDT']) expect(isCurrencyCode(code), code).toBe(false);
  });
});
