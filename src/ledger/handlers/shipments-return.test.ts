/**
 * A shipment turned back at the border (shipment.return, migration 071): a shipped shipment
 * becomes returned, recorded by its exporter or by the authority of its import licence. Its
 * units in transit come back to the exporter, who may list them again (no other exporter
 * may); its manifest ends; what it shipped stays counted on both allocations and licences.
 * The database holds the same: the steps into and out of returned, and the counters.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { apiWorldPerFile, bookListing, type ApiWorld } from '../../../test/support/server.ts';
import { firstRefusal, partOnChangedState, statusInStep } from '../../../test/support/rolled-back.ts';
import { expectOk, refusalOf } from '../../../test/world.ts';
import type { Actor } from '../permissions.ts';

let database: TestDatabase;
let api: ApiWorld;

apiWorldPerFile((made, madeDatabase) => {
  api = made;
  database = madeDatabase;
});

const reason = 'entry refused at Tianjin Xingang: the invoice did not match the goods';
const turnBack = (shipmentId: string, actor: Actor) => api.world.ledger.submit('shipment.return', { shipmentId, reason }, actor);

/** What a shipment's two allocations and two licences count, as the database holds them. */
async function counters(shipmentId: string): Promise<unknown[]> {
  return (await database.pool.query(
    `SELECT a.id, a.reserved_units, a.shipped_units, l.id AS licence_id, l.shipped_units AS licence_shipped, l.status AS licence_status
     FROM shipments s JOIN allocations a ON a.id IN (s.export_allocation_id, s.import_allocation_id) JOIN licences l ON l.id = a.licence_id
     WHERE s.id = $1 ORDER BY a.id`, [shipmentId])).rows;
}

async function custodyOf(serials: string[]): Promise<Record<string, string>> {
  const rows = (await database.pool.query<{ serial: string; custody: string }>('SELECT serial, custody FROM units WHERE serial = ANY($1)', [serials])).rows;
  return Object.fromEntries(rows.map((row) => [row.serial, row.custody]));
}

async function newestEvent(shipmentId: string): Promise<{ kind: string; input: unknown; effects: unknown }> {
  const rows = (await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE subject_id = $1 ORDER BY seq DESC LIMIT 1', [shipmentId])).rows;
  const { kind, input, effects } = JSON.parse(rows[0]!.canonical.toString('utf8'));
  return { kind, input, effects };
}

/** A shipment's manifest as its exporter reads it, one page: each serial, whether it is live, and its custody while still in it. */
async function manifestOf(shipmentId: string): Promise<Array<{ serial: string; live: boolean; custody: string | null }>> {
  const read = await api.request({ method: 'GET', url: `/v1/shipments/${shipmentId}/serials?limit=100`, token: api.tokens.exporter });
  expect(read.statusCode).toBe(200);
  return (read.json().items as Array<{ serial: string; live: boolean; custody: string | null }>).map(({ serial, live, custody }) => ({ serial, live, custody }));
}

describe('a shipment returned at the border', () => {
  it('brings its units in transit back to the exporter, ends its manifest and keeps what it shipped counted', async () => {
    const shipment = await api.shipment('own', 'shipped', 3);
    const [back, again, lost] = shipment.serials as [string, string, string];
    // One unit went missing on the way: it stays lost when the rest come back.
    expectOk(await api.world.ledger.submit('units.report_lost', { serials: [lost], reason: 'carton missing at the bonded warehouse' }, api.world.actors.alpha));
    const before = await counters(shipment.id);

    expect(expectOk(await turnBack(shipment.id, api.world.actors.exporter))).toMatchObject({ shipmentId: shipment.id, status: 'returned' });
    expect(await newestEvent(shipment.id)).toEqual({ kind: 'shipment.return', input: { shipmentId: shipment.id, reason }, effects: { from: 'shipped', to: 'returned', units: 3 } });
    expect(await custodyOf(shipment.serials)).toEqual({ [back]: 'returned', [again]: 'returned', [lost]: 'lost' });
    // Its manifest still lists all three, none live (a unit is its shipment's line: migration 075).
    expect(await manifestOf(shipment.id)).toEqual([...shipment.serials].sort().map((serial) => ({ serial, live: false, custody: serial === lost ? 'lost' : 'returned' })));
    expect(await counters(shipment.id)).toEqual(before);
    expect(await api.world.ledger.violations()).toEqual([]);

    // Both parties read it as returned, through the API.
    for (const token of [api.tokens.exporter, api.tokens.recipient]) {
      const read = await api.request({ method: 'GET', url: `/v1/shipments/${shipment.id}`, token });
      expect([read.statusCode, read.json().status]).toEqual([200, 'returned']);
    }

    // The exporter may list a returned unit again; another exporter may not, nor anyone a lost one.
    expect(refusalOf(await bookListing(api, 'other', [back]))).toMatchObject({ rule: 'unit-owner', message: `serial ${back} is not available to list in a shipment` });
    expect(refusalOf(await bookListing(api, 'own', [lost]))).toMatchObject({ rule: 'invariant-4', message: `serial ${lost} is lost; it cannot be listed in a shipment` });
    const relisted = String(expectOk(await bookListing(api, 'own', [back, again])).shipmentId);
    expectOk(await api.world.ledger.submit('shipment.ship', { shipmentId: relisted }, api.world.actors.exporter));
    expect(await custodyOf([back, again])).toEqual({ [back]: 'in_transit', [again]: 'in_transit' });
    // The returned shipment's manifest keeps the two that moved on (their state now another
    // shipment's, so not shown), and the new one lists them live.
    expect(await manifestOf(shipment.id)).toEqual([...shipment.serials].sort().map((serial) => ({ serial, live: false, custody: serial === lost ? 'lost' : null })));
    expect(await manifestOf(relisted)).toEqual([back, again].sort().map((serial) => ({ serial, live: true, custody: 'in_transit' })));
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('lists its units again in the batch that turned it back, in one transaction', async () => {
    const shipment = await api.shipment('own', 'shipped', 2);
    const { stats } = api.world.ledger.sequencer;
    const [batches, failed] = [stats.batches, stats.failedBatches];
    // One organisation's commands commit in the order they came: the return, then the listing.
    const [returned, relisted] = await Promise.all([turnBack(shipment.id, api.world.actors.exporter), bookListing(api, 'own', shipment.serials)]);
    expect({ batches: stats.batches - batches, failedBatches: stats.failedBatches - failed }).toEqual({ batches: 1, failedBatches: 0 });
    expectOk(returned);
    const relistedId = String(expectOk(relisted).shipmentId);
    const rows = (await database.pool.query('SELECT serial, shipment_id, custody FROM units WHERE serial = ANY($1) ORDER BY serial', [shipment.serials])).rows;
    expect(rows).toEqual([...shipment.serials].sort().map((serial) => ({ serial, shipment_id: relistedId, custody: 'licensed' })));
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it("is recorded by the import licence's authority as well, while that licence is suspended; by no other party or authority", async () => {
    const { orgs, world } = api;
    const shipment = await api.shipment('own', 'shipped', 1);
    expect(refusalOf(await turnBack(shipment.id, world.actors.bis))).toEqual({
      code: 'forbidden', rule: 'shipment-party', details: undefined,
      message: `only the exporter ${orgs.exporter} or ${orgs.mofcom}, the authority of its import licence, may return shipment ${shipment.id}`,
    });
    expect(refusalOf(await turnBack(shipment.id, world.actors.alpha))).toMatchObject({ code: 'forbidden' });
    expect(refusalOf(await turnBack(shipment.id, api.exporter2))).toMatchObject({ code: 'not_found' });

    await world.run('licence.suspend', { licenceId: world.importLicenceId, reason: 'clearances under review' }, world.actors.mofcom);
    try {
      expect(expectOk(await turnBack(shipment.id, world.actors.mofcom))).toMatchObject({ shipmentId: shipment.id, status: 'returned' });
    } finally {
      await world.run('licence.reinstate', { licenceId: world.importLicenceId }, world.actors.mofcom);
    }
    expect(await custodyOf(shipment.serials)).toEqual({ [shipment.serials[0]!]: 'returned' });
  });

  it('is taken only from shipped, once, and only with a reason', async () => {
    const { world } = api;
    const booked = await api.shipment('own', 'booked', 1);
    const cleared = await api.shipment('own', 'cleared', 1);
    const shipped = await api.shipment('own', 'shipped', 1);
    expect(refusalOf(await turnBack(booked.id, world.actors.exporter))).toMatchObject({ code: 'conflict', rule: 'shipment-status', message: `couldn't return shipment ${booked.id}: it is booked, not shipped` });
    expect(refusalOf(await turnBack(cleared.id, world.actors.exporter))).toMatchObject({ code: 'conflict', rule: 'shipment-status', message: `couldn't return shipment ${cleared.id}: it is cleared, not shipped` });
    // The reason is the record's: without one the API refuses the request.
    const unexplained = await api.request({ method: 'POST', url: `/v1/shipments/${shipped.id}/return`, token: api.tokens.exporter, body: {} });
    expect([unexplained.statusCode, unexplained.json().code]).toEqual([400, 'invalid_input']);
    expectOk(await turnBack(shipped.id, world.actors.exporter));
    expect(refusalOf(await turnBack(shipped.id, world.actors.mofcom))).toMatchObject({ code: 'conflict', rule: 'shipment-status', message: `couldn't return shipment ${shipped.id}: it is returned, not shipped` });
    // Nor may anything follow it.
    expect(refusalOf(await world.ledger.submit('shipment.clear', { shipmentId: shipped.id }, world.actors.mofcom))).toMatchObject({ rule: 'shipment-status' });
  });
});

describe('the database, written around the ledger', () => {
  it('takes shipped → returned only as a step that keeps the counters, and nothing out of returned', async () => {
    const shipped = await api.shipment('own', 'shipped', 1);
    const cleared = await api.shipment('own', 'cleared', 1);
    const partial = await api.shipment('own', 'empty', 2);
    expect(await firstRefusal(database.pool, statusInStep(shipped.id, 'returned'))).toBeUndefined();
    // A return that credited the shipped units back on both sides, counters and all, is refused at COMMIT.
    expect(await firstRefusal(database.pool, ["UPDATE shipments SET status = 'returned' WHERE id = $1", [shipped.id]], statusInStep(shipped.id, 'cancelled')))
      .toMatchObject({ message: expect.stringContaining(`shipment ${shipped.id} is returned; it cannot become cancelled`) });
    expect(await firstRefusal(database.pool, statusInStep(cleared.id, 'returned')))
      .toMatchObject({ message: expect.stringContaining(`shipment ${cleared.id} is cleared; it cannot become returned`) });
    expect(await firstRefusal(database.pool, statusInStep(partial.id, 'returned')))
      .toMatchObject({ message: `shipment ${partial.id} lists 0 of its 2 serials; it cannot become returned without a serial for every unit` });

    const returned = await api.shipment('own', 'shipped', 1);
    expectOk(await turnBack(returned.id, api.world.actors.exporter));
    for (const status of ['shipped', 'cleared', 'delivered']) {
      expect(await firstRefusal(database.pool, statusInStep(returned.id, status)), status)
        .toMatchObject({ message: expect.stringContaining(`shipment ${returned.id} is returned; it cannot become ${status}`) });
    }
  });

  it('refuses at COMMIT a return whose shipped units were taken off the allocations', async () => {
    const shipment = await api.shipment('own', 'shipped', 2);
    const credited = await firstRefusal(database.pool,
      ["UPDATE shipments SET status = 'returned' WHERE id = $1", [shipment.id]],
      ['UPDATE allocations SET shipped_units = shipped_units - 2 WHERE id IN ($1, $2)', [api.allocations.alphaExport, api.allocations.alphaImport]],
      ['UPDATE licences SET shipped_units = shipped_units - 2 WHERE id IN ($1, $2)', [api.world.exportLicenceId, api.world.importLicenceId]]);
    expect(credited).toMatchObject({ message: expect.stringMatching(/^invariant 2: allocation .*'s shipments changed its units reserved by 0 and shipped by 0, but its counters changed by 0 and -2/) });
  });

  it("is re-checked: a returned shipment's units back in transit, or its counters credited back, are named", async () => {
    const shipment = await api.shipment('own', 'shipped', 1);
    expectOk(await turnBack(shipment.id, api.world.actors.exporter));
    const serial = shipment.serials[0]!;
    expect(await partOnChangedState(database.pool, 'ledger_check_unit_custody', (client) => client.query("UPDATE units SET custody = 'in_transit' WHERE serial = $1", [serial])))
      .toEqual([{ invariant: 'invariant-4', subject: serial, detail: `the unit is in_transit, but its shipment ${shipment.id} is returned` }]);
    // Made returned by another shipment's return.
    const other = await api.shipment('own', 'shipped', 1);
    const otherReturn = Number(expectOk(await turnBack(other.id, api.world.actors.exporter)).seq);
    expect(await partOnChangedState(database.pool, 'ledger_check_unit_events', (client) => client.query('UPDATE units SET updated_seq = $2 WHERE serial = $1', [serial, otherReturn])))
      .toEqual([{ invariant: 'event-state', subject: serial, detail: `the unit is returned in shipment ${shipment.id}, but the shipment.return that last changed it, ${otherReturn}, returned ${other.id}` }]);
    const balances = await partOnChangedState(database.pool, 'ledger_check_allocation_balances', async (client) => {
      await client.query('UPDATE allocations SET shipped_units = shipped_units - 1 WHERE id = $1', [api.allocations.alphaImport]);
      await client.query('UPDATE licences SET shipped_units = shipped_units - 1 WHERE id = $1', [api.world.importLicenceId]);
    });
    expect(balances.map((row) => [row.invariant, row.subject])).toEqual([['invariant-2', api.allocations.alphaImport]]);
  });
});
