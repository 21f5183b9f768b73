/**
 * Test support: checks an answer of the API against the OpenAPI document the server
 * publishes, the way a client generated from that document would read it. The route's
 * status must be one the document lists, and a JSON body must match its schema (JSON
 * Schema 2020-12, as OpenAPI 3.1 says, by Ajv).
 *
 * The API tests send every request through this (test/support/server.ts), so each of them
 * also checks the document against what the server really does.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { LightMyRequestResponse } from 'fastify';

type Json = Record<string, unknown>;
interface Operation {
  responses: Record<string, Json>;
}

/** '/v1/licences/{id}/issue' → a pattern for the path (a parameter is one segment; a tile path, the rest). */
function pathPattern(template: string): RegExp {
  const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{path\}/g, '.+').replace(/\{[A-Za-z]+\}/g, '[^/]+');
  return new RegExp(`^${pattern}$`);
}

/** The property names the document's oneOfs are discriminated by (an event body's `kind`). */
function discriminatorsOf(document: Json): Set<string> {
  const schemas = Object.values(((document.components as Json | undefined)?.schemas ?? {}) as Record<string, Json>);
  return new Set(schemas.map((schema) => (schema.discriminator as { propertyName?: string } | undefined)?.propertyName).filter((name): name is string => name !== undefined));
}

/**
 * A body that matches none of a discriminated oneOf's branches fails every branch, and Ajv
 * lists them all (an event of one kind, every other kind's complaints). The branches whose
 * discriminator the body does not carry say nothing about it: what is wrong is in the rest.
 */
function withoutOtherBranches(errors: readonly ErrorObject[], discriminators: ReadonlySet<string>): ErrorObject[] {
  const others = errors.flatMap((error) => {
    const match = /^(.*)\/properties\/([^/]+)\/const$/.exec(error.schemaPath);
    if (match === null || !discriminators.has(match[2]!) || !error.instancePath.endsWith(`/${match[2]}`)) return [];
    return [{ branch: `${match[1]}/`, instance: error.instancePath.slice(0, -match[2]!.length - 1) }];
  });
  const kept = errors.filter((error) => !others.some(({ branch, instance }) => error.schemaPath.startsWith(branch) && (error.instancePath === instance || error.instancePath.startsWith(`${instance}/`))));
  return kept.length > 0 ? kept : [...errors];
}

export interface AnswerChecker {
  /** What is wrong with the answer by the document, or null when nothing is. */
  problemWith(method: string, url: string, response: LightMyRequestResponse): string | null;
}

export function answerChecker(document: Json): AnswerChecker {
  // Formats are annotations here (the only one is the problem type's uri), not checks.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  // The document's components, under an id the response schemas' $refs are pointed at.
  ajv.addSchema({ $id: 'https://chipledger.dev/openapi', components: document.components });
  const absolute = (schema: unknown): unknown => JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"https://chipledger.dev/openapi#/components/'));
  const paths = Object.entries(document.paths as Record<string, Record<string, Operation>>)
    // Literal paths before templates: /v1/units/deploy is not /v1/units/{id}.
    .sort(([a], [b]) => Number(a.includes('{')) - Number(b.includes('{')))
    .map(([template, methods]) => ({ template, pattern: pathPattern(template), methods }));
  const compiled = new Map<string, ValidateFunction>();
  const components = document.components as { responses: Record<string, Json> };
  const discriminators = discriminatorsOf(document);

  return {
    problemWith(method, url, response) {
      // The path the server saw: inject resolves "." and ".." segments as a URL does
      // (POST /v1/shipments/./deliver reaches /v1/shipments/deliver, a GET-only path: 405).
      const pathname = new URL(url, 'http://answer-checker.invalid').pathname;
      const path = paths.find((candidate) => candidate.pattern.test(pathname) && candidate.methods[method.toLowerCase()] !== undefined);
      if (path === undefined) return null; // not a documented route: the server's 404 for any path
      const where = `${method} ${path.template} → ${response.statusCode}`;
      let declared = path.methods[method.toLowerCase()]!.responses[String(response.statusCode)];
      if (declared === undefined) return `${where}: the document lists no ${response.statusCode} answer for this operation`;
      if (typeof declared.$ref === 'string') declared = components.responses[declared.$ref.split('/').pop()!]!;
      const contentType = String(response.headers['content-type'] ?? '').split(';')[0]!.trim();
      const content = declared.content as Record<string, { schema?: unknown }> | undefined;
      if (content === undefined) return response.body === '' ? null : `${where}: answered a body (${contentType || 'no content type'}) the document does not describe`;
      if (content[contentType] === undefined) return `${where}: answered ${contentType || 'no content type'}; the document says ${Object.keys(content).join(' or ')}`;
      // HEAD: the GET's answer without its body (RFC 9110 §9.3.2).
      if (method.toUpperCase() === 'HEAD') return response.body === '' ? null : `${where}: a HEAD answer has a body`;
      if (!contentType.endsWith('json')) return null;
      const key = `${where} ${contentType}`;
      let validate = compiled.get(key);
      if (validate === undefined) {
        validate = ajv.compile(absolute(content[contentType]!.schema ?? {}) as Json);
        compiled.set(key, validate);
      }
      if (validate(response.json())) return null;
      const errors = withoutOtherBranches(validate.errors ?? [], discriminators).slice(0, 5).map((error) => `${error.instancePath || '/'} ${error.message ?? ''}${error.params ? ` ${JSON.stringify(error.params)}` : ''}`);
      return `${where}: the body does not match the document: ${errors.join('; ')}; body ${response.body.slice(0, 300)}`;
    },
  };
}
