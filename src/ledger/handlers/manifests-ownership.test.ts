/**
 * Who may list a unit again, through the ledger and the database: a unit that has shipped
 * stays with the exporter whose shipment last held it and keeps its product and its GPU
 * UUID; a unit that a booking listed and that never shipped is released when that booking
 * is cancelled or expires (migration 033); and a refusal for a serial of another tenant says
 * nothing about where that serial is. Two exporters (test/support/server.ts): the exporter
 * ships to alpha, exporter2 to beta.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { firstRefusal } from '../../../test/support/rolled-back.ts';
import { expectOk } from '../../../test/world.ts';
import { apiWorldPerFile, bookListing, type ApiWorld, type ManifestEntry } from '../../../test/support/server.ts';
import { emptyKeys, type BatchKeys } from '../../store/batch-keys.ts';
import { bulkRowsMin } from '../../store/batch-steps.ts';
import { loadBatchState } from '../../store/batch-state.ts';
import { systemActor, type Actor } from '../permissions.ts';
import type { Answer } from '../batch-apply.ts';

let database: TestDatabase;
let api: ApiWorld;

apiWorldPerFile((made, madeDatabase) => {
  api = made;
  database = madeDatabase;
});

const book = (side: 'own' | 'other', serials: ManifestEntry[]): Promise<Answer> => bookListing(api, side, serials);

function refusal(answer: Answer): { rule: string | undefined; message: string; details: unknown } {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { rule: answer.error.rule, message: answer.error.message, details: answer.error.details };
}

async function unitRow(serial: string) {
  const result = await database.pool.query('SELECT product_id, recipient_org_id, shipment_id, custody, gpu_uuid, ever_shipped FROM units WHERE serial = $1', [serial]);
  return result.rows[0];
}

/** What GET /v1/units/<serial> answers the exporter and recipient alpha. */
async function unitStatuses(serial: string): Promise<number[]> {
  const statuses: number[] = [];
  for (const token of [api.tokens.exporter, api.tokens.recipient]) statuses.push((await api.request({ method: 'GET', url: `/v1/units/${serial}`, token })).statusCode);
  return statuses;
}

const cancel = (shipmentId: string, actor: Actor) => api.world.run('shipment.cancel', { shipmentId }, actor);

describe('re-listing a unit that has a row', () => {
  it('refuses another exporter a unit returned from the exporter’s shipment, and lets the exporter list it again', async () => {
    const delivered = await api.shipment('own', 'delivered', 1);
    const serial = delivered.serials[0]!;
    await api.world.run('units.return', { serials: [serial], reason: 'faulty HBM stack' }, api.world.actors.alpha);
    const before = await unitRow(serial);

    const taken = refusal(await book('other', [serial]));
    expect(taken).toEqual({ rule: 'unit-owner', message: `serial ${serial} is not available to list in a shipment`, details: { serial } });
    expect(await unitRow(serial)).toEqual(before);
    expect(await unitStatuses(serial)).toEqual([200, 200]);

    const again = expectOk(await book('own', [serial]));
    expect(await unitRow(serial)).toMatchObject({ shipment_id: again.shipmentId, custody: 'licensed', product_id: api.world.productId });
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('refuses another exporter a unit that shipped, came back and was left licensed by the exporter’s cancelled booking', async () => {
    const delivered = await api.shipment('own', 'delivered', 1);
    const serial = delivered.serials[0]!;
    await api.world.run('units.return', { serials: [serial], reason: 'faulty HBM stack' }, api.world.actors.alpha);
    const rebooked = expectOk(await book('own', [serial]));
    await cancel(String(rebooked.shipmentId), api.world.actors.exporter);

    expect(refusal(await book('other', [serial]))).toMatchObject({ rule: 'unit-owner', message: `serial ${serial} is not available to list in a shipment` });
    expect(await unitRow(serial)).toMatchObject({ shipment_id: rebooked.shipmentId, recipient_org_id: api.orgs.alpha, ever_shipped: true });
    expectOk(await book('own', [serial]));
  });

  it('lets another exporter list a unit that a cancelled booking listed and that never shipped: a claim ends with its booking', async () => {
    const serial = api.serial('CLAIMED');
    const booked = expectOk(await book('own', [{ serial, gpuUuid: 'GPU-c1a1c1a1-0000-0000-0000-000000000001' }]));
    await cancel(String(booked.shipmentId), api.world.actors.exporter);
    expect(await unitRow(serial)).toMatchObject({ shipment_id: booked.shipmentId, gpu_uuid: null, ever_shipped: false });

    const taken = expectOk(await book('other', [{ serial, gpuUuid: 'GPU-c1a1c1a1-0000-0000-0000-000000000001' }]));
    expect(await unitRow(serial)).toEqual({
      product_id: api.world.productId, recipient_org_id: api.orgs.beta, shipment_id: taken.shipmentId, custody: 'licensed', gpu_uuid: 'GPU-c1a1c1a1-0000-0000-0000-000000000001', ever_shipped: false,
    });
    // The unit is exporter2's now: the first exporter and its recipient no longer read it.
    expect(await unitStatuses(serial)).toEqual([404, 404]);
    expect(refusal(await book('own', [serial]))).toMatchObject({ rule: 'unit-owner' });
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('is held by the database too: only a released unit moves to another exporter’s shipment, or changes product or GPU UUID (migration 033)', async () => {
    const { run, actors } = api.world;
    const released = api.serial('DB-RELEASED');
    const shipped = (await api.shipment('own', 'delivered', 1)).serials[0]!;
    await run('units.return', { serials: [shipped], reason: 'RMA' }, actors.alpha);
    const booked = expectOk(await book('own', [{ serial: released, gpuUuid: 'GPU-db000000-0000-0000-0000-000000000001' }, shipped]));
    await cancel(String(booked.shipmentId), actors.exporter);
    const others = String(expectOk(await book('other', [api.serial('DB-OTHER')])).shipmentId);
    /**
     * The UPDATE's error, if any, in a transaction rolled back; else the manifest lines it left
     * behind (migration 075: a unit that moves leaves its line in the shipment it left).
     */
    const attempt = async (serial: string, set: string): Promise<unknown> => {
      const client = await database.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`UPDATE units SET ${set} WHERE serial = $1`, [serial]);
        const left = (await client.query('SELECT shipment_id, serial FROM moved_manifest_lines WHERE serial = $1', [serial])).rows;
        return left.length === 0 ? undefined : left;
      } catch (error) {
        return error;
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
    };
    const move = `shipment_id = '${others}', recipient_org_id = '${api.orgs.beta}'`;
    expect(await attempt(released, move)).toEqual([{ shipment_id: String(booked.shipmentId), serial: released }]);
    expect(await attempt(released, `${move}, product_id = 'PRD-none'`)).toMatchObject({ code: '23503' }); // only a product that exists
    expect(await attempt(released, `gpu_uuid = 'GPU-db000000-0000-0000-0000-000000000002'`)).toBeUndefined();
    expect(await attempt(shipped, move)).toMatchObject({
      code: '23514', message: `unit ${shipped} is ${api.orgs.exporter}'s (it has shipped, or its booking ${String(booked.shipmentId)} is cancelled); shipment ${others} is not that exporter's`,
    });
    expect(await attempt(shipped, 'ever_shipped = false')).toMatchObject({ code: '23514', message: `unit ${shipped} has shipped; that stays so` });
    // Taken by exporter2 and released again: it goes back to the first exporter only by a
    // listing, not by hand into the ended booking that once listed it.
    const retaken = String(expectOk(await book('other', [released])).shipmentId);
    await cancel(retaken, api.exporter2);
    const back = await firstRefusal(database.pool, [`UPDATE units SET shipment_id = $1, recipient_org_id = $2 WHERE serial = $3`, [String(booked.shipmentId), api.orgs.alpha, released]]);
    expect(back).toEqual({ code: '23514', message: `unit ${released} cannot move to shipment ${String(booked.shipmentId)} of ${api.orgs.exporter}: that booking is cancelled, so it claims no unit` });
    // A booking that is live still holds what it listed.
    const live = api.serial('DB-LIVE');
    expectOk(await book('own', [{ serial: live, gpuUuid: 'GPU-db000000-0000-0000-0000-000000000003' }]));
    expect(await attempt(live, move)).toMatchObject({ code: '23505', constraint: 'units_live_in_one_shipment' });
    expect(await attempt(live, `gpu_uuid = NULL`)).toMatchObject({ code: '23514', message: `unit ${live} has GPU UUID GPU-db000000-0000-0000-0000-000000000003; it cannot change` });
  });

  it('lets a manifest’s typo be put right once its booking is cancelled: another GPU UUID, or the GPU UUID on another serial', async () => {
    const known = api.serial('UUID');
    const unknown = api.serial('NOUUID');
    const first = expectOk(await book('own', [{ serial: known, gpuUuid: 'GPU-0a0a0a0a-0000-0000-0000-000000000001' }, unknown]));
    // While the booking lasts, the GPU UUID is the unit's.
    const live = refusal(await book('own', [{ serial: api.serial('ELSE'), gpuUuid: 'GPU-0a0a0a0a-0000-0000-0000-000000000001' }]));
    expect(live.rule).toBe('unit-gpu-uuid');
    await cancel(String(first.shipmentId), api.world.actors.exporter);

    const second = expectOk(await book('own', [{ serial: known, gpuUuid: 'GPU-0b0b0b0b-0000-0000-0000-000000000002' }, { serial: unknown, gpuUuid: 'GPU-0a0a0a0a-0000-0000-0000-000000000001' }]));
    expect(await unitRow(known)).toMatchObject({ gpu_uuid: 'GPU-0b0b0b0b-0000-0000-0000-000000000002', shipment_id: second.shipmentId });
    expect(await unitRow(unknown)).toMatchObject({ gpu_uuid: 'GPU-0a0a0a0a-0000-0000-0000-000000000001', shipment_id: second.shipmentId });
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('lets a GPU UUID go and be taken in one batch: a cancel and a booking submitted together', async () => {
    const first = api.serial('ONE-BATCH');
    const booked = expectOk(await book('own', [{ serial: first, gpuUuid: 'GPU-0f0f0f0f-0000-0000-0000-000000000006' }]));
    const { ledger, actors } = api.world;
    const failedBefore = ledger.sequencer.stats.failedBatches;
    const [cancelled, taken] = await Promise.all([
      ledger.submit('shipment.cancel', { shipmentId: String(booked.shipmentId) }, actors.exporter),
      book('other', [{ serial: api.serial('ONE-BATCH'), gpuUuid: 'GPU-0f0f0f0f-0000-0000-0000-000000000006' }]),
    ]);
    expectOk(cancelled);
    expect(expectOk(taken).seq).toBe(Number(expectOk(cancelled).seq) + 1); // one after the other, in one batch
    // The first time: had the GPU UUID been let go after the new unit was written, the unique
    // index would have refused the batch, and only its run again in halves would have passed.
    expect(ledger.sequencer.stats.failedBatches).toBe(failedBefore);
    expect(await unitRow(first)).toMatchObject({ gpu_uuid: null });
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('keeps the GPU UUID a unit shipped with through a cancelled booking: another one is refused, the same or none is taken', async () => {
    const { run, actors } = api.world;
    const uuid = 'GPU-0d0d0d0d-0000-0000-0000-000000000004';
    const serial = api.serial('SHIPPED-UUID');
    const delivered = String(expectOk(await book('own', [{ serial, gpuUuid: uuid }])).shipmentId);
    await run('shipment.ship', { shipmentId: delivered }, actors.exporter);
    await run('shipment.clear', { shipmentId: delivered }, actors.alpha);
    await run('shipment.deliver', { shipmentId: delivered }, actors.alpha);
    await run('units.return', { serials: [serial], reason: 'RMA' }, actors.alpha);
    const listed = expectOk(await book('own', [{ serial, gpuUuid: uuid }]));
    await cancel(String(listed.shipmentId), actors.exporter);
    // Not the booking's claim but the unit's since it shipped (migration 037; a GPU UUID a
    // cancelled booking gave a returned unit is let go, handlers/gpu-uuid-claims.test.ts).
    expect(await unitRow(serial)).toMatchObject({ gpu_uuid: uuid, ever_shipped: true });

    const changed = refusal(await book('own', [{ serial, gpuUuid: 'GPU-0e0e0e0e-0000-0000-0000-000000000005' }]));
    expect(changed.rule).toBe('unit-gpu-uuid');
    expect(changed.message).toMatch(new RegExp(`serial ${serial} has GPU UUID ${uuid}; GPU-0e0e0e0e-0000-0000-0000-000000000005 given`));
    expectOk(await book('own', [serial]));
    expect(await unitRow(serial)).toMatchObject({ gpu_uuid: uuid });
    expect(await api.world.ledger.violations()).toEqual([]);
  });
});

describe('a unit listed again for another recipient', () => {
  it('leaves its first shipment\'s manifest with the serial only: not where it went, nor what it became', async () => {
    const { run, actors, allocations, productId } = api.world;
    const serial = api.serial('MOVED');
    const first = String(expectOk(await book('own', [serial])).shipmentId);
    await cancel(first, actors.exporter);
    const second = String((await run('shipment.book', { exportAllocationId: allocations.betaExport, importAllocationId: allocations.betaImport, productId, units: 1, deadline: '2026-06-01T00:00:00Z', serials: [{ serial, gpuUuid: 'GPU-5eca1000-0000-0000-0000-000000000001' }] }, actors.exporter)).shipmentId);
    await run('shipment.ship', { shipmentId: second }, actors.exporter);
    await run('shipment.clear', { shipmentId: second }, actors.beta);
    await run('shipment.deliver', { shipmentId: second }, actors.beta);
    await run('units.deploy', { siteId: api.sites.beta, serials: [serial] }, actors.beta);
    const seen = await api.request({ method: 'GET', url: `/v1/shipments/${first}/serials`, token: api.tokens.recipient });
    expect(seen.json().items).toEqual([{ serial, live: false, gpuUuid: null, custody: null, siteId: null, demo: false }]);
    const now = await api.request({ method: 'GET', url: `/v1/shipments/${second}/serials`, token: api.tokens.beta });
    expect(now.json().items).toEqual([expect.objectContaining({ serial, live: false, gpuUuid: 'GPU-5eca1000-0000-0000-0000-000000000001', custody: 'deployed', siteId: api.sites.beta })]);
  });
});

describe('refusals for a serial of another tenant', () => {
  it('name neither the live shipment nor the site, and the unit’s own exporter still hears both', async () => {
    const booked = await api.shipment('own', 'booked', 1);
    const live = booked.serials[0]!;
    const deployed = api.units.own;

    for (const serial of [live, deployed]) {
      const { rule, message, details } = refusal(await book('other', [serial]));
      expect({ rule, message, details }).toEqual({ rule: 'unit-owner', message: `serial ${serial} is not available to list in a shipment`, details: { serial } });
      expect(message).not.toContain(booked.id);
      expect(message).not.toContain(api.shipments.own);
      expect(message).not.toContain(api.sites.alpha);
    }
    expect(refusal(await book('own', [live])).message).toBe(`serial ${live} is already in live shipment ${booked.id}`);
    expect(refusal(await book('own', [deployed])).message).toBe(`serial ${deployed} is deployed; it cannot be listed in a shipment`);
  });

  it('are the same whether the serial is live, deployed or returned elsewhere, through the API too', async () => {
    const returned = (await api.shipment('own', 'delivered', 1)).serials[0]!;
    await api.world.run('units.return', { serials: [returned], reason: 'faulty HBM stack' }, api.world.actors.alpha);
    const live = (await api.shipment('own', 'shipped', 1)).serials[0]!;
    const bodies: unknown[] = [];
    for (const serial of [returned, live, api.units.own]) {
      const response = await api.request({
        method: 'POST', url: '/v1/shipments', token: await exporter2Token(),
        body: { exportAllocationId: api.allocations.exporter2Beta, importAllocationId: api.allocations.betaImport2, productId: api.world.productId, units: 1, deadline: '2026-06-01T00:00:00Z', serials: [serial] },
      });
      expect(response.statusCode).toBe(409);
      const body = response.json() as Record<string, unknown>;
      bodies.push({ ...body, detail: String(body.detail).replace(serial, '<serial>'), ...(body.details ? { details: '<details>' } : {}) });
      expect(response.body).not.toMatch(/S-\d|SITE-/);
    }
    expect(bodies[1]).toEqual(bodies[0]);
    expect(bodies[2]).toEqual(bodies[0]);
  });
});

describe('the batch loader', () => {
  /** Loads a batch's rows for these serials, counting the statements it sends. */
  async function load(serials: string[]): Promise<{ statements: number; loaded: Awaited<ReturnType<typeof loadBatchState>> }> {
    const client = await database.pool.connect();
    let statements = 0;
    const query = client.query.bind(client);
    client.query = ((...args: Parameters<typeof query>) => {
      statements += 1;
      return query(...args);
    }) as typeof client.query;
    try {
      const keys: BatchKeys = emptyKeys();
      for (const serial of serials) keys.serials.add(serial);
      return { loaded: await loadBatchState(client, keys), statements };
    } finally {
      client.query = query;
      client.release();
    }
  }

  it('brings each unit’s last shipment once, with its allocations, and nothing for new serials', async () => {
    const own = await api.shipment('own', 'delivered', 3);
    const fresh = await load(Array.from({ length: 1_000 }, () => api.serial('FRESH')));
    expect(fresh.statements).toBe(1);
    expect(fresh.loaded.shipments).toEqual([]);

    const { loaded } = await load([...own.serials, api.units.other, api.serial('FRESH')]);
    expect(loaded.shipments.map((shipment) => shipment.id).sort()).toEqual([own.id, api.shipments.other].sort());
    expect(loaded.allocations.map((allocation) => allocation.id).sort())
      .toEqual([api.allocations.alphaExport, api.allocations.alphaImport, api.allocations.exporter2Beta, api.allocations.betaImport2].sort());
  });
});

describe('a unit listed, released and listed again in one batch (migration 075)', () => {
  /**
   * The manifest of each shipment as the database holds it: its units and the lines of units
   * that left it. Every shipment the unit was listed in keeps it, however the batch ran.
   */
  async function manifests(shipmentIds: string[]): Promise<Record<string, string[]>> {
    const rows = (await database.pool.query<{ shipment_id: string; serial: string }>(
      `SELECT shipment_id, serial FROM units WHERE shipment_id = ANY($1) UNION ALL SELECT shipment_id, serial FROM moved_manifest_lines WHERE shipment_id = ANY($1) ORDER BY 1, 2`, [shipmentIds])).rows;
    const byShipment: Record<string, string[]> = Object.fromEntries(shipmentIds.map((id) => [id, []]));
    for (const row of rows) byShipment[row.shipment_id]!.push(row.serial);
    return byShipment;
  }

  it.each([
    ['a new serial', false],
    ['a unit a cancelled booking released', true],
  ])('keeps every shipment’s line of it: %s, listed in two bookings and one of them cancelled between', async (_case, stored) => {
    const { ledger, actors } = api.world;
    const serial = api.serial(stored ? 'BATCH-STORED' : 'BATCH-NEW');
    const first = stored ? String(expectOk(await book('own', [serial])).shipmentId) : undefined;
    if (first !== undefined) await cancel(first, actors.exporter);
    // Three bookings of one unit each, none listed yet.
    const empty = () => api.world.ledger.submit('shipment.book', {
      exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    }, actors.exporter);
    const [s1, s2, s3] = (await Promise.all([empty(), empty(), empty()])).map((answer) => String(expectOk(answer).shipmentId)) as [string, string, string];
    const { stats } = ledger.sequencer;
    const batches = stats.batches;
    // One organisation's commands commit in the order they came, here in one batch: listed in
    // s1, s1 cancelled, listed in s2, s2 cancelled, listed in s3 (a unit staged twice).
    const answers = await Promise.all([
      ledger.submit('manifest.attach', { shipmentId: s1, serials: [serial] }, actors.exporter),
      ledger.submit('shipment.cancel', { shipmentId: s1 }, actors.exporter),
      ledger.submit('manifest.attach', { shipmentId: s2, serials: [serial] }, actors.exporter),
      ledger.submit('shipment.cancel', { shipmentId: s2 }, actors.exporter),
      ledger.submit('manifest.attach', { shipmentId: s3, serials: [serial] }, actors.exporter),
    ]);
    answers.forEach((answer) => expectOk(answer));
    expect(stats.batches - batches).toBe(1);
    expect(await unitRow(serial)).toMatchObject({ shipment_id: s3, custody: 'licensed' });
    const shipments = [...(first === undefined ? [] : [first]), s1, s2, s3];
    expect(await manifests(shipments)).toEqual(Object.fromEntries(shipments.map((id) => [id, [serial]])));
    expect(await ledger.violations()).toEqual([]);
  });

  it('keeps the line of a shipment shipped and turned back at the border in the batch that lists its unit again', async () => {
    const { ledger, actors } = api.world;
    const serial = api.serial('BATCH-RETURNED');
    const empty = () => ledger.submit('shipment.book', {
      exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    }, actors.exporter);
    const [s1, s2] = (await Promise.all([empty(), empty()])).map((answer) => String(expectOk(answer).shipmentId)) as [string, string];
    const { stats } = ledger.sequencer;
    const batches = stats.batches;
    const answers = await Promise.all([
      ledger.submit('manifest.attach', { shipmentId: s1, serials: [serial] }, actors.exporter),
      ledger.submit('shipment.ship', { shipmentId: s1 }, actors.exporter),
      ledger.submit('shipment.return', { shipmentId: s1, reason: 'entry refused at the border' }, actors.exporter),
      ledger.submit('manifest.attach', { shipmentId: s2, serials: [serial] }, actors.exporter),
    ]);
    answers.forEach((answer) => expectOk(answer));
    expect(stats.batches - batches).toBe(1);
    // It shipped in s1 and is listed, licensed, in s2; s1's manifest keeps it.
    expect(await unitRow(serial)).toMatchObject({ shipment_id: s2, custody: 'licensed', ever_shipped: true });
    expect(await manifests([s1, s2])).toEqual({ [s1]: [serial], [s2]: [serial] });
    expect(await ledger.violations()).toEqual([]);
  });

  it('stages a manifest of bulk size as one statement of arrays (from bulkRowsMin rows)', async () => {
    const { ledger, actors } = api.world;
    const serials = Array.from({ length: bulkRowsMin + 44 }, (_, index) => api.serial(`BATCH-BULK-${index}`));
    const booking = () => ledger.submit('shipment.book', {
      exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: serials.length, deadline: '2026-06-01T00:00:00Z',
    }, actors.exporter);
    const [s1, s2] = (await Promise.all([booking(), booking()])).map((answer) => String(expectOk(answer).shipmentId)) as [string, string];
    const { stats } = ledger.sequencer;
    const batches = stats.batches;
    const answers = await Promise.all([
      ledger.submit('manifest.attach', { shipmentId: s1, serials }, actors.exporter),
      ledger.submit('shipment.cancel', { shipmentId: s1 }, actors.exporter),
      ledger.submit('manifest.attach', { shipmentId: s2, serials }, actors.exporter),
    ]);
    answers.forEach((answer) => expectOk(answer));
    expect(stats.batches - batches).toBe(1);
    const listed = [...serials].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(await manifests([s1, s2])).toEqual({ [s1]: listed, [s2]: listed });
    expect(await ledger.violations()).toEqual([]);
  });
});

describe('a released unit another exporter lists and lets go in the batch that lists it again (migration 075)', () => {
  it('is answered as if each came alone, every shipment keeping its line, though the database refuses the batch whole first', async () => {
    const { ledger, actors } = api.world;
    const serial = api.serial('BATCH-ACROSS');
    // Released: the exporter's booking that listed it was cancelled before it shipped.
    const first = String(expectOk(await book('own', [serial])).shipmentId);
    await cancel(first, actors.exporter);
    const booking = (own: boolean) => ledger.submit('shipment.book', {
      exportAllocationId: own ? api.allocations.alphaExport : api.allocations.exporter2Beta, importAllocationId: own ? api.allocations.alphaImport : api.allocations.betaImport2,
      productId: api.world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    }, own ? actors.exporter : api.exporter2);
    const theirs = String(expectOk(await booking(false)).shipmentId);
    const ours = String(expectOk(await booking(true)).shipmentId);
    const { stats } = ledger.sequencer;
    const failed = stats.failedBatches;
    // exporter2 lists it and cancels; then the exporter lists it again. Written as one batch,
    // the unit would move into exporter2's booking as that stands cancelled, which 033's rule
    // refuses of a released unit; the sequencer runs the batch again in halves.
    const answers = await Promise.all([
      ledger.submit('manifest.attach', { shipmentId: theirs, serials: [serial] }, api.exporter2),
      ledger.submit('shipment.cancel', { shipmentId: theirs }, api.exporter2),
      ledger.submit('manifest.attach', { shipmentId: ours, serials: [serial] }, actors.exporter),
    ]);
    answers.forEach((answer) => expectOk(answer));
    expect(stats.failedBatches - failed, 'the batch the database refused whole').toBeGreaterThan(0);
    expect(await unitRow(serial)).toMatchObject({ shipment_id: ours, recipient_org_id: api.orgs.alpha, custody: 'licensed' });
    const lines = (await database.pool.query('SELECT shipment_id FROM moved_manifest_lines WHERE serial = $1 ORDER BY shipment_id', [serial])).rows.map((row) => row.shipment_id);
    expect(lines.sort()).toEqual([first, theirs].sort());
    expect(await ledger.violations()).toEqual([]);
  });
});

// Last in the file: it moves the clock past the deadline the other tests book with.
describe('a booking that expires unshipped', () => {
  it('releases what it listed, as a cancelled one does: the GPU UUID is let go, and the serial may be listed by another exporter', async () => {
    const { ledger, clock } = api.world;
    const serial = api.serial('EXPIRED');
    const booked = expectOk(await book('own', [{ serial, gpuUuid: 'GPU-e0e0e0e0-0000-0000-0000-000000000001' }]));
    clock.set('2026-06-02T00:00:00Z');
    expect(expectOk(await ledger.sweep()).expiredShipments).toContain(booked.shipmentId);
    expect(await unitRow(serial)).toMatchObject({ shipment_id: booked.shipmentId, gpu_uuid: null, ever_shipped: false });

    const taken = expectOk(await api.world.ledger.submit('shipment.book', {
      exportAllocationId: api.allocations.exporter2Beta, importAllocationId: api.allocations.betaImport2,
      productId: api.world.productId, units: 1, deadline: '2026-09-01T00:00:00Z', serials: [{ serial, gpuUuid: 'GPU-e0e0e0e0-0000-0000-0000-000000000001' }],
    }, api.exporter2));
    expect(await unitRow(serial)).toMatchObject({ shipment_id: taken.shipmentId, recipient_org_id: api.orgs.beta, gpu_uuid: 'GPU-e0e0e0e0-0000-0000-0000-000000000001' });
    expect(await api.world.ledger.violations()).toEqual([]);
  });
});

let exporter2Secret: string | undefined;
async function exporter2Token(): Promise<string> {
  exporter2Secret ??= String((await api.world.run('token.create', { organisationId: api.orgs.exporter2, role: 'exporter', label: 'exporter2 test token' }, systemActor)).secret);
  return exporter2Secret;
}
