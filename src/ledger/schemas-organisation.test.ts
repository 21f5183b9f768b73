/**
 * An organisation's identifiers as the schema holds them (ledger/schemas.ts): in NFKC and
 * capitals, without spaces or hyphens, only A-Z, 0-9 and ".", and at most referenceLengthMax
 * characters in that spelling, not only as sent (s17 review of events as the public record,
 * finding 4; s21 identity review, finding 3).
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

  it('holds one in NFKC and capitals without spaces or hyphens, so that spellings of one code are one', () => {
    // Full width (as Chinese input methods type it), in groups as printed, 'ﬃ' for FFI.
    for (const spelt of ['５４９３００１kjtiigc8y1r12', '5493 001K JTII GC8Y 1R12', '5493-001K-JTII-GC8Y-1R12', '\u3000 5493001kjtiigc8y1r12 ']) {
      expect(register({ lei: spelt }).data?.identifiers.lei, spelt).toBe('5493001KJTIIGC8Y1R12');
    }
    expect(register({ duns: '\ufb03-1.2' }).data?.identifiers.duns).toBe('FFI1.2');
  });

  it('refuses a character outside A-Z, 0-9, "." and "-", naming it (s21 identity review, finding 3)', () => {
    // 'ΐ' in capitals is Greek Ι and two accents; a zero-width space, a BOM and an en dash are not separators.
    for (const [value, named] of [['ab\u0390', '(U+0399) at position 2'], ['AB\u200bC', '(U+200B) at position 2'], ['AB\ufeffC', '(U+FEFF) at position 2'], ['AB\u2013C', '(U+2013) at position 2']] as const) {
      const result = register({ duns: value });
      expect(result.success, named).toBe(false);
      expect(invalidInput('organisation.register', result.error!.issues).message, named).toContain(`identifiers.duns: has the character "${String.fromCodePoint(Number.parseInt(named.slice(3, 7), 16))}" ${named} once in NFKC and capitals; an identifier is written with A-Z, 0-9, "." and "-"`);
    }
  });
});
