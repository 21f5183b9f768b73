/**
 * The character lists core/text.ts gives the folds (and migration 050 copies into SQL), held to
 * the running Node's Unicode properties; and the problems identity fields are refused for.
 */
import { describe, expect, it } from 'vitest';
import { validateLei } from './lei.ts';
import { dashCharacters, identityProblem, invisibleCharacters, mixedScriptProblem, textProblem, whiteSpaceCharacters } from './text.ts';

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
    for (const bidi of ['\u061c', '\u200e', '\u200f', '\u202a', '\u202e', '\u2066', '\u2069']) {
      expect(textProblem(`ab${bidi}`)).toBe(`bidi control U+${bidi.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} at position 2`);
    }
    expect(textProblem('two\nlines\tand a tab')).toBeUndefined();
  });

  it('names line breaks and invisible characters in identity fields, astral ones by their code point', () => {
    expect(identityProblem('H200\nSXM')).toBe('line break U+000A at position 4');
    expect(identityProblem('H200\u2028SXM')).toBe('line break U+2028 at position 4');
    expect(identityProblem('H200\u200b SXM')).toBe('invisible character U+200B at position 4');
    expect(identityProblem('H200\u{e0041}')).toBe('invisible character U+E0041 at position 4');
    expect(identityProblem('H200 SXM')).toBeUndefined();
  });

  it('names a Cyrillic or Greek letter among Latin ones, and lets one script or Latin with Han be', () => {
    expect(mixedScriptProblem('\u041d200 SXM')).toBe('mixes Latin letters with Cyrillic ones: "Н" (U+041D) at position 0 looks like a Latin letter but is not one');
    expect(mixedScriptProblem('A\u0391')).toContain('Greek ones: "Α" (U+0391) at position 1');
    for (const fine of ['H200 SXM', 'Эльбрус-16С', 'Ηλέκτρα', '昇腾 Ascend 910B', '200 µm']) expect(mixedScriptProblem(fine), fine).toBeUndefined();
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
});
