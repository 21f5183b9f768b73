/**
 * A revoked token writes nothing from the moment its revocation commits, in commit order:
 * the ledger checks every command's token as it applies it (batch-apply.ts), whatever the
 * API's token cache still believes, and on every server process.
 */
import { describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../store/pool.ts';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, expectOk, type World } from '../../test/world.ts';
import { Ledger, type Answer } from './ledger.ts';
import { batchKeys, type Pending } from './batch-apply.ts';
import { systemActor, type Actor } from './permissions.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const site = (name: string) => ({ name, province: 'Hebei', city: 'Langfang', latitude: 39.5, longitude: 116.7, capacityUnits: 10 });

/** A fresh recipient token of alpha's, made by the operator. */
async function alphaToken(label: string): Promise<Actor> {
  const made = await world.run('token.create', { organisationId: world.actors.alpha.orgId, role: 'recipient', label }, systemActor);
  return { id: String(made.tokenId), orgId: world.actors.alpha.orgId, role: 'recipient' };
}

async function eventsBy(actor: Actor, afterSeq = -1): Promise<number> {
  return (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE actor = $1 AND seq > $2', [actor.id, afterSeq])).rows[0]!.n;
}

async function sitesNamed(pattern: string): Promise<number> {
  return (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sites WHERE name LIKE $1', [pattern])).rows[0]!.n;
}

function refusedUnauthenticated(answer: Answer): void {
  expect(answer).toMatchObject({ ok: false, replayed: false, error: { code: 'unauthenticated', message: 'the bearer token is not valid: it is malformed, unknown or revoked' } });
}

describe('a revoked token', () => {
  it('writes nothing after its revocation, in the same batch or later ones, while other tokens in that batch commit', async () => {
    const token = await alphaToken('revoked in a batch');
    const { ledger, actors } = world;
    const batchesBefore = ledger.sequencer.stats.batches;
    // Submitted in one turn: the sequencer takes them as one batch, in this order.
    const answers = await Promise.all([
      ledger.submit('site.register', site('same batch before'), token),
      ledger.submit('token.revoke', { tokenId: token.id }, systemActor),
      ledger.submit('site.register', site('same batch after'), token),
      ledger.submit('site.register', site('same batch other token'), actors.beta),
      ledger.submit('site.register', site('same batch after, keyed'), token, 'revoked-key-1'),
    ]);
    expect(ledger.sequencer.stats.batches).toBe(batchesBefore + 1);
    const [before, revoke, after, other, keyed] = answers;
    const revokeSeq = expectOk(revoke!).seq as number;
    expect(expectOk(before!).seq).toBe(revokeSeq - 1);
    refusedUnauthenticated(after!);
    expect(expectOk(other!).seq).toBe(revokeSeq + 1);
    refusedUnauthenticated(keyed!);

    refusedUnauthenticated(await ledger.submit('site.register', site('later batch'), token));
    expect(await eventsBy(token, revokeSeq)).toBe(0);
    expect(await sitesNamed('same batch after%')).toBe(0);
    expect(await sitesNamed('later batch')).toBe(0);
    expect(await sitesNamed('same batch before')).toBe(1);
    expect(await sitesNamed('same batch other token')).toBe(1);
    // Not remembered under the key, as the API's refusal of a revoked token is not: the key
    // is the organisation's, and its other tokens may still send the request.
    expect((await database.pool.query("SELECT count(*)::int AS n FROM idempotency_keys WHERE key = 'revoked-key-1'")).rows[0].n).toBe(0);
    expectOk(await ledger.submit('site.register', site('same batch after, keyed'), actors.alpha, 'revoked-key-1'));
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('is refused before a stored answer is replayed, as the API refuses it before anything else', async () => {
    const token = await alphaToken('replayed after revocation');
    expectOk(await world.ledger.submit('site.register', site('replay me'), token, 'replay-key-1'));
    await world.run('token.revoke', { tokenId: token.id }, systemActor);
    refusedUnauthenticated(await world.ledger.submit('site.register', site('replay me'), token, 'replay-key-1'));
  });

  it('is refused on a server process that did not revoke it, at once', async () => {
    const token = await alphaToken('revoked elsewhere');
    expectOk(await world.ledger.submit('site.register', site('elsewhere before'), token));
    const otherPool: Pool = createPool({ url: database.url, connectionsMax: 2, applicationName: 'chipledger-test-other-process' });
    const other = await Ledger.open({ logSealingKey: testSealingKey, pool: otherPool, clock: world.clock });
    try {
      const revokeSeq = expectOk(await other.submit('token.revoke', { tokenId: token.id }, systemActor)).seq as number;
      refusedUnauthenticated(await world.ledger.submit('site.register', site('elsewhere after'), token));
      expect(await eventsBy(token, revokeSeq)).toBe(0);
    } finally {
      await other.close();
      await otherPool.end();
    }
  });

  it('refuses an actor whose token the ledger does not hold', async () => {
    const made: Actor = { id: 'TOK-never-made', orgId: world.actors.alpha.orgId, role: 'recipient' };
    refusedUnauthenticated(await world.ledger.submit('site.register', site('no such token'), made));
    expect(await eventsBy(made)).toBe(0);
  });
});

describe('the system actor', () => {
  it('has no token: its batches name none, and its commands run', async () => {
    const pending = (actor: Actor): Pending => ({ kind: 'organisation.register', input: { name: 'Keys only Ltd.', country: 'GB', roles: ['auditor'], identifiers: {} }, actor, idempotency: null, serials: 0, resolve: () => {}, reject: () => {} });
    expect([...batchKeys([pending(systemActor)]).tokens]).toEqual([]);
    expect([...batchKeys([pending(systemActor), pending(world.actors.bis)]).tokens]).toEqual([world.actors.bis.id]);
    const made = expectOk(await world.ledger.submit('organisation.register', { name: 'Operator-made Ltd.', country: 'GB', roles: ['auditor'] }, systemActor));
    expect(await eventsBy(systemActor, (made.seq as number) - 1)).toBe(1);
  });
});

describe('an actor that is not its token', () => {
  it("is refused as an invalid token: another organisation's or role's under a token, and a system actor with an organisation", async () => {
    const token = await alphaToken('claimed by another');
    const { ledger, actors } = world;
    const before = await sitesNamed('not its token%');
    // beta's organisation under alpha's token; the system's id for alpha.
    refusedUnauthenticated(await ledger.submit('site.register', site('not its token 1'), { ...token, orgId: actors.beta.orgId }));
    refusedUnauthenticated(await ledger.submit('site.register', site('not its token 2'), { id: systemActor.id, orgId: actors.alpha.orgId, role: 'recipient' }));
    expect(await sitesNamed('not its token%')).toBe(before);
    expectOk(await ledger.submit('site.register', site('not its token 3'), token));
    // An authority officer's token claiming the admin's role, for what only an admin may do.
    const tokens = async () => (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tokens')).rows[0]!.n;
    const tokensBefore = await tokens();
    refusedUnauthenticated(await ledger.submit('token.create', { organisationId: actors.alpha.orgId, role: 'recipient', label: 'by a claimed admin' }, { ...actors.mofcom, role: 'authority_admin' }));
    expect(await tokens()).toBe(tokensBefore);
  });
});
