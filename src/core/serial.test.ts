import { describe, expect, it } from 'vitest';
import { serial } from '../ledger/schemas.ts';
import { problemOfSerial, quotedSerial, serialLengthMax, serialPattern } from './serial.ts';

describe('problemOfSerial', () => {
  it('takes capitals, digits and . _ : / - after a first letter or digit', () => {
    for (const good of ['A', '0', 'ABC1654X01', 'SN/003:X.Y_Z-1', 'A'.repeat(serialLengthMax)]) expect(problemOfSerial(good), good).toBeUndefined();
  });

  it('says what is wrong (s21 identity, finding 8): the first character, the character at fault named and escaped, or the capitals to send', () => {
    expect(problemOfSerial('')).toBe('the serial is empty');
    expect(problemOfSerial('-AB01')).toBe('serial "-AB01" must start with a letter or digit');
    expect(problemOfSerial('ZW\u200b01')).toBe('serial "ZW\\u200b01" has the character U+200B; only capital ASCII letters, digits and . _ : / - are allowed');
    expect(problemOfSerial('\u0405N01')).toBe('serial "ЅN01" has the character "Ѕ" (U+0405); only capital ASCII letters, digits and . _ : / - are allowed');
    expect(problemOfSerial('abc1654x01')).toBe('serial "abc1654x01" has lower-case letters; serials are written in capitals: write it as ABC1654X01');
    // A character other than a letter is said first: capitals alone would not mend the serial.
    expect(problemOfSerial('ab 01')).toMatch(/^serial "ab 01" has the character U\+0020;/);
    expect(problemOfSerial('-ab01')).toBe('serial "-ab01" must start with a letter or digit');
    expect(problemOfSerial('S'.repeat(serialLengthMax + 1))).toBe(`serial "${'S'.repeat(20)}"… is ${serialLengthMax + 1} characters long; at most ${serialLengthMax} (serialLengthMax)`);
  });

  it('finds a problem exactly where serialPattern refuses, and the capitals it names pass', () => {
    const samples = ['a', 'Ab', 'aB-1', 'A_b', 'ﬃ1', 'ß1', 'ı1', 'A\u0301', '1.', '9/', 'Z:'];
    for (const sample of samples) {
      const problem = problemOfSerial(sample);
      expect(problem === undefined, sample).toBe(serialPattern.test(sample));
      const spelling = /write it as (.*)$/.exec(problem ?? '')?.[1];
      if (spelling !== undefined) expect(serialPattern.test(spelling), spelling).toBe(true);
    }
  });

  it('is what the API schema answers, one refusal a serial', () => {
    for (const bad of ['', '-AB01', 'ZW\u200b01', '\u0405N01', 'abc1654x01', 'S'.repeat(serialLengthMax + 1), '-a b']) {
      expect(serial.safeParse(bad).error?.issues.map((issue) => issue.message), JSON.stringify(bad)).toEqual([problemOfSerial(bad)]);
    }
  });
});

describe('quotedSerial', () => {
  it('escapes controls, format and bidi characters and spaces other than U+0020, and keeps letters of any script', () => {
    expect(quotedSerial('A\u0000\u007f\u009b\u00a0\u200b\u202e\u2066\ufeff"\\ Ѕ序')).toBe('"A\\u0000\\u007f\\u009b\\u00a0\\u200b\\u202e\\u2066\\ufeff\\"\\\\ Ѕ序"');
    expect(quotedSerial('\u{e0001}')).toBe('"\\udb40\\udc01"');
  });
});
