/**
 * The database moves a shipment's and a licence's status only as the ledger's handlers do
 * (migration 025: shipments_status_steps, shipments_manifest_complete, licences_status_steps,
 * licences_status_exhausted). Each case writes around the ledger, in a transaction that is
 * rolled back; the ledger's own moves, one command a batch or several at once, still pass.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { firstRefusal, statusInStep } from '../../../test/support/rolled-back.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import { toRefusal } from '../refusals.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let serials = 0;
const shipments: Record<'full' | 'empty' | 'shipped' | 'cleared' | 'delivered', string> = { full: '', empty: '', shipped: '', cleared: '', delivered: '' };
const licences: Record<'exhausted' | 'revoked' | 'partlyShipped', string> = { exhausted: '', revoked: '', partlyShipped: '' };

async function book(units: number, listed: number): Promise<string> {
  const { allocations, productId, actors, run } = world;
  const list = Array.from({ length: listed }, () => `STEP-${++serials}`);
  return String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units, deadline: '2026-03-01T00:00:00Z',
    ...(listed > 0 ? { serials: list } : {}),
  }, actors.exporter)).shipmentId);
}

/** A fresh issued export licence of 10 units, 3 of them allocated to alpha and shipped (beside the world's import allocation). */
async function partlyShipped(): Promise<string> {
  const { run, actors, productId, allocations } = world;
  const licenceId = String((await run('licence.create', {
    reference: `BIS-STEP-${++serials}`, direction: 'export', holderId: actors.exporter.orgId, parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, actors.bis)).licenceId);
  await run('licence.issue', { licenceId }, actors.bis);
  const exportAllocationId = String((await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 3 }, actors.bis)).allocationId);
  const shipmentId = String((await run('shipment.book', {
    exportAllocationId, importAllocationId: allocations.alphaImport, productId, units: 3, deadline: '2026-03-01T00:00:00Z', serials: [1, 2, 3].map(() => `STEP-${++serials}`),
  }, actors.exporter)).shipmentId);
  await run('shipment.ship', { shipmentId }, actors.exporter);
  return licenceId;
}

beforeAll(async () => {
  const { run, actors } = world;
  shipments.full = await book(2, 2);
  shipments.empty = await book(2, 0);
  shipments.shipped = await book(1, 1);
  await run('shipment.ship', { shipmentId: shipments.shipped }, actors.exporter);
  shipments.cleared = await book(1, 1);
  await run('shipment.ship', { shipmentId: shipments.cleared }, actors.exporter);
  await run('shipment.clear', { shipmentId: shipments.cleared }, actors.alpha);
  shipments.delivered = await book(1, 1);
  // Ship, clear and deliver sent together: a batch may take all three and write the row once, booked → delivered.
  const steps = await Promise.all([
    world.ledger.submit('shipment.ship', { shipmentId: shipments.delivered }, actors.exporter),
    world.ledger.submit('shipment.clear', { shipmentId: shipments.delivered }, actors.alpha),
    world.ledger.submit('shipment.deliver', { shipmentId: shipments.delivered }, actors.alpha),
  ]);
  for (const step of steps) expectOk(step);
  licences.partlyShipped = await partlyShipped();
  licences.exhausted = await partlyShipped();
  await run('licence.amend', { licenceId: licences.exhausted, reason: 'calibration', authorisedUnits: 3 }, actors.bis);
  licences.revoked = await partlyShipped();
  await run('licence.revoke', { licenceId: licences.revoked }, actors.bis);
});

// Each step with its units counted as the ledger counts them (migration 070 holds the counters to the shipments).
const setShipment = (which: keyof typeof shipments, status: string) => firstRefusal(database.pool, statusInStep(shipments[which], status));
const setLicence = (licenceId: string, set: string) => firstRefusal(database.pool, [`UPDATE licences SET ${set} WHERE id = $1`, [licenceId]]);

describe('a shipment’s status, written around the ledger', () => {
  it.each([
    ['shipped', 'booked'], ['shipped', 'cancelled'], ['shipped', 'expired'], ['cleared', 'shipped'], ['cleared', 'booked'], ['cleared', 'expired'], ['cleared', 'returned'],
  ] as const)('refuses %s → %s (shipments_status_steps)', async (from, to) => {
    expect(await setShipment(from, to)).toEqual({
      code: '23514',
      message: `shipment ${shipments[from]} is ${from}; it cannot become ${to} (a shipment moves booked → shipped → cleared → delivered, or from shipped to returned, or from booked to cancelled or expired)`,
    });
  });

  it.each(['shipped', 'cleared', 'delivered', 'returned'])('refuses a booking without its full manifest → %s (shipments_manifest_complete)', async (to) => {
    expect(await setShipment('empty', to)).toEqual({ code: '23514', message: `shipment ${shipments.empty} lists 0 of its 2 serials; it cannot become ${to} without a serial for every unit` });
  });

  it('takes every step the ledger makes, and every chain of them a batch writes at once', async () => {
    for (const [from, to] of [
      ['full', 'shipped'], ['full', 'cleared'], ['full', 'delivered'], ['full', 'cancelled'], ['full', 'expired'], ['empty', 'cancelled'], ['empty', 'expired'],
      ['shipped', 'cleared'], ['shipped', 'delivered'], ['cleared', 'delivered'], ['shipped', 'returned'], ['full', 'returned'],
    ] as const) {
      const error = await setShipment(from, to);
      expect(error, `${from} → ${to}: ${error?.message}`).toBeUndefined();
    }
    expect((await database.pool.query('SELECT status FROM shipments WHERE id = $1', [shipments.delivered])).rows[0].status).toBe('delivered');
  });

  it('leaves an ended shipment to 020’s rule, with its words', async () => {
    expect(await setShipment('delivered', 'cleared')).toEqual({ code: '23514', message: `shipment ${shipments.delivered} is delivered; it cannot become cleared` });
  });
});

describe('a licence’s status, written around the ledger', () => {
  it('refuses one out of revoked, or back to draft (licences_status_steps)', async () => {
    expect(await setLicence(licences.revoked, `status = 'issued'`)).toEqual({
      code: '23514', message: `licence ${licences.revoked} is revoked; it cannot become issued (nothing brings a licence back to draft, or from revoked, surrendered or expired)`,
    });
    expect((await setLicence(licences.revoked, `status = 'suspended'`))?.code).toBe('23514');
    expect((await setLicence(world.exportLicenceId, `status = 'draft'`))?.code).toBe('23514');
    const set = (status: string, licenceId: string): [string, unknown[]] => ['UPDATE licences SET status = $2 WHERE id = $1', [licenceId, status]];
    expect((await firstRefusal(database.pool, set('expired', world.exportLicenceId), set('issued', world.exportLicenceId)))?.code).toBe('23514');
  });

  it('refuses exhausted with units left, and issued with none (licences_status_exhausted)', async () => {
    expect(await setLicence(licences.partlyShipped, `status = 'exhausted'`)).toEqual({
      code: '23514', message: `licence ${licences.partlyShipped} has shipped 3 of its 10 units; it cannot become exhausted (a licence is exhausted exactly when every unit has shipped)`,
    });
    expect((await setLicence(licences.exhausted, `status = 'issued'`))?.code).toBe('23514');
    const set = (status: string): [string, unknown[]] => ['UPDATE licences SET status = $2 WHERE id = $1', [licences.partlyShipped, status]];
    expect((await firstRefusal(database.pool, set('suspended'), set('exhausted')))?.code).toBe('23514');
  });

  it('takes the steps the ledger makes', async () => {
    // An amendment's units are written here without its new version, which migration 030
    // refuses on its own: off for this case, which is about the status that goes with them.
    const termsUnguarded: [string, unknown[]] = ['ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions', []];
    for (const [licenceId, set] of [
      [licences.partlyShipped, `status = 'suspended'`], [licences.partlyShipped, `status = 'revoked'`], [licences.partlyShipped, `status = 'surrendered'`],
      [licences.partlyShipped, `status = 'expired'`], [licences.partlyShipped, `status = 'exhausted', authorised_units = 3`],
      [licences.exhausted, `status = 'issued', authorised_units = 4`], [licences.exhausted, `status = 'revoked'`], [licences.exhausted, `status = 'surrendered'`],
    ] as const) {
      const error = await firstRefusal(database.pool, termsUnguarded, [`UPDATE licences SET ${set} WHERE id = $1`, [licenceId]]);
      expect(error, `${set}: ${error?.message}`).toBeUndefined();
    }
  });
});

describe('the ledger’s refusal for these', () => {
  it('names the rule (the constraint the trigger raises)', async () => {
    const client = await database.pool.connect();
    try {
      for (const [sql, id, rule] of [
        [`UPDATE shipments SET status = 'booked' WHERE id = $1`, shipments.shipped, 'shipments_status_steps'],
        [`UPDATE shipments SET status = 'shipped' WHERE id = $1`, shipments.empty, 'shipments_manifest_complete'],
        [`UPDATE licences SET status = 'issued' WHERE id = $1`, licences.revoked, 'licences_status_steps'],
        [`UPDATE licences SET status = 'exhausted' WHERE id = $1`, licences.partlyShipped, 'licences_status_exhausted'],
      ] as const) {
        await client.query('BEGIN');
        const error = await client.query(sql, [id]).then(() => undefined, (caught: unknown) => caught);
        await client.query('ROLLBACK');
        expect(error, `the database accepted ${sql}`).toBeDefined();
        expect(toRefusal(error)).toMatchObject({ code: 'conflict', rule });
      }
    } finally {
      client.release();
    }
  });

  it('finds no violation in what the ledger wrote', async () => {
    expect(await world.ledger.violations()).toEqual([]);
  });
});
