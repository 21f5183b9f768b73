import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { emptyKeys } from '../store/batch-keys.ts';
import type { LoadedState } from '../store/batch-state.ts';
import type { LogHead } from '../store/head-lock.ts';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, expectOk, type World } from '../../test/world.ts';
import { Ledger } from './ledger.ts';
import { checkLogOnStart } from './log/check.ts';
import { TransparencyLog } from './log/transparency-log.ts';
import { RowCache } from './row-cache.ts';
import { BatchState } from './state.ts';
import { systemActor, type Actor } from './permissions.ts';
import type { AllocationRow, LicenceRow, OrganisationRow, ShipmentRow, TokenRow } from './rows.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

const head = (size: number): LogHead => ({ size, root: Buffer.alloc(32, size) });
const allocation = (id: string, licenceId: string, recipient: string) => ({ id, licence_id: licenceId, recipient_org_id: recipient, units: 10, reserved_units: 0 }) as unknown as AllocationRow;
const licence = (id: string) => ({ id, parties: [], allocation_recipients: [] }) as unknown as LicenceRow & { parties: []; allocation_recipients: [] };
const organisation = (id: string) => ({ id }) as unknown as OrganisationRow;
const token = (id: string, orgId: string) => ({ id, org_id: orgId, role: 'recipient', revoked_at: null }) as unknown as TokenRow;
const shipment = (id: string) => ({ id, export_allocation_id: 'A-1', import_allocation_id: 'A-2', recipient_org_id: 'O-r', exporter_org_id: 'O-x' }) as unknown as ShipmentRow;

function loaded(parts: Partial<LoadedState>): LoadedState {
  return { organisations: [], products: [], tokens: [], licences: [], allocations: [], sites: [], shipments: [], units: [], ...parts };
}

describe('RowCache', () => {
  const full = loaded({
    organisations: [organisation('O-r'), organisation('O-x')],
    licences: [licence('L-1'), licence('L-2')],
    allocations: [allocation('A-1', 'L-1', 'O-r'), allocation('A-2', 'L-2', 'O-r')],
    shipments: [shipment('S-1')],
  });

  it('holds nothing until it knows the head its rows belong to', () => {
    const keys = emptyKeys();
    expect(new RowCache().lookup(keys)).toBeNull();
  });

  it('expands a shipment to its allocations, their licences and the organisations, as the loader does', () => {
    const cache = new RowCache();
    cache.remember(full, head(5));
    const keys = emptyKeys();
    keys.shipments.add('S-1');
    const found = cache.lookup(keys)!;
    expect(found.allocations.map((row) => row.id).sort()).toEqual(['A-1', 'A-2']);
    expect(found.licences.map((row) => row.id).sort()).toEqual(['L-1', 'L-2']);
    expect(found.organisations.map((row) => row.id).sort()).toEqual(['O-r', 'O-x']);
  });

  it('answers null when one row is missing, or the keys ask for what it does not keep', () => {
    const cache = new RowCache();
    cache.remember(full, head(5));
    const missing = emptyKeys();
    missing.allocations.add('A-9');
    expect(cache.lookup(missing)).toBeNull();
    for (const ask of [(keys: ReturnType<typeof emptyKeys>) => keys.serials.add('SN-1'), (keys: ReturnType<typeof emptyKeys>) => keys.gpuUuids.add('GPU-00000000-0000-4000-8000-000000000001'), (keys: ReturnType<typeof emptyKeys>) => keys.productModels.add('H200 SXM'), (keys: ReturnType<typeof emptyKeys>) => keys.organisationIdentifiers.add('uscc=91110000MA0000001L'), (keys: ReturnType<typeof emptyKeys>) => { keys.dueAt = '2026-01-01T00:00:00Z'; }]) {
      const keys = emptyKeys();
      ask(keys);
      expect(cache.lookup(keys)).toBeNull();
    }
  });

  it('keeps tokens, each bringing its organisation as the loader does, and misses one it does not hold', () => {
    const cache = new RowCache();
    cache.remember(loaded({ organisations: [organisation('O-r'), organisation('O-t')], tokens: [token('TOK-1', 'O-t')] }), head(5));
    const keys = emptyKeys();
    keys.tokens.add('TOK-1');
    keys.organisations.add('O-r');
    const found = cache.lookup(keys)!;
    expect(found.tokens.map((row) => row.id)).toEqual(['TOK-1']);
    expect(found.organisations.map((row) => row.id).sort()).toEqual(['O-r', 'O-t']);
    keys.tokens.add('TOK-2'); // never loaded: the database may hold it, revoked or not
    expect(cache.lookup(keys)).toBeNull();
  });

  it('holds a token as the batch that revoked it left it', () => {
    const cache = new RowCache();
    const before = loaded({ organisations: [organisation('O-t')], tokens: [token('TOK-1', 'O-t')] });
    cache.remember(before, head(5));
    const state = new BatchState(before);
    state.update('tokens', state.get('tokens', 'TOK-1')!, { revoked_at: '2026-02-01T00:00:00.000Z' });
    cache.advance(state, head(6));
    const keys = emptyKeys();
    keys.tokens.add('TOK-1');
    expect(cache.lookup(keys)!.tokens[0]!.revoked_at).toBe('2026-02-01T00:00:00.000Z');
  });

  it('starts over when rows come from another head than its own', () => {
    const cache = new RowCache();
    cache.remember(full, head(5));
    cache.remember(loaded({ organisations: [organisation('O-r')] }), head(9));
    const keys = emptyKeys();
    keys.organisations.add('O-x');
    expect(cache.lookup(keys)).toBeNull();
    expect(cache.head?.size).toBe(9);
  });

  it('lays a batch\'s changed rows over the cache and moves to the head after it', () => {
    const cache = new RowCache();
    cache.remember(full, head(5));
    const state = new BatchState(full);
    state.update('allocations', state.get('allocations', 'A-1')!, { reserved_units: 7 });
    cache.advance(state, head(6));
    const keys = emptyKeys();
    keys.allocations.add('A-1');
    expect(cache.lookup(keys)!.allocations[0]!.reserved_units).toBe(7);
    expect(cache.head?.size).toBe(6);
  });

  it('keeps rows frozen, nested values too, so no batch can change one in place', () => {
    const cache = new RowCache();
    const row = { ...organisation('O-f'), identifiers: { uscc: 'X' }, roles: ['recipient'] } as unknown as OrganisationRow;
    cache.remember(loaded({ organisations: [row] }), head(1));
    const keys = emptyKeys();
    keys.organisations.add('O-f');
    const kept = cache.lookup(keys)!.organisations[0] as unknown as { name: string; identifiers: { uscc: string }; roles: string[] };
    expect(() => { kept.name = 'changed'; }).toThrow(TypeError);
    expect(() => { kept.identifiers.uscc = 'Y'; }).toThrow(TypeError);
    expect(() => kept.roles.push('exporter')).toThrow(TypeError);
  });

  it('keeps at most its bound of rows per table, dropping the least recently written', () => {
    const cache = new RowCache(2);
    cache.remember(loaded({ organisations: [organisation('O-1'), organisation('O-2'), organisation('O-3')] }), head(1));
    const keys = (id: string) => {
      const set = emptyKeys();
      set.organisations.add(id);
      return set;
    };
    expect(cache.lookup(keys('O-1'))).toBeNull();
    expect(cache.lookup(keys('O-3'))).not.toBeNull();
  });
});

describe('the sequencer with its row cache', () => {
  let database: TestDatabase;
  let world: World;
  let otherPool: Pool;
  let other: Ledger;

  beforeAll(async () => {
    database = await createTestDatabase();
    world = await buildWorld(database.pool);
    otherPool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'chipledger-test-other-writer' });
    // The other writer reads the same clock: a test below moves it an hour on, and a writer
    // whose clock lags the ledger's newest event that far is refused (clock-behind-ledger).
    other = await Ledger.open({ logSealingKey: testSealingKey, pool: otherPool, clock: world.clock });
  });
  afterAll(async () => {
    await other?.close();
    await otherPool?.end();
    await world?.ledger.close();
    await database?.drop();
  });

  const booking = (units: number) => ({ exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units, deadline: '2026-03-01T00:00:00Z' });

  it('reads nothing for a batch whose rows it holds', async () => {
    await world.run('shipment.book', booking(1), world.actors.exporter);
    const before = world.ledger.sequencer.stats.cachedBatches;
    await world.run('shipment.book', booking(1), world.actors.exporter);
    expect(world.ledger.sequencer.stats.cachedBatches).toBe(before + 1);
  });

  it('sends a batch ahead, in one round trip, when its rows are cached and nobody else wrote', async () => {
    await world.run('shipment.book', booking(1), world.actors.exporter);
    const before = world.ledger.sequencer.stats.aheadBatches;
    await world.run('shipment.book', booking(1), world.actors.exporter);
    expect(world.ledger.sequencer.stats.aheadBatches).toBe(before + 1);
  });

  it('answers a retried idempotency key from the database, not from the batch it sent ahead', async () => {
    const stats = world.ledger.sequencer.stats;
    const first = await world.ledger.submit('shipment.book', booking(1), world.actors.exporter, 'retry-while-ahead');
    expectOk(first);
    await world.run('shipment.book', booking(1), world.actors.exporter);
    const ahead = stats.aheadBatches;
    const again = await world.ledger.submit('shipment.book', booking(1), world.actors.exporter, 'retry-while-ahead');
    expect(again).toEqual({ ...first, replayed: true });
    expect(stats.aheadBatches).toBe(ahead); // the guess booked it a second time: its key's insert failed, and it ran the classic way
    expect(stats.aheadMisses).toBeGreaterThan(0);
    // The log had taken the dropped guess's leaf; the next batch must still append at the
    // true head, with the root the tiles prove.
    expectOk(await world.ledger.submit('shipment.book', booking(1), world.actors.exporter));
    await checkLogOnStart(database.pool, new TransparencyLog(database.pool), []);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('runs a batch sent ahead again the classic way when the database refuses it, and answers from that run', async () => {
    // A trigger refuses the next shipment insert once (a sequence counts the shots: a
    // rollback does not undo it), as a constraint our checks let through would.
    await database.pool.query(`CREATE SEQUENCE test_refuse_once START 2;
      CREATE FUNCTION test_refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('test_refuse_once') = 1 THEN RAISE EXCEPTION 'refused once' USING ERRCODE = 'check_violation'; END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER test_refuse_once AFTER INSERT ON shipments FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_once()`);
    try {
      await world.run('shipment.book', booking(1), world.actors.exporter);
      const stats = { ...world.ledger.sequencer.stats };
      const size = Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size);
      await database.pool.query("SELECT setval('test_refuse_once', 1, false)");
      const answer = await world.ledger.submit('shipment.book', booking(1), world.actors.exporter, 'refused-ahead');
      expect(expectOk(answer).seq).toBe(size);
      const after = world.ledger.sequencer.stats;
      // Not sent ahead (that run rolled back), not a failed batch: one batch, the classic way's.
      expect({ ahead: after.aheadBatches - stats.aheadBatches, misses: after.aheadMisses - stats.aheadMisses, failed: after.failedBatches - stats.failedBatches, batches: after.batches - stats.batches })
        .toEqual({ ahead: 0, misses: 1, failed: 0, batches: 1 });
      expect(Number((await database.pool.query("SELECT nextval('test_refuse_once')")).rows[0].nextval)).toBe(3); // the trigger fired twice
      // The next batch goes ahead again, at the head the classic run left.
      expect(expectOk(await world.ledger.submit('shipment.book', booking(1), world.actors.exporter)).seq).toBe(size + 1);
      expect(world.ledger.sequencer.stats.aheadBatches).toBe(stats.aheadBatches + 1);
    } finally {
      await database.pool.query('DROP TRIGGER test_refuse_once ON shipments; DROP FUNCTION test_refuse_once(); DROP SEQUENCE test_refuse_once');
    }
    await checkLogOnStart(database.pool, new TransparencyLog(database.pool), []);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('runs a big batch sent ahead (events by COPY, leaves hashed on the way) again the classic way when another writer moved the head', async () => {
    const beta = (units: number) => ({ ...booking(units), exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport });
    await world.run('shipment.book', beta(1), world.actors.exporter);
    expectOk(await other.submit('shipment.book', beta(1), world.actors.exporter));
    const stats = { ...world.ledger.sequencer.stats };
    // Submitted in one turn of the event loop: one batch of 300 events (bulkRowsMin is 256).
    const answers = await Promise.all(Array.from({ length: 300 }, () => world.ledger.submit('shipment.book', beta(1), world.actors.exporter)));
    expect(answers.filter((answer) => !answer.ok)).toEqual([]);
    const after = world.ledger.sequencer.stats;
    expect({ batches: after.batches - stats.batches, ahead: after.aheadBatches - stats.aheadBatches, misses: after.aheadMisses - stats.aheadMisses, size: after.lastBatchSize })
      .toEqual({ batches: 1, ahead: 0, misses: 1, size: 300 });
    const reserved = (await database.pool.query('SELECT reserved_units FROM allocations WHERE id = $1', [world.allocations.betaExport])).rows[0].reserved_units;
    expect(reserved).toBe(302);
    // The log's edge had taken the failed batch's leaves; the next batch appends at the true head.
    expectOk(await world.ledger.submit('shipment.book', beta(1), world.actors.exporter));
    await checkLogOnStart(database.pool, new TransparencyLog(database.pool), []);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('runs a batch sent ahead again the classic way, with its time read afresh, when the head lock is held past the short wait', async () => {
    // On beta's allocations: the test after this one counts alpha's units.
    const beta = { ...booking(1), exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport };
    await world.run('shipment.book', beta, world.actors.exporter);
    const stats = { ...world.ledger.sequencer.stats };
    const holder = await database.pool.connect();
    const sent = world.clock.now();
    let answer;
    try {
      await holder.query('BEGIN; SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE');
      const pending = world.ledger.submit('shipment.book', beta, world.actors.exporter);
      // Well past the ahead wait (limits.aheadLockWaitMsMax), and time moves on meanwhile.
      await new Promise((done) => setTimeout(done, 3 * limits.aheadLockWaitMsMax));
      world.clock.set(new Date(sent.getTime() + 3_600_000).toISOString());
      await holder.query('COMMIT');
      answer = await pending;
    } finally {
      holder.release();
    }
    expectOk(answer);
    const after = world.ledger.sequencer.stats;
    expect({ ahead: after.aheadBatches - stats.aheadBatches, misses: after.aheadMisses - stats.aheadMisses }).toEqual({ ahead: 0, misses: 1 });
    // Its event carries the time read under the lock, not the time it was first applied at.
    const { at } = (await database.pool.query<{ at: string }>('SELECT at FROM events ORDER BY seq DESC LIMIT 1')).rows[0]!;
    expect(new Date(at).toISOString()).toBe(new Date(sent.getTime() + 3_600_000).toISOString());
  });

  // On beta's allocations, after the tests that count them; the next test counts alpha's.
  const betaBooking = () => ({ ...booking(1), exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport });

  it("serves every batch of a steady run of one token's bookings from the cache, the token's row with them", async () => {
    await world.run('shipment.book', betaBooking(), world.actors.exporter);
    const stats = { ...world.ledger.sequencer.stats };
    for (let i = 0; i < 10; i += 1) await world.run('shipment.book', betaBooking(), world.actors.exporter);
    const answers = await Promise.all(Array.from({ length: 40 }, () => world.ledger.submit('shipment.book', betaBooking(), world.actors.exporter)));
    expect(answers.filter((answer) => !answer.ok)).toEqual([]);
    const after = world.ledger.sequencer.stats;
    const batches = after.batches - stats.batches;
    expect(batches).toBeGreaterThanOrEqual(11);
    expect({ cached: after.cachedBatches - stats.cachedBatches, ahead: after.aheadBatches - stats.aheadBatches, misses: after.aheadMisses - stats.aheadMisses })
      .toEqual({ cached: batches, ahead: batches, misses: 0 });
  });

  it('refuses, from the cache, a token revoked by an earlier batch', async () => {
    const made = await world.run('token.create', { organisationId: world.actors.exporter.orgId, role: 'exporter', label: 'revoked while cached' }, systemActor);
    const exporter: Actor = { id: String(made.tokenId), orgId: world.actors.exporter.orgId, role: 'exporter' };
    await world.run('shipment.book', betaBooking(), exporter);
    await world.run('token.revoke', { tokenId: exporter.id }, systemActor);
    const cached = world.ledger.sequencer.stats.cachedBatches;
    const refused = await world.ledger.submit('shipment.book', betaBooking(), exporter);
    expect(world.ledger.sequencer.stats.cachedBatches).toBe(cached + 1);
    expect(refused).toMatchObject({ ok: false, error: { code: 'unauthenticated' } });
  });

  it('never answers from rows another writer has changed since', async () => {
    // Alpha's allocations hold 500; 10 are booked above. The other writer takes all but 5.
    expectOk(await other.submit('shipment.book', booking(485), world.actors.exporter));
    const ahead = world.ledger.sequencer.stats.aheadBatches;
    const refused = await world.ledger.submit('shipment.book', booking(6), world.actors.exporter);
    expect(world.ledger.sequencer.stats.aheadBatches).toBe(ahead); // sent ahead on stale rows, stopped at the head
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.message).toMatch(/has 5 units available; 6 requested/);

    // A licence the other writer suspends is suspended here at once.
    expectOk(await other.submit('licence.suspend', { licenceId: world.importLicenceId }, world.actors.mofcom));
    const suspended = await world.ledger.submit('shipment.book', booking(1), world.actors.exporter);
    expect(suspended.ok).toBe(false);
    if (!suspended.ok) expect(suspended.error.code).not.toBe('conflict'); // refused by the rule, not by the database
    expect(await world.ledger.violations()).toEqual([]);
  });
});
