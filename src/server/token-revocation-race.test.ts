/**
 * Commands sent by a token while its authority revokes it through the same server: the
 * API checks the token from its cache before a command is queued and forgets it only once
 * the revocation is answered, so commands queued meanwhile reach the ledger after the
 * revocation. The ledger refuses them there, in commit order: nothing by the token commits
 * after the revocation's seq, and each is answered as the door answers a revoked token.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let api: ApiWorld;
let database: TestDatabase;
apiWorldPerFile((made, madeDatabase) => { api = made; database = madeDatabase; });

const commandsBefore = 40;
const commandsAfter = 160;

describe('a token revoked while its commands are in flight', () => {
  it('commits nothing after the revocation', async () => {
    const made = await api.request({ method: 'POST', url: '/v1/tokens', token: api.tokens.authority_admin, body: { organisationId: api.orgs.exporter, role: 'exporter', label: 'race' } });
    expect(made.statusCode, made.body).toBe(201);
    const { tokenId, secret } = made.json() as { tokenId: string; secret: string };
    // Verified once, so that the commands below find it in the API's token cache.
    expect((await api.request({ method: 'GET', url: '/v1/shipments', token: secret })).statusCode).toBe(200);
    const book = () => api.request({
      method: 'POST', url: '/v1/shipments', token: secret,
      body: { exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 1, deadline: '2026-06-01T00:00:00Z' },
    });
    const commands = Array.from({ length: commandsBefore }, book);
    const revoke = api.request({ method: 'POST', url: `/v1/tokens/${tokenId}/revoke`, token: api.tokens.authority_admin, body: {} });
    for (let i = 0; i < commandsAfter; i += 1) commands.push(book());
    const answers = await Promise.all(commands);
    const revoked = await revoke;
    expect(revoked.statusCode, revoked.body).toBe(200);
    const revokeSeq = (revoked.json() as { seq: number }).seq;

    const committedAfter = answers.filter((answer) => answer.statusCode === 201 && (answer.json() as { seq: number }).seq > revokeSeq);
    expect(committedAfter.map((answer) => (answer.json() as { seq: number }).seq)).toEqual([]);
    const events = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE actor = $1 AND seq > $2', [tokenId, revokeSeq]);
    expect(events.rows[0]!.n).toBe(0);
    // Every other answer is the door's answer to a revoked token.
    const refused = answers.filter((answer) => answer.statusCode !== 201);
    expect(new Set(refused.map((answer) => `${answer.statusCode} ${(answer.json() as { detail: string }).detail}`)))
      .toEqual(new Set(refused.length === 0 ? [] : ['401 the bearer token is not valid: it is malformed, unknown or revoked']));
    expect(await api.world.ledger.violations()).toEqual([]);
  });
});
