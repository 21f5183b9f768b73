/**
 * `shipments book --deadline 365d` counts the span from the client's clock and the ledger
 * judges it from its own time: a client clock a few minutes ahead is booked, not refused
 * booking-deadline (s19, time review: 2 s ahead was refused).
 */
import { describe, expect, it } from 'vitest';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import { licencePair } from '../../test/support/licence-pair.ts';
import { deadlineSpanClockMarginMs, parseDeadline } from './client-values.ts';

let world: World;
worldPerFile((made) => { world = made; });

describe('--deadline 365d and a client clock ahead of the ledger\'s', () => {
  it('is booked for a client clock up to the margin ahead', async () => {
    world.clock.set('2026-07-01T00:00:00Z');
    const pair = await licencePair(world, { validTo: '2028-01-01T00:00:00Z' });
    const book = (deadline: string) => world.ledger.submit('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1, deadline,
    }, world.actors.exporter);
    for (const clientAheadMs of [2_000, deadlineSpanClockMarginMs]) {
      expectOk(await book(parseDeadline('365d', new Date(Date.parse('2026-07-01T00:00:00Z') + clientAheadMs))));
    }
    const past = await book(parseDeadline('365d', new Date(Date.parse('2026-07-01T00:00:00Z') + deadlineSpanClockMarginMs + 1)));
    expect(past.ok ? 'accepted' : past.error.rule).toBe('booking-deadline');
  });
});
