import { describe, expect, it } from 'vitest';
import { countryCodes, isCountryCode } from './countries.ts';

describe('ISO 3166-1 alpha-2 codes', () => {
  it('are the 249 officially assigned, two capital letters each, without the reserved and user-assigned ones', () => {
    expect(countryCodes.size).toBe(249);
    for (const code of countryCodes) expect(code).toMatch(/^[A-Z]{2}$/);
    for (const code of ['CN', 'US', 'GB', 'DE', 'KR', 'TW', 'HK', 'SS', 'BQ', 'CW', 'SX']) expect(isCountryCode(code), code).toBe(true);
    for (const code of ['XX', 'UK', 'EU', 'XK', 'ZZ', 'YU', 'AN', 'QO', 'cn']) expect(isCountryCode(code), code).toBe(false);
  });
});
