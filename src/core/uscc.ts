/**
 * The Chinese Unified Social Credit Code (统一社会信用代码), GB 32100-2015: the 18-character
 * identifier of every legal entity and other organisation in China.
 *
 *   position 1      registration authority code (登记管理部门代码): 1-9, A, N or Y
 *   position 2      organisation type code (机构类别代码): a digit, meaning set per authority
 *   positions 3-8   administrative division of the registering office (GB/T 2260), 6 digits
 *   positions 9-17  subject identifier (the GB 11714 organisation code, whose own check
 *                   character is position 17: organisationCodeCheckCharacter)
 *   position 18     check character, GB/T 17710 "MOD 31-3" over positions 1-17
 *
 * Characters come from 0-9 and A-Z without I, O, S, V, Z (too easily read as 1, 0, 5, U, 2);
 * each has the value of its place in that 31-character alphabet.
 *
 * Known limitation: a few codes issued in early pilot regions before the standard (for example
 * some Fujian "91350100M000…" codes) are legal but fail the check character. They are refused
 * here and need an officer's manual override; we never weaken the check for everyone.
 */

import { assert } from './errors.ts';

/** The 31 code characters in value order: '0' = 0 … 'Y' = 30. */
export const usccAlphabet = '0123456789ABCDEFGHJKLMNPQRTUWXY';

const usccModulus = 31;
export const usccLength = 18;
const usccBodyLength = usccLength - 1;

/** Weight of position i (0-based) is 3^i mod 31, as tabulated in GB 32100-2015. */
export const usccWeights: readonly number[] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/**
 * Registration authority codes and the organisation type codes each one defines
 * (GB 32100-2015, table 1 as amended). Used to describe a code; validation only requires the
 * authority to be listed and the type to be a digit, so a newly added type never refuses a
 * real registered entity.
 */
export const usccRegistrationAuthorities: Readonly<Record<string, { authority: string; types: Readonly<Record<string, string>> }>> = {
  '1': { authority: 'institutional establishment (机构编制)', types: { '1': 'organ of state', '2': 'public institution', '3': 'mass organisation', '9': 'other' } },
  '2': { authority: 'foreign affairs (外交)', types: { '1': 'resident foreign news agency', '9': 'other' } },
  '3': {
    authority: 'justice administration (司法行政)',
    types: { '1': 'law firm', '2': 'notary office', '3': 'grassroots legal service', '4': 'judicial expertise institution', '5': 'arbitration commission', '9': 'other' },
  },
  '4': { authority: 'culture (文化)', types: { '1': 'foreign cultural centre in China', '9': 'other' } },
  '5': { authority: 'civil affairs (民政)', types: { '1': 'social organisation', '2': 'private non-enterprise unit', '3': 'foundation', '9': 'other' } },
  '6': { authority: 'tourism (旅游)', types: { '1': 'foreign tourism office', '2': 'Hong Kong, Macao or Taiwan tourism office', '9': 'other' } },
  '7': { authority: 'religion (宗教)', types: { '1': 'place of religious activity', '2': 'religious college', '9': 'other' } },
  '8': { authority: 'trade unions (工会)', types: { '1': 'grassroots trade union', '9': 'other' } },
  '9': { authority: 'industry and commerce (工商)', types: { '1': 'enterprise', '2': 'individual business', '3': "farmers' cooperative" } },
  A: { authority: 'Central Military Commission establishment office', types: { '1': 'military public institution', '9': 'other' } },
  N: { authority: 'agriculture (农业)', types: { '1': 'group collective economic organisation', '2': 'village collective', '3': 'township collective', '9': 'other' } },
  Y: { authority: 'other (其他)', types: { '1': 'other' } },
};

export type UsccValidation = { ok: true } | { ok: false; reason: string };

/** The value of a code character, or undefined when it is not in the alphabet. */
function characterValue(character: string): number | undefined {
  const value = usccAlphabet.indexOf(character);
  return value === -1 || character.length !== 1 ? undefined : value;
}

/**
 * The check character for the first 17 characters of a code.
 * Throws when `first17` is not 17 alphabet characters: callers validate input first
 * (validateUscc), so a bad argument here is a programming error.
 */
export function usccCheckCharacter(first17: string): string {
  assert(first17.length === usccBodyLength, `usccCheckCharacter needs ${usccBodyLength} characters, got ${first17.length}`);
  let sum = 0;
  for (let index = 0; index < usccBodyLength; index++) {
    const value = characterValue(first17[index] as string);
    assert(value !== undefined, `usccCheckCharacter got ${JSON.stringify(first17[index])} at position ${index + 1}, not a code character`);
    sum += value * (usccWeights[index] as number);
  }
  // 31 - (sum mod 31), where 31 itself is written as '0'.
  return usccAlphabet[(usccModulus - (sum % usccModulus)) % usccModulus] as string;
}

/** GB 11714-1997 weights of an organisation code's positions 1-8, for its check character (position 9). */
export const organisationCodeWeights: readonly number[] = [3, 7, 9, 10, 5, 8, 4, 2];
const organisationCodeModulus = 11;

/**
 * The GB 11714-1997 check character of an organisation code (positions 9-17 of a code) from
 * its first 8 characters: 11 minus the weighted sum mod 11, with digits at their value and
 * letters A-Z at 10-35; 10 is written 'X' and 11 '0'. Codes issued under GB 32100 follow it,
 * but validateUscc does not require it: pre-2015 pilot codes may not (see the header), and a
 * registered entity is never refused for its registry's numbering. Demo data and tests use it
 * to make codes as real as the ones issued. Throws when `first8` is not 8 of 0-9 and A-Z.
 */
export function organisationCodeCheckCharacter(first8: string): string {
  assert(/^[0-9A-Z]{8}$/.test(first8), `organisationCodeCheckCharacter needs 8 characters of 0-9 and A-Z, got ${JSON.stringify(first8)}`);
  let sum = 0;
  for (let index = 0; index < first8.length; index++) {
    const character = first8[index] as string;
    const value = character <= '9' ? Number(character) : character.charCodeAt(0) - 'A'.charCodeAt(0) + 10;
    sum += value * (organisationCodeWeights[index] as number);
  }
  const check = organisationCodeModulus - (sum % organisationCodeModulus);
  return check === 10 ? 'X' : check === 11 ? '0' : String(check);
}

/** Why the first 17 characters are not a well-formed code body, or undefined when they are. */
function bodyProblem(code: string): string | undefined {
  for (let index = 0; index < code.length; index++) {
    const character = code[index] as string;
    if (characterValue(character) === undefined) {
      return `bad character ${JSON.stringify(character)} at position ${index + 1}: only 0-9 and A-Z without I, O, S, V, Z are used`;
    }
  }
  const authority = code[0] as string;
  if (usccRegistrationAuthorities[authority] === undefined) {
    return `bad registration authority code ${JSON.stringify(authority)} at position 1: expected one of 1-9, A, N, Y`;
  }
  const organisationType = code[1] as string;
  if (!/^[1-9]$/.test(organisationType)) {
    return `bad organisation type code ${JSON.stringify(organisationType)} at position 2: expected a digit 1-9`;
  }
  const division = code.slice(2, 8);
  if (!/^[0-9]{6}$/.test(division)) {
    return `bad administrative division code ${JSON.stringify(division)} at positions 3-8: expected 6 digits`;
  }
  return undefined;
}

/**
 * Checks a code exactly as given: 18 characters, upper case, no spaces. Normalise first
 * (normaliseUscc) when input comes from people.
 */
export function validateUscc(code: string): UsccValidation {
  if (code.length !== usccLength) {
    return { ok: false, reason: `a Unified Social Credit Code has ${usccLength} characters, got ${code.length}` };
  }
  const problem = bodyProblem(code);
  if (problem !== undefined) return { ok: false, reason: problem };
  const expected = usccCheckCharacter(code.slice(0, usccBodyLength));
  const actual = code[usccBodyLength] as string;
  if (actual !== expected) {
    return { ok: false, reason: `wrong check character ${JSON.stringify(actual)} at position 18: expected ${JSON.stringify(expected)}` };
  }
  return { ok: true };
}

/** Upper case, without spaces and hyphens, as printed codes are sometimes grouped. */
export function normaliseUscc(input: string): string {
  return input.replace(/[\s-]/g, '').toUpperCase();
}

/**
 * A valid code from 17 characters: appends the check character. For demo data and tests,
 * to make fictional but well-formed codes. Throws when the 17 characters are not a well-formed
 * code body, since a demo seed with a bad code is a programming error.
 */
export function makeUscc(first17: string): string {
  assert(first17.length === usccBodyLength, `makeUscc needs ${usccBodyLength} characters, got ${first17.length}`);
  const problem = bodyProblem(first17);
  assert(problem === undefined, `makeUscc(${JSON.stringify(first17)}): ${problem}`);
  return first17 + usccCheckCharacter(first17);
}

/** What positions 1-8 say about a valid code, for display next to a party. */
export interface UsccParts {
  registrationAuthorityCode: string;
  registrationAuthority: string;
  organisationTypeCode: string;
  /** Undefined when the standard's table does not name this type for this authority. */
  organisationType: string | undefined;
  administrativeDivisionCode: string;
  subjectIdentifier: string;
  checkCharacter: string;
}

export function describeUscc(code: string): UsccParts {
  const validation = validateUscc(code);
  assert(validation.ok, `describeUscc(${JSON.stringify(code)}) needs a valid code: ${validation.ok ? '' : validation.reason}`);
  const authorityCode = code[0] as string;
  const typeCode = code[1] as string;
  const authority = usccRegistrationAuthorities[authorityCode];
  assert(authority !== undefined, `authority ${authorityCode} passed validation but is not listed`);
  return {
    registrationAuthorityCode: authorityCode,
    registrationAuthority: authority.authority,
    organisationTypeCode: typeCode,
    organisationType: authority.types[typeCode],
    administrativeDivisionCode: code.slice(2, 8),
    subjectIdentifier: code.slice(8, 17),
    checkCharacter: code[17] as string,
  };
}
