import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeUscc, makeUscc, normaliseUscc, organisationCodeCheckCharacter, usccAlphabet, usccCheckCharacter, usccWeights, validateUscc } from './uscc.ts';

/**
 * Real codes as published in business registration records. The first four are widely cited
 * for well-known companies; the rest come from python-stdnum's list of codes found online
 * (tests/test_cn_uscc.doctest), chosen to cover check characters that are digits, letters
 * and '0', and organisation codes containing 'X' and letters.
 */
const publishedCodes = [
  '91330100716105852F', // Alibaba (China) Network Technology Co., Ltd., Hangzhou
  '91440300708461136T', // Tencent Technology (Shenzhen) Co., Ltd.
  '914403001922038216', // Huawei Technologies Co., Ltd., Shenzhen
  '91110000600037341L',
  '121200004013590816', // a public institution (authority 1, type 2)
  '91110000710926094P',
  '91310115MA1K3BTP2B',
  '9144030071526726XG',
  '91152201078371135X',
  '911522010783762860',
  '92340602MA2PBMEM24', // individual business (type 2)
  '91620105L015101280',
  '91340603MA2UJXXCXF',
] as const;

/** A 17-character body drawn from the code alphabet with a well-formed head (positions 1-8). */
const bodyArbitrary = fc
  .tuple(
    fc.constantFrom('1', '5', '9', 'Y'),
    fc.integer({ min: 1, max: 9 }),
    fc.stringMatching(/^[0-9]{6}$/),
    fc.array(fc.constantFrom(...usccAlphabet), { minLength: 9, maxLength: 9 }),
  )
  .map(([authority, type, division, subject]) => `${authority}${type}${division}${subject.join('')}`);

describe('usccCheckCharacter', () => {
  it('uses the weights of GB 32100-2015, which are 3^i mod 31', () => {
    const powers = Array.from({ length: 17 }, (_, index) => Number(3n ** BigInt(index) % 31n));
    expect(usccWeights).toEqual(powers);
  });

  it('gives the published check character of every real code', () => {
    for (const code of publishedCodes) {
      expect(usccCheckCharacter(code.slice(0, 17)), code).toBe(code[17]);
    }
  });

  it("writes a weighted sum that is a multiple of 31 as '0', not as a 32nd character", () => {
    const weightedSum = (body: string) => [...body].reduce((sum, character, index) => sum + usccAlphabet.indexOf(character) * (usccWeights[index] as number), 0);
    const body16 = '9111000060003734';
    const zeroSumBody = [...usccAlphabet].map((last) => body16 + last).find((body) => weightedSum(body) % 31 === 0);
    expect(zeroSumBody).toBeDefined();
    expect(usccCheckCharacter(zeroSumBody as string)).toBe('0');
    expect(validateUscc('911522010783762860')).toEqual({ ok: true }); // a real code ending in '0'
  });

  it('asserts on a body of the wrong length or alphabet (a programming error)', () => {
    expect(() => usccCheckCharacter('9133010071610585')).toThrow(/17 characters, got 16/);
    expect(() => usccCheckCharacter('9133010071610585I')).toThrow(/position 17/);
  });
});

describe('organisationCodeCheckCharacter', () => {
  it('gives the GB 11714 check character (position 17) of every real code, letters and X included', () => {
    for (const code of publishedCodes) {
      expect(organisationCodeCheckCharacter(code.slice(8, 16)), code).toBe(code[16]);
    }
    expect(organisationCodeCheckCharacter('71526726')).toBe('X'); // 9144030071526726XG
  });

  it("writes 11 as '0' (a weighted sum that is a multiple of 11)", () => {
    expect(organisationCodeCheckCharacter('MB000000')).toBe('0'); // M = 22, B = 11: 22·3 + 11·7 = 143 = 13·11
  });

  it('is not required by validateUscc: a code whose organisation code fails it is still valid', () => {
    const code = makeUscc('11100000MB0000001');
    expect(organisationCodeCheckCharacter(code.slice(8, 16))).not.toBe(code[16]);
    expect(validateUscc(code)).toEqual({ ok: true });
  });

  it('asserts on anything but 8 characters of 0-9 and A-Z (a programming error)', () => {
    expect(() => organisationCodeCheckCharacter('7152672')).toThrow(/8 characters/);
    expect(() => organisationCodeCheckCharacter('7152672a')).toThrow(/8 characters/);
  });
});

describe('validateUscc', () => {
  it('accepts real published codes', () => {
    for (const code of publishedCodes) expect(validateUscc(code), code).toEqual({ ok: true });
  });

  it('says when the length is wrong', () => {
    expect(validateUscc('91330100716105852')).toEqual({ ok: false, reason: 'a Unified Social Credit Code has 18 characters, got 17' });
    expect(validateUscc('')).toMatchObject({ ok: false, reason: expect.stringContaining('got 0') });
  });

  it('names a bad character and its position', () => {
    expect(validateUscc('9133010071610585IF')).toEqual({
      ok: false,
      reason: 'bad character "I" at position 17: only 0-9 and A-Z without I, O, S, V, Z are used',
    });
    expect(validateUscc('91330100716105852f')).toMatchObject({ ok: false, reason: expect.stringContaining('at position 18') });
    for (const letter of ['I', 'O', 'S', 'V', 'Z']) {
      expect(validateUscc(`91330100${letter}16105852F`)).toMatchObject({ ok: false, reason: expect.stringContaining('position 9') });
    }
  });

  it('checks the registration authority, organisation type and division code', () => {
    expect(validateUscc(makeUsccUnchecked('B1330100716105852'))).toMatchObject({ ok: false, reason: expect.stringContaining('registration authority code "B" at position 1') });
    expect(validateUscc(makeUsccUnchecked('9A330100716105852'))).toMatchObject({ ok: false, reason: expect.stringContaining('organisation type code "A" at position 2') });
    expect(validateUscc(makeUsccUnchecked('90330100716105852'))).toMatchObject({ ok: false, reason: expect.stringContaining('position 2') });
    expect(validateUscc(makeUsccUnchecked('9133A100716105852'))).toEqual({
      ok: false,
      reason: 'bad administrative division code "33A100" at positions 3-8: expected 6 digits',
    });
    // Letters the standard allows in position 1.
    for (const authority of ['A', 'N', 'Y']) expect(validateUscc(makeUscc(`${authority}1330100716105852`))).toEqual({ ok: true });
  });

  it('names the expected check character', () => {
    expect(validateUscc('91330100716105852G')).toEqual({ ok: false, reason: 'wrong check character "G" at position 18: expected "F"' });
  });

  it('refuses every one-character change of a real code', () => {
    for (const code of publishedCodes) {
      for (let position = 0; position < code.length; position++) {
        for (const replacement of usccAlphabet) {
          if (replacement === code[position]) continue;
          const changed = code.slice(0, position) + replacement + code.slice(position + 1);
          expect(validateUscc(changed).ok, changed).toBe(false);
        }
      }
    }
  });

  it('detects any single-character substitution (property)', () => {
    fc.assert(
      fc.property(bodyArbitrary, fc.integer({ min: 0, max: 17 }), fc.integer({ min: 1, max: 30 }), (body, position, shift) => {
        const code = makeUscc(body);
        expect(validateUscc(code)).toEqual({ ok: true });
        const original = usccAlphabet.indexOf(code[position] as string);
        const replacement = usccAlphabet[(original + shift) % usccAlphabet.length] as string;
        const changed = code.slice(0, position) + replacement + code.slice(position + 1);
        expect(validateUscc(changed).ok).toBe(false);
      }),
      { seed: 32100, numRuns: 5_000 },
    );
  });

  it('detects any swap of two different adjacent characters in positions 1-17 (property)', () => {
    // Weights go up by a factor of 3 each step, so a swap changes the sum by 2(a-b)w mod 31,
    // never 0 for a != b since 31 is prime.
    fc.assert(
      fc.property(bodyArbitrary, fc.integer({ min: 0, max: 15 }), (body, position) => {
        const code = makeUscc(body);
        const [first, second] = [code[position] as string, code[position + 1] as string];
        fc.pre(first !== second);
        const swapped = code.slice(0, position) + second + first + code.slice(position + 2);
        expect(validateUscc(swapped).ok).toBe(false);
      }),
      { seed: 2015, numRuns: 2_000 },
    );
  });
});

describe('makeUscc', () => {
  it('appends the check character, giving a valid code', () => {
    expect(makeUscc('91330100716105852')).toBe('91330100716105852F');
    expect(validateUscc(makeUscc('91110108MA00DEMQ1'))).toEqual({ ok: true });
  });

  it('asserts on a malformed body, since demo data with a bad code is a programming error', () => {
    expect(() => makeUscc('9133010071610585')).toThrow(/17 characters/);
    expect(() => makeUscc('91330100DEMQCQDEO')).toThrow(/"O" at position 17/);
    expect(() => makeUscc('9133X100716105852')).toThrow(/administrative division/);
  });
});

describe('normaliseUscc and describeUscc', () => {
  it('removes grouping and lower case', () => {
    expect(normaliseUscc(' 91 330100 716105852f ')).toBe('91330100716105852F');
    expect(normaliseUscc('91-330100-716105852-F')).toBe('91330100716105852F');
  });

  it('reads the parts of a valid code', () => {
    expect(describeUscc('91330100716105852F')).toEqual({
      registrationAuthorityCode: '9',
      registrationAuthority: 'industry and commerce (工商)',
      organisationTypeCode: '1',
      organisationType: 'enterprise',
      administrativeDivisionCode: '330100',
      subjectIdentifier: '716105852',
      checkCharacter: 'F',
    });
    expect(describeUscc(makeUscc('Y7110000716105852')).organisationType).toBeUndefined();
  });
});

/** A code with a correct check character over a body that may itself be malformed. */
function makeUsccUnchecked(first17: string): string {
  const replaceable = [...first17].map((character) => (usccAlphabet.includes(character) ? character : '0')).join('');
  return first17 + usccCheckCharacter(replaceable);
}
