import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonDepthMax } from './canonical-json.ts';

/**
 * Strings from every part of UTF-16, well formed (surrogates only in pairs), and ASCII with
 * its controls, quote and backslash (the characters the fast path must not pass as they are).
 */
const text = fc.oneof(fc.string({ unit: 'grapheme-composite', maxLength: 12 }), fc.string({ unit: 'binary-ascii', maxLength: 12 }));
const name = fc.oneof(text, fc.constantFrom('a', 'b', 'B', '_', '1', '10', '2', 'é', 'e\u0301', '\u{1F600}', '\uFB33', '\u20AC', '\r', '', 'aa', 'a\u0000'));
/** Numbers where serialisations differ most: integers, fractions, exponents both ways, -0, the largest and smallest doubles. */
const number = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-0, 1e21, 1e-7, 9007199254740993, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 333333333.33333329, 1e23, 4.5, 2 ** -1074),
);
const { value: jsonValue } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), number, text, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 6 }),
  // Past 16 members the builtin sort takes over from the one in place (sortedNames).
  object: fc.oneof(fc.dictionary(name, tie('value'), { maxKeys: 6 }), fc.dictionary(fc.oneof(name, fc.string({ maxLength: 4 })), fc.constant(1), { minKeys: 12, maxKeys: 24 })),
}));

describe('canonicalJson (RFC 8785)', () => {
  it('writes every JSON value byte for byte as the canonicalize package does', () => {
    fc.assert(fc.property(jsonValue, (value) => {
      expect(canonicalJson(value)).toBe(canonicalize(value));
    }), { numRuns: 3_000 });
  });

  it("gives RFC 8785's own example (appendix B's numbers, section 3.2.3's member order)", () => {
    const numbers = [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001];
    expect(canonicalJson({ numbers, string: '€$\u000F\nA\'B"\\\\"/', literals: [null, true, false] }))
      .toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
    const sorted = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\u{1f600}': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    // Read back as text: JSON.parse would put the integer-like name "1" first again.
    expect(canonicalJson(sorted)).toBe('{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\u{1f600}":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}');
  });

  it('leaves out members that are undefined and writes undefined in an array as null, as the package does', () => {
    const value = { a: undefined, b: [undefined, 1], c: { d: undefined } };
    expect(canonicalJson(value)).toBe('{"b":[null,1],"c":{}}');
    expect(canonicalJson(value)).toBe(canonicalize(value));
  });

  it('writes what toJSON returns (a Date as its ISO text)', () => {
    const value = { at: new Date('2026-11-30T12:00:00.000Z') };
    expect(canonicalJson(value)).toBe('{"at":"2026-11-30T12:00:00.000Z"}');
    expect(canonicalJson(value)).toBe(canonicalize(value));
  });

  it('refuses what has no canonical text, naming it', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(/NaN has no JSON text/);
    expect(() => canonicalJson({ a: [Infinity] })).toThrow(/Infinity has no JSON text/);
    expect(() => canonicalJson({ a: 'x\uD800' })).toThrow(/lone surrogate/);
    expect(() => canonicalJson({ ['\uDC00']: 1 })).toThrow(/lone surrogate/);
    expect(() => canonicalJson(undefined)).toThrow(/undefined has no JSON text/);
    expect(() => canonicalJson({ a: 1n })).toThrow(/a bigint has no JSON text/);
    expect(() => canonicalJson({ a: () => 1 })).toThrow(/a function has no JSON text/);
    expect(() => canonicalJson([Symbol('s')])).toThrow(/a symbol has no JSON text/);
    expect(() => canonicalJson({ a: { toJSON: () => undefined } })).toThrow(/a toJSON gave undefined/);
  });

  it('refuses a cycle, and nesting past its bound, instead of recursing without end', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = [cycle];
    expect(() => canonicalJson(cycle)).toThrow(/nested deeper than 512 levels/);
    let deep: unknown = 1;
    for (let level = 0; level < canonicalJsonDepthMax; level += 1) deep = [deep];
    expect(canonicalJson(deep)).toBe(`${'['.repeat(canonicalJsonDepthMax)}1${']'.repeat(canonicalJsonDepthMax)}`);
    expect(() => canonicalJson([deep])).toThrow(RangeError);
  });
});
