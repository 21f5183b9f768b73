/**
 * The Legal Entity Identifier, ISO 17442: 20 characters, A-Z and 0-9, of which the last two
 * are check digits by ISO 7064 MOD 97-10 over the whole code (letters valued A = 10 … Z = 35,
 * as in an IBAN): the code read as one number leaves 1 when divided by 97. It catches a
 * character mistyped, or two adjacent ones swapped, as an IBAN's does.
 */

export const leiLength = 20;
const leiPattern = /^[A-Z0-9]{18}[0-9]{2}$/;
const leiModulus = 97;

export type LeiValidation = { ok: true } | { ok: false; reason: string };

/** The code read as digits (letters as two each), mod 97, a digit at a time: no big integers. */
function mod97(code: string): number {
  let remainder = 0;
  for (const character of code) {
    const value = Number.parseInt(character, 36);
    remainder = (value < 10 ? remainder * 10 + value : remainder * 100 + value) % leiModulus;
  }
  return remainder;
}

/** Checks a code exactly as given: 20 characters, capitals, no spaces (the schema spells it so). */
export function validateLei(code: string): LeiValidation {
  if (code.length !== leiLength) return { ok: false, reason: `an LEI has ${leiLength} characters, got ${code.length}` };
  if (!leiPattern.test(code)) return { ok: false, reason: 'an LEI is 18 characters of A-Z and 0-9, then two check digits' };
  if (mod97(code) !== 1) return { ok: false, reason: 'its check digits (the last two) do not match the rest (ISO 7064 MOD 97-10): a character may be mistyped, or two swapped' };
  return { ok: true };
}

/** A valid code from its first 18 characters: appends the check digits. For tests. */
export function makeLei(first18: string): string {
  const check = 98 - mod97(`${first18}00`);
  return `${first18}${String(check).padStart(2, '0')}`;
}
