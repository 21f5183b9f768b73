/**
 * Migration 070: invariant 2 at write time. A transaction changes each allocation's reserved
 * and shipped units by exactly what it changes that allocation's shipments by, on both sides,
 * and a licence's shipped units are its allocations'. Each case writes around the ledger with
 * the writer's connection (what the server writes as), in a transaction that is always rolled
 * back: before 070 the database took every refused one, and only `chipledger check` found it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, insertShipments, type Statement } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const asWriter = (...statements: Statement[]) => firstRefusal(database.writerPool, ...statements);
const units = 2;
let shipmentId: string;

const counters = (allocationId: string, reserved: number, shipped = 0): Statement =>
  ['UPDATE allocations SET reserved_units = reserved_units + $2, shipped_units = shipped_units + $3 WHERE id = $1', [allocationId, reserved, shipped]];
const licenceShipped = (licenceId: string, shipped: number): Statement => ['UPDATE licences SET shipped_units = shipped_units + $2 WHERE id = $1', [licenceId, shipped]];
const status = (to: string): Statement => ['UPDATE shipments SET status = $2 WHERE id = $1', [shipmentId, to]];
const licenceRefused = (licenceId: string, allocations: number, counted: number) => ({
  code: '23514', message: `invariant 2: licence ${licenceId}'s allocations changed their units shipped by ${allocations}, but the licence's count changed by ${counted}`,
});
const refused = (allocationId: string, shipments: [number, number], counted: [number, number]) => ({
  code: '23514',
  message: `invariant 2: allocation ${allocationId}'s shipments changed its units reserved by ${shipments[0]} and shipped by ${shipments[1]}, but its counters changed by ${counted[0]} and ${counted[1]} (a shipment reserves on every covering licence or on none)`,
});

beforeAll(async () => {
  shipmentId = String((await world.run('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
    units, deadline: '2026-03-01T00:00:00Z', serials: ['C070-1', 'C070-2'],
  }, world.actors.exporter)).shipmentId);
});

describe('migration 070: reservations are held to the shipments at write time', () => {
  it("refuses a reservation taken off one side of a booking while the other side keeps it", async () => {
    expect(await asWriter(counters(world.allocations.alphaExport, -units))).toEqual(refused(world.allocations.alphaExport, [0, 0], [-units, 0]));
  });

  it('refuses units reserved that no shipment books', async () => {
    expect(await asWriter(counters(world.allocations.alphaImport, 10))).toEqual(refused(world.allocations.alphaImport, [0, 0], [10, 0]));
  });

  it('refuses a booking cancelled by UPDATE that leaves its units reserved, or releases them on one side only, and takes one that releases both', async () => {
    expect(await asWriter(status('cancelled'))).toEqual(refused(world.allocations.alphaExport, [-units, 0], [0, 0]));
    expect(await asWriter(status('cancelled'), counters(world.allocations.alphaExport, -units))).toEqual(refused(world.allocations.alphaImport, [-units, 0], [0, 0]));
    expect(await asWriter(status('cancelled'), counters(world.allocations.alphaExport, -units), counters(world.allocations.alphaImport, -units))).toBeUndefined();
  });

  it('refuses a shipment booked by INSERT that reserves on one side only, and takes one that reserves on both', async () => {
    const booked = insertShipments(world, [{ id: 'S-C070', units: '3', created_seq: '1', updated_seq: '1' }], false);
    expect(await asWriter(booked, counters(world.allocations.alphaImport, 3))).toEqual(refused(world.allocations.alphaExport, [3, 0], [0, 0]));
    expect(await asWriter(booked, counters(world.allocations.alphaImport, 3), counters(world.allocations.alphaExport, 3))).toBeUndefined();
  });

  it("holds shipping to both allocations' counters and the licences' shipped units", async () => {
    const moved = (allocationId: string): Statement => counters(allocationId, -units, units);
    const both = [moved(world.allocations.alphaExport), moved(world.allocations.alphaImport)];
    const licences = [licenceShipped(world.exportLicenceId, units), licenceShipped(world.importLicenceId, units)];
    expect(await asWriter(status('shipped'), ...licences)).toEqual(refused(world.allocations.alphaExport, [-units, units], [0, 0]));
    expect(await asWriter(status('shipped'), ...both, licenceShipped(world.exportLicenceId, units))).toEqual(licenceRefused(world.importLicenceId, units, 0));
    expect(await asWriter(status('shipped'), ...both, ...licences)).toBeUndefined();
    // A licence's count moved alone is refused too.
    expect(await asWriter(licenceShipped(world.exportLicenceId, 1))).toEqual(licenceRefused(world.exportLicenceId, 0, 1));
  });

  it("refuses allocations made with units shipped, balanced by a shipment made shipped, that leave their licences' count behind (s33 review)", async () => {
    // Each new allocation takes its units from beta's in the same statement (invariant 1 is checked at once).
    const made = (id: string, licenceId: string, from: string): Statement => [`WITH s AS (UPDATE allocations SET units = units - 100 WHERE id = $3 RETURNING 1)
      INSERT INTO allocations (id, licence_id, recipient_org_id, units, reserved_units, shipped_units, created_seq) VALUES ($1, $2, $4, 100, 0, 2, 1)`,
      [id, licenceId, from, world.actors.alpha.orgId]];
    const shipped = insertShipments(world, [{ id: 'S-C070-SHIPPED', units: '2', status: 'shipped', export_allocation_id: 'A-C070-X', import_allocation_id: 'A-C070-I' }], false);
    const allocations = [made('A-C070-X', world.exportLicenceId, world.allocations.betaExport), made('A-C070-I', world.importLicenceId, world.allocations.betaImport)];
    // As the owner, with the manifest's rule off: a shipped shipment without serials is refused by 025 first.
    const manifestUnguarded: Statement = ['ALTER TABLE shipments DISABLE TRIGGER shipments_manifest_complete_insert'];
    const error = await firstRefusal(database.pool, manifestUnguarded, ...allocations, shipped);
    expect(error).toEqual(licenceRefused(world.exportLicenceId, 2, 0));
  });

  it('changes nothing for statements that move no units: a manifest attached, a shipment delivered', async () => {
    expect(await asWriter(['UPDATE shipments SET updated_seq = updated_seq + 1 WHERE id = $1', [shipmentId]], ['UPDATE allocations SET units = units WHERE id = $1', [world.allocations.alphaExport]])).toBeUndefined();
    // And the bookings the ledger committed (the world's and this file's) left nothing noted behind.
    const left = await database.pool.query<{ changes: number; licences: number; checks: number }>(
      'SELECT (SELECT count(*)::int FROM reservation_changes) AS changes, (SELECT count(*)::int FROM licence_shipped_changes) AS licences, (SELECT count(*)::int FROM reservation_checks) AS checks');
    expect(left.rows[0]).toEqual({ changes: 0, licences: 0, checks: 0 });
  });

  it("leaves the writer no way to cancel a change it made: it cannot write the changes' table", async () => {
    for (const statement of [
      "INSERT INTO reservation_changes (txid, allocation_id) VALUES (pg_current_xact_id(), 'A-1')",
      'UPDATE reservation_changes SET counted_reserved = shipments_reserved',
      'DELETE FROM reservation_changes',
      'DELETE FROM reservation_checks',
      "INSERT INTO licence_shipped_changes (txid, licence_id) VALUES (pg_current_xact_id(), 'L-1')",
    ]) {
      expect((await asWriter(counters(world.allocations.alphaImport, 10), [statement]))?.code, statement).toBe('42501');
    }
  });
});
