/**
 * The values and member names of a request body (src/server/body.ts): past
 * limits.jsonBodyValuesMax a body is refused before JSON.parse reads it, counting only what is
 * outside strings; the largest real requests stay under it.
 */
import { describe, expect, it, vi } from 'vitest';
import { isDomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { commandSchemas } from '../ledger/schemas.ts';
import { parseJsonBody } from './body.ts';

const valuesMax = limits.jsonBodyValuesMax;

/** The refusal parseJsonBody throws for `text`, and whether JSON.parse was called on the way. */
function refusal(text: string): { code: string; rule?: string; message: string; details?: Record<string, unknown>; parsed: boolean } {
  const jsonParse = vi.spyOn(JSON, 'parse');
  try {
    parseJsonBody(Buffer.from(text, 'utf8'));
  } catch (error) {
    if (!isDomainError(error)) throw error;
    return { code: error.code, rule: error.rule, message: error.message, ...(error.details === undefined ? {} : { details: error.details }), parsed: jsonParse.mock.calls.length > 0 };
  } finally {
    jsonParse.mockRestore();
  }
  throw new Error(`not refused: ${text.slice(0, 80)}`);
}

/** The count's refusal, thrown before JSON.parse was called (not a later refusal of the parse or the schema). */
const refusedWithoutParse = { code: 'invalid_input', rule: 'json-values', details: { valuesMax }, parsed: false };

describe('a body of many values and member names', () => {
  it('is refused before it is parsed: one object of 700,000 names in 8 MiB (the reviewer\'s body)', () => {
    const text = `{"name":"x","o":{${Array.from({ length: 700_000 }, (_, index) => `"a${index}":1`).join(',')}}}`;
    expect(text.length).toBeLessThan(limits.requestBodyBytesMax);
    const refused = refusal(text);
    expect(refused).toMatchObject(refusedWithoutParse);
    expect(refused.message).toBe("couldn't read the request body: it holds more than 600,000 JSON values and member names (jsonBodyValuesMax); a manifest of the most serials holds about 500,000");
  });

  it('is refused before it is parsed: names spelled with escapes, and scalar array elements', () => {
    const escaped = `{"o":{${Array.from({ length: valuesMax / 2 + 1 }, (_, index) => `"\\u0061${index}":1`).join(',')}}}`;
    expect(refusal(escaped)).toMatchObject(refusedWithoutParse);
    const zeros = `{"siteId":"x","serials":[${'0,'.repeat(valuesMax)}0]}`;
    expect(refusal(zeros)).toMatchObject(refusedWithoutParse);
    const emptyStrings = `{"siteId":"x","serials":[${'"",'.repeat(valuesMax)}""]}`;
    expect(refusal(emptyStrings)).toMatchObject(refusedWithoutParse);
  });

  it('counts exactly the `{`, `[`, `:` and `,` outside strings, whatever the strings hold', () => {
    // Each element is one `,` and holds escaped quotes, escaped backslashes right before its
    // closing quote, and every counted character: only the comma after it counts.
    const element = '"\\"{[:,]}\\\\"';
    const body = (elements: number) => `[${Array.from({ length: elements }, () => element).join(',')}]`;
    // `[` and elements - 1 commas: exactly the bound, then one over it.
    expect(() => parseJsonBody(Buffer.from(body(valuesMax)))).not.toThrow();
    expect(refusal(body(valuesMax + 1))).toMatchObject(refusedWithoutParse);
  });

  it('leaves an unclosed string to JSON.parse, which refuses it', () => {
    expect(refusal(`{"a":"${':,'.repeat(valuesMax)}`)).toMatchObject({ code: 'invalid_input', rule: 'json', parsed: true });
    expect(refusal('{"a":"x\\"}')).toMatchObject({ rule: 'json', parsed: true });
  });

  it('still refuses many nested objects and arrays by their own, lower bound', () => {
    expect(refusal(`${'['.repeat(2 * limits.shipmentSerialsMax + 1)}`)).toMatchObject({ rule: 'json-structures', parsed: false });
  });
});

describe('the largest real requests', () => {
  /** A serial may be a digit and 63 colons: none of its colons may count. */
  const longSerial = (index: number) => `${String(index).padStart(8, '0')}${':'.repeat(limits.serialLengthMax - 8)}`;
  const gpuUuid = (index: number) => `GPU-${index.toString(16).padStart(8, '0')}-aaaa-bbbb-cccc-0123456789ab`;

  it('a booking with a manifest of shipmentSerialsMax serials of 64 characters and GPU UUIDs, indented to the serial routes\' byte bound, is read and valid', () => {
    const request = {
      exportAllocationId: 'A-1', importAllocationId: 'A-2', productId: 'P-1', units: limits.shipmentSerialsMax,
      deadline: '2030-01-01T00:00:00Z', reference: 'S-1, a reference: with commas',
      serials: Array.from({ length: limits.shipmentSerialsMax }, (_, index) => ({ serial: longSerial(index), gpuUuid: gpuUuid(index) })),
    };
    const compact = JSON.stringify(request);
    // The most indentation that keeps the body within the route's bound: about 24 MiB.
    const text = JSON.stringify(request, null, 8);
    expect(text.length).toBeGreaterThan(20 * 1024 * 1024);
    expect(text.length).toBeLessThanOrEqual(limits.serialListBodyBytesMax);
    for (const body of [compact, text]) {
      const value = parseJsonBody(Buffer.from(body));
      expect(commandSchemas['shipment.book'].safeParse(value).success).toBe(true);
    }
  });

  it('a deployment and a manifest of serials without GPU UUIDs, each at its bound, are read and valid', () => {
    const deploy = { siteId: 'SITE-1', serials: Array.from({ length: limits.deploymentSerialsMax }, (_, index) => longSerial(index)) };
    expect(commandSchemas['units.deploy'].safeParse(parseJsonBody(Buffer.from(JSON.stringify(deploy)))).success).toBe(true);
    const attach = { shipmentId: 'S-1', serials: Array.from({ length: limits.shipmentSerialsMax }, (_, index) => ({ serial: longSerial(index) })) };
    expect(commandSchemas['manifest.attach'].safeParse(parseJsonBody(Buffer.from(JSON.stringify(attach)))).success).toBe(true);
  });
});
