/**
 * Tokens by jurisdiction: an authority admin makes and revokes exporter, recipient and
 * auditor tokens only for organisations of its own country; the operator for anyone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { buildWorld, expectOk, tokenActor, type World } from '../../../test/world.ts';
import { systemActor, type Actor } from '../permissions.ts';

let database: TestDatabase;
let world: World;
let bisAdmin: Actor;
let mofcomAdmin: Actor;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  // Admin tokens of their own: the ledger refuses an actor whose role is not its token's (batch-apply.ts).
  bisAdmin = await tokenActor(world.run, world.actors.bis.orgId, 'authority_admin');
  mofcomAdmin = await tokenActor(world.run, world.actors.mofcom.orgId, 'authority_admin');
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

const create = (organisationId: string, role: 'exporter' | 'recipient' | 'auditor', actor: Actor) =>
  world.ledger.submit('token.create', { organisationId, role, label: `${role} by ${actor.id}` }, actor);
const refusal = (answer: Awaited<ReturnType<typeof create>>) => (answer.ok ? 'accepted' : `${answer.error.code}: ${answer.error.message}`);

describe('token.create and token.revoke by jurisdiction', () => {
  it("refuses an authority admin a token for another country's organisation", async () => {
    const { actors } = world;
    const count = async () => (await database.pool.query('SELECT count(*)::int AS n FROM tokens')).rows[0].n as number;
    const before = await count(); // the world's actors' own tokens
    expect(refusal(await create(actors.alpha.orgId, 'recipient', bisAdmin))).toMatch(/^forbidden: .*own jurisdiction \(US\); .* is in CN/);
    expect(refusal(await create(actors.exporter.orgId, 'exporter', mofcomAdmin))).toMatch(/^forbidden: .*own jurisdiction \(CN\); .* is in US/);
    expect(refusal(await create(actors.auditor.orgId, 'auditor', bisAdmin))).toMatch(/^forbidden: .*own jurisdiction/);
    expect(await count()).toBe(before);
  });

  it('lets an authority admin make tokens in its own country, and the operator anywhere', async () => {
    const { actors } = world;
    expect((await create(actors.exporter.orgId, 'exporter', bisAdmin)).ok).toBe(true);
    expect((await create(actors.alpha.orgId, 'recipient', mofcomAdmin)).ok).toBe(true);
    expect((await create(actors.auditor.orgId, 'auditor', systemActor)).ok).toBe(true);
    expect((await create(actors.beta.orgId, 'recipient', systemActor)).ok).toBe(true);
  });

  it("refuses an authority admin the revocation of another country's token", async () => {
    const { actors } = world;
    const alphaToken = String(expectOk(await create(actors.alpha.orgId, 'recipient', systemActor)).tokenId);
    const exporterToken = String(expectOk(await create(actors.exporter.orgId, 'exporter', systemActor)).tokenId);
    expect(refusal(await world.ledger.submit('token.revoke', { tokenId: alphaToken }, bisAdmin))).toMatch(/^forbidden: .*own jurisdiction/);
    expect(refusal(await world.ledger.submit('token.revoke', { tokenId: exporterToken }, mofcomAdmin))).toMatch(/^forbidden: .*own jurisdiction/);
    const revoked = await database.pool.query('SELECT count(*)::int AS n FROM tokens WHERE revoked_at IS NOT NULL');
    expect(revoked.rows[0].n).toBe(0);
  });

  // Needs the token's organisation in the batch: loadBatchState (store/batch-state.ts) must
  // load a token's org_id with it; without that the check fails closed and this is refused.
  it("lets an authority admin revoke its own country's tokens", async () => {
    const { actors } = world;
    const alphaToken = String(expectOk(await create(actors.alpha.orgId, 'recipient', systemActor)).tokenId);
    const exporterToken = String(expectOk(await create(actors.exporter.orgId, 'exporter', systemActor)).tokenId);
    expect(refusal(await world.ledger.submit('token.revoke', { tokenId: alphaToken }, mofcomAdmin))).toBe('accepted');
    expect(refusal(await world.ledger.submit('token.revoke', { tokenId: exporterToken }, bisAdmin))).toBe('accepted');
  });
});
