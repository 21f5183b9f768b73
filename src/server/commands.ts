/**
 * The state-changing routes: one POST per ledger command, declared in one table. Each
 * runs the same pipeline: validate the envelope (Idempotency-Key, a JSON object body,
 * the path id), then the ledger validates the input, authorizes the role and the
 * tenant, and commits; the answer is presented as it came, or as a problem.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, assert } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { roleRefusal, type Actor } from '../ledger/permissions.ts';
import { schemaRule } from '../ledger/refusals.ts';
import { tokenSecretPrefix, type CommandKind } from '../ledger/schemas.ts';
import type { TokenVerifier } from './auth.ts';
import type { BodyBudget } from './body-budget.ts';
import { problemOf, sendProblem } from './problem.ts';

export interface CommandRoute {
  path: string;
  kind: CommandKind;
  /** The input field that the path's :id fills. */
  idField?: string;
  /** 201 for commands that make a new thing, 200 for transitions. */
  creates: boolean;
  /**
   * The answer's field naming what was made, when GET `${path}/:id` reads it: a 201 then
   * says where, in Location (RFC 9110 §10.2.2; relative: locationOf), as a replay of it does.
   */
  locatedBy?: string;
  summary: string;
}

const make = (path: string, kind: CommandKind, summary: string, locatedBy?: string): CommandRoute => ({
  path, kind, creates: true, summary, ...(locatedBy === undefined ? {} : { locatedBy }),
});
const change = (path: string, kind: CommandKind, idField: string | undefined, summary: string): CommandRoute => ({
  path, kind, creates: false, summary, ...(idField === undefined ? {} : { idField }),
});

export const commandRoutes: readonly CommandRoute[] = [
  make('/v1/organisations', 'organisation.register', 'Register an organisation'),
  change('/v1/organisations/:id/kyc', 'organisation.set_kyc', 'organisationId', "Record an organisation's KYC verification"),
  make('/v1/products', 'product.register', 'Register a product; its ECCN is derived from its parameters'),
  make('/v1/tokens', 'token.create', 'Create an API token; the secret is in this answer only'),
  change('/v1/tokens/:id/revoke', 'token.revoke', 'tokenId', 'Revoke an API token'),
  make('/v1/licences', 'licence.create', 'Draft a licence', 'licenceId'),
  change('/v1/licences/:id/issue', 'licence.issue', 'licenceId', 'Issue a draft licence'),
  change('/v1/licences/:id/suspend', 'licence.suspend', 'licenceId', 'Suspend an issued licence'),
  change('/v1/licences/:id/reinstate', 'licence.reinstate', 'licenceId', 'Reinstate a suspended licence'),
  change('/v1/licences/:id/revoke', 'licence.revoke', 'licenceId', 'Revoke a licence'),
  change('/v1/licences/:id/surrender', 'licence.surrender', 'licenceId', 'Surrender a licence (its holder)'),
  change('/v1/licences/:id/amend', 'licence.amend', 'licenceId', 'Amend a licence; makes a new version'),
  make('/v1/allocations', 'allocation.create', "Allocate part of a licence's units to a recipient", 'allocationId'),
  change('/v1/allocations/:id/resize', 'allocation.resize', 'allocationId', 'Resize an allocation'),
  make('/v1/shipments', 'shipment.book', 'Book a shipment, reserving units on the export and the import allocation', 'shipmentId'),
  change('/v1/shipments/:id/ship', 'shipment.ship', 'shipmentId', 'Ship a booked shipment'),
  change('/v1/shipments/:id/clear', 'shipment.clear', 'shipmentId', 'Record import clearance'),
  change('/v1/shipments/:id/deliver', 'shipment.deliver', 'shipmentId', 'Confirm delivery'),
  change('/v1/shipments/:id/cancel', 'shipment.cancel', 'shipmentId', 'Cancel a booked shipment, releasing its units'),
  change('/v1/shipments/:id/return', 'shipment.return', 'shipmentId', 'Record a shipped shipment turned back before import clearance (entry refused); its units return to the exporter, and what it shipped stays counted on both licences'),
  change('/v1/shipments/:id/manifest', 'manifest.attach', 'shipmentId', "Attach serials to a booked shipment's manifest"),
  make('/v1/sites', 'site.register', 'Register a data-centre site', 'siteId'),
  change('/v1/units/deploy', 'units.deploy', undefined, 'Report units deployed at a site'),
  change('/v1/units/decommission', 'units.decommission', undefined, 'Report units decommissioned'),
  change('/v1/units/report-lost', 'units.report_lost', undefined, 'Report units lost'),
  change('/v1/units/return', 'units.return', undefined, 'Report units returned to the exporter (they may be shipped again)'),
  change('/v1/ledger/sweep', 'ledger.sweep', undefined, 'Expire bookings past their deadline or under a licence no longer in force, and licences past their validity'),
];

/** Idempotency keys: visible ASCII, bounded. */
const idempotencyKeyPattern = /^[\x21-\x7E]+$/;

export function idempotencyKeyOf(header: string | string[] | undefined): string {
  if (header === undefined || header === '') {
    throw new DomainError('invalid_input', 'every state-changing request needs an Idempotency-Key header (a new random value per request, the same one on retries)', { rule: 'idempotency-key-required' });
  }
  if (Array.isArray(header)) throw new DomainError('invalid_input', 'send one Idempotency-Key header, not several', { rule: 'idempotency-key-required' });
  if (header.length > limits.idempotencyKeyLengthMax) {
    throw new DomainError('invalid_input', `the Idempotency-Key must be 1 to ${limits.idempotencyKeyLengthMax} visible ASCII characters; got ${header.length} characters`, { rule: 'idempotency-key-length-max', details: { lengthMax: limits.idempotencyKeyLengthMax } });
  }
  if (!idempotencyKeyPattern.test(header)) {
    const at = [...header].findIndex((character) => !idempotencyKeyPattern.test(character));
    throw new DomainError('invalid_input', `the Idempotency-Key must be visible ASCII characters only (no spaces); character ${at + 1} is not`, { rule: 'idempotency-key-characters' });
  }
  // A token's secret sent as the key would be kept in plain text in idempotency_keys, whose
  // rows are never deleted (migration 028), where the database keeps only hashes of secrets.
  // Refused before the body is read, so nothing is stored, and not quoted: the refusal goes
  // back in the answer and into logs.
  if (header.startsWith(tokenSecretPrefix)) throw secretAsKeyRefusal(header);
  return header;
}

const tokenIdInSecret = new RegExp(`^${tokenSecretPrefix}(TOK-[0-9]{1,16})_`);

/** The refusal of a key that is (or looks like) a token's secret: names the token's id, never the key. */
function secretAsKeyRefusal(key: string): DomainError {
  const carried = tokenIdInSecret.exec(key)?.[1];
  const revoke = carried === undefined ? 'if it is one, treat it as leaked and revoke its token' : `treat it as leaked and revoke its token, ${carried}`;
  return new DomainError(
    'invalid_input',
    `the Idempotency-Key starts with ${tokenSecretPrefix} as a token's secret does, and keys are kept in plain text, so it was not used: send a new random value as the key; ${revoke}`,
    { rule: 'idempotency-key-secret' },
  );
}

/**
 * Refuses, before the body is read, a command no body could make acceptable: a role that may
 * not run it (403), a missing or malformed Idempotency-Key (400). The sequencer checks the
 * role again for every caller of the ledger, through the same roleRefusal; neither refusal is
 * remembered under the key.
 */
export function commandRefusalBeforeBody(actor: Actor, kind: CommandKind, keyHeader: string | string[] | undefined): void {
  const refusal = roleRefusal(actor, kind);
  if (refusal !== undefined) throw refusal;
  idempotencyKeyOf(keyHeader);
}

/**
 * Input fields that only the demo loader sets, through the ledger directly: `demo` marks
 * rows as demo data (the API then labels them so, and `chipledger demo` counts them to
 * tell a loaded demo from a partial one). A client of the API may not mark its records.
 */
export const loaderOnlyFields: readonly string[] = ['demo'];

/** How much of a contradicting body id a refusal quotes. */
const givenIdQuotedMax = 64;

/** What a JSON value is, for a refusal that may not quote it (String() throws on some objects, JSON.stringify on deep lists). */
function jsonKindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * The command's input: the body object, with the path's id merged in. No body (no bytes) is
 * an empty object, as for POST /v1/ledger/sweep; a body that is JSON but not an object, null
 * included, is refused: read as {} it would run a command the client did not write.
 */
export function commandInput(route: CommandRoute, body: unknown, pathId: string | undefined): Record<string, unknown> {
  if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body))) {
    throw new DomainError('invalid_input', `couldn't read the ${route.kind} request: the body must be a JSON object, and it is ${jsonKindOf(body)}`, { rule: schemaRule, details: { fields: [{ path: '(body)', message: `must be a JSON object, not ${jsonKindOf(body)}` }] } });
  }
  const input = { ...((body ?? {}) as Record<string, unknown>) };
  for (const field of loaderOnlyFields) {
    if (Object.hasOwn(input, field)) {
      throw new DomainError('invalid_input', `couldn't read the ${route.kind} request: ${field} is set by the demo loader only, not through the API`, { rule: schemaRule, details: { fields: [{ path: field, message: 'not accepted through the API' }] } });
    }
  }
  if (route.idField === undefined || pathId === undefined) return input;
  const given = input[route.idField];
  if (given !== undefined && given !== pathId) {
    // The body is any JSON: String() throws on an object like {"toString":1}, and
    // JSON.stringify on a list nested thousands deep, so only a string is quoted.
    const quoted = typeof given === 'string' ? JSON.stringify(given.slice(0, givenIdQuotedMax)) : `(${jsonKindOf(given)})`;
    throw new DomainError('invalid_input', `couldn't read the ${route.kind} request: ${route.idField} ${quoted} in the body differs from ${pathId} in the path`, { rule: schemaRule, details: { fields: [{ path: route.idField, message: 'differs from the path' }] } });
  }
  input[route.idField] = pathId;
  return input;
}

/**
 * Commands whose input carries a serial list (up to 100,000 entries) take a larger body
 * (limits.serialListBodyBytesMax); every other route keeps the server's body limit.
 */
const serialListCommands: ReadonlySet<CommandKind> = new Set(['shipment.book', 'manifest.attach', 'units.deploy', 'units.decommission', 'units.report_lost', 'units.return']);

/**
 * Where GET reads what a 201 made, relative to the request's own URL (RFC 3986 §5.2):
 * POST …/v1/sites answers `sites/SITE-9`, which resolves to …/v1/sites/SITE-9 under whatever
 * path prefix a proxy serves the API at; an absolute /v1/sites/SITE-9 would leave the prefix.
 * A located route is a collection (no :id), so its last segment is the collection's name.
 */
export function locationOf(route: CommandRoute, madeId: string): string {
  assert(!route.path.includes(':'), `a located command route is a collection path: ${route.path}`);
  return `${route.path.slice(route.path.lastIndexOf('/') + 1)}/${encodeURIComponent(madeId)}`;
}

export function registerCommandRoutes(app: FastifyInstance, ledger: Ledger, verifier: TokenVerifier, bodies: BodyBudget): void {
  for (const route of commandRoutes) {
    const options = { config: { command: route.kind }, ...(serialListCommands.has(route.kind) ? { bodyLimit: limits.serialListBodyBytesMax } : {}) };
    app.post(route.path, options, async (request: FastifyRequest, reply: FastifyReply) => {
      // The token was checked when the headers came; a body may take up to the request
      // timeout to arrive, and a token revoked meanwhile must not write. Checked again now:
      // a cache hit normally, a fresh look-up after this process revoked it (or after the
      // cache's few seconds, for a revocation through another process).
      const actor = await verifier.verify(request.headers.authorization);
      const key = idempotencyKeyOf(request.headers['idempotency-key']);
      const input = commandInput(route, request.body, (request.params as { id?: string }).id);
      // The body's room stays taken until the ledger has answered, not only until the client
      // has gone: the queued command holds the parsed input meanwhile.
      const answer = await bodies.holdWhile(request, () => ledger.submit(route.kind, input as never, actor, key));
      if (answer.replayed) reply.header('idempotent-replayed', 'true');
      if (!answer.ok) return sendProblem(reply, problemOf(answer.error, request.url));
      if (route.kind === 'token.revoke') verifier.forget(String(input.tokenId));
      const made = route.locatedBy === undefined ? undefined : answer.body[route.locatedBy];
      if (typeof made === 'string') reply.header('location', locationOf(route, made));
      return reply.code(route.creates ? 201 : 200).send(answer.body);
    });
  }
}
