/**
 * The full allow/deny matrix: every route the server registers × every role (and no
 * token) × a target of the caller's own tenant and one of another tenant, from one
 * declarative table. Each cell gets a fresh target where the request would change it, so
 * every allowed cell can succeed. Every GET row is asked again as HEAD, which must answer
 * alike. Then the list endpoints: nobody sees another tenant's rows.
 *
 * The routes are the ones fastify registers (an onRoute hook on every instance this file
 * builds), not a list the code keeps of itself: a route registered anywhere, the log's,
 * the public ones, one added later, fails the coverage test until the table has its row.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { cosignCheckpoint, generateCosignerKey, generateSignerKey, parseCosignerKey } from '../tlog/index.ts';
import { buildServer } from './app.ts';
import { buildApiWorld, checkedAgainstDocument, tokenRoles, type ApiWorld, type RequestOptions, type TokenRole } from '../../test/support/server.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

/** Every route registered on a fastify instance made in this file: "METHOD url". */
const registered = vi.hoisted(() => new Set<string>());
vi.mock('fastify', async (importOriginal) => {
  const actual = await importOriginal<typeof import('fastify')>();
  const withRouteHook = ((options?: Parameters<typeof actual.default>[0]) => {
    const app = actual.default(options);
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) registered.add(`${method} ${route.url}`);
    });
    return app;
  }) as typeof actual.default;
  return { ...actual, default: withRouteHook };
});

let database: TestDatabase;
let api: ApiWorld;
/** A second server on the same database whose ledger signs the log, with a witness configured: the log routes' answers. */
let logPool: Pool;
let logLedger: Ledger;
let logApp: FastifyInstance;
let logRequest: (options: RequestOptions) => Promise<LightMyRequestResponse>;
const witness = generateCosignerKey('witness.example');

beforeAll(async () => {
  database = await createTestDatabase();
  api = await buildApiWorld(database.pool);
  logPool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'matrix-log' });
  logLedger = await Ledger.open({ pool: logPool, clock: api.world.clock, logSealingKey: testSealingKey, logSignerKey: generateSignerKey('log.chipledger.test').signerKey, checkpointIntervalMs: 3_600_000 });
  await logLedger.checkpointer!.checkpointNow();
  logApp = await buildServer({ ledger: logLedger, pool: logPool, logger: false, witnessKeys: [witness.verifierKey] });
  logRequest = checkedAgainstDocument(logApp);
});
afterAll(async () => {
  await logApp?.close();
  await logLedger?.close();
  await logPool?.end();
  await api?.app.close();
  await api?.world.ledger.close();
  await database?.drop();
});

type Role = Exclude<TokenRole, 'none'>;
type Tenant = 'own' | 'other';
interface Target {
  url: string;
  body?: unknown;
  /** A raw body (text/plain notes) with its headers, sent without an Idempotency-Key. */
  text?: { payload: string; headers: Record<string, string> };
}
interface Row {
  method: 'GET' | 'POST';
  /** The route as fastify registers it. */
  route: string;
  /** Which request of a route that serves two kinds of thing (hash tiles and entry bundles). */
  variant?: string;
  /** The server that answers: the API world's, or the one whose ledger signs the log. */
  server?: 'log';
  target(role: Role, tenant: Tenant): Promise<Target> | Target;
  /** [own tenant, other tenant] per role; roles left out get 403 on both; without a token ('none'), 401 unless given. */
  expect: Partial<Record<TokenRole, [number, number]>>;
}

const seesAll = (role: Role) => role === 'authority_admin' || role === 'authority_officer' || role === 'auditor';
const everyone = (status: number): Row['expect'] => ({ authority_admin: [status, status], authority_officer: [status, status], exporter: [status, status], recipient: [status, status], auditor: [status, status] });
/** Public routes: the same answer with any token or none. */
const anyone = (status: number): Row['expect'] => ({ ...everyone(status), none: [status, status] });
const tenantRead: Row['expect'] = { authority_admin: [200, 200], authority_officer: [200, 200], auditor: [200, 200], exporter: [200, 404], recipient: [200, 404] };
const authorities = (own: number, other: number): Row['expect'] => ({ authority_admin: [own, other], authority_officer: [own, other] });

let counter = 0;
const next = () => ++counter;

// Targets for reads: what "own" and "other" mean for each role.
const licenceOf = (role: Role, tenant: Tenant): string => {
  if (tenant === 'own') return role === 'recipient' ? api.world.importLicenceId : api.world.exportLicenceId;
  return seesAll(role) ? api.world.importLicenceId : api.exporter2LicenceId;
};
const allocationOf = (role: Role, tenant: Tenant): string => {
  if (tenant === 'own') return role === 'recipient' ? api.allocations.alphaImport : api.allocations.alphaExport;
  // For alpha, beta's allocation on the import licence alpha itself holds: still not alpha's to see.
  return role === 'exporter' ? api.allocations.exporter2Beta : api.allocations.betaImport;
};

// Fresh targets for writes.
interface LicenceSpec {
  authority: 'bis' | 'mofcom';
  holder?: string;
  parties?: Array<{ organisationId: string; role: 'consignee' | 'end_user' | 'supplier' }>;
  status?: 'draft' | 'issued' | 'suspended';
}
async function licence(spec: LicenceSpec): Promise<string> {
  const { actors, productId, run } = api.world;
  const export_ = spec.authority === 'bis';
  const actor = export_ ? actors.bis : actors.mofcom;
  const id = String((await run('licence.create', {
    reference: `T-${next()}`, direction: export_ ? 'export' : 'import',
    holderId: spec.holder ?? (export_ ? api.orgs.exporter : api.orgs.alpha),
    parties: spec.parties ?? (export_ ? [{ organisationId: api.orgs.alpha, role: 'end_user' }] : [{ organisationId: api.orgs.exporter, role: 'supplier' }]),
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 1_000, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, actor)).licenceId);
  if (spec.status === 'issued' || spec.status === 'suspended') await run('licence.issue', { licenceId: id }, actor);
  if (spec.status === 'suspended') await run('licence.suspend', { licenceId: id }, actor);
  return id;
}
const authorityOf = (tenant: Tenant) => (tenant === 'own' ? 'bis' : 'mofcom');
async function allocation(tenant: Tenant): Promise<string> {
  const licenceId = await licence({ authority: authorityOf(tenant) });
  const actor = tenant === 'own' ? api.world.actors.bis : api.world.actors.mofcom;
  return String((await api.world.run('allocation.create', { licenceId, recipientId: api.orgs.alpha, units: 10 }, actor)).allocationId);
}
/** The holder's own licence to surrender, or one held by another tenant. */
async function surrenderable(role: Role, tenant: Tenant): Promise<string> {
  if (role === 'recipient') {
    return tenant === 'own'
      ? licence({ authority: 'mofcom', holder: api.orgs.alpha, status: 'issued' })
      : licence({ authority: 'mofcom', holder: api.orgs.beta, parties: [{ organisationId: api.orgs.exporter2, role: 'supplier' }], status: 'issued' });
  }
  return tenant === 'own'
    ? licence({ authority: 'bis', holder: api.orgs.exporter, status: 'issued' })
    : licence({ authority: 'bis', holder: api.orgs.exporter2, parties: [{ organisationId: api.orgs.beta, role: 'end_user' }], status: 'issued' });
}
async function token(tenant: Tenant): Promise<string> {
  const organisationId = tenant === 'own' ? api.orgs.exporter : api.orgs.exporter2;
  return String((await api.world.run('token.create', { organisationId, role: 'exporter', label: `t-${next()}` }, systemActor)).tokenId);
}
const shipmentIn = async (tenant: Tenant, stage: Parameters<ApiWorld['shipment']>[1]) => api.shipment(tenant, stage);

const deadline = '2026-05-01T00:00:00Z';

/** The booking event of the own or the other tenant's shipment, which records its serial list. */
async function bookingEventOf(tenant: Tenant): Promise<number> {
  const { rows } = await database.pool.query<{ seq: string }>(
    'SELECT s.seq FROM event_serials s JOIN events e ON e.seq = s.seq WHERE e.subject_id = $1 ORDER BY s.seq LIMIT 1', [api.shipments[tenant]],
  );
  expect(rows).toHaveLength(1);
  return Number(rows[0]!.seq);
}
/** The log's first tile, full or as wide as the log is (C2SP tlog-tiles), of hashes (level 0) or of entries. */
async function firstTile(kind: '0' | 'entries'): Promise<string> {
  const size = Number((await database.pool.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
  return `/v1/log/tile/${kind}/000${size >= 256 ? '' : `.p/${size}`}`;
}
/** The newest checkpoint, cosigned by the configured witness. */
async function cosignedCheckpoint(): Promise<Target['text']> {
  const note = (await logRequest({ method: 'GET', url: '/v1/log/checkpoint' })).body;
  return { payload: cosignCheckpoint(note, parseCosignerKey(witness.signerKey), 1_800_000_000), headers: { 'content-type': 'text/plain' } };
}
const readsEveryEvent: Row['expect'] = { authority_admin: [200, 200], authority_officer: [200, 200], auditor: [200, 200] };
const productBody = () => ({ model: `Test Accelerator ${next()}`, vendor: 'Test', parameters: { denseTops: 100, bitLength: 8, logicDieAreaMm2: 500, dramBandwidthGbS: 1_000, designedForDatacenter: true } });
const siteBody = () => ({ name: `DC ${next()}`, province: 'Guizhou', city: 'Guiyang', latitude: 26.6, longitude: 106.7, capacityUnits: 100 });
const endBody = async (tenant: Tenant) => ({ serials: (await shipmentIn(tenant, 'delivered')).serials, reason: 'end of service' });

const table: Row[] = [
  // Reads: lists (everyone with a token) and details (another tenant's id is a 404).
  { method: 'GET', route: '/v1/organisations', target: () => ({ url: '/v1/organisations' }), expect: everyone(200) },
  { method: 'GET', route: '/v1/products', target: () => ({ url: '/v1/products' }), expect: everyone(200) },
  { method: 'GET', route: '/v1/licences', target: () => ({ url: '/v1/licences' }), expect: everyone(200) },
  { method: 'GET', route: '/v1/licences/:id', target: (role, tenant) => ({ url: `/v1/licences/${licenceOf(role, tenant)}` }), expect: tenantRead },
  { method: 'GET', route: '/v1/licences/:id/versions', target: (role, tenant) => ({ url: `/v1/licences/${licenceOf(role, tenant)}/versions` }), expect: tenantRead },
  { method: 'GET', route: '/v1/allocations', target: () => ({ url: '/v1/allocations' }), expect: everyone(200) },
  { method: 'GET', route: '/v1/allocations/:id', target: (role, tenant) => ({ url: `/v1/allocations/${allocationOf(role, tenant)}` }), expect: tenantRead },
  { method: 'GET', route: '/v1/shipments', target: () => ({ url: '/v1/shipments' }), expect: everyone(200) },
  { method: 'GET', route: '/v1/shipments/:id', target: (_role, tenant) => ({ url: `/v1/shipments/${api.shipments[tenant]}` }), expect: tenantRead },
  { method: 'GET', route: '/v1/shipments/:id/serials', target: (_role, tenant) => ({ url: `/v1/shipments/${api.shipments[tenant]}/serials` }), expect: tenantRead },
  { method: 'GET', route: '/v1/units', target: () => ({ url: '/v1/units' }), expect: everyone(200) },
  { method: 'GET', route: '/v1/units/:id', target: (_role, tenant) => ({ url: `/v1/units/${api.units[tenant]}` }), expect: tenantRead },
  { method: 'GET', route: '/v1/sites', target: () => ({ url: '/v1/sites' }), expect: everyone(200) },
  // An exporter owns no site: alpha's and beta's are both another tenant's.
  { method: 'GET', route: '/v1/sites/:id', target: (_role, tenant) => ({ url: `/v1/sites/${tenant === 'own' ? api.sites.alpha : api.sites.beta}` }), expect: { ...tenantRead, exporter: [404, 404] } },
  { method: 'GET', route: '/v1/events', target: () => ({ url: '/v1/events' }), expect: everyone(200) },
  // An event and its serial list: its readers only (the parties of the shipment, authorities, auditors).
  { method: 'GET', route: '/v1/events/:seq', target: async (_role, tenant) => ({ url: `/v1/events/${await bookingEventOf(tenant)}` }), expect: tenantRead },
  { method: 'GET', route: '/v1/events/:seq/serials', target: async (_role, tenant) => ({ url: `/v1/events/${await bookingEventOf(tenant)}/serials` }), expect: tenantRead },
  { method: 'GET', route: '/v1/reports/utilisation', target: () => ({ url: '/v1/reports/utilisation' }), expect: everyone(200) },

  // Public: the API's description, health and metrics.
  { method: 'GET', route: '/v1/openapi.json', target: () => ({ url: '/v1/openapi.json' }), expect: anyone(200) },
  { method: 'GET', route: '/v1/docs', target: () => ({ url: '/v1/docs' }), expect: anyone(200) },
  { method: 'GET', route: '/healthz', target: () => ({ url: '/healthz' }), expect: anyone(200) },
  { method: 'GET', route: '/metrics', target: () => ({ url: '/metrics' }), expect: anyone(200) },

  // The transparency log: its hashes, checkpoints and proofs are public (each event's nonce
  // keeps its leaf hash from confirming a guess at it; events from before the nonce have none);
  // entry bundles hold every event, so only roles that read every event get them.
  { method: 'GET', route: '/v1/log/key', server: 'log', target: () => ({ url: '/v1/log/key' }), expect: anyone(200) },
  { method: 'GET', route: '/v1/log/keys', server: 'log', target: () => ({ url: '/v1/log/keys' }), expect: anyone(200) },
  { method: 'GET', route: '/v1/log/checkpoint', server: 'log', target: () => ({ url: '/v1/log/checkpoint' }), expect: anyone(200) },
  { method: 'GET', route: '/v1/log/tile/*', variant: 'hash tile', server: 'log', target: async () => ({ url: await firstTile('0') }), expect: anyone(200) },
  { method: 'GET', route: '/v1/log/tile/*', variant: 'entry bundle', server: 'log', target: async () => ({ url: await firstTile('entries') }), expect: readsEveryEvent },
  { method: 'GET', route: '/v1/log/proof/inclusion', server: 'log', target: () => ({ url: '/v1/log/proof/inclusion?index=0&size=2' }), expect: anyone(200) },
  { method: 'GET', route: '/v1/log/proof/consistency', server: 'log', target: () => ({ url: '/v1/log/proof/consistency?from=1&to=2' }), expect: anyone(200) },
  { method: 'GET', route: '/v1/log/events/:seq/proof', server: 'log', target: () => ({ url: '/v1/log/events/0/proof' }), expect: anyone(200) },
  // A witness's cosignature is its own authority: the signature, not a token, decides.
  { method: 'POST', route: '/v1/log/cosignatures', server: 'log', target: async () => ({ url: '/v1/log/cosignatures', text: await cosignedCheckpoint() }), expect: anyone(201) },

  // Writes.
  { method: 'POST', route: '/v1/organisations', target: () => ({ url: '/v1/organisations', body: { name: `Org ${next()}`, country: 'US', roles: ['exporter'] } }), expect: { authority_admin: [201, 201] } },
  { method: 'POST', route: '/v1/organisations/:id/kyc', target: (_role, tenant) => ({ url: `/v1/organisations/${tenant === 'own' ? api.orgs.alpha : api.orgs.beta}/kyc`, body: { verified: true } }), expect: authorities(200, 200) },
  { method: 'POST', route: '/v1/products', target: () => ({ url: '/v1/products', body: productBody() }), expect: authorities(201, 201) },
  { method: 'POST', route: '/v1/tokens', target: (_role, tenant) => ({ url: '/v1/tokens', body: { organisationId: tenant === 'own' ? api.orgs.exporter : api.orgs.exporter2, role: 'exporter', label: `t-${next()}` } }), expect: { authority_admin: [201, 201] } },
  { method: 'POST', route: '/v1/tokens/:id/revoke', target: async (_role, tenant) => ({ url: `/v1/tokens/${await token(tenant)}/revoke` }), expect: { authority_admin: [200, 200] } },
  {
    method: 'POST', route: '/v1/licences',
    target: (_role, tenant) => ({ url: '/v1/licences', body: { reference: `N-${next()}`, direction: 'export', holderId: tenant === 'own' ? api.orgs.exporter : api.orgs.exporter2, productIds: [api.world.productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z' } }),
    expect: authorities(201, 201),
  },
  // An authority acts only on licences it issued: another authority's licence is a 403 (it can see it).
  { method: 'POST', route: '/v1/licences/:id/issue', target: async (_role, tenant) => ({ url: `/v1/licences/${await licence({ authority: authorityOf(tenant) })}/issue` }), expect: authorities(200, 403) },
  { method: 'POST', route: '/v1/licences/:id/suspend', target: async (_role, tenant) => ({ url: `/v1/licences/${await licence({ authority: authorityOf(tenant), status: 'issued' })}/suspend`, body: { reason: 'investigation' } }), expect: authorities(200, 403) },
  { method: 'POST', route: '/v1/licences/:id/reinstate', target: async (_role, tenant) => ({ url: `/v1/licences/${await licence({ authority: authorityOf(tenant), status: 'suspended' })}/reinstate` }), expect: authorities(200, 403) },
  { method: 'POST', route: '/v1/licences/:id/revoke', target: async (_role, tenant) => ({ url: `/v1/licences/${await licence({ authority: authorityOf(tenant), status: 'issued' })}/revoke` }), expect: authorities(200, 403) },
  { method: 'POST', route: '/v1/licences/:id/surrender', target: async (role, tenant) => ({ url: `/v1/licences/${await surrenderable(role, tenant)}/surrender` }), expect: { exporter: [200, 404], recipient: [200, 404] } },
  { method: 'POST', route: '/v1/licences/:id/amend', target: async (_role, tenant) => ({ url: `/v1/licences/${await licence({ authority: authorityOf(tenant) })}/amend`, body: { reason: 'more units', authorisedUnits: 2_000 } }), expect: authorities(200, 403) },
  { method: 'POST', route: '/v1/allocations', target: async (_role, tenant) => ({ url: '/v1/allocations', body: { licenceId: await licence({ authority: authorityOf(tenant) }), recipientId: api.orgs.alpha, units: 5 } }), expect: authorities(201, 403) },
  { method: 'POST', route: '/v1/allocations/:id/resize', target: async (_role, tenant) => ({ url: `/v1/allocations/${await allocation(tenant)}/resize`, body: { units: 20 } }), expect: authorities(200, 403) },
  {
    method: 'POST', route: '/v1/shipments',
    target: (_role, tenant) => ({
      url: '/v1/shipments',
      body: tenant === 'own'
        ? { exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 1, deadline }
        : { exportAllocationId: api.allocations.exporter2Beta, importAllocationId: api.allocations.betaImport2, productId: api.world.productId, units: 1, deadline },
    }),
    expect: { exporter: [201, 404] },
  },
  { method: 'POST', route: '/v1/shipments/:id/ship', target: async (_role, tenant) => ({ url: `/v1/shipments/${(await shipmentIn(tenant, 'booked')).id}/ship` }), expect: { exporter: [200, 404] } },
  // Only the authority of a shipment's import licence records its clearance (customs): the
  // tokens here are BIS's, and both shipments clear under MOFCOM's licences
  // (handlers/shipments-ship-covers.test.ts has MOFCOM clear). A recipient clears its own.
  { method: 'POST', route: '/v1/shipments/:id/clear', target: async (_role, tenant) => ({ url: `/v1/shipments/${(await shipmentIn(tenant, 'shipped')).id}/clear` }), expect: { ...authorities(403, 403), recipient: [200, 404] } },
  { method: 'POST', route: '/v1/shipments/:id/deliver', target: async (_role, tenant) => ({ url: `/v1/shipments/${(await shipmentIn(tenant, 'cleared')).id}/deliver` }), expect: { recipient: [200, 404] } },
  { method: 'POST', route: '/v1/shipments/:id/cancel', target: async (_role, tenant) => ({ url: `/v1/shipments/${(await shipmentIn(tenant, 'booked')).id}/cancel` }), expect: { exporter: [200, 404] } },
  // A return at the border is the exporter's, or the import licence's authority's (MOFCOM's,
  // not these BIS tokens': handlers/shipments-return.test.ts has MOFCOM return one).
  { method: 'POST', route: '/v1/shipments/:id/return', target: async (_role, tenant) => ({ url: `/v1/shipments/${(await shipmentIn(tenant, 'shipped')).id}/return`, body: { reason: 'entry refused' } }), expect: { ...authorities(403, 403), exporter: [200, 404] } },
  { method: 'POST', route: '/v1/shipments/:id/manifest', target: async (_role, tenant) => ({ url: `/v1/shipments/${(await shipmentIn(tenant, 'empty')).id}/manifest`, body: { serials: [api.serial('MAN')] } }), expect: { exporter: [200, 404] } },
  { method: 'POST', route: '/v1/sites', target: () => ({ url: '/v1/sites', body: siteBody() }), expect: { recipient: [201, 201] } },
  {
    method: 'POST', route: '/v1/units/deploy',
    target: async (_role, tenant) => ({ url: '/v1/units/deploy', body: { siteId: tenant === 'own' ? api.sites.alpha : api.sites.beta, serials: (await shipmentIn(tenant, 'delivered')).serials } }),
    expect: { recipient: [200, 404] },
  },
  { method: 'POST', route: '/v1/units/decommission', target: async (_role, tenant) => ({ url: '/v1/units/decommission', body: await endBody(tenant) }), expect: { recipient: [200, 404] } },
  { method: 'POST', route: '/v1/units/report-lost', target: async (_role, tenant) => ({ url: '/v1/units/report-lost', body: await endBody(tenant) }), expect: { recipient: [200, 404] } },
  { method: 'POST', route: '/v1/units/return', target: async (_role, tenant) => ({ url: '/v1/units/return', body: await endBody(tenant) }), expect: { recipient: [200, 404] } },
  // Allowed for the admin alone; with nothing due it answers 409 and writes nothing.
  { method: 'POST', route: '/v1/ledger/sweep', target: () => ({ url: '/v1/ledger/sweep' }), expect: { authority_admin: [409, 409] } },
];

/** One cell's request: the row's server, the role's token (none for 'none'), the target's body. */
function send(row: Row, role: TokenRole, target: Target, method: Row['method'] | 'HEAD' = row.method): Promise<LightMyRequestResponse> {
  // HEAD is in the OpenAPI document too, each GET's twin: checked against it like the GET.
  const token = role === 'none' ? {} : { token: api.tokens[role] };
  const request = row.server === 'log' ? logRequest : api.request;
  const body = target.text ? { payload: target.text.payload, headers: target.text.headers, key: null } : target.body === undefined ? {} : { body: target.body };
  return request({ method, url: target.url, ...token, ...body });
}

/** An OpenAPI path as fastify spells its route: `{id}` is `:id`, and the tile path's one wildcard parameter `*`. */
function fastifyPathOf(path: string): string {
  return path.replace(/\{([^}]+)\}/g, (_whole, name: string) => (name === 'path' ? '*' : `:${name}`));
}

const title = (row: Row) => `${row.method} ${row.route}${row.variant ? ` (${row.variant})` : ''}`;

describe('allow/deny matrix', () => {
  it('covers every route the server registers, and only those', () => {
    // Both servers of this file registered their routes while it was built (beforeAll).
    expect(registered.size).toBeGreaterThan(40);
    const declared = new Set(table.map((row) => `${row.method} ${row.route}`));
    // A HEAD route is fastify's twin of a GET route: its GET row is asked again as HEAD.
    const needed = [...registered].map((route) => route.replace(/^HEAD /, 'GET '));
    expect([...new Set(needed)].filter((route) => !declared.has(route)), 'registered routes the table lacks').toEqual([]);
    expect([...declared].filter((route) => !registered.has(route)), 'table rows of routes nobody registers').toEqual([]);
  });

  it('covers every operation of the OpenAPI document, and the document no route that is not served', async () => {
    // The document is built from the route tables, but some operations are written into it by
    // hand (the log's, /healthz, /metrics, the docs): one no route serves would fail no other test.
    const document = (await api.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const methods = new Set(['get', 'head', 'post', 'put', 'patch', 'delete']);
    const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).filter((method) => methods.has(method))
      .map((method) => `${method.toUpperCase()} ${fastifyPathOf(path)}`));
    expect(documented.length).toBeGreaterThan(40);
    expect(documented.filter((route) => !registered.has(route)), 'documented operations no route serves').toEqual([]);
    expect([...registered].filter((route) => !documented.includes(route)), 'routes the document leaves out').toEqual([]);
  });

  for (const row of table) {
    it(title(row), async () => {
      const cells = tokenRoles.flatMap((role) => (['own', 'other'] as const).map((tenant) => ({ role, tenant })));
      const results = await Promise.all(cells.map(async ({ role, tenant }) => {
        const target = await row.target(role === 'none' ? 'authority_admin' : role, tenant);
        const response = await send(row, role, target);
        const expected = (row.expect[role] ?? [role === 'none' ? 401 : 403, role === 'none' ? 401 : 403])[tenant === 'own' ? 0 : 1];
        if (response.statusCode >= 400) {
          expect(response.headers['content-type'], `${role}/${tenant}`).toMatch(/^application\/problem\+json/);
          expect(response.json().status).toBe(response.statusCode);
        }
        if (response.statusCode === 401) expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
        // HEAD must answer as GET does, for every cell: no way round a read rule.
        const head = row.method === 'GET' ? (await send(row, role, target, 'HEAD')).statusCode : expected;
        return { cell: `${role}/${tenant}`, status: response.statusCode, head, expected, detail: response.statusCode === expected ? '' : response.body.slice(0, 300) };
      }));
      expect(results.filter((result) => result.status !== result.expected || result.head !== result.expected)).toEqual([]);
    });
  }
});

describe('tenant isolation in lists', () => {
  const list = async (url: string, token: string) => {
    const response = await api.request({ method: 'GET', url: `${url}?limit=500`, token });
    expect(response.statusCode).toBe(200);
    return response.json().items as Array<Record<string, unknown>>;
  };

  it('a recipient never sees another recipient’s allocations, shipments, units or sites', async () => {
    const { alpha, beta } = api.orgs;
    for (const [token, self, other] of [[api.tokens.recipient, alpha, beta], [api.tokens.beta, beta, alpha]] as const) {
      const allocations = await list('/v1/allocations', token);
      expect(allocations.length).toBeGreaterThan(0);
      expect(allocations.filter((row) => row.recipientId !== self)).toEqual([]);
      const shipments = await list('/v1/shipments', token);
      expect(shipments.length).toBeGreaterThan(0);
      expect(shipments.filter((row) => row.recipientId !== self)).toEqual([]);
      const units = await list('/v1/units', token);
      expect(units.length).toBeGreaterThan(0);
      expect(units.filter((row) => row.recipientId !== self)).toEqual([]);
      const sites = await list('/v1/sites', token);
      expect(sites.length).toBeGreaterThan(0);
      expect(sites.filter((row) => row.organisationId !== self)).toEqual([]);
      // Events and the report hold the recipient's own rows too: an empty list would pass its filter unseen.
      const events = await list('/v1/events', token);
      expect(events.length).toBeGreaterThan(0);
      expect(events.filter((row) => !(row.organisationIds as string[]).includes(self))).toEqual([]);
      const report = await list('/v1/reports/utilisation', token);
      const reported = report.flatMap((row) => row.allocations as Array<Record<string, unknown>>);
      expect(reported.filter((row) => row.recipientId === self).length).toBeGreaterThan(0);
      expect(reported.filter((row) => row.recipientId === other)).toEqual([]);
      const licence = (await api.request({ method: 'GET', url: `/v1/licences/${api.world.importLicenceId}`, token })).json();
      const onLicence = licence.allocations as Array<Record<string, unknown>>;
      expect(onLicence.filter((row) => row.recipientId === self).length).toBeGreaterThan(0);
      expect(onLicence.filter((row) => row.recipientId !== self)).toEqual([]);
    }
  });

  it('an exporter sees its own shipments only, and authorities and auditors see everything', async () => {
    const shipments = await list('/v1/shipments', api.tokens.exporter);
    expect(shipments.length).toBeGreaterThan(0);
    expect(shipments.filter((row) => row.exporterId !== api.orgs.exporter)).toEqual([]);
    const total = (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM shipments')).rows[0]!.n;
    for (const role of ['authority_admin', 'authority_officer', 'auditor'] as const) {
      expect((await list('/v1/shipments', api.tokens[role])).length).toBe(Math.min(total, 500));
    }
  });

  it('refuses a revoked token at once on the server that revoked it', async () => {
    const secret = String((await api.world.run('token.create', { organisationId: api.orgs.exporter, role: 'exporter', label: 'short-lived' }, systemActor)).secret);
    expect((await api.request({ method: 'GET', url: '/v1/shipments', token: secret })).statusCode).toBe(200);
    const tokenId = secret.split('_')[1]!;
    expect((await api.request({ method: 'POST', url: `/v1/tokens/${tokenId}/revoke`, token: api.tokens.authority_admin })).statusCode).toBe(200);
    const refused = await api.request({ method: 'GET', url: '/v1/shipments', token: secret });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().code).toBe('unauthenticated');
  });

  it('refuses a well-formed secret with the wrong random part, and a malformed one, alike', async () => {
    const [prefix, tokenId] = api.tokens.exporter.split('_');
    const forged = `${prefix}_${tokenId}_${'A'.repeat(43)}`;
    const answers = await Promise.all([forged, 'clt_nonsense', 'Basic abc', `${api.tokens.exporter}x`].map((secret) => api.request({ method: 'GET', url: '/v1/shipments', token: secret })));
    for (const answer of answers) {
      expect(answer.statusCode).toBe(401);
      expect(answer.json().detail).toBe(answers[0]!.json().detail);
    }
  });
});
