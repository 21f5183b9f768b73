/**
 * Random requests against every route, the way a careless or hostile client sends them.
 * - Bodies use each command's own field names. Their values are mostly plausible (ids of
 *   this tenant and another, ids that earlier requests made, unknown ids, small quantities),
 *   now and then boundary numbers, odd strings or wrong types; some bodies are no object or
 *   no JSON at all. So about half the requests reach the ledger's rules, and the test checks
 *   that they still do.
 * - Path ids and query strings are random. Tokens are mostly of a role that may run the
 *   command, sometimes any role, forged or none.
 *
 * Whatever comes in:
 * - the answer is a 2xx, or a 4xx problem+json whose status, code and detail are filled in
 *   (never a 5xx);
 * - a retry under the same Idempotency-Key gets the same answer;
 * - at the end every invariant holds, and a fresh ledger's start-up check proves the log.
 *
 * fast-check shrinks a failure to one small request and prints its seed. Reproduce it with
 * FUZZ_SEED=<seed>; FUZZ_RUNS sets the number of requests per property.
 */
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { limits } from '../core/limits.ts';
import { makeUscc } from '../core/uscc.ts';
import { Ledger } from '../ledger/ledger.ts';
import { commandRoles } from '../ledger/permissions.ts';
import type { Role } from '../ledger/rows.ts';
import { commandSchemas, type CommandKind } from '../ledger/schemas.ts';
import { commandRoutes, type CommandRoute } from './commands.ts';
import { queryRoutes } from './queries.ts';
import { buildApiWorld, type ApiWorld, type RequestOptions } from '../../test/support/server.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let database: TestDatabase;
let api: ApiWorld;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await buildApiWorld(database.pool);
  idPool.push(
    api.world.exportLicenceId, api.world.importLicenceId, api.exporter2LicenceId, api.betaImportLicenceId, ...Object.values(api.allocations),
    ...Object.values(api.shipments), ...Object.values(api.sites), ...Object.values(api.orgs), api.world.productId,
    'L-999999', 'A-0', 'S-1', 'ORG-1', 'TOK-1', 'SITE-2',
  );
});
afterAll(async () => {
  await api?.app.close();
  await api?.world.ledger.close();
  await database?.drop();
});

const runs = Number(process.env.FUZZ_RUNS ?? 400);
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const settings = { numRuns: runs, ...(seed === undefined ? {} : { seed }) };

// The pools. Arbitraries are built lazily: the ids exist only once the world is built.

const numbers = [0, -1, 1, 2, 3, 7, 1.5, -0.5, 90, -180.5, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e308, limits.unitsMax, limits.unitsMax + 1];
const strings = [
  '', ' ', 'x', 'x'.repeat(limits.textLengthMax + 1), 'DC\u0000', '\ud800', 'a\u202Eb', '数据中心 Δ', '../../etc/passwd', "'; DROP TABLE events; --",
  '2026-05-01T00:00:00Z', '2026-13-45T99:00:00Z', '2026-03-01', 'CN', 'US', 'export', 'import', 'exporter', 'recipient', 'end_user', 'obligation', '__proto__',
];

const anyValue = (): fc.Arbitrary<unknown> => fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<unknown>(...strings) },
  { weight: 3, arbitrary: fc.constantFrom<unknown>(...numbers) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

/** A value unique to this run: references, product models and serials must not repeat. */
let counter = 0;
const fresh = (prefix: string) => fc.constant(null).map(() => `${prefix}-${String(++counter).padStart(6, '0')}`);

/**
 * Ids to name: the world's, of both tenants, some unknown ones, and every id an accepted
 * command returned, so later requests act on things earlier ones made.
 */
const idPool: string[] = [];
function rememberIds(body: unknown): void {
  if (typeof body !== 'object' || body === null) return;
  for (const [field, value] of Object.entries(body)) {
    if (field.endsWith('Id') && typeof value === 'string' && !idPool.includes(value)) idPool.push(value);
  }
}

/** The id prefix of what a field or a path segment names. */
function prefixOf(name: string): string {
  if (/^licence/i.test(name)) return 'L-';
  if (/allocation/i.test(name)) return 'A-';
  if (/^shipment/i.test(name)) return 'S-';
  if (/^(organisation|holder|recipient)/i.test(name)) return 'ORG-';
  if (/^token/i.test(name)) return 'TOK-';
  if (/^site/i.test(name)) return 'SITE-';
  if (/^product/i.test(name)) return 'PRD-';
  return '';
}

/** Mostly an id of the right kind, sometimes any id. */
const ids = (name = ''): fc.Arbitrary<string> => fc.tuple(fc.nat(), fc.nat({ max: 8 })).map(([pick, wrongKind]) => {
  const kind = idPool.filter((id) => id.startsWith(prefixOf(name)));
  const from = wrongKind === 0 || kind.length === 0 ? idPool : kind;
  return from[pick % from.length]!;
});

function serialLists(): fc.Arbitrary<unknown> {
  const serial = fc.oneof(
    { weight: 24, arbitrary: fresh('FZ') },
    { weight: 6, arbitrary: fc.constantFrom<unknown>(api.units.own, api.units.other, 'OWN-000002', 'OTH-000005') },
    { weight: 1, arbitrary: fc.record({ serial: fresh('FZ'), gpuUuid: fc.constantFrom('GPU-12345678-0000-0000-0000-00000000abcd', 'GPU-?') }) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>('bad serial', '', '-LEADING-DASH', 7) },
  );
  return fc.oneof(
    { weight: 30, arbitrary: fc.array(serial, { minLength: 1, maxLength: 4 }) },
    { weight: 1, arbitrary: fresh('FZ').map((one) => [one, one]) },
    { weight: 1, arbitrary: fc.constant([]) },
  );
}

// Datasheet figures on both sides of the export-control thresholds.
const parameters = fc.record({
  denseTops: fc.constantFrom(1979, 4000, 150, 2.5), bitLength: fc.constantFrom(8, 16), logicDieAreaMm2: fc.constantFrom(814, 300),
  dramBandwidthGbS: fc.constantFrom(4800, 800, 1), memoryGb: fc.constantFrom(141, 24), designedForDatacenter: fc.boolean(),
}, { requiredKeys: ['denseTops', 'bitLength', 'logicDieAreaMm2', 'dramBandwidthGbS', 'designedForDatacenter'] });

/** Field name → values that mostly pass parsing, so that requests reach the ledger's rules. */
function plausible(field: string): fc.Arbitrary<unknown> | undefined {
  const table: Record<string, () => fc.Arbitrary<unknown>> = {
    productIds: () => fc.array(ids('product'), { minLength: 1, maxLength: 2 }),
    parties: () => fc.array(fc.record({ organisationId: ids('organisation'), role: fc.constantFrom('consignee', 'end_user', 'supplier') }), { maxLength: 2 }),
    conditions: () => fc.array(fc.constantFrom(
      { id: 'no-military', text: 'No military end use' }, { id: 'per-shipment', text: 'At most 5 a shipment', kind: 'max_units_per_shipment', value: 5 },
      { id: 'kyc', text: 'End user KYC', kind: 'end_user_kyc_required' },
    ), { maxLength: 2 }),
    riders: () => fc.array(fc.constantFrom('Report quarterly', '须按季度报告'), { maxLength: 2 }),
    roles: () => fc.subarray(['authority', 'exporter', 'recipient', 'auditor'], { minLength: 1 }),
    role: () => fc.constantFrom('authority_admin', 'authority_officer', 'exporter', 'recipient', 'auditor'),
    direction: () => fc.constantFrom('export', 'import'),
    country: () => fc.constantFrom('US', 'CN', 'NL'), origin: () => fc.constantFrom('US', 'CN'), destination: () => fc.constantFrom('CN', 'US'),
    currency: () => fc.constantFrom('USD', 'CNY'), valueMinor: () => fc.constantFrom(0, 1_000_000, limits.valueMinorMax),
    // Kinds are any [a-z_] name, the ones every object inherits too (`constructor` failed its
    // batch before the HTTP security review found it; `__proto__` the body parser refuses).
    identifiers: () => fc.constantFrom<unknown>({}, { duns: '123456789' }, { uscc: makeUscc('91110000MA0000009') }, { uscc: '91110000MA0000009X' }, JSON.parse('{"constructor": "FZ1"}'), JSON.parse('{"__proto__": "FZ2"}')),
    validFrom: () => fc.constantFrom('2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z'), validTo: () => fc.constantFrom('2027-01-01T00:00:00Z', '2026-02-15T00:00:00Z'),
    deadline: () => fc.constantFrom('2026-05-01T00:00:00Z', '2026-02-01T00:00:01Z'),
    periodStart: () => fc.constantFrom('2026-01-01', '2026-07-01'), periodEnd: () => fc.constantFrom('2026-06-30', '2026-12-31'),
    serials: serialLists,
    latitude: () => fc.double({ min: -90, max: 90, noNaN: true }), longitude: () => fc.double({ min: -180, max: 180, noNaN: true }),
    parameters: () => parameters,
    reference: () => fresh('FZ-REF'), model: () => fresh('FZ-GPU'),
    verified: () => fc.boolean(), demo: () => fc.boolean(),
  };
  if (table[field]) return table[field]();
  if (field.endsWith('Id')) return ids(field);
  if (/units$/i.test(field)) return fc.integer({ min: 1, max: 12 });
  if (['name', 'nameRomanised', 'vendor', 'label', 'reason', 'province', 'city', 'address'].includes(field)) return fc.constantFrom('Fuzz Ltd', '模糊测试有限公司', 'Zürich DC', 'x');
  return undefined;
}

/** A value for a field: mostly plausible, now and then anything at all. */
function valueFor(field: string): fc.Arbitrary<unknown> {
  const likely = plausible(field);
  return likely === undefined ? anyValue() : fc.oneof({ weight: 30, arbitrary: likely }, { weight: 1, arbitrary: anyValue() });
}

/** The tokens of the world whose role may run `kind` (every token without one). */
function tokensFor(kind: CommandKind | undefined): string[] {
  const byRole: Array<[Role, string]> = [
    ['authority_admin', api.tokens.authority_admin], ['authority_officer', api.tokens.authority_officer], ['exporter', api.tokens.exporter],
    ['recipient', api.tokens.recipient], ['recipient', api.tokens.beta], ['auditor', api.tokens.auditor],
  ];
  return byRole.filter(([role]) => kind === undefined || commandRoles[kind].includes(role)).map(([, token]) => token);
}

/** Mostly a token whose role may run the command, sometimes any token, now and then a bad one. */
const tokenOf = (kind?: CommandKind): fc.Arbitrary<string | undefined> => fc.oneof(
  { weight: kind === undefined ? 0 : 20, arbitrary: fc.constantFrom(...tokensFor(kind)) },
  { weight: 3, arbitrary: fc.constantFrom(...tokensFor(undefined)) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, 'clt_forged_0000', `${api.tokens.exporter.slice(0, -1)}A`) },
);

/** Mostly an id of the kind the path names (its second segment), now and then any string. */
const pathId = (path: string): fc.Arbitrary<string> => fc.oneof(
  { weight: 8, arbitrary: ids(path.split('/')[2]) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

type Body = { body: unknown } | { payload: string };

/**
 * A body for a command: each of its fields, now and then left out (the path's id field
 * mostly is: the path gives it); sometimes a field it does not know; sometimes no object
 * at all, or no JSON.
 */
function bodyFor(route: CommandRoute): fc.Arbitrary<Body> {
  const shape = (commandSchemas[route.kind] as unknown as { shape: Record<string, { safeParse(value: unknown): { success: boolean } }> }).shape;
  // Present : left out. Optional fields come and go; required ones are seldom left out.
  const odds = (field: string): [number, number] => {
    if (field === route.idField) return [1, 8];
    return shape[field]!.safeParse(undefined).success ? [1, 1] : [24, 1];
  };
  const entry = (field: string) => fc.oneof(
    { weight: odds(field)[0], arbitrary: valueFor(field).map((value) => [field, value] as const) },
    { weight: odds(field)[1], arbitrary: fc.constant(undefined) },
  );
  const fields = Object.keys(shape);
  const record = fields.length === 0 ? fc.constant({}) : fc.tuple(...fields.map(entry)).map((entries) => Object.fromEntries(entries.filter((pair) => pair !== undefined)));
  // A booking needs an export and an import allocation of one recipient: pick those together
  // half the time, or almost every booking stops at the first check.
  const pairs = [[api.allocations.alphaExport, api.allocations.alphaImport], [api.allocations.betaExport, api.allocations.betaImport], [api.allocations.exporter2Beta, api.allocations.betaImport2]] as const;
  const coherent = route.kind !== 'shipment.book' ? record : fc.oneof(record, fc.tuple(record, fc.constantFrom(...pairs)).map(([body, [exportAllocationId, importAllocationId]]) => ({ ...body, exportAllocationId, importAllocationId })));
  return fc.oneof(
    { weight: 40, arbitrary: coherent.map((body) => ({ body })) },
    { weight: 1, arbitrary: fc.tuple(record, fc.constantFrom('extra', '__proto__', 'constructor'), anyValue()).map(([body, name, value]) => ({ body: { ...body, [name]: value } })) },
    { weight: 1, arbitrary: anyValue().map((body) => ({ body })) },
    { weight: 1, arbitrary: fc.constantFrom('{"units":', '[', '\u0000', '{"a":1}{"b":2}', '').map((payload) => ({ payload })) },
  );
}

function commandRequest(): fc.Arbitrary<RequestOptions> {
  return fc.constantFrom(...commandRoutes).chain((route) => fc.record({
    token: tokenOf(route.kind),
    id: pathId(route.path),
    body: bodyFor(route),
    key: fc.oneof({ weight: 19, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.constantFrom('', ' spaced key ', 'k'.repeat(limits.idempotencyKeyLengthMax + 1)) }),
  }).map(({ token, id, body, key }): RequestOptions => ({
    method: 'POST', url: route.path.replace(':id', encodeURIComponent(id)), key, ...(token === undefined ? {} : { token }), ...body,
  })));
}

const queryKeys = ['limit', 'cursor', 'status', 'subjectId', 'recipientId', 'index', 'size', 'from', 'to', 'sort'];
const queryValues = ['1', '0', '-1', '500', '1e3', '99999999999999999999', 'booked', 'issued', 'lost', 'S-1', 'bm90LWEtY3Vyc29y', '', '%', '\u0000'];

function queryRequest(): fc.Arbitrary<RequestOptions> {
  const paths = [
    ...queryRoutes.map((route) => route.path),
    '/v1/log/key', '/v1/log/keys', '/v1/log/checkpoint', '/v1/log/proof/inclusion', '/v1/log/proof/consistency', '/v1/log/events/:id/proof',
    '/healthz', '/v1/openapi.json',
  ];
  const tilePath = fc.tuple(fc.constantFrom('0', '1', '7', '8', 'x', '-1'), fc.constantFrom('000', 'x001', 'x999/999', '001.p/5', '000.p/0', '000.p/300', '..'), fc.boolean())
    .map(([level, index, entries]) => `/v1/log/tile/${entries ? 'entries' : level}/${index}`);
  const path = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...paths) }, { weight: 1, arbitrary: tilePath });
  const query = fc.dictionary(fc.constantFrom(...queryKeys), fc.constantFrom(...queryValues), { maxKeys: 3 });
  return fc.record({ path, id: fc.nat(), query, token: tokenOf() }).map(({ path, id, query, token }): RequestOptions => {
    const search = new URLSearchParams(query).toString();
    const pathIds = idPool.filter((known) => known.startsWith(prefixOf(path.split('/')[2] ?? '')));
    const url = `${path.replace(':id', encodeURIComponent(path.startsWith('/v1/log/') ? String(id % 400) : pathIds[id % pathIds.length] ?? String(id)))}${search === '' ? '' : `?${search}`}`;
    return { method: 'GET', url, ...(token === undefined ? {} : { token }) };
  });
}

/** The answer, checked: a 2xx, or a 4xx problem+json that says what was wrong. */
function expectWellFormed(request: RequestOptions, response: LightMyRequestResponse): void {
  const where = `${request.method} ${request.url} → ${response.statusCode} ${response.body.slice(0, 300)}`;
  expect(response.statusCode, where).toBeGreaterThanOrEqual(200);
  expect(response.statusCode, where).toBeLessThan(500);
  if (response.statusCode < 400) return;
  expect(String(response.headers['content-type']), where).toMatch(/^application\/problem\+json/);
  const problem = response.json() as { status?: unknown; code?: unknown; detail?: unknown; title?: unknown };
  expect(problem.status, where).toBe(response.statusCode);
  expect(typeof problem.code, where).toBe('string');
  expect(typeof problem.title, where).toBe('string');
  expect(String(problem.detail ?? '').length, where).toBeGreaterThan(0);
}

/** What the command requests got, by route, status and code: FUZZ_STATS=1 prints it. */
const outcomes = new Map<string, number>();
function countOutcome(request: RequestOptions, response: LightMyRequestResponse): void {
  const route = request.url.replace(/^(\/v1\/\w+\/)[^/]+\//, '$1:id/');
  const code = response.statusCode >= 400 ? String((response.json() as { code?: unknown }).code) : '';
  const key = `${route} ${response.statusCode} ${code}`;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
}
const share = (test: (key: string) => boolean) => [...outcomes].filter(([key]) => test(key)).reduce((sum, [, n]) => sum + n, 0) / runs;
afterAll(() => {
  if (process.env.FUZZ_STATS) console.log([...outcomes].sort().map(([key, n]) => `${n}\t${key}`).join('\n'));
});

describe('random requests against every route', () => {
  it('answer every command with a 2xx or a 4xx problem, and the same again on a retry', async () => {
    await fc.assert(fc.asyncProperty(commandRequest(), async (request) => {
      const first = await api.request(request);
      expectWellFormed(request, first);
      countOutcome(request, first);
      if (first.statusCode < 300) rememberIds(first.json());
      if (typeof request.key !== 'string' || request.key === '' || first.statusCode === 401) return;
      const retry = await api.request(request);
      const where = `retry of ${request.url} with ${JSON.stringify(request.body ?? request.payload)?.slice(0, 300)}`;
      if (request.url === '/v1/tokens' && first.statusCode === 201) {
        // A token's secret is shown once: its retry is refused, naming the token.
        expect(retry.statusCode, where).toBe(409);
        return;
      }
      expect(retry.statusCode, where).toBe(first.statusCode);
      expect(retry.json(), where).toEqual(first.json());
    }), settings);
    // The generator must keep reaching the ledger: if a schema change made every request
    // fail parsing, this test would pass while testing nothing. The floors sit far below
    // what random seeds give, so that only such a change trips them: over 20 seeds with
    // the defaults, 5.75–10% were accepted (median 8%) and 32–41% refused by a rule.
    // (A floor of 5% once failed CI on a seed that got 4.75%.)
    expect(share((key) => / 20[01] $/.test(key)), 'share of commands accepted').toBeGreaterThan(0.02);
    expect(share((key) => / (404|409|422) /.test(key)), 'share refused by a ledger rule').toBeGreaterThan(0.15);
  }, 120_000);

  it('answer every read with a 2xx or a 4xx problem', async () => {
    await fc.assert(fc.asyncProperty(queryRequest(), async (request) => {
      expectWellFormed(request, await api.request(request));
    }), settings);
  }, 120_000);

  it('leave every invariant holding and a log that a fresh start proves', async () => {
    expect(await api.world.ledger.violations()).toEqual([]);
    const events = (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]!.n;
    // Ledger.open runs the start-up check: every event hashed into the tiles, the head's root.
    const reopened = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, clock: api.world.clock });
    try {
      expect(reopened.sequencer.stats.logSize).toBe(events);
    } finally {
      await reopened.close();
    }
  }, 60_000);
});
