/**
 * The sweep's expiry events say when each record fell due (dueAt), not only when the sweep
 * ran (`at`), which may be a week later with the servers down: a booking's deadline, the
 * validTo of the licence whose validity ended a booking, a licence's own validTo. A booking
 * that a revocation ended has none: the revocation's own event dates it.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { licencePair } from '../../../test/support/licence-pair.ts';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** The sweep's event about a record: when it was written, and its effects. */
async function expiryOf(subjectId: string): Promise<{ at: string; effects: Record<string, unknown> }> {
  const rows = (await database.pool.query<{ canonical: Buffer }>("SELECT canonical FROM events WHERE subject_id = $1 AND kind = 'ledger.sweep'", [subjectId])).rows;
  expect(rows).toHaveLength(1);
  const body = JSON.parse(rows[0]!.canonical.toString('utf8'));
  return { at: body.at, effects: body.effects };
}

describe('a sweep that runs a week late', () => {
  it('dates each expiry by the instant that made it due', async () => {
    const { run, actors, productId } = world;
    const pair = await licencePair(world, { validTo: '2026-03-01T00:00:00Z' });
    const cut = await licencePair(world, { validTo: '2027-01-01T00:00:00Z' });
    const revoked = await licencePair(world, { validTo: '2027-01-01T00:00:00Z' });
    const book = async (on: typeof pair, deadline: string) => String((await run('shipment.book', {
      exportAllocationId: on.exportAllocationId, importAllocationId: on.importAllocationId, productId, units: 1, deadline,
    }, actors.exporter)).shipmentId);
    const atDeadline = await book(pair, '2026-02-20T00:00:00Z');
    const underCut = await book(cut, '2026-06-01T00:00:00Z');
    const underRevoked = await book(revoked, '2026-06-01T00:00:00Z');
    await run('licence.amend', { licenceId: cut.importLicenceId, reason: 'quota cut short', validTo: '2026-02-25T00:00:00Z' }, actors.mofcom);
    await run('licence.revoke', { licenceId: revoked.exportLicenceId, reason: 'end-use concern' }, actors.bis);

    world.clock.set('2026-03-08T00:00:00Z');
    expectOk(await world.ledger.sweep());
    const sweptAt = '2026-03-08T00:00:00.000Z';
    expect(await expiryOf(atDeadline)).toEqual({ at: sweptAt, effects: { shipmentId: atDeadline, from: 'booked', to: 'expired', units: 1, dueAt: '2026-02-20T00:00:00.000Z' } });
    expect(await expiryOf(underCut)).toEqual({
      at: sweptAt,
      effects: { shipmentId: underCut, from: 'booked', to: 'expired', units: 1, reason: `licence ${cut.importLicenceId}'s validity ended at 2026-02-25T00:00:00.000Z`, dueAt: '2026-02-25T00:00:00.000Z' },
    });
    expect(await expiryOf(underRevoked)).toEqual({
      at: sweptAt, effects: { shipmentId: underRevoked, from: 'booked', to: 'expired', units: 1, reason: `licence ${revoked.exportLicenceId} is revoked` },
    });
    for (const licenceId of [pair.exportLicenceId, pair.importLicenceId]) {
      expect(await expiryOf(licenceId)).toEqual({ at: sweptAt, effects: { licenceId, from: 'issued', to: 'expired', dueAt: '2026-03-01T00:00:00.000Z' } });
    }
    expect(await expiryOf(cut.importLicenceId)).toMatchObject({ effects: { dueAt: '2026-02-25T00:00:00.000Z' } });
  });
});
