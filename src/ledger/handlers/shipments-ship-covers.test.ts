/**
 * Shipping re-checks invariant 3 (both licences still cover the shipment when it leaves,
 * and still let its exporter ship it), only the import licence's authority (or the
 * recipient) records clearance, and the ship event says which licences it exhausted.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';
import { licencePair, type LicencePair } from '../../../test/support/licence-pair.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let counter = 0;
const next = () => ++counter;

/**
 * A fresh export (BIS) and import (MOFCOM) licence for alpha, issued and allocated in
 * full, so that amending them touches no other test.
 */
const freshPair = (options: { units?: number; period?: { periodStart: string; periodEnd: string } } = {}): Promise<LicencePair> =>
  licencePair(world, { authorisedUnits: options.units ?? 100, ...(options.period ? { period: options.period } : {}) });

/** Books `units` with a full manifest under the pair; returns the shipment id. */
async function book(pair: LicencePair, units: number): Promise<string> {
  const serials = Array.from({ length: units }, (_, i) => `COV-${next()}-${i}`);
  const at = world.clock.now().getTime();
  const deadline = new Date(at + 30 * 86_400_000).toISOString();
  return String((await world.run('shipment.book', {
    exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units, deadline, serials,
  }, world.actors.exporter)).shipmentId);
}

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string; details: Record<string, unknown> | undefined } | 'accepted' {
  return answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, details: answer.error.details };
}

async function shipmentStatus(shipmentId: string): Promise<string> {
  return (await database.pool.query<{ status: string }>('SELECT status FROM shipments WHERE id = $1', [shipmentId])).rows[0]!.status;
}

/** The effects the event of an accepted command recorded. */
async function eventEffects(answer: Answer): Promise<Record<string, unknown>> {
  if (!answer.ok) expect.fail(`expected the command to be accepted, got ${answer.error.code}: ${answer.error.message}`);
  const row = await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = $1', [answer.seq]);
  return JSON.parse(row.rows[0]!.canonical.toString('utf8')).effects;
}

describe('shipping re-checks what the licences cover (invariant 3)', () => {
  it('ships a booking whose licences still cover it, recording that it exhausted none', async () => {
    const pair = await freshPair();
    const shipmentId = await book(pair, 5);
    const shipped = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    expect(expectOk(shipped)).toMatchObject({ shipmentId, status: 'shipped' });
    expect(await eventEffects(shipped)).toEqual({ from: 'booked', to: 'shipped', units: 5, licencesExhausted: [] });
  });

  it('refuses to ship more units than a condition added after booking allows', async () => {
    const pair = await freshPair();
    const shipmentId = await book(pair, 5);
    await world.run('licence.amend', {
      licenceId: pair.exportLicenceId, reason: 'cap per shipment',
      conditions: [{ id: 'max-two', text: 'At most two units per shipment.', kind: 'max_units_per_shipment', value: 2 }],
    }, world.actors.bis);
    const answer = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    // The rule is a stable name, not the condition's id (which its authority picks); the id and the numbers are in the details.
    expect(refusal(answer)).toEqual({
      code: 'licence_not_valid', rule: 'licence-condition', message: `licence ${pair.exportLicenceId} condition max-two allows at most 2 units per shipment; 5 requested`,
      details: { licenceId: pair.exportLicenceId, conditionId: 'max-two', kind: 'max_units_per_shipment', maxUnits: 2, requestedUnits: 5 },
    });
    expect(await shipmentStatus(shipmentId)).toBe('booked');
  });

  it('refuses to ship a product the licence no longer names', async () => {
    const pair = await freshPair();
    const shipmentId = await book(pair, 3);
    const otherProduct = String((await world.run('product.register', {
      model: `Other Accelerator ${next()}`, vendor: 'Test',
      parameters: { denseTops: 100, bitLength: 8, logicDieAreaMm2: 500, dramBandwidthGbS: 1_000, designedForDatacenter: true },
    }, world.actors.bis)).productId);
    await world.run('licence.amend', { licenceId: pair.importLicenceId, reason: 'product withdrawn', productIds: [otherProduct] }, world.actors.mofcom);
    const answer = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    expect(refusal(answer)).toMatchObject({
      code: 'licence_not_valid', rule: 'licence-product', message: expect.stringContaining(`licence ${pair.importLicenceId} does not cover product ${world.productId}`),
      details: { licenceId: pair.importLicenceId, productId: world.productId, productIds: [otherProduct] },
    });
    expect(await shipmentStatus(shipmentId)).toBe('booked');
  });

  it('refuses to ship to a recipient the licence no longer names', async () => {
    const pair = await freshPair();
    const shipmentId = await book(pair, 3);
    await world.run('licence.amend', { licenceId: pair.exportLicenceId, reason: 'end user removed', parties: [] }, world.actors.bis);
    const answer = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    expect(refusal(answer)).toEqual({
      code: 'licence_not_valid', rule: 'licence-recipient', message: `licence ${pair.exportLicenceId} does not name ${world.actors.alpha.orgId} as holder, consignee or end user`,
      details: { licenceId: pair.exportLicenceId, recipientId: world.actors.alpha.orgId },
    });
  });

  it('refuses to ship under an import licence amended so that it no longer names the exporter as supplier, as booking does', async () => {
    const pair = await freshPair();
    const shipmentId = await book(pair, 3);
    await world.run('licence.amend', { licenceId: pair.importLicenceId, reason: 'supplier removed', parties: [] }, world.actors.mofcom);
    // A new booking finds no import allocation the exporter may use…
    const booking = await world.ledger.submit('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1,
      deadline: new Date(world.clock.now().getTime() + 86_400_000).toISOString(),
    }, world.actors.exporter);
    expect(refusal(booking)).toMatchObject({ code: 'not_found' });
    // …and what was booked before does not leave.
    const answer = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    expect(refusal(answer)).toEqual({
      code: 'licence_not_valid', rule: 'licence-exporter',
      message: `licence ${pair.importLicenceId} does not name the exporter ${world.actors.exporter.orgId} of shipment ${shipmentId} as a supplier`,
      details: { licenceId: pair.importLicenceId },
    });
    expect(await shipmentStatus(shipmentId)).toBe('booked');
    // Named again, it ships.
    await world.run('licence.amend', { licenceId: pair.importLicenceId, reason: 'supplier restored', parties: [{ organisationId: world.actors.exporter.orgId, role: 'supplier' }] }, world.actors.mofcom);
    expectOk(await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter));
  });

  it('refuses to ship to an end user without the KYC a condition added after booking requires, and ships once it is recorded', async () => {
    const pair = await freshPair();
    const shipmentId = await book(pair, 3);
    await world.run('licence.amend', {
      licenceId: pair.exportLicenceId, reason: 'KYC required',
      conditions: [{ id: 'end-user-kyc', text: 'End users must pass KYC.', kind: 'end_user_kyc_required' }],
    }, world.actors.bis);
    const answer = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    const { alpha, bis, mofcom } = world.actors;
    expect(refusal(answer)).toEqual({
      code: 'licence_not_valid', rule: 'licence-condition',
      message: `licence ${pair.exportLicenceId} condition end-user-kyc requires ${alpha.orgId}'s KYC verified by ${bis.orgId}, the authority that issued ${pair.exportLicenceId}; ${alpha.orgId} has no verified KYC`,
      details: { licenceId: pair.exportLicenceId, conditionId: 'end-user-kyc', kind: 'end_user_kyc_required', recipientId: alpha.orgId, authorityId: bis.orgId, kycVerifiedBy: [] },
    });
    // KYC is per authority: the other authority's does not count, and the refusal says whose there is.
    await world.run('organisation.set_kyc', { organisationId: alpha.orgId, verified: true }, mofcom);
    const otherAuthority = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    expect(refusal(otherAuthority)).toMatchObject({
      rule: 'licence-condition',
      message: `licence ${pair.exportLicenceId} condition end-user-kyc requires ${alpha.orgId}'s KYC verified by ${bis.orgId}, the authority that issued ${pair.exportLicenceId}; ${alpha.orgId} is verified by ${mofcom.orgId} only`,
      details: expect.objectContaining({ authorityId: bis.orgId, kycVerifiedBy: [mofcom.orgId] }),
    });
    await world.run('organisation.set_kyc', { organisationId: alpha.orgId, verified: false }, mofcom);
    await world.run('organisation.set_kyc', { organisationId: world.actors.alpha.orgId, verified: true }, world.actors.bis);
    expectOk(await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter));
    await world.run('organisation.set_kyc', { organisationId: world.actors.alpha.orgId, verified: false }, world.actors.bis);
  });

  it('refuses to ship under a suspended licence', async () => {
    const pair = await freshPair();
    const shipmentId = await book(pair, 2);
    await world.run('licence.suspend', { licenceId: pair.importLicenceId }, world.actors.mofcom);
    expect(refusal(await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter))).toMatchObject({ code: 'licence_not_valid', rule: 'licence-status' });
  });

  it('ships a booking made inside its allocation period after the period ended (the period is a booking rule)', async () => {
    const today = world.clock.now().toISOString().slice(0, 10);
    const pair = await freshPair({ period: { periodStart: today, periodEnd: today } });
    const shipmentId = await book(pair, 2);
    world.clock.advanceMs(3 * 86_400_000);
    // Booking now is outside the period…
    const late = await world.ledger.submit('shipment.book', {
      exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: 1,
      deadline: new Date(world.clock.now().getTime() + 86_400_000).toISOString(),
    }, world.actors.exporter);
    expect(refusal(late)).toMatchObject({ rule: 'allocation-period' });
    // …but what was booked inside it still ships.
    expectOk(await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter));
  });
});

describe('clearance', () => {
  it('lets the recipient clear its own shipment', async () => {
    const shipmentId = await book(await freshPair(), 1);
    await world.run('shipment.ship', { shipmentId }, world.actors.exporter);
    expect(expectOk(await world.ledger.submit('shipment.clear', { shipmentId }, world.actors.alpha))).toMatchObject({ status: 'cleared' });
  });

  it('lets the authority of the import licence clear it, and refuses another authority', async () => {
    const shipmentId = await book(await freshPair(), 1);
    await world.run('shipment.ship', { shipmentId }, world.actors.exporter);
    const byExportAuthority = await world.ledger.submit('shipment.clear', { shipmentId }, world.actors.bis);
    expect(refusal(byExportAuthority)).toMatchObject({ code: 'forbidden', message: expect.stringContaining(`only the recipient ${world.actors.alpha.orgId} or ${world.actors.mofcom.orgId}, the authority of its import licence, may clear`) });
    expect(await shipmentStatus(shipmentId)).toBe('shipped');
    expect(expectOk(await world.ledger.submit('shipment.clear', { shipmentId }, world.actors.mofcom))).toMatchObject({ status: 'cleared' });
  });

  it('refuses another recipient', async () => {
    const shipmentId = await book(await freshPair(), 1);
    await world.run('shipment.ship', { shipmentId }, world.actors.exporter);
    expect(refusal(await world.ledger.submit('shipment.clear', { shipmentId }, world.actors.beta))).toMatchObject({ code: 'not_found' });
  });
});

describe('licence exhaustion by shipping', () => {
  it('names in the ship event every licence the shipment exhausted', async () => {
    const pair = await freshPair({ units: 4 });
    const shipmentId = await book(pair, 4);
    const effects = await eventEffects(await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter));
    expect(effects).toMatchObject({ from: 'booked', to: 'shipped', units: 4 });
    expect([...(effects.licencesExhausted as string[])].sort()).toEqual([pair.exportLicenceId, pair.importLicenceId].sort());
    const rows = await database.pool.query('SELECT id, status FROM licences WHERE id = ANY($1) ORDER BY id', [[pair.exportLicenceId, pair.importLicenceId]]);
    expect(rows.rows.map((row) => row.status)).toEqual(['exhausted', 'exhausted']);
    expect(await world.ledger.violations()).toEqual([]);
  });
});
