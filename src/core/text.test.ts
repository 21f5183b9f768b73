import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  hasNoLoneSurrogates,
  hasNoLoneSurrogatesByPattern,
  normaliseLineEndings,
  normaliseText,
  textProblem,
  toNfc,
} from './text.ts';

describe('textProblem', () => {
  it('accepts ordinary text in any script, with tabs and newlines', () => {
    expect(textProblem('')).toBeUndefined();
    expect(textProblem('阿里巴巴（中国）网络技术有限公司')).toBeUndefined();
    expect(textProblem('Běijīng Zìjié Tiàodòng Kējì Yǒuxiàn Gōngsī')).toBeUndefined();
    expect(textProblem('line one\n\tline two')).toBeUndefined();
    expect(textProblem('emoji outside the BMP: 😀 𠀀')).toBeUndefined();
  });

  it('refuses lone surrogates and says where', () => {
    expect(textProblem('abc\uD800')).toBeDefined();
    expect(textProblem('\uDC00abc')).toBeDefined();
    expect(textProblem('a\uDC00\uD800b')).toBeDefined(); // reversed pair is two lone halves
    expect(textProblem('ab\uD83D')).toBe('lone surrogate U+D83D at position 2');
    expect(textProblem('x\uDE00')).toBe('lone surrogate U+DE00 at position 1');
  });

  it('refuses control characters other than tab and line feed', () => {
    expect(textProblem('a\u0000b')).toBe('control character U+0000 at position 1');
    expect(textProblem('carriage\rreturn')).toBe('control character U+000D at position 8');
    expect(textProblem('bell\u0007')).toBe('control character U+0007 at position 4');
    expect(textProblem('del\u007F')).toBe('control character U+007F at position 3');
    expect(textProblem('c1\u0085')).toBe('control character U+0085 at position 2');
    expect(textProblem('\u00A0no-break space is not a control')).toBeUndefined();
  });

  it('the pattern fallback agrees with String.prototype.isWellFormed on any UTF-16', () => {
    const codeUnits = fc.array(
      fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0xd7f0, max: 0xe010 })),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(codeUnits, (units) => {
        const value = String.fromCharCode(...units);
        expect(hasNoLoneSurrogatesByPattern(value)).toBe(hasNoLoneSurrogates(value));
      }),
      { seed: 20260101, numRuns: 2_000 },
    );
  });
});

describe('normalisation', () => {
  it('composes to NFC so one name typed two ways is one string', () => {
    const decomposed = 'Me\u0301ndez'; // e + combining acute
    expect(decomposed).not.toBe('Méndez');
    expect(toNfc(decomposed)).toBe('Méndez');
    expect(toNfc('ma\u030C')).toBe('mǎ');
  });

  it('turns CRLF and lone CR into LF', () => {
    expect(normaliseLineEndings('a\r\nb\rc\nd')).toBe('a\nb\nc\nd');
  });

  it('normaliseText trims, composes and fixes line endings; the result passes textProblem', () => {
    const result = normaliseText('  Me\u0301ndez\r\nLtd.  ');
    expect(result).toBe('Méndez\nLtd.');
    expect(textProblem(result)).toBeUndefined();
  });
});
