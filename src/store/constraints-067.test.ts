/**
 * Migration 067: a shipment that ships is held, in the database too, to what its licences
 * still cover. Each case changes a licence by hand after the booking, in a transaction that
 * is always rolled back, then ships the booking by hand: before 067 the database took each one.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, statusInStep, type Statement } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const refusal = (...statements: Statement[]) => firstRefusal(database.pool, ...statements);
/** A licence's terms and parties changed by hand, as no amendment writes them (their versions' triggers off). */
const versionsUnguarded: Statement[] = [
  ['ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions'],
  ['ALTER TABLE licence_parties DISABLE TRIGGER licence_parties_follow_versions'],
];

let shipmentId: string;
const ship = (): Statement => statusInStep(shipmentId, 'shipped');
const noLongerCovers = (licenceId: string, rule: string) => ({
  code: '23514', message: `invariant 3: shipment ${shipmentId} cannot become shipped: licence ${licenceId} no longer covers it (${rule})`,
});

beforeAll(async () => {
  // Two units for alpha, the import licence's holder and an end user of the export licence; its manifest complete.
  shipmentId = String((await world.run('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
    units: 2, deadline: '2026-03-01T00:00:00Z', serials: ['C067-1', 'C067-2'],
  }, world.actors.exporter)).shipmentId);
});

describe('migration 067: shipping is held to what the licences still cover', () => {
  it('ships a booking its licences still cover', async () => {
    expect(await refusal(ship())).toBeUndefined();
  });

  it('refuses one whose licence no longer names its product', async () => {
    const dropped: Statement = [`UPDATE licences SET product_ids = '{P-OTHER}' WHERE id = $1`, [world.importLicenceId]];
    expect(await refusal(...versionsUnguarded, dropped, ship())).toEqual(noLongerCovers(world.importLicenceId, 'licence-product'));
  });

  it('refuses one whose licence no longer names its recipient', async () => {
    const dropped: Statement = [`DELETE FROM licence_parties WHERE licence_id = $1 AND org_id = $2`, [world.exportLicenceId, world.actors.alpha.orgId]];
    expect(await refusal(...versionsUnguarded, dropped, ship())).toEqual(noLongerCovers(world.exportLicenceId, 'licence-recipient'));
  });

  it('refuses one above a max_units_per_shipment condition added since, and ships one within it', async () => {
    const cap = (value: number): Statement => [`UPDATE licences SET conditions = $2::jsonb WHERE id = $1`,
      [world.importLicenceId, JSON.stringify([{ id: 'cap', text: `At most ${value} units a shipment`, kind: 'max_units_per_shipment', value }])]];
    expect(await refusal(...versionsUnguarded, cap(1), ship())).toEqual(noLongerCovers(world.importLicenceId, 'licence-condition: max_units_per_shipment'));
    expect(await refusal(...versionsUnguarded, cap(2), ship())).toBeUndefined();
  });

  it('refuses one whose licence now requires the recipient\'s KYC by its authority, and ships it once verified by that authority', async () => {
    const kyc: Statement = [`UPDATE licences SET conditions = '[{"id": "kyc", "text": "End user KYC", "kind": "end_user_kyc_required"}]'::jsonb WHERE id = $1`, [world.exportLicenceId]];
    expect(await refusal(...versionsUnguarded, kyc, ship())).toEqual(noLongerCovers(world.exportLicenceId, 'licence-condition: end_user_kyc_required'));
    const verifiedBy = (authority: string): Statement => [`UPDATE organisations SET kyc_verified_by = ARRAY[$2] WHERE id = $1`, [world.actors.alpha.orgId, authority]];
    const unguardedKyc: Statement = ['ALTER TABLE organisations DISABLE TRIGGER USER'];
    // Another authority's review does not count.
    expect(await refusal(...versionsUnguarded, kyc, unguardedKyc, verifiedBy(world.actors.mofcom.orgId), ship())).toEqual(noLongerCovers(world.exportLicenceId, 'licence-condition: end_user_kyc_required'));
    expect(await refusal(...versionsUnguarded, kyc, unguardedKyc, verifiedBy(world.actors.bis.orgId), ship())).toBeUndefined();
  });
});
