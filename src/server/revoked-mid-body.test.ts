/**
 * A token revoked while its request's body is still arriving does not write: the token is
 * checked when the headers come (so a refused caller holds no room for a body) and again
 * once the body is in, before the command goes to the ledger.
 */
import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { systemActor } from '../ledger/permissions.ts';
import { buildServer } from './app.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let api: ApiWorld;
let database: TestDatabase;
apiWorldPerFile((made, madeDatabase) => { api = made; database = madeDatabase; });

let server: FastifyInstance;
let port: number;

beforeAll(async () => {
  server = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false });
  await server.listen({ host: '127.0.0.1', port: 0 });
  port = (server.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await server?.close();
});

/** Sends the head of a POST now and its body when `rest` resolves; the whole answer text. */
function postInTwoParts(path: string, token: string, body: string, rest: Promise<unknown>): Promise<string> {
  return new Promise((done, fail) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', fail);
    socket.on('close', () => done(answer));
    socket.write([
      `POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', `Authorization: Bearer ${token}`, 'Content-Type: application/json',
      `Idempotency-Key: revoked-mid-body-${Date.now()}`, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', '',
    ].join('\r\n'));
    void rest.then(() => socket.write(body), fail);
  });
}

describe('a token revoked while its body arrives', () => {
  it('is refused once the body is in, and nothing is written', async () => {
    // An exporter of the US, so that BIS's admin may revoke its token through the API (and so
    // through this server's verifier, which forgets it at once).
    const made = await api.world.ledger.submit('token.create', { organisationId: api.orgs.exporter, role: 'exporter', label: 'revoked mid-body' }, systemActor);
    if (!made.ok) throw new Error(made.error.message);
    const secret = String(made.body.secret);
    const tokenId = String(made.body.tokenId ?? made.body.id);
    const body = JSON.stringify({
      exportAllocationId: api.world.allocations.alphaExport, importAllocationId: api.world.allocations.alphaImport, productId: api.world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    });
    const shipments = async () => Number((await database.pool.query<{ count: string }>('SELECT count(*) FROM shipments')).rows[0]!.count);
    const before = await shipments();
    // The token is verified (and cached) with the headers; then the admin revokes it through this server.
    let revoke!: () => void;
    const revoked = new Promise<void>((done) => (revoke = done));
    const answer = postInTwoParts('/v1/shipments', secret, body, revoked);
    await new Promise((done) => setTimeout(done, 200));
    const revocation = await server.inject({
      method: 'POST', url: `/v1/tokens/${tokenId}/revoke`, payload: {},
      headers: { authorization: `Bearer ${api.tokens.authority_admin}`, 'idempotency-key': `revoke-${tokenId}` },
    });
    expect(revocation.statusCode, revocation.body).toBe(200);
    revoke();
    const text = await answer;
    expect(text.split('\r\n')[0], text).toBe('HTTP/1.1 401 Unauthorized');
    expect(await shipments()).toBe(before);
  });
});
