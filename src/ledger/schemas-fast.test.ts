/**
 * The quick parse of a bare-serial manifest (schemas-fast.ts) may only ever say what the schema
 * says: wherever it answers, the schema accepts the input and parses it to the same value, key
 * order included. Generated inputs mix what it should take with what it must leave to zod.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { commandSchemas } from './schemas.ts';
import { fastParse } from './schemas-fast.ts';

const schema = commandSchemas['manifest.attach'];
const serialCharacters = [...'ABCXYZ0129._:/-aqz é\u200b'];
const serial = fc.oneof(
  fc.array(fc.constantFrom(...serialCharacters), { minLength: 0, maxLength: 8 }).map((characters) => characters.join('')),
  fc.constantFrom('SN-1', 'A', '-A', 'a1', 'X'.repeat(limits.serialLengthMax), 'X'.repeat(limits.serialLengthMax + 1), ''),
);
const entry = fc.oneof(
  { weight: 8, arbitrary: serial },
  { weight: 1, arbitrary: fc.record({ serial }) },
  { weight: 1, arbitrary: fc.constantFrom(null, 7, undefined, true, ['SN-1']) },
);
const shipmentId = fc.oneof(fc.constantFrom('S-1', 'S_2', 'clt_abc', '', 'S 1', 'é', 7, null), fc.string({ maxLength: 6 }));
const input = fc.oneof(
  fc.record({ shipmentId, serials: fc.array(entry, { maxLength: 6 }) }),
  fc.record({ shipmentId, serials: fc.array(serial, { minLength: 1, maxLength: 6 }) }),
  fc.record({ serials: fc.array(serial, { minLength: 1, maxLength: 3 }), shipmentId }),
  fc.record({ shipmentId, serials: fc.array(serial, { maxLength: 3 }), more: fc.anything() }, { requiredKeys: ['shipmentId', 'serials'] }),
  fc.record({ shipmentId, serials: fc.anything() }, { requiredKeys: [] }),
  fc.anything(),
);

describe("a bare-serial manifest's quick parse", () => {
  it('answers only what the schema answers, to the key', () => {
    fc.assert(fc.property(input, (raw) => {
      const fast = fastParse('manifest.attach', raw);
      if (fast === undefined) return;
      const parsed = schema.safeParse(raw);
      expect(parsed.success).toBe(true);
      expect(JSON.stringify(fast.data)).toBe(JSON.stringify(parsed.data));
      expect(fast.data).toEqual(parsed.data);
    }), { numRuns: 3_000 });
  });

  it('takes a manifest of valid bare serials, up to the most a manifest lists, as a copy of its list', () => {
    const serials = Array.from({ length: limits.shipmentSerialsMax }, (_, index) => `SN-${index}`);
    const raw = { serials, shipmentId: 'S-12' };
    const fast = fastParse('manifest.attach', raw);
    expect(fast?.data).toEqual(schema.parse(raw));
    expect(fast?.data.serials).not.toBe(serials);
    expect(Object.keys(fast!.data)).toEqual(['shipmentId', 'serials']);
  });

  it.each([
    ['an entry in lower case', { shipmentId: 'S-1', serials: ['SN-1', 'sn-2'] }],
    ['an entry that is an object', { shipmentId: 'S-1', serials: ['SN-1', { serial: 'SN-2' }] }],
    ['an entry that is not a string', { shipmentId: 'S-1', serials: ['SN-1', 2] }],
    ['a list with a hole', { shipmentId: 'S-1', serials: ['SN-1', , 'SN-3'] }], // eslint-disable-line no-sparse-arrays
    ['an empty list', { shipmentId: 'S-1', serials: [] }],
    ['a list longer than a manifest may be', { shipmentId: 'S-1', serials: Array.from({ length: limits.shipmentSerialsMax + 1 }, (_, index) => `SN-${index}`) }],
    ['a key more', { shipmentId: 'S-1', serials: ['SN-1'], note: 'x' }],
    ['no shipment', { serials: ['SN-1'] }],
    ['an id that is not one', { shipmentId: 'S 1', serials: ['SN-1'] }],
    ['an object of another kind', Object.assign(Object.create({ inherited: true }) as object, { shipmentId: 'S-1', serials: ['SN-1'] })],
  ])('leaves %s to the schema', (_what, raw) => {
    expect(fastParse('manifest.attach', raw)).toBeUndefined();
  });

  it('leaves every other command to its schema', () => {
    expect(fastParse('units.deploy', { siteId: 'SITE-1', serials: ['SN-1'] })).toBeUndefined();
  });
});
