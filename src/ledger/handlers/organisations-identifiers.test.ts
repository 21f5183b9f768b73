/**
 * organisation.register and identifiers: a Unified Social Credit Code, an LEI, any kind=value
 * of `identifiers` belongs to one organisation. KYC, licence parties and allocations are kept
 * by organisation id, so a second organisation with another's code would be the same legal
 * entity with a KYC status and allocations of its own. A second registration is refused
 * naming the holder, in a later batch, in the same batch, and from a batch the row cache
 * serves. The database's side (migration 039) is in store/constraints-039.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk, tokenActor, worldPerFile, type World } from '../../../test/world.ts';
import { makeUscc } from '../../core/uscc.ts';
import { Ledger, type Answer } from '../ledger.ts';
import { systemActor } from '../permissions.ts';
import type { CommandRequest } from '../schemas.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

type Registration = CommandRequest<'organisation.register'>;
const register = (input: Registration, key?: string) => world.ledger.submit('organisation.register', input, systemActor, key);
const refusal = (answer: Answer) => (answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, details: answer.error.details });
const holders = async (kind: string, value: string) =>
  (await database.pool.query<{ id: string }>('SELECT id FROM organisations WHERE identifiers ->> $1 = $2 ORDER BY created_seq', [kind, value])).rows.map((row) => row.id);
const recipient = (name: string, identifiers: Record<string, string>): Registration => ({ name, country: 'CN', roles: ['recipient'], identifiers });

describe('organisation.register: one organisation per identifier', () => {
  it('refuses a second registration of a USCC, naming the organisation that holds it', async () => {
    // The world's alpha holds this code (test/world.ts).
    const uscc = makeUscc('91110000MA0000001');
    const alpha = world.actors.alpha.orgId;
    const expected = {
      code: 'conflict',
      rule: 'organisation-identifier',
      message: `identifiers.uscc "${uscc}" is already held by organisation ${alpha}; an identifier belongs to one organisation, whose KYC, licences and allocations are kept under its id`,
      details: { kind: 'uscc', value: uscc, organisationId: alpha },
    };
    expect(refusal(await register(recipient('甲云计算 second', { uscc }), 'again-alpha'))).toEqual(expected);
    expect(await holders('uscc', uscc)).toEqual([alpha]);
    // Remembered under its key, as the handler's refusals are.
    expect(refusal(await register(recipient('甲云计算 second', { uscc }), 'again-alpha'))).toEqual(expected);
    // An authority too: the ledger does not care who registers.
    expect(refusal(await register({ name: 'Another 商务部', country: 'CN', roles: ['authority'], identifiers: { uscc: makeUscc('11100000000019012') } }))).toMatchObject({
      rule: 'organisation-identifier', details: { organisationId: world.actors.mofcom.orgId },
    });
  });

  it('holds every kind of identifier, not only the USCC, each kind apart', async () => {
    const lei = '5493001KJTIIGC8Y1R12';
    const first = String(expectOk(await register({ name: 'LEI Holder Ltd', country: 'GB', roles: ['auditor'], identifiers: { lei } })).organisationId);
    expect(refusal(await register({ name: 'LEI Squatter Ltd', country: 'GB', roles: ['auditor'], identifiers: { duns: '123456789', lei } }))).toMatchObject({
      code: 'conflict', rule: 'organisation-identifier', details: { kind: 'lei', value: lei, organisationId: first },
    });
    // Spelt in lower case or with spaces it is the same code, held by the same organisation.
    for (const spelt of [lei.toLowerCase(), ` ${lei} `]) {
      expect(refusal(await register({ name: 'LEI Respeller Ltd', country: 'GB', roles: ['auditor'], identifiers: { lei: spelt } })), spelt).toMatchObject({
        code: 'conflict', rule: 'organisation-identifier', details: { kind: 'lei', value: lei, organisationId: first },
      });
    }
    // The same text under another kind is another identifier.
    expectOk(await register({ name: 'DUNS Holder Ltd', country: 'GB', roles: ['auditor'], identifiers: { duns: lei } }));
    expect(await holders('lei', lei)).toEqual([first]);
    // Organisations without identifiers are many (the world has four).
    expectOk(await register({ name: 'No Identifiers Ltd', country: 'GB', roles: ['auditor'], identifiers: {} }));
  });

  it('refuses the second of two registrations of one code in one batch', async () => {
    const uscc = makeUscc('91110108MA01CD002');
    const { stats } = world.ledger.sequencer;
    const before = { batches: stats.batches, failed: stats.failedBatches };
    const answers = await Promise.all([
      register(recipient('中科数据 (BIS)', { uscc })),
      register(recipient('中科数据 (MOFCOM)', { uscc })),
    ]);
    // One batch, which the handler's check kept whole (no write failed it).
    expect({ batches: stats.batches - before.batches, failed: stats.failedBatches - before.failed, size: stats.lastBatchSize }).toEqual({ batches: 1, failed: 0, size: 2 });
    const first = String(expectOk(answers[0]!).organisationId);
    expect(refusal(answers[1]!)).toMatchObject({ code: 'conflict', rule: 'organisation-identifier', details: { kind: 'uscc', value: uscc, organisationId: first } });
    expect(await holders('uscc', uscc)).toEqual([first]);
  });

  it('refuses a duplicate in a batch whose rows the row cache holds', async () => {
    // An authority admin registers: its organisation and token are rows the cache keeps (the
    // system actor's organisation is none, so its batches always load). Another writer moves
    // the head: this ledger's next batch goes the classic way and fills its cache; the one
    // after finds the admin's rows cached (ledger/row-cache.ts), but not the organisation
    // that holds the code.
    const admin = await tokenActor(world.run, world.actors.mofcom.orgId, 'authority_admin');
    const other = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, clock: world.clock });
    try {
      expectOk(await other.submit('organisation.register', { name: 'Another Writer Ltd', country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor));
    } finally {
      await other.close();
    }
    const uscc = makeUscc('91110108MA01CD003');
    const byAdmin = (name: string) => world.ledger.submit('organisation.register', recipient(name, { uscc }), admin);
    const first = String(expectOk(await byAdmin('缓存科技')).organisationId);
    const { stats } = world.ledger.sequencer;
    const before = { cached: stats.cachedBatches, failed: stats.failedBatches };
    expect(refusal(await byAdmin('缓存科技 again'))).toMatchObject({ code: 'conflict', rule: 'organisation-identifier', details: { organisationId: first } });
    expect({ cached: stats.cachedBatches - before.cached, failed: stats.failedBatches - before.failed, misses: stats.aheadMisses }).toEqual({ cached: 0, failed: 0, misses: 0 });
    expect(await holders('uscc', uscc)).toEqual([first]);
  });

  it('names the CLI\'s option beside the field when a CN organisation has no USCC', async () => {
    expect(refusal(await register(recipient('无代码公司', {})))).toEqual({
      code: 'invalid_input',
      rule: 'uscc-required',
      message: 'an organisation in CN needs its Unified Social Credit Code in identifiers.uscc (the CLI\'s --uscc)',
      details: undefined,
    });
  });

  it('leaves the ledger clean', async () => {
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('organisation.register: identifier kinds named as an object\'s own members', () => {
  // A kind is any name of [a-z_]. Looked up on a plain object, an organisation without a
  // `constructor` identifier seemed to hold Object.prototype's (a function), and a batch that
  // held another organisation failed (500) instead of checking it; `__proto__` was dropped
  // (assigned, it sets an object's prototype), so the organisation was registered without
  // the identifier it was given (the HTTP security review). Parsed from JSON, as a request
  // or the CLI gives them.
  const parsed = (kind: string, value: string) => JSON.parse(`{"${kind}": "${value}"}`) as Record<string, string>;

  it('registers a constructor identifier in a batch that holds other organisations, and refuses it a second time naming its holder', async () => {
    // An authority admin's organisation is a row its batches hold (the row cache keeps it, as
    // in the test above): the check reads its identifiers, which have no `constructor`.
    const admin = await tokenActor(world.run, world.actors.mofcom.orgId, 'authority_admin');
    const byAdmin = (name: string, identifiers: Record<string, string>) => world.ledger.submit('organisation.register', { name, country: 'SG', roles: ['recipient'], identifiers }, admin);
    const failedBefore = world.ledger.sequencer.stats.failedBatches;
    expectOk(await byAdmin('Plain Neighbour Ltd', { duns: '987654321' }));
    const holder = String(expectOk(await byAdmin('Proto Constructor Ltd', parsed('constructor', 'PROTO11'))).organisationId);
    const stored = await database.pool.query<{ identifiers: Record<string, string> }>('SELECT identifiers FROM organisations WHERE id = $1', [holder]);
    expect(Object.entries(stored.rows[0]!.identifiers)).toEqual([['constructor', 'PROTO11']]);
    expect(refusal(await byAdmin('Proto Constructor Again Ltd', parsed('constructor', 'proto-11')))).toMatchObject({
      code: 'conflict', rule: 'organisation-identifier', details: { kind: 'constructor', organisationId: holder },
    });
    expect(world.ledger.sequencer.stats.failedBatches - failedBefore).toBe(0);
  });

  it('refuses __proto__ as a kind, naming it, rather than register the organisation without it', async () => {
    const answer = await register({ name: 'Proto Proto Ltd', country: 'SG', roles: ['recipient'], identifiers: parsed('__proto__', 'PROTO9') });
    expect(refusal(answer)).toMatchObject({ code: 'invalid_input', rule: 'schema' });
    expect((answer as { error: { message: string } }).error.message).toMatch(/__proto__/);
    expect((await database.pool.query('SELECT 1 FROM organisations WHERE name = $1', ['Proto Proto Ltd'])).rowCount).toBe(0);
  });
});
