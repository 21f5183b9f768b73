/**
 * A booking lasts no longer than its licences: a deadline after the earlier validTo of the
 * two is refused (booking-deadline), naming both instants and the licence that ends first,
 * rather than taken and shown while the sweep would expire the booking at that validTo. A
 * deadline at it is taken; a licence already ended is still refused for that (licence-validity).
 */
import { describe, expect, it } from 'vitest';
import { licencePair, type LicencePair } from '../../../test/support/licence-pair.ts';
import { expectOk, refusalOf, worldPerFile, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';

let world: World;

worldPerFile((made) => {
  world = made;
});

function book(exportAllocationId: string, importAllocationId: string, deadline: string): Promise<Answer> {
  return world.ledger.submit('shipment.book', { exportAllocationId, importAllocationId, productId: world.productId, units: 1, deadline }, world.actors.exporter);
}

describe('a booking deadline past its licences\' validity', () => {
  it('is refused, naming the deadline and the earlier validTo of the two licences', async () => {
    // The import side ends first: the world's export licence runs to 2027-01-01.
    const short: LicencePair = await licencePair(world, { validTo: '2026-04-20T00:00:00Z' });
    expect(refusalOf(await book(world.allocations.alphaExport, short.importAllocationId, '2026-12-01T00:00:00Z'))).toEqual({
      code: 'invalid_input', rule: 'booking-deadline',
      message: `deadline 2026-12-01T00:00:00.000Z is after 2026-04-20T00:00:00.000Z, when the validity of import licence ${short.importLicenceId} ends (the earlier of the booking's two licences); a booking cannot outlast its licences`,
      details: { deadline: '2026-12-01T00:00:00.000Z', validTo: '2026-04-20T00:00:00.000Z', licenceId: short.importLicenceId },
    });
    // The export side ending first is named the same way.
    expect(refusalOf(await book(short.exportAllocationId, world.allocations.alphaImport, '2026-04-20T00:00:00.001Z'))).toMatchObject({
      rule: 'booking-deadline', details: { validTo: '2026-04-20T00:00:00.000Z', licenceId: short.exportLicenceId },
    });
    // A deadline at the validTo is taken: the booking and the licence end together.
    expect(expectOk(await book(short.exportAllocationId, short.importAllocationId, '2026-04-20T00:00:00Z'))).toMatchObject({ status: 'booked' });
  });

  it('is refused for the licence\'s ended validity first, as before', async () => {
    const ended = await licencePair(world, { validTo: '2026-02-05T00:00:00Z' });
    world.clock.set('2026-02-06T00:00:00Z');
    expect(refusalOf(await book(ended.exportAllocationId, ended.importAllocationId, '2026-03-01T00:00:00Z'))).toMatchObject({ code: 'licence_not_valid', rule: 'licence-validity' });
  });
});
