/**
 * What the OpenAPI document tells a client of a booking's deadline: the bounds the ledger
 * refuses (after now, within bookingDeadlineMaxMs, and not after the earlier validTo of the
 * booking's two licences, rule booking-deadline), and what the deadline ends. Before, the
 * field carried only the instant's form, and the licences' bound was learnt from a 400.
 */
import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { buildOpenApiDocument } from '../server/openapi.ts';

type Json = Record<string, any>;

describe("a booking's deadline in the OpenAPI document", () => {
  it('says it may not pass its licences\u2019 validTo, nor a year, under rule booking-deadline, and keeps the instant\u2019s form', () => {
    const document = buildOpenApiDocument() as Json;
    const { description } = document.paths['/v1/shipments'].post.requestBody.content['application/json'].schema.properties.deadline;
    expect(description).toMatch(/not after the earlier validTo of its two licences/);
    expect(description).toContain(`within ${limits.bookingDeadlineMaxMs / 86_400_000} days`);
    expect(description).toMatch(/refused \(400, rule booking-deadline\)/);
    expect(description).toMatch(/the sweep expires it/);
    expect(description).toMatch(/RFC 3339 date and time with its offset/);
  });
});
