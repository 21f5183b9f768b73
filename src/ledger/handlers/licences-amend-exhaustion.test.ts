/**
 * Amending a licence's units down to what has shipped exhausts it by the rule shipping
 * uses (statusAfterUse), and the amendment's event says the status changed; amending an
 * exhausted licence decides it afresh (statusAfterAmendment), so what an amendment
 * exhausted another can undo.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';
import { statusAfterAmendment, statusAfterUse } from './licences.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

async function eventEffects(answer: Answer): Promise<Record<string, unknown>> {
  if (!answer.ok) expect.fail(`expected the command to be accepted, got ${answer.error.code}: ${answer.error.message}`);
  const row = await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = $1', [answer.seq]);
  return JSON.parse(row.rows[0]!.canonical.toString('utf8')).effects;
}

async function licenceRow(licenceId: string): Promise<{ status: string; authorised_units: number; shipped_units: number }> {
  return (await database.pool.query('SELECT status, authorised_units, shipped_units FROM licences WHERE id = $1', [licenceId])).rows[0];
}

describe('statusAfterUse', () => {
  it('exhausts only an issued licence whose every unit has shipped', () => {
    expect(statusAfterUse('issued', 5, 5)).toBe('exhausted');
    expect(statusAfterUse('issued', 4, 5)).toBe('issued');
    expect(statusAfterUse('suspended', 5, 5)).toBe('suspended');
    expect(statusAfterUse('revoked', 5, 5)).toBe('revoked');
  });
});

describe('statusAfterAmendment', () => {
  it('makes an exhausted licence issued again once it has units left, and keeps the rule of statusAfterUse otherwise', () => {
    expect(statusAfterAmendment('exhausted', 5, 6)).toBe('issued');
    expect(statusAfterAmendment('exhausted', 5, 5)).toBe('exhausted');
    expect(statusAfterAmendment('issued', 5, 5)).toBe('exhausted');
    expect(statusAfterAmendment('issued', 4, 5)).toBe('issued');
    expect(statusAfterAmendment('suspended', 5, 5)).toBe('suspended');
    expect(statusAfterAmendment('draft', 0, 5)).toBe('draft');
  });
});

/** A fresh export and import licence of 10 units each, 3 allocated to alpha and shipped. */
async function shippedPair(): Promise<{ exportLicenceId: string; importLicenceId: string }> {
  const { run, actors, productId } = world;
  const common = { productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z' };
  const reference = ++counter;
  const exportLicenceId = String((await run('licence.create', {
    ...common, reference: `BIS-X-${reference}`, direction: 'export', holderId: actors.exporter.orgId, parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
  }, actors.bis)).licenceId);
  const importLicenceId = String((await run('licence.create', {
    ...common, reference: `MOFCOM-X-${reference}`, direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
  }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId: exportLicenceId }, actors.bis);
  await run('licence.issue', { licenceId: importLicenceId }, actors.mofcom);
  const exportAllocationId = String((await run('allocation.create', { licenceId: exportLicenceId, recipientId: actors.alpha.orgId, units: 3 }, actors.bis)).allocationId);
  const importAllocationId = String((await run('allocation.create', { licenceId: importLicenceId, recipientId: actors.alpha.orgId, units: 3 }, actors.mofcom)).allocationId);
  const booked = await run('shipment.book', {
    exportAllocationId, importAllocationId, productId, units: 3, deadline: '2026-03-01T00:00:00Z', serials: [1, 2, 3].map((i) => `AMX-${reference}-${i}`),
  }, actors.exporter);
  await run('shipment.ship', { shipmentId: String(booked.shipmentId) }, actors.exporter);
  return { exportLicenceId, importLicenceId };
}
let counter = 0;

describe('licence.amend and exhaustion', () => {
  it('records an unchanged status on an ordinary amendment', async () => {
    const { exportLicenceId } = await shippedPair();
    const answer = await world.ledger.submit('licence.amend', { licenceId: exportLicenceId, reason: 'more units', authorisedUnits: 12 }, world.actors.bis);
    expect(expectOk(answer)).toMatchObject({ licenceId: exportLicenceId, status: 'issued' });
    expect(await eventEffects(answer)).toMatchObject({ statusFrom: 'issued', statusTo: 'issued' });
    expect(await licenceRow(exportLicenceId)).toMatchObject({ status: 'issued', authorised_units: 12 });
  });

  it('exhausts a licence amended down to exactly the units shipped, and says so in the event', async () => {
    const { importLicenceId } = await shippedPair();
    expect(await licenceRow(importLicenceId)).toMatchObject({ status: 'issued', shipped_units: 3 });
    const answer = await world.ledger.submit('licence.amend', { licenceId: importLicenceId, reason: 'calibration', authorisedUnits: 3 }, world.actors.mofcom);
    expect(expectOk(answer)).toMatchObject({ licenceId: importLicenceId, status: 'exhausted' });
    expect(await eventEffects(answer)).toMatchObject({ statusFrom: 'issued', statusTo: 'exhausted' });
    expect(await licenceRow(importLicenceId)).toMatchObject({ status: 'exhausted', authorised_units: 3, shipped_units: 3 });
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('keeps a suspended licence suspended when amended down to the units shipped (the rule exhausts only issued ones)', async () => {
    const { exportLicenceId } = await shippedPair();
    await world.run('licence.suspend', { licenceId: exportLicenceId }, world.actors.bis);
    const answer = await world.ledger.submit('licence.amend', { licenceId: exportLicenceId, reason: 'calibration', authorisedUnits: 3 }, world.actors.bis);
    expect(expectOk(answer)).toMatchObject({ status: 'suspended' });
    expect(await eventEffects(answer)).toMatchObject({ statusFrom: 'suspended', statusTo: 'suspended' });
    // Reinstated with nothing left to ship, it is exhausted rather than issued.
    const reinstated = await world.ledger.submit('licence.reinstate', { licenceId: exportLicenceId }, world.actors.bis);
    expect(expectOk(reinstated)).toMatchObject({ status: 'exhausted' });
    expect(await eventEffects(reinstated)).toMatchObject({ from: 'suspended', to: 'exhausted' });
    expect(await licenceRow(exportLicenceId)).toMatchObject({ status: 'exhausted' });
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('gives an exhausted licence units again: amended above what has shipped, it is issued, and units can be allocated and booked under it', async () => {
    const { exportLicenceId } = await shippedPair();
    expectOk(await world.ledger.submit('licence.amend', { licenceId: exportLicenceId, reason: 'calibration', authorisedUnits: 3 }, world.actors.bis));
    expect(await licenceRow(exportLicenceId)).toMatchObject({ status: 'exhausted' });
    // An amendment that leaves every unit shipped keeps it exhausted.
    const extended = await world.ledger.submit('licence.amend', { licenceId: exportLicenceId, reason: 'longer', validTo: '2027-06-01T00:00:00Z' }, world.actors.bis);
    expect(expectOk(extended)).toMatchObject({ status: 'exhausted' });
    expect(await eventEffects(extended)).toMatchObject({ statusFrom: 'exhausted', statusTo: 'exhausted' });

    const raised = await world.ledger.submit('licence.amend', { licenceId: exportLicenceId, reason: 'recalibration', authorisedUnits: 10 }, world.actors.bis);
    expect(expectOk(raised)).toMatchObject({ licenceId: exportLicenceId, status: 'issued' });
    expect(await eventEffects(raised)).toMatchObject({ statusFrom: 'exhausted', statusTo: 'issued' });
    expect(await licenceRow(exportLicenceId)).toMatchObject({ status: 'issued', authorised_units: 10, shipped_units: 3 });
    expectOk(await world.ledger.submit('allocation.create', { licenceId: exportLicenceId, recipientId: world.actors.alpha.orgId, units: 7 }, world.actors.bis));
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('checks an exhausted licence’s amendment as any other: not below what is allocated, only by its own authority', async () => {
    const { importLicenceId } = await shippedPair();
    expectOk(await world.ledger.submit('licence.amend', { licenceId: importLicenceId, reason: 'calibration', authorisedUnits: 3 }, world.actors.mofcom));
    const below = await world.ledger.submit('licence.amend', { licenceId: importLicenceId, reason: 'cut', authorisedUnits: 2 }, world.actors.mofcom);
    expect(below.ok ? below.body : below.error).toMatchObject({ code: 'insufficient_units', rule: 'invariant-1' });
    const other = await world.ledger.submit('licence.amend', { licenceId: importLicenceId, reason: 'more', authorisedUnits: 5 }, world.actors.bis);
    expect(other.ok ? other.body : other.error).toMatchObject({ code: 'forbidden' });
    expect(await licenceRow(importLicenceId)).toMatchObject({ status: 'exhausted', authorised_units: 3 });
  });

  it('still refuses to amend a revoked licence, naming the statuses that can be', async () => {
    const { exportLicenceId } = await shippedPair();
    await world.run('licence.revoke', { licenceId: exportLicenceId }, world.actors.bis);
    const answer = await world.ledger.submit('licence.amend', { licenceId: exportLicenceId, reason: 'too late', authorisedUnits: 12 }, world.actors.bis);
    expect(answer.ok ? answer.body : answer.error).toMatchObject({
      code: 'conflict', rule: 'licence-status',
      message: `couldn't amend licence ${exportLicenceId}: it is revoked, and only a licence that is draft, issued, suspended or exhausted can be`,
    });
  });
});
