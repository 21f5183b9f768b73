/**
 * Invariant 6 across an upgrade (upgrade review, finding 1): a request an older release took
 * and answered under an Idempotency-Key is answered the same when retried on this release,
 * though a schema tightened since now refuses its body before it is queued. Before the fix, the retry got a fresh 400 for a command that was committed.
 *
 * How an older release's answer is stored here: the real write path answers a request that is
 * valid today under one key, and its row is copied, as the database holds it (status,
 * response text, time), under a second key with the request hash of the body the older
 * release took (requestHash, unchanged since the first release). That is the row the older
 * release wrote for that body, but for the answer, which is the one today's release gave to a
 * body differing only where the rule tightened: nothing of how an answer is stored is
 * written by hand. The row is inserted, not updated: idempotency_keys refuses updates
 * (migration 028).
 */
import { describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import type { TestDatabase } from '../../test/database.ts';
import { expectOk } from '../../test/world.ts';
import { apiWorldPerFile, databaseFootprint, type ApiWorld } from '../../test/support/server.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { requestHash } from './idempotency.ts';
import { Ledger, type Answer } from './ledger.ts';
import { Sequencer } from './sequencer.ts';
import type { Actor } from './permissions.ts';
import { tokenSecretPrefix, type CommandKind } from './schemas.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let api: ApiWorld;
let database: TestDatabase;
apiWorldPerFile((made, made2) => {
  api = made;
  database = made2;
});

/** Stores under `key` the answer stored under `answeredKey`, as an older release that took `olderInput` would have. */
async function storeAsOlderRelease(actor: Actor, answeredKey: string, key: string, kind: CommandKind, olderInput: unknown): Promise<void> {
  const copied = await database.pool.query(
    `INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at)
     SELECT scope, $3, $4, status, response, created_at FROM idempotency_keys WHERE scope = $1 AND key = $2`,
    [actor.orgId, answeredKey, key, requestHash(kind, olderInput)],
  );
  expect(copied.rowCount).toBe(1);
}

/** Today's checks refuse `input` before it is queued (without a key, nothing is looked up): the case under test. */
async function expectRefusedToday(kind: CommandKind, input: unknown, actor: Actor, code: 'invalid_input' | 'forbidden'): Promise<void> {
  const refused = await api.world.ledger.submit(kind, input as never, actor);
  expect(refused).toMatchObject({ ok: false, replayed: false, error: { code } });
}

/** What a client sees of an answer: its status, its body's bytes, and the headers the API derives from the answer. */
function seen(response: LightMyRequestResponse): Record<string, unknown> {
  const { headers } = response;
  return {
    status: response.statusCode, body: response.payload, type: headers['content-type'], replayed: headers['idempotent-replayed'], location: headers.location, retryAfter: headers['retry-after'],
  };
}

/** A GPU UUID in today's form whose first group is `first`, the rest unique in this file (a GPU is one unit). */
let uuids = 0;
const fullUuid = (first: string) => `GPU-${first}-0000-1111-2222-${String(++uuids).padStart(12, '0')}`;

describe('a request an older release answered, refused by a rule tightened since', () => {
  /**
   * The review's case: GPU UUIDs were ^GPU-[0-9a-fA-F-]{8,60}$ before migration 037; today
   * they are nvidia-smi's 8-4-4-4-12 form.
   */
  async function attachedBefore(key: string): Promise<{ shipmentId: string; todayBody: unknown; olderBody: { serials: Array<{ serial: string; gpuUuid: string }> }; answered: Answer }> {
    const { id: shipmentId } = await api.shipment('own', 'empty', 2);
    const serials = [api.serial('UPG'), api.serial('UPG')];
    const todayBody = { serials: [{ serial: serials[0]!, gpuUuid: fullUuid('0123abcd') }, { serial: serials[1]!, gpuUuid: fullUuid('4567cdef') }] };
    const answered = await api.world.ledger.submit('manifest.attach', { ...todayBody, shipmentId }, api.world.actors.exporter, `${key}-today`);
    expectOk(answered);
    const olderBody = { serials: [{ serial: serials[0]!, gpuUuid: 'GPU-0123abcd' }, { serial: serials[1]!, gpuUuid: 'GPU-4567cdef' }] };
    await expectRefusedToday('manifest.attach', { ...olderBody, shipmentId }, api.world.actors.exporter, 'invalid_input');
    await storeAsOlderRelease(api.world.actors.exporter, `${key}-today`, key, 'manifest.attach', { ...olderBody, shipmentId });
    return { shipmentId, todayBody, olderBody, answered };
  }

  it('replays its stored answer, byte for byte, and changes nothing', async () => {
    const { shipmentId, olderBody, answered } = await attachedBefore('upgrade-schema-1');
    const before = await databaseFootprint(database.pool);
    const again = await api.world.ledger.submit('manifest.attach', { ...olderBody, shipmentId }, api.world.actors.exporter, 'upgrade-schema-1');
    expect(again.replayed).toBe(true);
    expect(JSON.stringify(expectOk(again))).toBe(JSON.stringify(expectOk(answered)));
    expect(again.ok && again.seq).toBe(answered.ok && answered.seq);
    expect(await databaseFootprint(database.pool)).toEqual(before);
    expect(api.world.ledger.sequencer.stats.replayed).toBeGreaterThan(0);
  });

  it('replays it through the API as a replay from a batch is sent: status, body, Idempotent-Replayed', async () => {
    const { shipmentId, todayBody, olderBody } = await attachedBefore('upgrade-schema-2');
    const url = `/v1/shipments/${shipmentId}/manifest`;
    const older = await api.request({ method: 'POST', url, token: api.tokens.exporter, body: olderBody, key: 'upgrade-schema-2' });
    expect(older.statusCode).toBe(200);
    expect(older.headers['idempotent-replayed']).toBe('true');
    // The same answer replayed by a batch: the request that is valid today, under its own key.
    const fromBatch = await api.request({ method: 'POST', url, token: api.tokens.exporter, body: todayBody, key: 'upgrade-schema-2-today' });
    expect(fromBatch.headers['idempotent-replayed']).toBe('true');
    expect(seen(older)).toEqual(seen(fromBatch));
  });

  it('refuses another body under the key: idempotency_mismatch, from the ledger and the API', async () => {
    const { shipmentId, olderBody } = await attachedBefore('upgrade-schema-3');
    const other = { serials: [{ ...olderBody.serials[0]!, gpuUuid: 'GPU-89abcdef' }, olderBody.serials[1]!] };
    const refused = await api.world.ledger.submit('manifest.attach', { ...other, shipmentId }, api.world.actors.exporter, 'upgrade-schema-3');
    expect(refused).toMatchObject({ ok: false, replayed: false, error: { code: 'idempotency_mismatch', rule: 'invariant-6' } });
    const response = await api.request({ method: 'POST', url: `/v1/shipments/${shipmentId}/manifest`, token: api.tokens.exporter, body: other, key: 'upgrade-schema-3' });
    expect(response.json()).toMatchObject({ status: 422, code: 'idempotency_mismatch' });
    expect(response.headers['idempotent-replayed']).toBeUndefined();
    // A body with no canonical form (nested past the hash's recursion) is another request too, not a 500.
    const nested = `{"serials":${'['.repeat(50_000)}${']'.repeat(50_000)}}`;
    const deep = await api.request({ method: 'POST', url: `/v1/shipments/${shipmentId}/manifest`, token: api.tokens.exporter, payload: nested, key: 'upgrade-schema-3' });
    expect(deep.json()).toMatchObject({ status: 422, code: 'idempotency_mismatch' });
  });

  it('is answered the refusal, as before, when no answer is stored under its key', async () => {
    const { shipmentId, olderBody } = await attachedBefore('upgrade-schema-4');
    const response = await api.request({ method: 'POST', url: `/v1/shipments/${shipmentId}/manifest`, token: api.tokens.exporter, body: olderBody, key: 'upgrade-schema-4-never-used' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'invalid_input' });
    expect(response.headers['idempotent-replayed']).toBeUndefined();
  });

  it('replays a stored refusal as stored', async () => {
    const booking = { exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 50_000, deadline: '2026-06-01T00:00:00Z' };
    const first = await api.request({ method: 'POST', url: '/v1/shipments', token: api.tokens.exporter, body: booking, key: 'upgrade-refusal-today' });
    expect(first.json()).toMatchObject({ status: 409, code: 'insufficient_units' });
    // An older release took a field that is refused today (an unknown key to today's schema).
    const olderBody = { ...booking, carrier: 'older field' };
    await expectRefusedToday('shipment.book', olderBody, api.world.actors.exporter, 'invalid_input');
    await storeAsOlderRelease(api.world.actors.exporter, 'upgrade-refusal-today', 'upgrade-refusal', 'shipment.book', olderBody);
    const answer = await api.world.ledger.submit('shipment.book', olderBody as never, api.world.actors.exporter, 'upgrade-refusal');
    expect(answer).toMatchObject({ ok: false, replayed: true, error: { code: 'insufficient_units' } });
    const older = await api.request({ method: 'POST', url: '/v1/shipments', token: api.tokens.exporter, body: olderBody, key: 'upgrade-refusal' });
    const fromBatch = await api.request({ method: 'POST', url: '/v1/shipments', token: api.tokens.exporter, body: booking, key: 'upgrade-refusal-today' });
    expect(seen(older)).toMatchObject({ status: 409, replayed: 'true' });
    expect(seen(older)).toEqual(seen(fromBatch));
  });

  it('replays a token.create as its stored conflict: the secret was shown once', async () => {
    const input = { organisationId: api.orgs.exporter, role: 'exporter', label: 'made before the upgrade' };
    const made = await api.request({ method: 'POST', url: '/v1/tokens', token: api.tokens.authority_admin, body: input, key: 'upgrade-token-today' });
    expect(made.statusCode).toBe(201);
    const olderBody = { ...input, expiresInDays: 30 };
    // The admin token's organisation and role (the world's BIS actor is an officer): only the refused path runs, which reads no token.
    const admin: Actor = { ...api.world.actors.bis, role: 'authority_admin' };
    await expectRefusedToday('token.create', olderBody, admin, 'invalid_input');
    await storeAsOlderRelease(admin, 'upgrade-token-today', 'upgrade-token', 'token.create', olderBody);
    const answer = await api.world.ledger.submit('token.create', olderBody as never, admin, 'upgrade-token');
    expect(answer).toMatchObject({ ok: false, replayed: true, error: { code: 'conflict', rule: 'invariant-6' } });
    const older = await api.request({ method: 'POST', url: '/v1/tokens', token: api.tokens.authority_admin, body: olderBody, key: 'upgrade-token' });
    const fromBatch = await api.request({ method: 'POST', url: '/v1/tokens', token: api.tokens.authority_admin, body: input, key: 'upgrade-token-today' });
    expect(seen(older)).toMatchObject({ status: 409, replayed: 'true' });
    expect(older.payload).not.toContain(tokenSecretPrefix);
    expect(seen(older)).toEqual(seen(fromBatch));
  });

  it('replays a 201 through the API with the Location its batch replay has', async () => {
    const site = { name: 'Located Site', province: 'Zhejiang', city: 'Hangzhou', latitude: 30.3, longitude: 120.2, capacityUnits: 10 };
    const made = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, body: site, key: 'upgrade-located-today' });
    expect(made.statusCode).toBe(201);
    expect(made.headers.location).toMatch(/^sites\/./); // relative to the request's URL (server/commands.ts locationOf)
    const olderBody = { ...site, operator: 'older field' };
    await expectRefusedToday('site.register', olderBody, api.world.actors.alpha, 'invalid_input');
    await storeAsOlderRelease(api.world.actors.alpha, 'upgrade-located-today', 'upgrade-located', 'site.register', olderBody);
    const older = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, body: olderBody, key: 'upgrade-located' });
    const fromBatch = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, body: site, key: 'upgrade-located-today' });
    expect(seen(older)).toMatchObject({ status: 201, replayed: 'true', location: made.headers.location });
    expect(seen(older)).toEqual(seen(fromBatch));
  });

  it('gives a role the role table refuses its refusal, not the answer its organisation stored under the key', async () => {
    const site = { name: 'Older Site', province: 'Zhejiang', city: 'Hangzhou', latitude: 30.3, longitude: 120.2, capacityUnits: 10 };
    const registered = await api.world.ledger.submit('site.register', site, api.world.actors.alpha, 'upgrade-role-today');
    expectOk(registered);
    await storeAsOlderRelease(api.world.actors.alpha, 'upgrade-role-today', 'upgrade-role', 'site.register', site);
    // A token of the same organisation whose role may not register sites today.
    const tightened: Actor = { ...api.world.actors.alpha, role: 'auditor' };
    await expectRefusedToday('site.register', site, tightened, 'forbidden');
    const again = await api.world.ledger.submit('site.register', site, tightened, 'upgrade-role');
    expect(again).toMatchObject({ ok: false, replayed: false, error: { code: 'forbidden' } });
    // The organisation's own role still gets the stored answer.
    const own = await api.world.ledger.submit('site.register', site, api.world.actors.alpha, 'upgrade-role');
    expect(JSON.stringify(expectOk(own))).toBe(JSON.stringify(expectOk(registered)));
  });
});

describe('looking up the key of a refused request', () => {
  const refusedInput = { shipmentId: 'S-1', serials: [{ serial: 'X-1', gpuUuid: 'GPU-0123abcd' }] };

  it("answers 'unavailable' when the database does not answer within the pool's bound, and reads nothing without a key", async () => {
    const holder = await database.pool.connect();
    const errors: string[] = [];
    const sequencer = new Sequencer({
      pool: database.pool, clock: api.world.clock, logAppender: api.world.ledger.log, headLockWaitMs: 100, queryTimeoutMs: 300, onError: (_error, context) => errors.push(context),
    });
    try {
      // The lookup waits for this lock until the sequencer's bound cuts it off.
      await holder.query('BEGIN; LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE');
      const started = performance.now();
      const answer = await sequencer.submit('manifest.attach', refusedInput, api.world.actors.exporter, 'upgrade-lookup-slow');
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(answer).toMatchObject({ ok: false, replayed: false, error: { code: 'unavailable' } });
      expect(!answer.ok && answer.error.message).toMatch(/^couldn't tell whether an answer is stored under idempotency key upgrade-lookup-slow: .* manifest\.attach is refused as sent: couldn't read the manifest\.attach request: serials\.0\.gpuUuid/);
      const keyless = await sequencer.submit('manifest.attach', refusedInput, api.world.actors.exporter);
      expect(!keyless.ok && keyless.error.code).toBe('invalid_input');
      expect(errors).toEqual([]);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      await sequencer.close();
    }
  });

  it("answers 'unavailable' when the database is not there, and without a key the refusal, reading nothing", async () => {
    const away = createPool({ url: 'postgres://chipledger@127.0.0.1:1/none', connectionsMax: 1, applicationName: 'upgrade-lookup-away' });
    const errors: string[] = [];
    const sequencer = new Sequencer({ pool: away, clock: api.world.clock, logAppender: api.world.ledger.log, onError: (_error, context) => errors.push(context) });
    try {
      const answer = await sequencer.submit('manifest.attach', refusedInput, api.world.actors.exporter, 'upgrade-lookup-away');
      expect(answer).toMatchObject({ ok: false, replayed: false, error: { code: 'unavailable' } });
      const forbidden = await sequencer.submit('manifest.attach', refusedInput, api.world.actors.alpha);
      expect(forbidden).toMatchObject({ ok: false, replayed: false, error: { code: 'forbidden' } });
      // The database's failure is the caller's 503 (problem.ts), not a bug to log for every refused request.
      expect(errors).toEqual([]);
    } finally {
      await sequencer.close();
      await away.end();
    }
  });

  it('is not made for a command that passes the checks: its batch looks its key up', async () => {
    const queries: string[] = [];
    const counted = new Proxy(database.pool, {
      get(target, property) {
        if (property === 'query') return (config: unknown, ...rest: unknown[]) => { queries.push(typeof config === 'string' ? config : String((config as { text?: unknown }).text)); return (target.query as (...args: unknown[]) => unknown)(config, ...rest); };
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as Pool;
    const other = await Ledger.open({ logSealingKey: testSealingKey, pool: counted, clock: api.world.clock });
    try {
      queries.length = 0;
      const booking = { exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 1, deadline: '2026-06-01T00:00:00Z' };
      expectOk(await other.submit('shipment.book', booking, api.world.actors.exporter, 'upgrade-accepted'));
      expect((await other.submit('shipment.book', booking, api.world.actors.exporter, 'upgrade-accepted')).replayed).toBe(true);
      expect(queries.filter((text) => text.includes('idempotency_keys'))).toEqual([]);
    } finally {
      await other.close();
    }
  });
});
