/**
 * The query string of a GET under /v1, read in one place: by the route's strict schema, so a
 * parameter the route does not take is refused, never ignored (a client would take the answer
 * for the page or the filter it asked for). Every refusal of a parameter is 400 with rule
 * `schema`, as a body's field is (ledger/refusals.ts), naming the parameter in its detail and
 * each one at fault in details.fields.
 */
import { z } from 'zod';
import { DomainError } from '../core/errors.ts';
import { schemaRule } from '../ledger/refusals.ts';

/** A route that takes no parameters: any one given is refused. */
export const noQuery = z.strictObject({});

/** Parameters a refusal lists; the first is also in its detail. */
const listedParametersMax = 20;

/** The path a refusal names: the parameter, or `query` for the whole (unknown keys, which zod's message names). */
function parameterPath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.') || 'query';
}

/**
 * The refusal of a parameter that reads well but that the route does not serve (an index past a
 * tree's size), with `detail` naming it: rule `schema`, like every other query refusal.
 */
export function queryParameterRefusal(parameter: string, detail: string): DomainError {
  return new DomainError('invalid_input', detail, { rule: schemaRule, details: { fields: [{ path: parameter, message: detail }] } });
}

/** The query as `schema` reads it; a refusal as above otherwise. `query` undefined reads as none. */
export function readQueryString<T extends z.ZodType>(schema: T, query: unknown): z.output<T> {
  const parsed = schema.safeParse(query ?? {});
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.slice(0, listedParametersMax).map((issue) => ({ path: parameterPath(issue.path), message: issue.message }));
  const first = fields[0] ?? { path: 'query', message: 'invalid' };
  throw new DomainError('invalid_input', `couldn't read the query string: ${first.path}: ${first.message}`, { rule: schemaRule, details: { fields } });
}
