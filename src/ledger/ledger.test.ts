import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { licencePair } from '../../test/support/licence-pair.ts';
import { worldPerFile, expectOk, tokenActor, type World } from '../../test/world.ts';
import { systemActor } from './permissions.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const serials = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);

describe('ledger', () => {
  it('books, ships, clears, delivers and deploys a shipment end to end', async () => {
    const { run, actors, allocations, productId } = world;
    const booked = await run('shipment.book', {
      exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 4,
      deadline: '2026-03-01T00:00:00Z', serials: serials('SN-A-', 4),
    }, actors.exporter);
    const shipmentId = String(booked.shipmentId);
    expect(booked).toMatchObject({ status: 'booked', units: 4, serialCount: 4 });
    await run('shipment.ship', { shipmentId }, actors.exporter);
    await run('shipment.clear', { shipmentId }, actors.alpha);
    await run('shipment.deliver', { shipmentId }, actors.alpha);
    const site = String((await run('site.register', { name: 'Ulanqab DC 1', province: 'Inner Mongolia', city: 'Ulanqab', latitude: 41.0, longitude: 113.1, capacityUnits: 10 }, actors.alpha)).siteId);
    const deployed = await run('units.deploy', { siteId: site, serials: serials('SN-A-', 4) }, actors.alpha);
    expect(deployed).toMatchObject({ deployed: 4, moved: 0 });
    const units = await database.pool.query(`SELECT custody, site_id FROM units WHERE serial LIKE 'SN-A-%'`);
    expect(units.rows).toHaveLength(4);
    expect(units.rows.every((row) => row.custody === 'deployed' && row.site_id === site)).toBe(true);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('refuses an over-booking naming the rule and the numbers, and changes nothing', async () => {
    const { ledger, actors, allocations, productId } = world;
    const before = await database.pool.query('SELECT size FROM log_head');
    const answer = await ledger.submit('shipment.book', {
      exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport, productId, units: 501, deadline: '2026-03-01T00:00:00Z',
    }, actors.exporter);
    expect(answer.ok).toBe(false);
    if (answer.ok) return;
    expect(answer.error.code).toBe('insufficient_units');
    expect(answer.error.rule).toBe('invariant-2');
    expect(answer.error.message).toMatch(/has 500 units available; 501 requested/);
    const after = await database.pool.query('SELECT size FROM log_head');
    expect(after.rows).toEqual(before.rows);
  });

  it('answers a retried idempotency key with the same answer and refuses a different body', async () => {
    const { ledger, actors, allocations, productId } = world;
    const input = { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport, productId, units: 3, deadline: '2026-03-01T00:00:00Z' };
    const [first, second] = await Promise.all([
      ledger.submit('shipment.book', input, actors.exporter, 'key-1'),
      ledger.submit('shipment.book', input, actors.exporter, 'key-1'),
    ]);
    const third = await ledger.submit('shipment.book', input, actors.exporter, 'key-1');
    expect(expectOk(second)).toEqual(expectOk(first));
    expect(expectOk(third)).toEqual(expectOk(first));
    expect(third.replayed).toBe(true);
    const different = await ledger.submit('shipment.book', { ...input, units: 4 }, actors.exporter, 'key-1');
    expect(different.ok ? 'accepted' : different.error.code).toBe('idempotency_mismatch');
    const count = await database.pool.query(`SELECT count(*)::int AS n FROM shipments WHERE export_allocation_id = $1`, [allocations.betaExport]);
    expect(count.rows[0].n).toBe(1);
  });

  it('holds a key to its command kind: the same input under another kind is another request (invariant 6)', async () => {
    const { ledger, actors } = world;
    const { exportLicenceId } = await licencePair(world);
    expect(expectOk(await ledger.submit('licence.suspend', { licenceId: exportLicenceId }, actors.bis, 'kind-key-1'))).toMatchObject({ status: 'suspended' });
    // {licenceId} alone is the whole input of either command: only the kind tells them apart.
    const revoke = await ledger.submit('licence.revoke', { licenceId: exportLicenceId }, actors.bis, 'kind-key-1');
    expect(revoke).toMatchObject({ ok: false, replayed: false, error: { code: 'idempotency_mismatch', rule: 'invariant-6' } });
    const status = await database.pool.query('SELECT status FROM licences WHERE id = $1', [exportLicenceId]);
    expect(status.rows[0].status).toBe('suspended');
  });

  it('holds a key for the organisation: a retry through another of its tokens replays, another organisation\'s key is its own (invariant 6)', async () => {
    const { ledger, actors, run } = world;
    const { exportLicenceId, importLicenceId } = await licencePair(world);
    const first = expectOk(await ledger.submit('licence.suspend', { licenceId: exportLicenceId }, actors.bis, 'org-key-1'));
    const colleague = await tokenActor(run, actors.bis.orgId, 'authority_officer');
    const retried = await ledger.submit('licence.suspend', { licenceId: exportLicenceId }, colleague, 'org-key-1');
    expect(retried).toMatchObject({ ok: true, replayed: true, body: first });
    // The same key at MOFCOM names a request of its own, which runs.
    const elsewhere = await ledger.submit('licence.suspend', { licenceId: importLicenceId }, actors.mofcom, 'org-key-1');
    expect(elsewhere).toMatchObject({ ok: true, replayed: false, body: { licenceId: importLicenceId, status: 'suspended' } });
  });

  it('refuses a serial that is already in a live shipment', async () => {
    const { ledger, actors, allocations, productId } = world;
    const input = { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport, productId, units: 2, deadline: '2026-03-01T00:00:00Z' };
    expectOk(await ledger.submit('shipment.book', { ...input, serials: ['DUP-1', 'DUP-2'] }, actors.exporter));
    const answer = await ledger.submit('shipment.book', { ...input, serials: ['DUP-3', 'DUP-2'] }, actors.exporter);
    expect(answer.ok ? 'accepted' : answer.error.message).toMatch(/serial DUP-2 is already in live shipment S-\d+/);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('expires a booking at its deadline and releases the reservation', async () => {
    const { run, actors, allocations, productId, clock, ledger } = world;
    const booked = await run('shipment.book', { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport, productId, units: 7, deadline: '2026-02-10T00:00:00Z' }, actors.exporter);
    clock.set('2026-02-11T00:00:00Z');
    const swept = expectOk(await ledger.sweep());
    expect(swept.expiredShipments).toContain(booked.shipmentId);
    const row = await database.pool.query('SELECT status FROM shipments WHERE id = $1', [booked.shipmentId]);
    expect(row.rows[0].status).toBe('expired');
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('unit custody', () => {
  it('lets a returned unit be listed again, and a deployed one never', async () => {
    const { run, actors, allocations, productId } = world;
    const book = (serials: string[]) => run('shipment.book', { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: serials.length, deadline: '2026-03-01T00:00:00Z', serials }, actors.exporter);
    const through = async (shipmentId: string) => {
      await run('shipment.ship', { shipmentId }, actors.exporter);
      await run('shipment.clear', { shipmentId }, actors.alpha);
      await run('shipment.deliver', { shipmentId }, actors.alpha);
    };
    await through(String((await book(['RET-1', 'RET-2'])).shipmentId));
    const site = String((await run('site.register', { name: 'Wuhu DC', province: 'Anhui', city: 'Wuhu', latitude: 31.3, longitude: 118.4, capacityUnits: 5 }, actors.alpha)).siteId);
    await run('units.deploy', { siteId: site, serials: ['RET-2'] }, actors.alpha);
    const refused = await world.ledger.submit('shipment.book', { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 1, deadline: '2026-03-01T00:00:00Z', serials: ['RET-2'] }, actors.exporter);
    expect(refused.ok ? 'accepted' : refused.error.message).toMatch(/^serial RET-2 is deployed; it cannot be listed/);
    await run('units.return', { serials: ['RET-1', 'RET-2'], reason: 'RMA' }, actors.alpha);
    const again = await book(['RET-1']);
    expect(again.serialCount).toBe(1);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('lists returned and new units together in a manifest big enough to go by COPY', async () => {
    const { run, actors, allocations, productId, ledger } = world;
    const book = (list: string[]) => run('shipment.book', { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport, productId, units: list.length, deadline: '2026-03-01T00:00:00Z', serials: list }, actors.exporter);
    const first = String((await book(serials('BIG-OLD-', 60))).shipmentId);
    await run('shipment.ship', { shipmentId: first }, actors.exporter);
    await run('shipment.clear', { shipmentId: first }, actors.beta);
    await run('shipment.deliver', { shipmentId: first }, actors.beta);
    await run('units.return', { serials: serials('BIG-OLD-', 60), reason: 'RMA' }, actors.beta);
    // 60 units that have rows (returned: updated in place) and 300 that have none (new: COPY).
    const second = String((await book([...serials('BIG-OLD-', 60), ...serials('BIG-NEW-', 300)])).shipmentId);
    const units = await ledger.pool.query<{ shipment_id: string; custody: string; n: number }>(
      "SELECT shipment_id, custody, count(*)::int AS n FROM units WHERE serial LIKE 'BIG-%' GROUP BY 1, 2",
    );
    expect(units.rows).toEqual([{ shipment_id: second, custody: 'licensed', n: 360 }]);
    expect(await ledger.violations()).toEqual([]);
  });
});

describe('a batch the database refuses as a whole', () => {
  it('commits it in halves: a unit returned and listed again in one batch, behind 200 bookings, costs a few transactions, not one each', async () => {
    const { run, actors, allocations, productId, ledger } = world;
    const shipmentId = String((await run('shipment.book', { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 1, deadline: '2026-03-01T00:00:00Z', serials: ['HALF-1'] }, actors.exporter)).shipmentId);
    await run('shipment.ship', { shipmentId }, actors.exporter);
    await run('shipment.clear', { shipmentId }, actors.alpha);
    await run('shipment.deliver', { shipmentId }, actors.alpha);
    const booking = { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 1, deadline: '2026-03-01T00:00:00Z' };
    const before = { ...ledger.sequencer.stats };
    // One batch: the code applies the return before the listing, but the unit's row is
    // written once, so the database sees a delivered unit moved to a new shipment (019).
    const answers = await Promise.all([
      ...Array.from({ length: 200 }, () => ledger.submit('shipment.book', booking, actors.exporter)),
      ledger.submit('units.return', { serials: ['HALF-1'], reason: 'RMA' }, actors.alpha),
      ledger.submit('shipment.book', { ...booking, serials: ['HALF-1'] }, actors.exporter),
    ]);
    expect(answers.filter((answer) => !answer.ok).map((answer) => !answer.ok && answer.error.message)).toEqual([]);
    expect(ledger.sequencer.stats.failedBatches).toBeGreaterThan(before.failedBatches);
    expect(ledger.sequencer.stats.batches - before.batches).toBeLessThan(30);
    expect(await ledger.violations()).toEqual([]);
  });
});

describe('products', () => {
  it('classifies a product by the highest TPP over every dense rate it registers, whatever rate comes first', async () => {
    // H100 SXM: FP32 alone would give TPP 2,144 (not 3A090); FP8 gives 15,832 (3A090.a.1).
    const parameters = { logicDieAreaMm2: 814, dramBandwidthGbS: 3_350, designedForDatacenter: true };
    const rates = [{ precision: 'FP32', denseTops: 67, bitLength: 32 }, { precision: 'FP16', denseTops: 989.5, bitLength: 16 }, { precision: 'FP8', denseTops: 1_979, bitLength: 8 }];
    const product = await world.run('product.register', { model: 'H100 SXM (all rates)', vendor: 'NVIDIA', parameters: { ...parameters, denseRates: rates } }, world.actors.bis);
    expect(product).toMatchObject({ eccn: '3A090.a', paragraph: '3A090.a.1', tpp: 15_832 });
    const refused = await world.ledger.submit('product.register', { model: 'H100 SXM (both forms)', vendor: 'NVIDIA', parameters: { ...parameters, denseRates: rates, denseTops: 67, bitLength: 32 } }, world.actors.bis);
    expect(refused.ok ? 'accepted' : refused.error.message).toMatch(/give either denseRates or denseTops with bitLength, not both/);
    const half = await world.ledger.submit('product.register', { model: 'H100 SXM (no bit length)', vendor: 'NVIDIA', parameters: { ...parameters, denseTops: 67 } }, world.actors.bis);
    expect(half.ok ? 'accepted' : half.error.message).toMatch(/give denseRates, or denseTops with its bitLength/);
  });
});

describe('tokens', () => {
  it('lets an authority admin make and revoke authority tokens of its own organisation only', async () => {
    const { ledger, actors } = world;
    const bisAdmin = await tokenActor(world.run, actors.bis.orgId, 'authority_admin');
    const own = await ledger.submit('token.create', { organisationId: actors.bis.orgId, role: 'authority_officer', label: 'officer' }, bisAdmin);
    expect(own.ok).toBe(true);
    const other = await ledger.submit('token.create', { organisationId: actors.mofcom.orgId, role: 'authority_admin', label: 'takeover' }, bisAdmin);
    expect(other.ok ? 'accepted' : other.error.code).toBe('forbidden');
    const exporter = await ledger.submit('token.create', { organisationId: actors.exporter.orgId, role: 'exporter', label: 'exp' }, bisAdmin);
    expect(exporter.ok).toBe(true);
    const mofcomToken = expectOk(await ledger.submit('token.create', { organisationId: actors.mofcom.orgId, role: 'authority_officer', label: 'm' }, systemActor));
    const revoke = await ledger.submit('token.revoke', { tokenId: String(mofcomToken.tokenId) }, bisAdmin);
    expect(revoke.ok ? 'accepted' : revoke.error.code).toBe('forbidden');
  });
});

describe('an unreachable database', () => {
  it('answers 503-style unavailable, not a crash, and the ledger recovers with the database', async () => {
    const { Sequencer } = await import('./sequencer.ts');
    const { createPool } = await import('../store/pool.ts');
    const { findFreePort } = await import('../store/embedded.ts');
    const nowhere = createPool({ url: `postgres://chipledger:x@127.0.0.1:${await findFreePort()}/none`, connectionsMax: 1, applicationName: 'unreachable' });
    const sequencer = new Sequencer({ pool: nowhere, clock: world.clock, logAppender: world.ledger.log });
    try {
      const answer = await sequencer.submit('site.register', { name: 'X', province: 'Y', city: 'Z', latitude: 1, longitude: 1, capacityUnits: 1 }, world.actors.alpha);
      expect(answer.ok ? 'accepted' : answer.error.code).toBe('unavailable');
    } finally {
      await sequencer.close();
      await nowhere.end();
    }
    const after = await world.ledger.submit('site.register', { name: 'X', province: 'Y', city: 'Z', latitude: 1, longitude: 1, capacityUnits: 1 }, world.actors.alpha);
    expect(after.ok).toBe(true);
  });
});

describe('a log that fails in a big batch', () => {
  it('writes nothing of the batch (its rows go out while the log hashes): it runs again in halves, which go in', async () => {
    const { Sequencer } = await import('./sequencer.ts');
    const log = world.ledger.log;
    let failures = 0;
    const sequencer = new Sequencer({
      pool: database.pool, clock: world.clock,
      logAppender: {
        prepare: (client, head) => log.prepare(client, head),
        vouch: (client, head) => log.vouch(client, head),
        sealIsOurs: (head) => log.sealIsOurs(head),
        append: async (client, head, leaves) => {
          if (failures === 0 && leaves.length >= 256) {
            failures += 1;
            throw new Error('the log failed on purpose');
          }
          return log.append(client, head, leaves);
        },
      },
    });
    const counts = async () => (await database.pool.query(
      `SELECT (SELECT size FROM log_head)::int AS head, (SELECT count(*)::int FROM events) AS events,
              (SELECT coalesce(sum(cardinality(offsets)), 0)::int FROM event_reader_sets) AS readers, (SELECT count(*)::int FROM sites) AS sites`,
    )).rows[0];
    const register = (round: string) => Promise.allSettled(Array.from({ length: 300 }, (_, index) => sequencer.submit('site.register', {
      name: `Failing log DC ${round}-${index}`, province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10,
    }, world.actors.alpha)));
    try {
      const before = await counts();
      // The failure comes before the batch's COMMIT is queued, so it proves no commit: the
      // batch is split (batch-culprits.test.ts), and its halves, of 150 leaves, go in. Had the
      // failed batch left anything, the counts would be more than 300 up.
      const split = await register('a');
      expect(failures).toBe(1);
      expect(split.every((outcome) => outcome.status === 'fulfilled' && outcome.value.ok)).toBe(true);
      expect(await counts()).toEqual({ head: before.head + 300, events: before.events + 300, readers: before.readers + 300, sites: before.sites + 300 });
      const accepted = await register('b');
      expect(accepted.every((outcome) => outcome.status === 'fulfilled' && outcome.value.ok)).toBe(true);
      expect(await counts()).toEqual({ head: before.head + 600, events: before.events + 600, readers: before.readers + 600, sites: before.sites + 600 });
      expect(await world.ledger.violations()).toEqual([]);
    } finally {
      await sequencer.close();
    }
  });
});

describe('texts that need quoting in SQL', () => {
  it('stores texts exactly, whatever quoting they would need in SQL', async () => {
    // batch-writes.ts sends rows as dollar-quoted JSON ($cl$ … $cl$), escaping instead when a
    // value holds the tag: both ways must give back the very same text.
    for (const name of ["O'Brien \\ \"Quotes\" $$ $1 ;-- 数据中心 😀", 'Tagged $cl$ Holdings $cl$::json']) {
      const registered = await world.ledger.submit('organisation.register', { name, country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
      expect(registered.ok).toBe(true);
      if (!registered.ok) continue;
      const id = String(registered.body.organisationId);
      const row = await database.pool.query<{ name: string }>('SELECT name FROM organisations WHERE id = $1', [id]);
      expect(row.rows[0]!.name).toBe(name);
      const event = await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = $1', [Number(registered.body.seq)]);
      expect(event.rows[0]!.canonical.toString('utf8')).toContain(JSON.stringify(name).slice(1, -1));
    }
  });

  it('stores any acceptable name exactly as its event records it (property)', async () => {
    const awkward = fc.constantFrom('$$', "$'", '$&', '$`', '$cl$', '$1', "'", "''", '\\', '"', '\n', ';', '--', '\u00e9', 'e\u0301', '😀', '数据');
    const piece = fc.oneof(awkward, fc.string({ unit: 'grapheme', maxLength: 6 }));
    const acceptable = fc.array(piece, { minLength: 1, maxLength: 8 }).map((pieces) => pieces.join(''))
      .filter((value) => value.trim() !== '' && !/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.test(value));
    await fc.assert(fc.asyncProperty(acceptable, async (name) => {
      const answer = await world.ledger.submit('organisation.register', { name, country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
      expect(answer.ok).toBe(true);
      if (!answer.ok) return;
      const stored = (await database.pool.query<{ name: string }>('SELECT name FROM organisations WHERE id = $1', [String(answer.body.organisationId)])).rows[0]!.name;
      expect(stored).toBe(name.normalize('NFC').trim());
      const event = (await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = $1', [Number(answer.body.seq)])).rows[0]!;
      expect(JSON.stringify(JSON.parse(event.canonical.toString('utf8')))).toContain(JSON.stringify(stored));
    }), { numRuns: 60 });
  });
});
