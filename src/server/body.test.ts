/**
 * Request bodies as JSON text (src/server/body.ts): a repeated member name is refused in any
 * object, compared as the names JSON.parse reads (escapes undone), and so is a number that
 * JSON.parse rounds to a whole one, before a handler sees it, on a real route too; a command
 * route refuses a body that is JSON but no object, null included.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { apiWorldPerFile, databaseFootprint, type ApiWorld } from '../../test/support/server.ts';
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

describe('a number that JSON.parse rounds to a whole number', () => {
  it.each([
    ['an allocation resized to 0', '{"allocationId":"A-1","units":1e-400}', '1e-400', '0', 'units'],
    ['a negative one, read as -0', '{"units":-1e-400}', '-1e-400', '0', 'units'],
    ['units just under 5', '{"units":4.9999999999999999}', '4.9999999999999999', '5', 'units'],
    ['a billion and a little', '{"units":1000000000.00000001}', '1000000000.00000001', '1000000000', 'units'],
    ['minor units past the last whole double', '{"valueMinor":9007199254740991.4}', '9007199254740991.4', '9007199254740991', 'valueMinor'],
    ['a datasheet figure landing on a threshold', '{"model":"X","parameters":{"logicDieAreaMm2":600,"denseTops":199.999999999999999,"bitLength":8}}', '199.999999999999999', '200', 'parameters.denseTops'],
    ['in a list', '{"a":[1,2.5,{"b":[0,1e-999999999]}]}', '1e-999999999', '0', 'a.2.b.1'],
    ['the body itself', ' 4.9999999999999999 ', '4.9999999999999999', '5', '(body)'],
  ])('is refused: %s, saying which number and what it would have become', (_what, text, number, readAs, at) => {
    const refused = refusal(text);
    expect(refused).toMatchObject({ code: 'invalid_input', rule: 'json-number', details: { number, readAs, at } });
    expect(refused.message).toBe(`couldn't read the request body: the number ${number} at ${at} is not a whole number, but JSON reads it as ${readAs}; it is refused rather than changed`);
  });

  it('lets through every number an honest serialiser writes, and digits in strings and names', () => {
    const text = '{"n":[5,5.0,5.000,1e3,1.5e1,-0,0.0,30.3,0.1,1e-7,0.10000000000000001,-12,1E+2,26.6],"s":"1e-400","4.9999999999999999":"x","t":"\\\\"}';
    expect(parse(text)).toEqual(JSON.parse(text));
  });

  it('quotes a long token cut to a bound', () => {
    const refused = refusal(`{"units":1.${'0'.repeat(100_000)}1}`);
    expect(refused.details).toEqual({ number: `1.${'0'.repeat(38)}…`, readAs: '1', at: 'units' });
  });

  it('is found after invalid JSON is, and in the order of the text with a repeated name', () => {
    expect(refusal('{"units":1e-400,').rule).toBe('json');
    expect(refusal('{"a":1e-400,"a":1}').rule).toBe('json-number');
    expect(refusal('{"a":1,"a":1e-400}').rule).toBe('json');
  });
});

describe('over HTTP', () => {
  let api: ApiWorld;
  let database: TestDatabase;
  apiWorldPerFile((world, db) => {
    api = world;
    database = db;
  });

  it('a rounded number is refused with 400 json-number before the command runs, and nothing is written', async () => {
    const bookingText = () => JSON.stringify({
      exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 1, deadline: '2026-05-01T00:00:00Z',
    });
    const requests: Array<[string, string, string, string]> = [
      [`/v1/allocations/${api.allocations.alphaExport}/resize`, api.tokens.authority_admin, `{"allocationId":"${api.allocations.alphaExport}","units":1e-400}`, '1e-400'],
      [`/v1/allocations/${api.allocations.alphaExport}/resize`, api.tokens.authority_admin, '{"units":1000000000.00000001}', '1000000000.00000001'],
      ['/v1/shipments', api.tokens.exporter, bookingText().replace('"units":1', '"units":4.9999999999999999'), '4.9999999999999999'],
      ['/v1/products', api.tokens.authority_admin, '{"model":"Rounded","vendor":"Test","parameters":{"logicDieAreaMm2":600,"dramBandwidthGbS":3000,"designedForDatacenter":true,"denseTops":199.999999999999999,"bitLength":8}}', '199.999999999999999'],
    ];
    const before = await databaseFootprint(database.pool);
    for (const [url, token, payload, number] of requests) {
      const response = await api.request({ method: 'POST', url, token, payload });
      expect(response.statusCode, `${url} ${response.body}`).toBe(400);
      expect(response.json()).toMatchObject({ code: 'invalid_input', rule: 'json-number', detail: expect.stringContaining(`the number ${number} at `) });
    }
    expect(await databaseFootprint(database.pool)).toEqual(before);
  });

  it('a body that is JSON but no object is refused on a command route, null too, saying what came; no body at all is still {}', async () => {
    const sweep = (payload: string, headers: Record<string, string> = {}) => api.request({ method: 'POST', url: '/v1/ledger/sweep', token: api.tokens.authority_admin, payload, headers });
    const before = await databaseFootprint(database.pool);
    for (const [payload, kind] of [['null', 'null'], ['[]', 'a list'], ['"x"', 'a string'], ['5', 'a number'], ['true', 'a boolean']]) {
      const response = await sweep(payload!);
      expect(response.statusCode, `${payload} ${response.body}`).toBe(400);
      expect(response.json()).toMatchObject({ code: 'invalid_input', detail: `couldn't read the ledger.sweep request: the body must be a JSON object, and it is ${kind}` });
    }
    expect(await databaseFootprint(database.pool)).toEqual(before);
    // An empty body reaches the ledger as {}: on this world, nothing is due to sweep.
    const empty = await api.request({ method: 'POST', url: '/v1/ledger/sweep', token: api.tokens.authority_admin, headers: { 'content-length': '0' } });
    expect(empty.statusCode, empty.body).toBe(409);
    expect(empty.json()).toMatchObject({ rule: 'sweep-nothing-due' });
  });
});
