/**
 * The command envelope's Idempotency-Key: a token's secret sent as the key is refused before
 * the body is read, without being quoted, and nothing is stored (idempotency_keys rows are
 * never deleted, so a secret there would stay in plain text for good).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { databaseFootprint, apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let api: ApiWorld;
let database: TestDatabase;
apiWorldPerFile((world, db) => {
  api = world;
  database = db;
});

const booking = () => ({
  exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 1, deadline: '2026-05-01T00:00:00Z',
});

describe('an Idempotency-Key that is a token secret', () => {
  it('is refused with 400, naming the token to revoke, never quoting the key, and nothing is stored', async () => {
    const secret = api.tokens.exporter;
    const tokenId = /^clt_(TOK-[0-9]+)_/.exec(secret)![1]!;
    const before = await databaseFootprint(database.pool);
    const response = await api.request({ method: 'POST', url: '/v1/shipments', token: secret, body: booking(), key: secret });
    expect(response.statusCode, response.body).toBe(400);
    const problem = response.json();
    expect(problem).toMatchObject({ code: 'invalid_input', rule: 'idempotency-key-secret' });
    expect(problem.detail).toMatch(new RegExp(`revoke its token, ${tokenId}`));
    expect(response.body).not.toContain(secret.slice('clt_'.length));
    expect(await databaseFootprint(database.pool)).toEqual(before);
  });

  it('is refused before the body is read: a body that would not parse is not what is refused', async () => {
    const response = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, payload: '{', key: 'clt_anything' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ rule: 'idempotency-key-secret', detail: expect.stringMatching(/if it is one, treat it as leaked and revoke its token/) });
    expect(response.body).not.toContain('clt_anything');
  });

  it('does not refuse keys that only contain the prefix elsewhere or in another case', async () => {
    for (const key of ['key-clt_1', 'CLT_1-booking']) {
      const response = await api.request({ method: 'POST', url: '/v1/shipments', token: api.tokens.exporter, body: booking(), key });
      expect(response.statusCode, key).toBe(201);
    }
  });
});

describe('a retry of POST /v1/tokens', () => {
  it('never gets the first 201 again: a 409 conflict, marked replayed, naming the token to revoke, as the document says', async () => {
    const request = { method: 'POST' as const, url: '/v1/tokens', token: api.tokens.authority_admin, body: { organisationId: api.orgs.exporter, role: 'exporter', label: 'retried' }, key: 'token-retry-0001' };
    const first = await api.request(request);
    expect(first.statusCode, first.body).toBe(201);
    const { tokenId, secret } = first.json() as { tokenId: string; secret: string };
    const retry = await api.request(request);
    expect(retry.statusCode).toBe(409);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toMatchObject({ code: 'conflict', rule: 'invariant-6', detail: expect.stringContaining(`token ${tokenId} was made by the first request`) });
    expect(retry.body).not.toContain(secret);
  });
});
