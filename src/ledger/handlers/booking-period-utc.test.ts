/**
 * A tranche's period is judged in UTC days (checkBookingPeriod; the database's triggers take
 * (booked_at AT TIME ZONE 'UTC')::date), and the refusal says which day it took as today, and
 * that the day is UTC's: a MOFCOM tranche ending 2026-03-31 takes bookings until 08:00 on 1
 * April in Beijing, which its words did not say (s19, time review).
 */
import { describe, expect, it } from 'vitest';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';
import { licencePair } from '../../../test/support/licence-pair.ts';
import { day } from '../../server/wire-fields.ts';

let world: World;
worldPerFile((made) => { world = made; });

describe('a booking and its tranche\'s period', () => {
  it('is judged by the UTC day of its time, which the refusal names', async () => {
    world.clock.set('2026-03-01T00:00:00Z');
    const pair = await licencePair(world, { period: { periodStart: '2026-01-01', periodEnd: '2026-03-31' } });
    const book = () => world.ledger.submit('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1, deadline: '2026-05-01T00:00:00Z',
    }, world.actors.exporter);
    world.clock.set('2026-03-31T23:30:00Z'); // 07:30 on 1 April in Beijing: still 31 March in UTC
    expectOk(await book());
    world.clock.set('2026-04-01T00:00:00Z');
    const refused = await book();
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.error).toMatchObject({
      code: 'licence_not_valid', rule: 'allocation-period',
      message: `allocation ${pair.exportAllocationId} is for 2026-01-01 to 2026-03-31, and today is 2026-04-01 (UTC days: the booking's time is 2026-04-01T00:00:00.000Z)`,
      details: { allocationId: pair.exportAllocationId, periodStart: '2026-01-01', periodEnd: '2026-03-31', today: '2026-04-01' },
    });
  });

  it('says in the API\'s description of a day that it is a UTC day', () => {
    expect(day.description).toMatch(/^A calendar day in UTC, YYYY-MM-DD\. A tranche's period .* holds a booking when the booking's time, taken as a UTC date, is within it/);
  });
});
