/**
 * What the OpenAPI document says in words, checked against what the server does: the problem
 * codes its descriptions name, the Idempotency-Key it takes, what a retry of token.create gets,
 * and what a walk through a list's pages shows.
 */
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from './openapi.ts';
import { renderDocsPage } from './openapi-docs-page.ts';
import { queryRoutes } from './queries.ts';

type Json = Record<string, unknown>;
const document = buildOpenApiDocument() as Json & { paths: Record<string, Record<string, Json>>; components: Json & { schemas: Record<string, Json> } };

/** Every description and summary in the document, each with where it is. */
function texts(node: unknown, where = '#'): Array<{ where: string; text: string }> {
  if (Array.isArray(node)) return node.flatMap((item, index) => texts(item, `${where}/${index}`));
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([key, value]) => ((key === 'description' || key === 'summary') && typeof value === 'string'
    ? [{ where: `${where}/${key}`, text: value }]
    : texts(value, `${where}/${key}`)));
}

/**
 * The problem codes a text names: "code X", "code X or Y", "codes X, Y and Z", and a status
 * followed by its code in parentheses, "405 (method_not_allowed)".
 */
function codesNamedIn(text: string): string[] {
  const listed = [...text.matchAll(/\bcodes? ([a-z_]+(?:(?:, | or | and )[a-z_]+)*)/g)].flatMap((match) => match[1]!.split(/, | or | and /));
  // A status stands alone: not the 256 of "SHA-256 (hex)".
  const afterStatus = [...text.matchAll(/(?<![\w-])[1-5][0-9]{2} \(([a-z_]+)\)/g)].map((match) => match[1]!);
  return [...listed, ...afterStatus];
}

describe('the OpenAPI document', () => {
  it('names in its descriptions only problem codes that are in Problem.code', () => {
    const known = (document.components.schemas.Problem!.properties as { code: { enum: string[] } }).code.enum;
    const named = texts(document).flatMap(({ where, text }) => codesNamedIn(text).map((code) => ({ where, code })));
    for (const { where, code } of named) expect(known, `${where} names code ${code}`).toContain(code);
    // The check finds what it looks for: these are named today.
    for (const code of ['unauthenticated', 'unavailable', 'overloaded', 'method_not_allowed', 'conflict']) expect(named.map((entry) => entry.code), code).toContain(code);
  });

  it('reads a code named wrongly as such', () => {
    expect(codesNamedIn('A problem (RFC 9457), code unauthorized: no bearer token')).toEqual(['unauthorized']);
    expect(codesNamedIn('code unavailable or overloaded: the server')).toEqual(['unavailable', 'overloaded']);
    expect(codesNamedIn('is answered 405 (method_not_allowed) with an Allow header')).toEqual(['method_not_allowed']);
    expect(codesNamedIn('SHA-256 (hex) of the sorted lines')).toEqual([]);
  });

  it('refuses a token secret as the Idempotency-Key in its pattern, and says why', () => {
    const parameter = (document.paths['/v1/shipments']!.post!.parameters as Array<{ name: string; description: string; schema: { pattern: string } }>)
      .find((candidate) => candidate.name === 'Idempotency-Key')!;
    const pattern = new RegExp(parameter.schema.pattern, 'u');
    for (const key of ['4f0c2d3e-9b1a-4c55-8e2f-0d6a7b8c9d10', 'retry-key-0001', 'key-clt_1', 'CLT_1']) expect(pattern.test(key), key).toBe(true);
    for (const key of ['clt_TOK-12_abcdefghijklmnopqrstuvwxyz', 'clt_', 'two words']) expect(pattern.test(key), key).toBe(false);
    expect(parameter.description).toMatch(/rule idempotency-key-secret/);
  });

  it("says what a retry of POST /v1/tokens gets: not the first 201, a 409 naming the token to revoke", () => {
    const operation = document.paths['/v1/tokens']!.post! as { responses: Record<string, { description: string; headers?: Json; $ref?: string }> };
    const created = operation.responses['201']!;
    expect(created.description).not.toMatch(/A replayed answer carries/);
    expect(created.description).toMatch(/never gets this answer again: it is answered 409/);
    const conflict = operation.responses['409']!;
    expect(conflict.$ref).toBeUndefined();
    expect(conflict.description).toMatch(/code conflict/);
    expect(conflict.description).toMatch(/rule invariant-6/);
    expect(conflict.description).toMatch(/revoke that token \(POST \/v1\/tokens\/\{id\}\/revoke\) and create another/);
    expect(conflict.headers?.['Idempotent-Replayed']).toBeDefined();
    // The other commands keep the usual words: their replays are the first answer.
    const booked = (document.paths['/v1/shipments']!.post! as typeof operation).responses['201']!;
    expect(booked.description).toMatch(/A replayed answer carries Idempotent-Replayed: true/);
    expect((document.paths['/v1/shipments']!.post! as typeof operation).responses['409']!.$ref).toBe('#/components/responses/ReplayableProblem');
  });

  it("gives each list's order, and says which filters a walk can miss a row under", () => {
    // Filters on a field a row never changes: a walk under them misses nothing the list has.
    const filtersThatStay = new Set(['/v1/allocations?licenceId', '/v1/events?subjectId']);
    for (const route of queryRoutes.filter((candidate) => candidate.list)) {
      const path = route.path.replace(/:(id|seq)/, '{$1}');
      const answer = (document.paths[path]!.get!.responses as Record<string, { content: Record<string, { schema: { properties: { nextCursor: { description: string } } } }> }>)['200']!;
      const description = answer.content['application/json']!.schema.properties.nextCursor.description;
      expect(description, path).toContain(`Items come ${route.order!.by}; a row's key never changes, so a walk through the pages shows each row at most once.`);
      const filters = Object.keys(route.query.shape).filter((name) => name !== 'limit' && name !== 'cursor');
      for (const name of filters) {
        // Every filter is one or the other, so a new one has to be thought about.
        expect(route.order!.filtersThatChange.includes(name), `${route.path}?${name}`).toBe(!filtersThatStay.has(`${route.path}?${name}`));
        if (route.order!.filtersThatChange.includes(name)) expect(description, `${route.path}?${name}`).toMatch(new RegExp(`A walk under .*\\?${name}=.* can miss a row whose field changes during the walk`));
      }
      if (route.order!.filtersThatChange.length === 0) expect(description, path).not.toMatch(/can miss/);
    }
    expect(queryRoutes.filter((route) => !route.list && route.order !== undefined).map((route) => route.path)).toEqual([]);
    expect(renderDocsPage(document)).toContain('(<code>/v1/licences?status=</code>, <code>/v1/shipments?status=</code>, <code>/v1/units?siteId=</code>, <code>/v1/units?custody=</code>) can miss a row that leaves the filter');
  });
});
