/**
 * An organisation's identifiers as the schema holds them (ledger/schemas.ts): trimmed, in
 * capitals, in NFC, and at most referenceLengthMax characters in that spelling, not only as
 * sent (s17 review of events as the public record, finding 4).
 */
import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { organisationRegister } from './schemas.ts';
import { invalidInput } from './refusals.ts';

const register = (identifiers: Record<string, string>) => organisationRegister.safeParse({ name: 'Identifier Holdings', country: 'GB', roles: ['auditor'], identifiers });

describe('organisation identifiers', () => {
  it('refuses one that capitals make longer than the bound, naming the field and the bound, as a 400 would', () => {
    const max = limits.referenceLengthMax;
    // 128 'ß' pass the bound as sent, and were stored as 256 'S'; 'ﬃ' becomes three letters.
    for (const value of ['ß'.repeat(max), 'ﬃ'.repeat(max), `${'A'.repeat(max - 1)}ß`]) {
      const result = register({ lei: value });
      expect(result.success, value.slice(0, 4)).toBe(false);
      const refusal = invalidInput('organisation.register', result.error!.issues);
      expect({ code: refusal.code, message: refusal.message }).toEqual({
        code: 'invalid_input',
        message: `couldn't read the organisation.register request: identifiers.lei: must be at most ${max} characters once trimmed and in capitals (referenceLengthMax)`,
      });
    }
  });

  it('takes one that is at the bound in capitals, and one that capitals make shorter than sent', () => {
    const max = limits.referenceLengthMax;
    expect(register({ lei: 'ß'.repeat(max / 2) })).toMatchObject({ success: true, data: { identifiers: { lei: 'SS'.repeat(max / 2) } } });
    expect(register({ lei: ` ${'a'.repeat(max - 2)} ` })).toMatchObject({ success: true, data: { identifiers: { lei: 'A'.repeat(max - 2) } } });
  });

  it('holds one in NFC after capitals, so that two spellings of one code are one', () => {
    // 'ΐ' in capitals is three code points, not in NFC; 'Ϊ́' is the same letter, in NFC.
    const lower = register({ duns: 'ab\u0390' });
    const upper = register({ duns: 'AB\u03AA\u0301' });
    expect(lower.data?.identifiers.duns).toBe('AB\u03AA\u0301');
    expect(upper.data?.identifiers.duns).toBe('AB\u03AA\u0301');
  });
});
