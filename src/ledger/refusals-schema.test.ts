/**
 * A request its schema refuses, as the caller reads it: the rule schema; a list over its
 * bound named by the bound's name, with the bound and how many were given; an instant in
 * another form told the form it takes.
 */
import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { invalidInput } from './refusals.ts';
import { commandSchemas } from './schemas.ts';

function refusalOf<K extends keyof typeof commandSchemas>(kind: K, input: unknown) {
  const parsed = commandSchemas[kind].safeParse(input);
  if (parsed.success) expect.fail(`${kind} took ${JSON.stringify(input).slice(0, 200)}`);
  return invalidInput(kind, parsed.error.issues, input);
}

const booking = { exportAllocationId: 'A-1', importAllocationId: 'A-2', productId: 'PRD-1', units: 1, deadline: '2026-06-01T00:00:00Z' };

describe('a list over its bound', () => {
  it('says how many were given and the bound by its name, with both in details (413, list-length-max)', () => {
    const serials = Array.from({ length: limits.shipmentSerialsMax + 1 }, (_, index) => `SN-${index}`);
    const refusal = refusalOf('manifest.attach', { shipmentId: 'S-1', serials });
    expect(refusal.toJSON()).toEqual({
      code: 'payload_too_large', rule: 'list-length-max',
      message: "couldn't take the manifest.attach request: serials: 100,001 given; a manifest lists at most 100,000 serials (shipmentSerialsMax)",
      details: { fields: [{ path: 'serials', message: '100,001 given; a manifest lists at most 100,000 serials (shipmentSerialsMax)' }], itemsMax: 100_000, given: 100_001 },
    });
  });

  it('names listItemsMax for a licence\'s lists', () => {
    const refusal = refusalOf('licence.amend', { licenceId: 'L-1', reason: 'many', riders: Array.from({ length: limits.listItemsMax + 1 }, (_, index) => `rider ${index}`) });
    expect(refusal.message).toBe(`couldn't take the licence.amend request: riders: ${limits.listItemsMax + 1} given; a licence has at most ${limits.listItemsMax} riders (listItemsMax)`);
    expect(refusal.details).toMatchObject({ itemsMax: limits.listItemsMax, given: limits.listItemsMax + 1 });
  });
});

describe('an instant in another form', () => {
  it('is told the form an instant takes, with an example', () => {
    const refusal = refusalOf('shipment.book', { ...booking, deadline: '2027-01-01' });
    expect(refusal.toJSON()).toMatchObject({
      code: 'invalid_input', rule: 'schema',
      message: "couldn't read the shipment.book request: deadline: must be a date and time with its offset, such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00",
    });
  });
});
