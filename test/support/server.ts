/**
 * Test support for the API: the ledger test world (test/world.ts) plus a second exporter
 * and its licences (another tenant), shipments through to delivery on both sides, sites,
 * real bearer tokens for every role, and a request helper over fastify's inject.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Answer } from '../../src/ledger/batch-apply.ts';
import { systemActor, type Actor } from '../../src/ledger/permissions.ts';
import type { Role } from '../../src/ledger/rows.ts';
import type { Pool } from '../../src/store/pool.ts';
import { databasePerFile, type TestDatabase } from '../database.ts';
import { buildWorld, tokenActor, type World } from '../world.ts';
import { buildServer } from '../../src/server/app.ts';
import { answerChecker, type AnswerChecker } from './openapi-check.ts';

export type TokenRole = Role | 'none';
export const tokenRoles: readonly TokenRole[] = ['authority_admin', 'authority_officer', 'exporter', 'recipient', 'auditor', 'none'];

export interface ApiWorld {
  world: World;
  app: FastifyInstance;
  orgs: { bis: string; mofcom: string; exporter: string; exporter2: string; alpha: string; beta: string; auditor: string };
  exporter2: Actor;
  /** Secrets: admin and officer at BIS, the exporter, recipient alpha, the auditor, and recipient beta. */
  tokens: Record<Exclude<TokenRole, 'none'>, string> & { beta: string };
  exporter2LicenceId: string;
  betaImportLicenceId: string;
  allocations: World['allocations'] & { exporter2Beta: string; betaImport2: string };
  shipments: { own: string; other: string };
  /** A deployed unit of each shipment. */
  units: { own: string; other: string };
  sites: { alpha: string; beta: string };
  /** A fresh serial number, unique in this world. */
  serial(prefix?: string): string;
  /** A shipment in the given state: 'own' is exporter → alpha, 'other' is exporter2 → beta. */
  shipment(side: 'own' | 'other', stage: 'empty' | 'booked' | 'shipped' | 'cleared' | 'delivered', units?: number): Promise<{ id: string; serials: string[] }>;
  request(options: RequestOptions): Promise<LightMyRequestResponse>;
}

/** A manifest entry: a serial, or a serial with its GPU UUID. */
export type ManifestEntry = string | { serial: string; gpuUuid: string };

/** Books a one-unit-per-entry shipment with a manifest: the exporter's to alpha ('own'), or exporter2's to beta ('other'). */
export function bookListing(api: ApiWorld, side: 'own' | 'other', serials: ManifestEntry[]): Promise<Answer> {
  const own = side === 'own';
  return api.world.ledger.submit('shipment.book', {
    exportAllocationId: own ? api.allocations.alphaExport : api.allocations.exporter2Beta,
    importAllocationId: own ? api.allocations.alphaImport : api.allocations.betaImport2,
    productId: api.world.productId, units: serials.length, deadline: '2026-06-01T00:00:00Z', serials,
  }, own ? api.world.actors.exporter : api.exporter2);
}

export interface RequestOptions {
  method: 'GET' | 'HEAD' | 'POST';
  url: string;
  /** A token secret; absent sends no Authorization header. */
  token?: string;
  body?: unknown;
  /** Raw payload instead of JSON (bad-input tests). */
  payload?: string | Buffer;
  /** Idempotency-Key; a fresh one when absent on a POST; null sends none. */
  key?: string | null;
  headers?: Record<string, string>;
}

export async function buildApiWorld(pool: Pool, options: { demo?: boolean } = {}): Promise<ApiWorld> {
  const world = await buildWorld(pool, { licenceUnits: 100_000, allocationUnits: 20_000 });
  const { run, actors } = world;
  const orgs = {
    bis: actors.bis.orgId, mofcom: actors.mofcom.orgId, exporter: actors.exporter.orgId, alpha: actors.alpha.orgId, beta: actors.beta.orgId, auditor: actors.auditor.orgId,
    exporter2: String((await run('organisation.register', { name: 'Second Silicon Corp.', country: 'US', roles: ['exporter'] }, systemActor)).organisationId),
  };
  const exporter2: Actor = await tokenActor(run, orgs.exporter2, 'exporter');
  const common = { productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 100_000, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z' };
  const exporter2LicenceId = String((await run('licence.create', { ...common, reference: 'BIS-2026-0002', direction: 'export', holderId: orgs.exporter2, parties: [{ organisationId: orgs.beta, role: 'end_user' }] }, actors.bis)).licenceId);
  const betaImportLicenceId = String((await run('licence.create', { ...common, reference: 'MOFCOM-2026-0002', direction: 'import', holderId: orgs.beta, parties: [{ organisationId: orgs.exporter2, role: 'supplier' }] }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId: exporter2LicenceId }, actors.bis);
  await run('licence.issue', { licenceId: betaImportLicenceId }, actors.mofcom);
  const allocations = {
    ...world.allocations,
    exporter2Beta: String((await run('allocation.create', { licenceId: exporter2LicenceId, recipientId: orgs.beta, units: 20_000 }, actors.bis)).allocationId),
    betaImport2: String((await run('allocation.create', { licenceId: betaImportLicenceId, recipientId: orgs.beta, units: 20_000 }, actors.mofcom)).allocationId),
  };
  let serialCounter = 0;
  const serial = (prefix = 'SN') => `${prefix}-${String(++serialCounter).padStart(6, '0')}`;
  const shipment: ApiWorld['shipment'] = async (side, stage, units = 1) => {
    const own = side === 'own';
    const serials = Array.from({ length: units }, () => serial(own ? 'OWN' : 'OTH'));
    const booked = await run('shipment.book', {
      exportAllocationId: own ? allocations.alphaExport : allocations.exporter2Beta,
      importAllocationId: own ? allocations.alphaImport : allocations.betaImport2,
      productId: world.productId, units, deadline: '2026-06-01T00:00:00Z', ...(stage === 'empty' ? {} : { serials }),
    }, own ? actors.exporter : exporter2);
    const id = String(booked.shipmentId);
    const steps: Array<[string, 'shipment.ship' | 'shipment.clear' | 'shipment.deliver', Actor]> = [
      ['shipped', 'shipment.ship', own ? actors.exporter : exporter2],
      ['cleared', 'shipment.clear', own ? actors.alpha : actors.beta],
      ['delivered', 'shipment.deliver', own ? actors.alpha : actors.beta],
    ];
    const order = ['empty', 'booked', 'shipped', 'cleared', 'delivered'];
    for (const [reached, kind, actor] of steps) {
      if (order.indexOf(stage) >= order.indexOf(reached)) await run(kind, { shipmentId: id }, actor);
    }
    return { id, serials };
  };
  const sites = {
    alpha: String((await run('site.register', { name: 'Ulanqab DC 1', province: 'Inner Mongolia', city: 'Ulanqab', latitude: 41, longitude: 113.1, capacityUnits: 100_000 }, actors.alpha)).siteId),
    beta: String((await run('site.register', { name: 'Hangzhou DC 2', province: 'Zhejiang', city: 'Hangzhou', latitude: 30.3, longitude: 120.2, capacityUnits: 100_000 }, actors.beta)).siteId),
  };
  const ownShipment = await shipment('own', 'delivered', 3);
  const otherShipment = await shipment('other', 'delivered', 3);
  await run('units.deploy', { siteId: sites.alpha, serials: [ownShipment.serials[0]!] }, actors.alpha);
  await run('units.deploy', { siteId: sites.beta, serials: [otherShipment.serials[0]!] }, actors.beta);
  const token = async (organisationId: string, role: Role) => String((await run('token.create', { organisationId, role, label: `${role} test token` }, systemActor)).secret);
  const tokens = {
    authority_admin: await token(orgs.bis, 'authority_admin'),
    authority_officer: await token(orgs.bis, 'authority_officer'),
    exporter: await token(orgs.exporter, 'exporter'),
    recipient: await token(orgs.alpha, 'recipient'),
    auditor: await token(orgs.auditor, 'auditor'),
    beta: await token(orgs.beta, 'recipient'),
  };
  const app = await buildServer({ ledger: world.ledger, pool, logger: false, ...(options.demo ? { demo: true } : {}) });
  const request = checkedAgainstDocument(app);
  return {
    world, app, orgs, exporter2, tokens, exporter2LicenceId, betaImportLicenceId, allocations,
    shipments: { own: ownShipment.id, other: otherShipment.id }, units: { own: ownShipment.serials[0]!, other: otherShipment.serials[0]! }, sites, serial, shipment, request,
  };
}

/**
 * inject, with every answer checked against the server's own OpenAPI document: a status
 * it does not list, or a body that does not match its schema, fails the test that sent it.
 */
export function checkedAgainstDocument(app: FastifyInstance): (options: RequestOptions) => Promise<LightMyRequestResponse> {
  let checker: AnswerChecker | undefined;
  return async (options) => {
    const response = await inject(app, options);
    checker ??= answerChecker((await app.inject({ method: 'GET', url: '/v1/openapi.json' })).json());
    const problem = checker.problemWith(options.method, options.url, response);
    if (problem !== null) throw new Error(`the answer does not match the OpenAPI document: ${problem}`);
    return response;
  };
}

export function inject(app: FastifyInstance, options: RequestOptions): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.method === 'POST' && options.key !== null) headers['idempotency-key'] = options.key ?? randomUUID();
  let payload: string | Buffer | undefined = options.payload;
  if (payload === undefined && options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  return app.inject({ method: options.method, url: options.url, headers, ...(payload === undefined ? {} : { payload }) });
}

/**
 * The whole database, table by table: for every table of the schema (the ledger's state,
 * the events and their reader sets and serial lists, the log's head, tiles, checkpoints,
 * cosignatures and keys, the idempotency keys, the migrations), its row count and an MD5 of
 * all its rows' text, sorted. "Nothing changed" means these are equal: a row added, removed
 * or changed in any column shows in its table's entry. The tables are read from the
 * catalogue, so a table a later migration adds is in it too. One statement: about a
 * millisecond per table on a test world.
 */
export async function databaseFootprint(pool: Pool): Promise<Record<string, string>> {
  const tables = (await pool.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")).rows.map((row) => row.name);
  const digests = tables.map((table) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`assertion failed: table name ${JSON.stringify(table)} is not a plain identifier`);
    return `SELECT '${table}' AS name, count(*) || ' rows, md5 ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS digest FROM "${table}" t`;
  });
  const { rows } = await pool.query<{ name: string; digest: string }>(digests.join('\nUNION ALL\n'));
  return Object.fromEntries(rows.map((row) => [row.name, row.digest]));
}

/** A fresh database and API world for one test file (databasePerFile). */
export function apiWorldPerFile(ready: (api: ApiWorld, database: TestDatabase) => void, options: Parameters<typeof buildApiWorld>[1] = {}): void {
  databasePerFile((pool) => buildApiWorld(pool, options), async (api) => {
    await api.app.close();
    await api.world.ledger.close();
  }, ready);
}
