import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, CanonicalJsonError } from './canonical-json.ts';

describe('canonicalJson (RFC 8785)', () => {
  it('writes the example of RFC 8785 §3.2.2', () => {
    const input = JSON.parse('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}');
    expect(canonicalJson(input)).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  });

  it('sorts members by UTF-16 code units, as in RFC 8785 §3.2.3', () => {
    const input = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', 1: 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    const text = canonicalJson(input);
    const order = ['Carriage Return', 'One', 'Control', 'Latin Small', 'Euro Sign', 'Emoji', 'Hebrew'].map((value) => text.indexOf(value));
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('writes exactly what the canonicalize package writes, for any JSON value', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 12 });
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null), fc.boolean(), text, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(fc.oneof(text, fc.nat().map(String)), tie('value'), { maxKeys: 6 }),
      ),
    })).value;
    fc.assert(fc.property(json, (value) => {
      expect(canonicalJson(value)).toBe(canonicalize(value));
    }), { numRuns: 2_000 });
  });

  it('refuses lone surrogates, in values and in names, and numbers JSON cannot hold', () => {
    for (const bad of ['\ud800', 'a\udc00b', { ['\ud83d']: 1 }, [Number.NaN], { x: Number.POSITIVE_INFINITY }, 10n, () => 1]) {
      expect(() => canonicalJson(bad), String(bad)).toThrow(CanonicalJsonError);
    }
  });

  it('leaves out undefined members and writes undefined array items as null, like JSON.stringify', () => {
    expect(canonicalJson({ b: undefined, a: [undefined, 1] })).toBe('{"a":[null,1]}');
    expect(canonicalJson(new Date('2026-02-01T00:00:00Z'))).toBe('"2026-02-01T00:00:00.000Z"');
  });
});
