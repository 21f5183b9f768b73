/**
 * What the OpenAPI document tells a client of the instants and days it sends: the form, that
 * they are stored in UTC to the millisecond, that a validity is half-open (validTo exclusive),
 * and that a tranche's days are UTC days. A MOFCOM licence "valid to 31 December" entered as
 * validTo 2026-12-31T00:00:00+08:00 loses its last day: the document says how to write it.
 */
import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { buildOpenApiDocument } from '../server/openapi.ts';
import { allocationResize } from './schemas.ts';

type Json = Record<string, any>;
const document = buildOpenApiDocument() as Json;

function requestProperties(path: string): Json {
  return document.paths[path].post.requestBody.content['application/json'].schema.properties;
}

describe('the instants and days of the request bodies', () => {
  it('say the form, UTC at millisecond precision, and the half-open validity, wherever an instant is taken', () => {
    const fields = [
      requestProperties('/v1/licences').validFrom, requestProperties('/v1/licences').validTo,
      requestProperties('/v1/licences/{id}/amend').validTo, requestProperties('/v1/licences/{id}/amend').validFrom,
      requestProperties('/v1/shipments').deadline,
    ];
    for (const field of fields) {
      expect(field.description).toMatch(/RFC 3339 date and time with its offset/);
      expect(field.description).toMatch(/stored in UTC at millisecond precision/);
      expect(field.description).toMatch(/half-open: validFrom is its first instant, validTo the first instant after it/);
    }
    expect(requestProperties('/v1/licences/{id}/amend').validFrom.description).toMatch(/^A new start of the licence's validity, while it is a draft only/);
  });

  it("say a tranche's days are UTC days, both ends included", () => {
    for (const field of ['periodStart', 'periodEnd']) {
      expect(requestProperties('/v1/allocations')[field].description).toMatch(/in UTC: a tranche's periodStart and periodEnd are its first and last days, both included/);
    }
  });

  it('let an allocation be resized to 0, and created with 1 or more', () => {
    expect(requestProperties('/v1/allocations/{id}/resize').units).toMatchObject({ type: 'integer', minimum: 0 });
    expect(requestProperties('/v1/allocations').units).toMatchObject({ type: 'integer', exclusiveMinimum: 0 });
  });

  it('bound a resize by unitsMax, as a creation is: a 400 and the maximum in the document', () => {
    expect(allocationResize.safeParse({ allocationId: 'A-1', units: limits.unitsMax }).success).toBe(true);
    expect(allocationResize.safeParse({ allocationId: 'A-1', units: limits.unitsMax + 1 }).success).toBe(false);
    expect(requestProperties('/v1/allocations/{id}/resize').units).toMatchObject({ maximum: limits.unitsMax });
    expect(requestProperties('/v1/allocations').units).toMatchObject({ maximum: limits.unitsMax });
  });
});
