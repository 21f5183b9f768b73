/**
 * The character lists core/text.ts gives the folds (and migration 050 copies into SQL), held to
 * the running Node's Unicode properties; and the problems identity fields are refused for.
 */
import { describe, expect, it } from 'vitest';
import { validateLei } from './lei.ts';
import { dashCharacters, identityProblem, invisibleCharacters, lookAlikeScript, mixedScriptProblem, newerNormalisingCharacters, newerUnicodeProblem, textProblem, whiteSpaceCharacters } from './text.ts';

/** Every code point but the surrogates, for which a listed class and a property must agree. */
function disagreements(listed: RegExp, property: RegExp): string[] {
  const found: string[] = [];
  for (let codePoint = 0; codePoint <= 0x10ffff; codePoint++) {
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) continue;
    const character = String.fromCodePoint(codePoint);
    if (listed.test(character) !== property.test(character)) found.push(`U+${codePoint.toString(16).toUpperCase()}`);
  }
  return found;
}

describe('the listed characters of the folds', () => {
  it('lists exactly Default_Ignorable_Code_Point as invisible', () => {
    expect(disagreements(new RegExp(`^[${invisibleCharacters}]$`, 'u'), /^\p{Default_Ignorable_Code_Point}$/u)).toEqual([]);
  });

  it('lists exactly what \\s matches as white space', () => {
    expect(disagreements(new RegExp(`^[${whiteSpaceCharacters}]$`, 'u'), /^\s$/u)).toEqual([]);
  });

  it('lists exactly Dash_Punctuation and the minus sign as dashes', () => {
    expect(disagreements(new RegExp(`^[${dashCharacters}]$`, 'u'), /^[\p{Pd}\u2212]$/u)).toEqual([]);
  });
});

describe('what text and identity fields are refused for', () => {
  it('names C1 controls and bidi controls in any text, by code point and position', () => {
    expect(textProblem('Acme\u009b31m')).toBe('control character U+009B at position 4');
    expect(textProblem('1 Main St\u0085')).toBe('control character U+0085 at position 9');
    for (const bidi of ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069']) {
      expect(textProblem(`ab${bidi}`)).toBe(`bidi control U+${bidi.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} at position 2`);
    }
    expect(textProblem('two\nlines\tand a tab')).toBeUndefined();
  });

  it('names a bidi control at the very start of a text, where an override reverses the whole field', () => {
    expect(textProblem('\u202EABC')).toBe('bidi control U+202E at position 0');
    expect(textProblem('\u2067Acme Ltd')).toBe('bidi control U+2067 at position 0');
  });

  it('refuses in an identity field all that textProblem refuses, before its own rules', () => {
    expect(identityProblem('H200\u0007')).toBe('control character U+0007 at position 4');
    expect(identityProblem('H200\u202E SXM')).toBe('bidi control U+202E at position 4');
  });

  it('takes the bidi marks in free text, which reorder nothing on their own, and refuses them in identity fields (s21 ledger review, finding 5)', () => {
    for (const mark of ['\u200e', '\u200f', '\u061c']) {
      expect(textProblem(`شركة الرقائق${mark} ABC`)).toBeUndefined();
      expect(identityProblem(`H200${mark}`)).toBe(`invisible character U+${mark.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} at position 4`);
    }
  });

  it('names line breaks and invisible characters in identity fields, astral ones by their code point', () => {
    expect(identityProblem('H200\nSXM')).toBe('line break U+000A at position 4');
    expect(identityProblem('H200\u2028SXM')).toBe('line break U+2028 at position 4');
    expect(identityProblem('H200\u200b SXM')).toBe('invisible character U+200B at position 4');
    expect(identityProblem('H200\u{e0041}')).toBe('invisible character U+E0041 at position 4');
    expect(identityProblem('H200 SXM')).toBeUndefined();
  });

  it('names a character that an older database may fold otherwise: past U+FFFF but CJK ideographs, and the BMP\'s newer normalising ones (s21 ledger review, finding 4)', () => {
    expect(newerUnicodeProblem('BIS-D-2026-000\u{1ccf1}')).toBe('the character U+1CCF1 at position 14, which an older database (Unicode 13.0: PostgreSQL 13) may fold otherwise than the ledger; past U+FFFF only CJK ideographs are taken');
    expect(newerUnicodeProblem('S\ua7f1')).toBe('the character U+A7F1 at position 1, which an older database (Unicode 13.0: PostgreSQL 13) may fold otherwise than the ledger; one added since Unicode 13.0 that normalisation changes');
    for (const [value, named] of [['S\ua7f1', 'U+A7F1 at position 1'], ['\ua7f2', 'U+A7F2 at position 0'], ['a\u1ac1', 'U+1AC1 at position 1'], ['H\u{1d400}', 'U+1D400 at position 1'], ['\u{1f600}', 'U+1F600 at position 0'], ['\u{10781}', 'U+10781 at position 0']] as const) {
      expect(newerUnicodeProblem(value), named).toContain(`the character ${named}, which an older database`);
    }
    // Planes 2 and 3 hold CJK ideographs only (Extensions B to J, and 3.1's compatibility ones): no decomposition and no combining class.
    for (const fine of ['\u{20000}', '\u{2a6df}', '\u{2f800}', '\u{30000}', '\u{323af}', '商务部〔2026〕第128号', 'H200 SXM', 'ＡＢＣ', '\u20c0']) expect(newerUnicodeProblem(fine), fine).toBeUndefined();
  });

  it('lists as newer normalising characters only ones that normalisation changes or that are marks', () => {
    const listed = new RegExp(`[${newerNormalisingCharacters}]`, 'u');
    for (let codePoint = 0; codePoint <= 0xffff; codePoint++) {
      const character = String.fromCodePoint(codePoint);
      if (!listed.test(character)) continue;
      expect(character.normalize('NFKD') !== character || /\p{M}/u.test(character), `U+${codePoint.toString(16)}`).toBe(true);
    }
  });

  it('names a Cyrillic or Greek letter among Latin ones, and lets one script or Latin with Han be', () => {
    expect(mixedScriptProblem('\u041d200 SXM')).toBe('mixes Latin letters with Cyrillic ones: "Н" (U+041D) at position 0 looks like a Latin letter but is not one');
    expect(mixedScriptProblem('A\u0391')).toContain('Greek ones: "Α" (U+0391) at position 1');
    for (const fine of ['H200 SXM', 'Эльбрус-16С', 'Ηλέκτρα', '昇腾 Ascend 910B', '200 µm']) expect(mixedScriptProblem(fine), fine).toBeUndefined();
    expect(['\u0416', '\u0391', 'A', 'Ñ', '腾'].map(lookAlikeScript)).toEqual(['Cyrillic', 'Greek', undefined, undefined, undefined]);
  });
});

describe('validateLei (ISO 17442, MOD 97-10)', () => {
  it('takes published LEIs and refuses a character changed or two swapped', () => {
    for (const lei of ['5493001KJTIIGC8Y1R12', '529900T8BM49AURSDO55', 'HWUPKR0MPOU8FGXBT394']) expect(validateLei(lei), lei).toEqual({ ok: true });
    expect(validateLei('5493001KJTIIGC8Y1R13')).toMatchObject({ ok: false, reason: expect.stringContaining('check digits') });
    expect(validateLei('4593001KJTIIGC8Y1R12')).toMatchObject({ ok: false });
    expect(validateLei('5493001KJTIIGC8Y1R1')).toEqual({ ok: false, reason: 'an LEI has 20 characters, got 19' });
    expect(validateLei('5493001KJTIIGC8Y1RAB')).toMatchObject({ ok: false, reason: expect.stringContaining('two check digits') });
  });

  it('takes remainder 1 only: a code one less, which leaves 0, is refused', () => {
    // 5493001KJTIIGC8Y1R12 leaves 1; the same digits less one leave 0, which MOD 97-10 never gives a valid code.
    expect(validateLei('5493001KJTIIGC8Y1R12')).toEqual({ ok: true });
    expect(validateLei('5493001KJTIIGC8Y1R11')).toMatchObject({ ok: false, reason: expect.stringContaining('check digits') });
  });
});
