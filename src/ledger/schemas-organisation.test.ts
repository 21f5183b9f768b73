/**
 * An organisation's name and identifiers as the schema holds them (ledger/schemas.ts); identifiers in NFKC and
 * capitals, without the spaces, hyphens, dots and slashes of its groups, only A-Z, 0-9, "&"
 * and Latin letters, and at most referenceLengthMax characters in that spelling, not only as
 * sent (s17 review of events as the public record, finding 4; s21 identity review, finding 3;
 * s21 ledger review, findings 3 and 4).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
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

  it('holds one in NFKC and capitals without the separators of its groups, so that spellings of one code are one', () => {
    // Full width (as Chinese input methods type it), in groups as printed, 'ﬃ' for FFI.
    for (const spelt of ['５４９３００１kjtiigc8y1r12', '5493 001K JTII GC8Y 1R12', '5493-001K-JTII-GC8Y-1R12', '\u3000 5493001kjtiigc8y1r12 ', '5493.001K.JTII.GC8Y.1R12']) {
      expect(register({ lei: spelt }).data?.identifiers.lei, spelt).toBe('5493001KJTIIGC8Y1R12');
    }
    expect(register({ duns: '\ufb03-1.2' }).data?.identifiers.duns).toBe('FFI12');
    // A Swiss UID with and without its dots is one code (s21 ledger review, finding 3).
    for (const spelt of ['CHE-123.456.789', 'CHE123456789', 'CHE 123 456 789', 'che-123.456.789', 'ＣＨＥ－１２３．４５６．７８９']) {
      expect(register({ uid: spelt }).data?.identifiers.uid, spelt).toBe('CHE123456789');
    }
  });

  it('takes real codes with dots, slashes, "&" and Latin letters (s21 ledger review, finding 3)', () => {
    for (const [spelt, stored] of [
      ['12.345.678/0001-95', '12345678000195'], // a Brazilian CNPJ
      ['2001/012345/07', '200101234507'], // a South African company number
      ['A&B010101AAA', 'A&B010101AAA'], ['MUÑ850101AB1', 'MUÑ850101AB1'], ['mun\u0303850101ab1', 'MUÑ850101AB1'], // Mexican RFCs
      ['DE 123.456.789', 'DE123456789'], ['BÜ 12', 'BÜ12'],
    ] as const) {
      expect(register({ code: spelt }).data?.identifiers.code, spelt).toBe(stored);
    }
  });

  it('refuses a character outside its alphabet, naming it, and Cyrillic and Greek letters by their script (s21 identity review, finding 3)', () => {
    // 'ΐ' in capitals is Greek Ι and two accents; a zero-width space, a BOM, an en dash and a
    // mark that composes with no letter are not part of a code.
    for (const [value, named] of [
      ['ab\u0390', '"Ι" (U+0399, a Greek letter) at position 2'], ['AB\u0421D', '"С" (U+0421, a Cyrillic letter) at position 2'],
      ['AB\u200bC', '"\u200b" (U+200B) at position 2'], ['AB\ufeffC', '"\ufeff" (U+FEFF) at position 2'], ['AB\u2013C', '"–" (U+2013) at position 2'],
      ['Q\u0303', '"\u0303" (U+0303) at position 1'], ['AB_C', '"_" (U+005F) at position 2'], ['腾讯', '"腾" (U+817E) at position 0'],
    ] as const) {
      const result = register({ duns: value });
      expect(result.success, named).toBe(false);
      // What the message says of "-" is that it is left out, as it is.
      expect(invalidInput('organisation.register', result.error!.issues).message, named).toBe(`couldn't read the organisation.register request: identifiers.duns: has ${named} once in NFKC and capitals; an identifier holds A-Z, 0-9, "&" and Latin letters (Ñ, Ü), grouped by spaces, "-", "." or "/", which are dropped`);
    }
  });

  it('refuses a character that an older database folds otherwise, as sent (s21 ledger review, finding 4)', () => {
    const result = register({ duns: 'A\u{1ccd6}1' });
    expect(invalidInput('organisation.register', result.error!.issues).message).toBe("couldn't read the organisation.register request: identifiers.duns: has the character U+1CCD6 at position 1, which an older database (Unicode 13.0: PostgreSQL 13) may fold otherwise than the ledger; past U+FFFF only CJK ideographs are taken");
  });

  it('describes the alphabet and the spelling in the OpenAPI document', () => {
    const schema = z.toJSONSchema(organisationRegister, { io: 'input', unrepresentable: 'any' }) as unknown as { properties: { identifiers: { additionalProperties: { description?: string } } } };
    expect(schema.properties.identifiers.additionalProperties.description).toContain('which holds A-Z, 0-9, "&" and Latin letters (Ñ, Ü), grouped by spaces, "-", "." or "/", which are dropped');
  });
});

describe('organisation names', () => {
  // trim() keeps a zero-width space, and the document's pattern (\S) matches one: such a name
  // was taken as not blank (the input review of session 24).
  it('refuses one of white space or invisible characters alone, and keeps one that holds a visible character without the space around it', () => {
    for (const blank of ['\u200B', ' \u200B\u2060 ', '\uFEFF', '\u3000', '\u3164', '\uFE0F', '\u115F\u1160']) {
      const result = organisationRegister.safeParse({ name: blank, country: 'GB', roles: ['auditor'] });
      expect(result.success, JSON.stringify(blank)).toBe(false);
      expect(result.error!.issues[0]!.path, JSON.stringify(blank)).toEqual(['name']);
    }
    const kept = organisationRegister.safeParse({ name: ' \u3000Acme\u200BWorks Ltd\n', country: 'GB', roles: ['auditor'] });
    expect(kept.success && kept.data.name).toBe('Acme\u200BWorks Ltd');
  });
});
