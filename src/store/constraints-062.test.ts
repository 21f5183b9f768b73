/**
 * Migration 062: the re-check holds each shipment's and each licence's status to the newest
 * event that states it. s26's attack review shipped a shipment and suspended a licence by
 * UPDATE, as the writer, and `chipledger check` found nothing; events of the first releases,
 * which stated some statuses otherwise or not at all, must not be named.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { eventStateViolations, withEventsByHand } from '../../test/support/events-by-hand.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { ledgerViolations } from './violations.ts';
import { inTransaction, type Pool } from './pool.ts';

// The tests run in order on one world: the later ones take the shipment, licences and
// allocations the first one made, and give back what they changed.
let database: TestDatabase;
let world: World;
// Licences of 20 units, 10 a recipient: shipping every unit uses both licences up.
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
}, { licenceUnits: 20, allocationUnits: 10 });

const stateViolations = () => eventStateViolations(database.pool);

let booked = 0;
async function book(recipient: 'alpha' | 'beta', units: number, deadline = '2026-09-01T00:00:00Z'): Promise<string> {
  const { allocations, productId, actors } = world;
  const [exportAllocationId, importAllocationId] = recipient === 'alpha' ? [allocations.alphaExport, allocations.alphaImport] : [allocations.betaExport, allocations.betaImport];
  const serials = Array.from({ length: units }, () => `EVS-${(booked += 1)}`);
  return String((await world.run('shipment.book', { exportAllocationId, importAllocationId, productId, units, deadline, serials }, actors.exporter)).shipmentId);
}

async function statusOf(table: 'shipments' | 'licences', id: string): Promise<string> {
  return (await database.pool.query<{ status: string }>(`SELECT status FROM ${table} WHERE id = $1`, [id])).rows[0]!.status;
}

describe("the re-check's parts event-state (062)", () => {
  it('names nothing where every status was made through the ledger: shipments in each state, licences suspended, used up, amended and swept', async () => {
    const { actors, exportLicenceId, importLicenceId } = world;
    const delivered = await book('alpha', 4);
    await world.run('shipment.ship', { shipmentId: delivered }, actors.exporter);
    await world.run('shipment.clear', { shipmentId: delivered }, actors.alpha);
    await world.run('shipment.deliver', { shipmentId: delivered }, actors.alpha);
    const cancelled = await book('alpha', 1);
    await world.run('shipment.cancel', { shipmentId: cancelled }, actors.exporter);
    await world.run('licence.suspend', { licenceId: exportLicenceId }, actors.bis);
    await world.run('licence.reinstate', { licenceId: exportLicenceId }, actors.bis);
    const expiring = await book('alpha', 1, '2026-02-02T00:00:00Z');
    world.clock.set('2026-02-03T00:00:00Z');
    expect(await world.ledger.sweep()).toMatchObject({ ok: true });
    expect(await statusOf('shipments', expiring)).toBe('expired');
    // Every unit shipped: both licences are used up by the last step, then one is amended up.
    for (const [recipient, units] of [['alpha', 6], ['beta', 10]] as const) {
      await world.run('shipment.ship', { shipmentId: await book(recipient, units) }, actors.exporter);
    }
    expect([await statusOf('licences', exportLicenceId), await statusOf('licences', importLicenceId)]).toEqual(['exhausted', 'exhausted']);
    await world.run('licence.amend', { licenceId: importLicenceId, reason: 'more units', authorisedUnits: 30 }, actors.mofcom);
    expect(await statusOf('licences', importLicenceId)).toBe('issued');
    // Allocations resized, and one made as a tranche.
    await world.run('allocation.resize', { allocationId: world.allocations.betaImport, units: 15 }, actors.mofcom);
    await world.run('allocation.create', { licenceId: importLicenceId, recipientId: actors.alpha.orgId, units: 2, periodStart: '2026-03-01', periodEnd: '2026-03-31' }, actors.mofcom);
    expect(await stateViolations()).toEqual([]);
    expect(await ledgerViolations(database.pool)).toEqual([]);
  });

  it('names a shipment cancelled and a licence suspended by UPDATE, with the word of the newest event that states each', async () => {
    const shipmentId = await deliveredShipment();
    const licenceId = world.importLicenceId;
    const { rows: [delivered] } = await database.pool.query<{ seq: string }>("SELECT seq FROM events WHERE kind = 'shipment.deliver' AND subject_id = $1", [shipmentId]);
    const { rows: [amended] } = await database.pool.query<{ seq: string }>("SELECT max(seq) AS seq FROM events WHERE kind = 'licence.amend' AND subject_id = $1", [licenceId]);
    // The licence as the writer, the server's own role, as s26's review did: its triggers let it.
    await database.writerPool.query("UPDATE licences SET status = 'suspended' WHERE id = $1", [licenceId]);
    // A delivered shipment is ended for good (migration 020's trigger refuses the writer), so
    // the owner, triggers off, as whoever holds the owner's credentials could.
    await writeAroundTriggers(database.pool, shipmentId, licenceId, { shipment: 'cancelled', licence: 'suspended' });
    expect(await stateViolations()).toEqual([
      { invariant: 'event-state', subject: licenceId, detail: `the licence is suspended, but its newest event that states its status, ${amended!.seq}, says issued` },
      { invariant: 'event-state', subject: shipmentId, detail: `the shipment is cancelled, but its newest event that states its status, ${delivered!.seq}, says delivered` },
    ]);
    await writeAroundTriggers(database.pool, shipmentId, licenceId, { shipment: 'delivered', licence: 'issued' });
    expect(await stateViolations()).toEqual([]);
  });

  it("names an allocation whose units moved to another recipient's, the licence's total kept, or whose recipient or tranche changed", async () => {
    const [from, to] = [world.allocations.betaImport, world.allocations.alphaImport];
    const tranche = (await database.pool.query<{ id: string }>('SELECT id FROM allocations WHERE period_start IS NOT NULL')).rows[0]!.id;
    const seqs = (await database.pool.query<{ subject_id: string; kind: string; seq: string }>(
      "SELECT subject_id, kind, max(seq)::text AS seq FROM events WHERE kind IN ('allocation.create', 'allocation.resize') AND subject_id = ANY($1) GROUP BY 1, 2",
      [[from, to, tranche, world.allocations.alphaExport]],
    )).rows;
    const seqOf = (id: string, kind: string) => seqs.find((row) => row.subject_id === id && row.kind === kind)!.seq;
    await withEventsByHand(database.pool, async ({ insertEvent, query, violations }) => {
      await query('UPDATE allocations SET units = units - 1 WHERE id = $1', [from]);
      await query('UPDATE allocations SET units = units + 1 WHERE id = $1', [to]);
      await query('UPDATE allocations SET recipient_org_id = $2 WHERE id = $1', [world.allocations.alphaExport, world.actors.beta.orgId]);
      await query("UPDATE allocations SET period_end = '2026-04-30' WHERE id = $1", [tranche]);
      const expected = [
        { invariant: 'event-state', subject: world.allocations.alphaExport, detail: `the allocation is of licence ${world.exportLicenceId} for ${world.actors.beta.orgId}, but its allocation.create event, ${seqOf(world.allocations.alphaExport, 'allocation.create')}, made it of licence ${world.exportLicenceId} for ${world.actors.alpha.orgId}` },
        { invariant: 'event-state', subject: to, detail: `the allocation has 11 units, but its newest event that sizes it, ${seqOf(to, 'allocation.create')} (allocation.create), says 10` },
        { invariant: 'event-state', subject: from, detail: `the allocation has 14 units, but its newest event that sizes it, ${seqOf(from, 'allocation.resize')} (allocation.resize), says 15` },
        { invariant: 'event-state', subject: tranche, detail: `the allocation's tranche is 2026-03-01 to 2026-04-30, but its allocation.create event, ${seqOf(tranche, 'allocation.create')}, made it 2026-03-01 to 2026-03-31` },
      ].sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
      expect(await violations()).toEqual(expected);
      // Bytes that are not an event's JSON (057 names them) state nothing: the part, read
      // event by event, names the same.
      await insertEvent('allocation.resize', from, Buffer.from('{"input": {"units": 1', 'utf8'));
      expect(await violations()).toEqual(expected);
      // An allocation that no event made.
      await query("DELETE FROM events WHERE kind = 'allocation.create' AND subject_id = $1", [tranche]);
      expect((await violations()).filter((violation) => violation.subject === tranche)).toEqual([
        { invariant: 'event-state', subject: tranche, detail: 'the allocation has no allocation.create event that made it, so nothing states its licence, recipient or units' },
      ]);
    });
    expect(await stateViolations()).toEqual([]);
  });

  it('takes the events of the first releases: a sweep of one event, a ship step that listed no licence it used up', async () => {
    const shipmentId = await deliveredShipment();
    const licenceId = world.importLicenceId;
    await withEventsByHand(database.pool, async ({ insertEvent, query, violated }) => {
      // The sweep's one event with no subject, listing what it expired (the delivered shipment stands in for a booked one).
      await insertEvent('ledger.sweep', null, { effects: { expiredShipments: [shipmentId], expiredLicences: [] } });
      await query("UPDATE shipments SET status = 'expired' WHERE id = $1", [shipmentId]);
      expect(await violated()).toEqual([]);
      // Before any ship step of those releases: a licence used up with no event saying so is named.
      await query("UPDATE licences SET status = 'exhausted', shipped_units = authorised_units WHERE id = $1", [licenceId]);
      expect(await violated()).toEqual([licenceId]);
      // A licence used up by a ship step that said nothing of it: taken when every unit shipped...
      await insertEvent('shipment.ship', 'S-0', { effects: { from: 'booked', to: 'shipped', units: 1 } });
      await query("UPDATE licences SET status = 'exhausted', shipped_units = authorised_units WHERE id = $1", [licenceId]);
      expect(await violated()).toEqual([]);
      // ...not when a unit is left,
      await query('UPDATE licences SET shipped_units = authorised_units - 1 WHERE id = $1', [licenceId]);
      expect(await violated()).toEqual([licenceId]);
      await query('UPDATE licences SET shipped_units = authorised_units WHERE id = $1', [licenceId]);
      // ...nor when the newest statement came after that step.
      await insertEvent('licence.reinstate', licenceId, { effects: { from: 'suspended', to: 'issued' } });
      expect(await violated()).toEqual([licenceId]);
      // An amendment of the first releases stated no status: it changes nothing here.
      await insertEvent('licence.amend', licenceId, { effects: { version: 9 } });
      expect(await violated()).toEqual([licenceId]);
      // A ship step that lists the licences it used up states each exhausted.
      await insertEvent('shipment.ship', 'S-0', { effects: { from: 'booked', to: 'shipped', units: 1, licencesExhausted: [licenceId] } });
      expect(await violated()).toEqual([]);
      // Bytes that are not an event's JSON (057 names them) are passed over, not a failure of the whole part.
      await insertEvent('licence.suspend', licenceId, Buffer.from('{"effects": {"to": "susp', 'utf8'));
      expect(await violated()).toEqual([]);
      await query("UPDATE licences SET status = 'issued' WHERE id = $1", [licenceId]);
      expect(await violated()).toEqual([licenceId]);
    });
    expect(await stateViolations()).toEqual([]);
  });
});

async function deliveredShipment(): Promise<string> {
  return (await database.pool.query<{ id: string }>("SELECT id FROM shipments WHERE status = 'delivered' ORDER BY id LIMIT 1")).rows[0]!.id;
}

/** As the owner with triggers off (whoever holds the owner's credentials could): the rows set to the given statuses. */
async function writeAroundTriggers(pool: Pool, shipmentId: string, licenceId: string, to = { shipment: 'cancelled', licence: 'suspended' }): Promise<void> {
  await inTransaction(pool, 'BEGIN', async (client) => {
    await client.query("SET LOCAL session_replication_role = 'replica'");
    await client.query('UPDATE shipments SET status = $2 WHERE id = $1', [shipmentId, to.shipment]);
    await client.query('UPDATE licences SET status = $2 WHERE id = $1', [licenceId, to.licence]);
  });
}
