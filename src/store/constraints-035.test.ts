/**
 * Migration 035: the database refuses what the ledger now refuses.
 * - A licence whose origin and destination are one country (licences_cross_border), when it
 *   is made or its route is changed; an old such row still takes its other changes.
 * - A shipment booked, or leaving 'booked' for shipped, under an import licence that does
 *   not name its exporter as supplier, even one its exporter holds (shipments_check_licences
 *   and shipments_check_exporter, restated from 023 without the holder's arm).
 * The ledger's side: ledger/handlers/licences-cross-border.test.ts and shipments-exporter.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, insertShipments, statusInStep, type Statement } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { toRefusal } from '../ledger/refusals.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const refusal = (...statements: Statement[]) => firstRefusal(database.pool, ...statements);

// Rows made without a version and route changes without a new one, which migration 030
// refuses on its own: off here (first, before any row is written), as these cases are 035's.
const versionsUnguarded: Statement = ['ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions, DISABLE TRIGGER licences_match_version_insert'];

/** A MOFCOM licence row on the route given (its authority's country, CN, on the side it licenses). */
const insertLicence = (id: string, direction: 'export' | 'import', origin: string, destination: string): Statement => [
  `INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units, valid_from, valid_to, status, created_seq, updated_seq)
   VALUES ($1, 1, $1, $2, $3, $4, ARRAY[$5], $6, $7, 10, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'draft', 999999, 999999)`,
  [id, world.actors.mofcom.orgId, direction, world.actors.alpha.orgId, world.productId, origin, destination],
];

describe('licences_cross_border', () => {
  it('refuses a licence row whose origin and destination are one country, naming both', async () => {
    for (const direction of ['export', 'import'] as const) {
      const error = await refusal(versionsUnguarded, insertLicence('L-CC', direction, 'CN', 'CN'));
      expect(error).toEqual({ code: '23514', message: `licence L-CC is an ${direction} licence for CN → CN: its origin and destination are one country, so one authority would license both sides of its shipments` });
    }
    // The well-formed rows: the refusals above are about the rule.
    expect(await refusal(versionsUnguarded, insertLicence('L-CU', 'export', 'CN', 'US'), insertLicence('L-UC', 'import', 'US', 'CN'))).toBeUndefined();
  });

  it('refuses an UPDATE that moves a licence’s route onto one country', async () => {
    const error = await refusal(versionsUnguarded, [`UPDATE licences SET destination = 'US' WHERE id = $1`, [world.exportLicenceId]]);
    expect(error?.code, error?.message ?? 'accepted').toBe('23514');
    expect(error?.message).toContain('for US → US');
    // Another route across a border is this rule's to let be.
    expect(await refusal(versionsUnguarded, [`UPDATE licences SET destination = 'GB' WHERE id = $1`, [world.exportLicenceId]])).toBeUndefined();
  });

  it('gives the ledger a refusal that names the rule', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(versionsUnguarded[0]);
      const [sql, values] = insertLicence('L-CC', 'import', 'CN', 'CN');
      const error = await client.query(sql, values).then(() => undefined, (caught: unknown) => caught);
      expect(error, 'the database accepted it').toBeDefined();
      expect(toRefusal(error)).toMatchObject({ code: 'conflict', rule: 'licences_cross_border' });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('leaves a licence made before the rule alone when its other columns change, written as the ledger writes rows', async () => {
    // As on a database migrated from 034: a licence CN → CN, written with the rule off.
    const setup: Statement[] = [
      versionsUnguarded,
      ['ALTER TABLE licences DISABLE TRIGGER licences_cross_border_insert'],
      insertLicence('L-OLD', 'import', 'CN', 'CN'),
      ['ALTER TABLE licences ENABLE TRIGGER licences_cross_border_insert'],
    ];
    expect(await refusal(...setup, [`UPDATE licences SET status = 'issued', updated_seq = 1000000 WHERE id = 'L-OLD'`])).toBeUndefined();
    // The batch writes (store/batch-writes.ts) upsert whole rows: the old route rewritten as it was is no change of route.
    const upsert: Statement = [`INSERT INTO licences SELECT * FROM licences WHERE id = 'L-OLD'
      ON CONFLICT (id) DO UPDATE SET status = 'revoked', origin = EXCLUDED.origin, destination = EXCLUDED.destination, updated_seq = 1000001`];
    expect(await refusal(...setup, upsert)).toBeUndefined();
    expect((await refusal(...setup, [`UPDATE licences SET origin = 'US', destination = 'US' WHERE id = 'L-OLD'`]))?.code).toBe('23514');
  });
});

describe('an import licence lets only its suppliers ship, its holder included (invariant 3)', () => {
  /** An issued import licence held by the exporter, naming alpha as consignee and the exporter as no supplier, allocated to alpha. */
  async function heldNotSupplied(): Promise<{ licenceId: string; allocationId: string }> {
    const { run, actors, productId } = world;
    const licenceId = String((await run('licence.create', {
      reference: 'MOFCOM-HELD-035', direction: 'import', holderId: actors.exporter.orgId, parties: [{ organisationId: actors.alpha.orgId, role: 'consignee' }],
      productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, actors.mofcom)).licenceId);
    await run('licence.issue', { licenceId }, actors.mofcom);
    const allocationId = String((await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 10 }, actors.mofcom)).allocationId);
    return { licenceId, allocationId };
  }

  it('refuses a shipment booked under it by the exporter that holds it (licence-exporter)', async () => {
    const { licenceId, allocationId } = await heldNotSupplied();
    const error = await refusal(insertShipments(world, [{ id: 'S-H', import_allocation_id: allocationId }]));
    expect(error).toEqual({ code: '23514', message: `invariant 3: shipment S-H booked under licences ${world.exportLicenceId} and ${licenceId} that do not cover it (licence-exporter)` });
    // Under the world's import licence, which names the exporter as supplier, the same row is accepted.
    expect(await refusal(insertShipments(world, [{ id: 'S-H' }]))).toBeUndefined();
  });

  it('refuses a booked shipment that ships under it once the supplier is dropped, although its exporter holds it', async () => {
    const { run, actors } = world;
    const shipmentId = String((await run('shipment.book', {
      exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
      units: 1, deadline: '2026-03-01T00:00:00Z', serials: ['H035-1'],
    }, actors.exporter)).shipmentId);
    const ship: Statement = statusInStep(shipmentId, 'shipped');
    const heldBySupplierGone: Statement[] = [
      versionsUnguarded, ['ALTER TABLE licence_parties DISABLE TRIGGER licence_parties_follow_versions'],
      [`UPDATE licences SET holder_org_id = $2 WHERE id = $1`, [world.importLicenceId, actors.exporter.orgId]],
      [`DELETE FROM licence_parties WHERE licence_id = $1 AND org_id = $2 AND role = 'supplier'`, [world.importLicenceId, actors.exporter.orgId]],
      [`INSERT INTO licence_parties (licence_id, org_id, role) VALUES ($1, $2, 'consignee')`, [world.importLicenceId, actors.alpha.orgId]],
    ];
    expect(await refusal(ship)).toBeUndefined();
    const error = await refusal(...heldBySupplierGone, ship);
    expect(error).toEqual({
      code: '23514',
      message: `invariant 3: shipment ${shipmentId} cannot become shipped: licences ${world.exportLicenceId} and ${world.importLicenceId} do not let its exporter ${actors.exporter.orgId} ship it (licence-exporter)`,
    });
  });
});
