import { describe, expect, it } from 'vitest';
import { newSerial, serial } from '../ledger/schemas.ts';
import { jsonSchemaOf } from '../server/openapi-components.ts';
import { newSerialPattern, problemOfNewSerial, problemOfSerial, quotedSerial, serialLengthMax, serialPattern, unitNotFoundMessage } from './serial.ts';

describe('problemOfNewSerial', () => {
  it('takes capitals, digits and . _ : / - after a first letter or digit', () => {
    for (const good of ['A', '0', 'ABC1654X01', 'SN/003:X.Y_Z-1', 'A'.repeat(serialLengthMax)]) expect(problemOfNewSerial(good), good).toBeUndefined();
  });

  it('says what is wrong (s21 identity, finding 8): the first character, the character at fault named and escaped, or the capitals to send', () => {
    expect(problemOfNewSerial('')).toBe('the serial is empty');
    expect(problemOfNewSerial('-AB01')).toBe('serial "-AB01" must start with a letter or digit');
    expect(problemOfNewSerial('ZW\u200b01')).toBe('serial "ZW\\u200b01" has the character U+200B; only capital ASCII letters, digits and . _ : / - are allowed');
    expect(problemOfNewSerial('\u0405N01')).toBe('serial "ЅN01" has the character "Ѕ" (U+0405); only capital ASCII letters, digits and . _ : / - are allowed');
    expect(problemOfNewSerial('abc1654x01')).toBe('serial "abc1654x01" has lower-case letters; serials are written in capitals: write it as ABC1654X01');
    // A character other than a letter is said first: capitals alone would not mend the serial.
    expect(problemOfNewSerial('ab 01')).toMatch(/^serial "ab 01" has the character U\+0020;/);
    expect(problemOfNewSerial('-ab01')).toBe('serial "-ab01" must start with a letter or digit');
    expect(problemOfNewSerial('S'.repeat(serialLengthMax + 1))).toBe(`serial "${'S'.repeat(20)}"… is ${serialLengthMax + 1} characters long; at most ${serialLengthMax} (serialLengthMax)`);
  });

  it('finds a problem exactly where newSerialPattern refuses, and the capitals it names pass', () => {
    const samples = ['a', 'Ab', 'aB-1', 'A_b', 'ﬃ1', 'ß1', 'ı1', 'A\u0301', '1.', '9/', 'Z:'];
    for (const sample of samples) {
      const problem = problemOfNewSerial(sample);
      expect(problem === undefined, sample).toBe(newSerialPattern.test(sample));
      const spelling = /write it as (.*)$/.exec(problem ?? '')?.[1];
      if (spelling !== undefined) expect(newSerialPattern.test(spelling), spelling).toBe(true);
    }
  });

  it('is what the API schema of a manifest entry answers, one refusal a serial', () => {
    for (const bad of ['', '-AB01', 'ZW\u200b01', '\u0405N01', 'abc1654x01', 'S'.repeat(serialLengthMax + 1), '-a b']) {
      expect(newSerial.safeParse(bad).error?.issues.map((issue) => issue.message), JSON.stringify(bad)).toEqual([problemOfNewSerial(bad)]);
    }
  });
});

describe('problemOfSerial: a serial that names a unit (s21 ledger review, F1)', () => {
  it('takes a unit an earlier release made in lower case, and keeps every other rule of the form', () => {
    for (const good of ['abc1654x01', 'Sn/003:x.Y_z-1', 'ABC1654X01', 'a'.repeat(serialLengthMax)]) expect(problemOfSerial(good), good).toBeUndefined();
    expect(problemOfSerial('')).toBe('the serial is empty');
    expect(problemOfSerial('-ab01')).toBe('serial "-ab01" must start with a letter or digit');
    expect(problemOfSerial('ab 01')).toBe('serial "ab 01" has the character U+0020; only ASCII letters, digits and . _ : / - are allowed');
    expect(problemOfSerial('\u0455n01')).toBe('serial "ѕn01" has the character "ѕ" (U+0455); only ASCII letters, digits and . _ : / - are allowed');
    expect(problemOfSerial('s'.repeat(serialLengthMax + 1))).toBe(`serial "${'s'.repeat(20)}"… is ${serialLengthMax + 1} characters long; at most ${serialLengthMax} (serialLengthMax)`);
  });

  it('finds a problem exactly where serialPattern refuses, and is what the API schema of a unit’s serial answers', () => {
    for (const sample of ['a', 'Ab', 'aB-1', 'A_b', 'ﬃ1', 'ß1', 'ı1', 'A\u0301', '1.', '9/', 'Z:', '_a', 'a b']) {
      expect(problemOfSerial(sample) === undefined, sample).toBe(serialPattern.test(sample));
      expect(serial.safeParse(sample).error?.issues.map((issue) => issue.message), sample).toEqual(problemOfSerial(sample) === undefined ? undefined : [problemOfSerial(sample)]);
    }
  });

  it('is documented in the OpenAPI document as it is checked: a manifest entry in capitals, a unit’s serial in either case', () => {
    expect(jsonSchemaOf(newSerial)).toMatchObject({ minLength: 1, maxLength: serialLengthMax, pattern: newSerialPattern.source });
    expect(jsonSchemaOf(serial)).toMatchObject({ minLength: 1, maxLength: serialLengthMax, pattern: serialPattern.source });
    expect(newSerialPattern.source).toBe('^[A-Z0-9][A-Z0-9._:/-]*$');
    expect(serialPattern.source).toBe('^[A-Za-z0-9][A-Za-z0-9._:/-]*$');
  });

  it('says, of a unit not found under a lower-case serial, the capitals it may have meant', () => {
    expect(unitNotFoundMessage('abc1654x01')).toBe('unit abc1654x01 was not found; serials are written in capitals: did you mean ABC1654X01?');
    expect(unitNotFoundMessage('Sn/03:x')).toBe('unit Sn/03:x was not found; serials are written in capitals: did you mean SN/03:X?');
    expect(unitNotFoundMessage('ABC1654X01')).toBe('unit ABC1654X01 was not found');
  });
});

describe('quotedSerial', () => {
  it('escapes controls, format and bidi characters and spaces other than U+0020, and keeps letters of any script', () => {
    expect(quotedSerial('A\u0000\u007f\u009b\u00a0\u200b\u202e\u2066\ufeff"\\ Ѕ序')).toBe('"A\\u0000\\u007f\\u009b\\u00a0\\u200b\\u202e\\u2066\\ufeff\\"\\\\ Ѕ序"');
    expect(quotedSerial('\u{e0001}')).toBe('"\\udb40\\udc01"');
  });
});
