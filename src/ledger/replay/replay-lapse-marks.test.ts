/**
 * The replay of a ledger whose own sweeps deleted lapse marks (migration 034): a sweep that
 * finds nothing due deletes the marks of licences that reserve nothing and commits no event,
 * so the replay, which sends again only what the log records, makes no such sweep and keeps
 * those marks. Its sweep must still expire what the ledger's did: the look-up
 * (store/sweep-due.ts) takes only marks whose licence still reserves, so marks left behind
 * take none of its places. Here its bound is 2 (limits.sweepRowsMax, replaced for this
 * file), so two such marks would fill it; store/sweep-due-order.test.ts shows the same at the
 * real bound, on the look-up alone.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { dropReplayTemplate, replayFindings } from '../../../test/support/replay.ts';
import { licencePair, type LicencePair } from '../../../test/support/licence-pair.ts';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';

vi.mock('../../core/limits.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../core/limits.ts')>();
  return { ...real, limits: { ...real.limits, sweepRowsMax: 2 } };
});

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});
afterAll(dropReplayTemplate);

const pair = (): Promise<LicencePair> => licencePair(world, { authorisedUnits: 4, betaConsignee: true });

async function logSize(): Promise<number> {
  return Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size);
}

async function marks(): Promise<string[]> {
  return (await database.pool.query<{ licence_id: string }>('SELECT licence_id FROM licence_lapses ORDER BY licence_id')).rows.map((row) => row.licence_id);
}

describe('the replay of sweeps after marks the ledger deleted', () => {
  it('expires the bookings of a licence revoked later, as the ledger did, and makes the same state', async () => {
    // Two licences revoked with nothing booked under them: marked, and the marks deleted by a
    // sweep that finds nothing due (no event).
    const idle = [await pair(), await pair()];
    for (const licences of idle) await world.run('licence.revoke', { licenceId: licences.exportLicenceId }, world.actors.bis);
    expect(await marks()).toEqual(idle.map((licences) => licences.exportLicenceId).sort());
    const size = await logSize();
    const quiet = await world.ledger.sweep();
    expect(quiet.ok ? 'expired something' : quiet.error.rule).toBe('sweep-nothing-due');
    expect(await logSize()).toBe(size);
    expect(await marks()).toEqual([]);

    // Then a licence with a booking under it, revoked; its mark sorts after theirs.
    const reserving = await pair();
    const shipmentId = String((await world.run('shipment.book', {
      exportAllocationId: reserving.exportAllocationId, importAllocationId: reserving.importAllocationId, productId: world.productId, units: 2, deadline: '2026-12-01T00:00:00Z',
    }, world.actors.exporter)).shipmentId);
    await world.run('licence.revoke', { licenceId: reserving.exportLicenceId }, world.actors.bis);
    expect(idle.every((licences) => licences.exportLicenceId < reserving.exportLicenceId)).toBe(true);
    expect(expectOk(await world.ledger.sweep()).expiredShipments).toEqual([shipmentId]);

    // The replay keeps the two marks until its own sweep, which must expire the same booking.
    const { report, differences } = await replayFindings(database.pool);
    expect(report).toEqual({ replayed: await logSize() });
    expect(differences).toEqual([]);
  });
});
