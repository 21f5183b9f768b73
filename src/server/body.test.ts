/**
 * Request bodies as JSON text (src/server/body.ts): a repeated member name is refused in any
 * object, compared as the names JSON.parse reads (escapes undone), and nothing else is.
 */
import { describe, expect, it } from 'vitest';
import { isDomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { jsonStructuresMax, parseJsonBody } from './body.ts';

const parse = (text: string): unknown => parseJsonBody(Buffer.from(text, 'utf8'));

/** The refusal parseJsonBody throws for `text`, as the fields a caller sees. */
function refusal(text: string): { code: string; rule?: string; message: string; details?: Record<string, unknown> } {
  try {
    parse(text);
  } catch (error) {
    if (!isDomainError(error)) throw error;
    return { code: error.code, rule: error.rule, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) };
  }
  throw new Error(`not refused: ${text.slice(0, 80)}`);
}

describe('a repeated member name', () => {
  it.each([
    ['at the top', '{"authorisedUnits":10,"authorisedUnits":1000000}', 'authorisedUnits', '(body)'],
    ['spelled with an escape', '{"units":1,"\\u0075nits":2}', 'units', '(body)'],
    ['spelled with escapes both times, differently', '{"a\\"b":1,"a\\u0022b":2}', 'a"b', '(body)'],
    ['in a nested object', '{"parties":[{"role":"x"},{"role":"y","role":"z"}]}', 'role', 'parties.1'],
    ['after a nested object', '{"a":{"b":1,"c":{"b":2}},"a":3}', 'a', '(body)'],
    ['after strings holding quotes and backslashes', '{"s":"\\\\","t":"\\"}{,:","s":1}', 's', '(body)'],
    ['with an empty name', '{"":1,"x":[],"":2}', '', '(body)'],
    ['in an object under an empty name', '{"":{"a":1,"a":2}}', 'a', ''],
    ['in an object nested in arrays', '[[{"k":1}],[{"k":1,"k":1}]]', 'k', '1.0'],
    // A string ends at the first quote after an even run of backslashes (none included): here
    // the value's last character is an escaped backslash, and the next quote ends it.
    ['after a value ending in an escaped backslash', '{"serial":"A\\\\","units":1,"serial":"q\\"r"}', 'serial', '(body)'],
    ['after a value ending in two escaped backslashes', '{"x":"\\\\\\\\","units":1,"units":"\\""}', 'units', '(body)'],
    // Past listedNamesMax (16) an object's names are kept in a set: checked there too.
    ['in an object of more than 16 names', `{${Array.from({ length: 17 }, (_, index) => `"k${index}":${index}`).join(',')},"k0":0}`, 'k0', '(body)'],
  ])('is refused %s (I-JSON, RFC 7493 §2.3), naming the name and the object', (_where, text, key, at) => {
    const refused = refusal(text);
    expect(refused).toMatchObject({ code: 'invalid_input', rule: 'json', details: { key, at } });
    expect(refused.message).toContain(`the name ${JSON.stringify(key)} appears twice in the object at ${at}`);
  });

  it('quotes a long name and a deep place cut to a bound', () => {
    const key = '\u{20000}'.repeat(10_000);
    const long = refusal(`{"${key}":1,"${key}":2}`);
    expect(long.message.isWellFormed()).toBe(true);
    expect(long.message.length).toBeLessThan(600);
    expect(long.message).toContain('…');
    const deep = refusal(`${'{"a":'.repeat(20_000)}{"b":1,"b":2}${'}'.repeat(20_000)}`);
    expect(deep.message.length).toBeLessThan(600);
    expect(deep.details!.at).toMatch(/^a\.a\.a.*…$/);
  });

  it('is not refused when the same name is in two objects, or a value spells it', () => {
    const text = '{"a":{"a":"a","b":["a","a"]},"b":{"a":1},"c":[{"a":1},{"a":2}],"\\u0061\\u0062":"ab","d":"\\"a\\":"}';
    expect(parse(text)).toEqual(JSON.parse(text));
    expect(parse('[{"x":1},{"x":1}]')).toEqual([{ x: 1 }, { x: 1 }]);
    // A value ending in an escaped backslash, then an object that repeats an outer name.
    const backslashes = '{"a":"x\\\\","b":{"a":"\\"","c":1},"c":2}';
    expect(parse(backslashes)).toEqual(JSON.parse(backslashes));
    // Arrays and objects nested far deeper than a recursive walk could go.
    const deep = `${'[{"k":'.repeat(50_000)}1${'}]'.repeat(50_000)}`;
    expect(() => parse(deep)).not.toThrow();
  });

  it('leaves the other refusals as they were: invalid JSON first, then a __proto__ key', () => {
    expect(refusal('{"a":1,"a":').message).toMatch(/not valid JSON/);
    expect(refusal('{"__proto__":1,"__proto__":2}').message).toMatch(/appears twice/);
    expect(refusal('{"__proto__":1}').message).toMatch(/key named __proto__/);
  });
});

describe('a body that opens too many objects and arrays', () => {
  it('is refused before it is parsed, past jsonStructuresMax; a manifest of the most serials, one object each, is not', () => {
    const objects = (count: number) => Buffer.from(`[${Array.from({ length: count }, () => '{}').join(',')}]`);
    expect(() => parseJsonBody(objects(jsonStructuresMax))).toThrow(expect.objectContaining({ code: 'invalid_input', rule: 'json-structures' }));
    const manifest = Buffer.from(JSON.stringify({ shipmentId: 'S-1', serials: Array.from({ length: limits.shipmentSerialsMax }, (_, index) => ({ serial: `SN-${index}`, gpuUuid: null })) }));
    expect((parseJsonBody(manifest) as { serials: unknown[] }).serials).toHaveLength(limits.shipmentSerialsMax);
    const arrays = Buffer.from(`${'['.repeat(jsonStructuresMax + 1)}${']'.repeat(jsonStructuresMax + 1)}`);
    expect(() => parseJsonBody(arrays)).toThrow(expect.objectContaining({ rule: 'json-structures' }));
  });
});
