/**
 * What a licence's end does: nothing brings back a licence whose validity has ended (an
 * amendment no more than a reinstatement), the sweep expires it whatever status still held
 * it in force (exhausted too), and a booking under a licence no longer in force is expired
 * by the sweep at once, releasing what it reserved on the other licence, rather than at its
 * own deadline. And a licence that shipping used up has an event its own parties read.
 *
 * Each test makes its own pair of licences; the clock only moves forward.
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

/**
 * A fresh export licence (held by the exporter, naming alpha) and import licence (held by
 * alpha, naming beta as consignee and the exporter as supplier), issued, with `units`
 * allocated to alpha on each.
 */
const pair = (options: { units: number; validTo: string }): Promise<LicencePair> => licencePair(world, { authorisedUnits: options.units, validTo: options.validTo, betaConsignee: true });

async function book(lapsing: LicencePair, units: number, deadline: string, serials?: string[]): Promise<string> {
  return String((await world.run('shipment.book', {
    exportAllocationId: lapsing.exportAllocationId, importAllocationId: lapsing.importAllocationId, productId: world.productId, units, deadline,
    ...(serials ? { serials } : {}),
  }, world.actors.exporter)).shipmentId);
}

function refusal(answer: Answer): Record<string, unknown> {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, message: answer.error.message };
}

async function row(table: 'licences' | 'allocations' | 'shipments', id: string): Promise<Record<string, unknown>> {
  return (await database.pool.query(`SELECT * FROM ${table} WHERE id = $1`, [id])).rows[0];
}

interface LoggedEvent {
  seq: number;
  kind: string;
  subject_id: string | null;
  org_ids: string[];
  effects: Record<string, unknown>;
  input: unknown;
}

async function eventsAbout(subjectId: string): Promise<LoggedEvent[]> {
  const rows = (await database.pool.query<{ seq: string; kind: string; subject_id: string | null; org_ids: string[]; canonical: Buffer }>(
    'SELECT seq, kind, subject_id, org_ids, canonical FROM events WHERE subject_id = $1 ORDER BY seq', [subjectId],
  )).rows;
  return rows.map((event) => {
    const body = JSON.parse(event.canonical.toString('utf8'));
    return { seq: Number(event.seq), kind: event.kind, subject_id: event.subject_id, org_ids: [...event.org_ids].sort(), effects: body.effects, input: body.input };
  });
}

describe('a licence whose validity has ended', () => {
  it('cannot be amended back into force before the sweep reaches it, nor reinstated, and the refusals name the step', async () => {
    world.clock.set('2026-02-10T00:00:00Z');
    const ended = await pair({ units: 10, validTo: '2026-03-01T00:00:00Z' });
    await world.run('licence.suspend', { licenceId: ended.importLicenceId }, world.actors.mofcom);
    world.clock.set('2026-03-02T00:00:00Z');

    expect(refusal(await world.ledger.submit('licence.amend', { licenceId: ended.exportLicenceId, reason: 'extend', validTo: '2026-12-01T00:00:00Z' }, world.actors.bis))).toEqual({
      code: 'conflict', rule: 'licence-validity', message: `couldn't amend licence ${ended.exportLicenceId}: its validity ended at 2026-03-01T00:00:00.000Z`,
    });
    expect(refusal(await world.ledger.submit('licence.amend', { licenceId: ended.importLicenceId, reason: 'extend', validTo: '2026-12-01T00:00:00Z' }, world.actors.mofcom))).toMatchObject({ rule: 'licence-validity' });
    expect(refusal(await world.ledger.submit('licence.reinstate', { licenceId: ended.importLicenceId }, world.actors.mofcom))).toEqual({
      code: 'conflict', rule: 'licence-validity', message: `couldn't reinstate licence ${ended.importLicenceId}: its validity ended at 2026-03-01T00:00:00.000Z`,
    });
    expect(await row('licences', ended.exportLicenceId)).toMatchObject({ status: 'issued', version: 1 });
    expect(await row('licences', ended.importLicenceId)).toMatchObject({ status: 'suspended', version: 1 });

    // The sweep then expires both, as it would have had it come first.
    expect(expectOk(await world.ledger.sweep()).expiredLicences).toEqual(expect.arrayContaining([ended.exportLicenceId, ended.importLicenceId]));
  });

  it('names the statuses a step allows as the amendment does', async () => {
    const issued = await pair({ units: 10, validTo: '2027-01-01T00:00:00Z' });
    await world.run('licence.revoke', { licenceId: issued.exportLicenceId }, world.actors.bis);
    expect(refusal(await world.ledger.submit('licence.revoke', { licenceId: issued.exportLicenceId }, world.actors.bis))).toEqual({
      code: 'conflict', rule: 'licence-status', message: `couldn't revoke licence ${issued.exportLicenceId}: it is revoked, and only a licence that is draft, issued, suspended or exhausted can be`,
    });
    expect(refusal(await world.ledger.submit('licence.surrender', { licenceId: issued.exportLicenceId }, world.actors.exporter))).toMatchObject({
      message: `couldn't surrender licence ${issued.exportLicenceId}: it is revoked, and only a licence that is issued, suspended or exhausted can be`,
    });
    expect(refusal(await world.ledger.submit('licence.reinstate', { licenceId: issued.importLicenceId }, world.actors.mofcom))).toMatchObject({
      message: `couldn't reinstate licence ${issued.importLicenceId}: it is issued, and only a licence that is suspended can be`,
    });
  });

  it('still lets a draft be amended, its validity set before it is issued', async () => {
    const draft = String((await world.run('licence.create', {
      reference: 'BIS-LAPSE-DRAFT', direction: 'export', holderId: world.actors.exporter.orgId, parties: [{ organisationId: world.actors.alpha.orgId, role: 'end_user' }],
      productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 5, validFrom: '2026-01-01T00:00:00Z', validTo: '2026-02-01T00:00:00Z',
    }, world.actors.bis)).licenceId);
    expect(expectOk(await world.ledger.submit('licence.amend', { licenceId: draft, reason: 'dates', validTo: '2027-01-01T00:00:00Z' }, world.actors.bis))).toMatchObject({ status: 'draft', version: 2 });
  });

  it('cannot be issued or reinstated at the instant its validity ends: a licence is in force before valid_to, not at it', async () => {
    const validTo = new Date(world.clock.now().getTime() + 86_400_000).toISOString();
    const draft = async (reference: string) => String((await world.run('licence.create', {
      reference, direction: 'export', holderId: world.actors.exporter.orgId, parties: [{ organisationId: world.actors.alpha.orgId, role: 'end_user' }],
      productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 5, validFrom: '2026-01-01T00:00:00Z', validTo,
    }, world.actors.bis)).licenceId);
    const [early, late] = [await draft('BIS-LAPSE-EDGE-1'), await draft('BIS-LAPSE-EDGE-2')];
    const suspended = await pair({ units: 10, validTo });
    await world.run('licence.suspend', { licenceId: suspended.importLicenceId }, world.actors.mofcom);
    // A millisecond before its end a licence still has validity left to be put in force.
    world.clock.set(new Date(Date.parse(validTo) - 1));
    expect(expectOk(await world.ledger.submit('licence.issue', { licenceId: early }, world.actors.bis))).toMatchObject({ status: 'issued' });
    world.clock.set(validTo);
    expect(refusal(await world.ledger.submit('licence.issue', { licenceId: late }, world.actors.bis))).toEqual({
      code: 'conflict', rule: 'licence-validity', message: `couldn't issue licence ${late}: its validity ended at ${validTo}`,
    });
    expect(refusal(await world.ledger.submit('licence.reinstate', { licenceId: suspended.importLicenceId }, world.actors.mofcom))).toEqual({
      code: 'conflict', rule: 'licence-validity', message: `couldn't reinstate licence ${suspended.importLicenceId}: its validity ended at ${validTo}`,
    });
    expect([(await row('licences', late)).status, (await row('licences', suspended.importLicenceId)).status]).toEqual(['draft', 'suspended']);
  });

  it('is expired by the sweep when exhausted too, and cannot be given units again first', async () => {
    const used = await pair({ units: 1, validTo: '2026-04-01T00:00:00Z' });
    const shipmentId = await book(used, 1, '2026-03-20T00:00:00Z', ['LAPSE-EXH-1']);
    await world.run('shipment.ship', { shipmentId }, world.actors.exporter);
    expect(await row('licences', used.exportLicenceId)).toMatchObject({ status: 'exhausted' });
    world.clock.set('2026-04-02T00:00:00Z');

    expect(refusal(await world.ledger.submit('licence.amend', { licenceId: used.exportLicenceId, reason: 'more', authorisedUnits: 5 }, world.actors.bis))).toMatchObject({ code: 'conflict', rule: 'licence-validity' });
    expect(await row('licences', used.exportLicenceId)).toMatchObject({ status: 'exhausted', authorised_units: 1, version: 1 });

    const swept = expectOk(await world.ledger.sweep());
    expect(swept.expiredLicences).toEqual(expect.arrayContaining([used.exportLicenceId, used.importLicenceId]));
    expect(await row('licences', used.exportLicenceId)).toMatchObject({ status: 'expired' });
    const expiry = (await eventsAbout(used.exportLicenceId)).at(-1)!;
    expect(expiry).toMatchObject({ kind: 'ledger.sweep', effects: { licenceId: used.exportLicenceId, from: 'exhausted', to: 'expired' } });
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('a booking under a licence no longer in force', () => {
  it('is expired by the sweep when a licence is revoked, releasing its reservation on the other licence', async () => {
    const revoked = await pair({ units: 10, validTo: '2027-01-01T00:00:00Z' });
    const shipmentId = await book(revoked, 10, '2026-12-01T00:00:00Z', ['LAPSE-REV-1']);
    const kept = await book({ ...revoked, exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport }, 1, '2026-12-01T00:00:00Z');
    await world.run('licence.revoke', { licenceId: revoked.exportLicenceId, reason: 'end-use concern' }, world.actors.bis);

    const swept = expectOk(await world.ledger.sweep());
    expect(swept.expiredShipments).toEqual([shipmentId]);
    expect(await row('shipments', shipmentId)).toMatchObject({ status: 'expired' });
    expect(await row('shipments', kept)).toMatchObject({ status: 'booked' });
    // The import licence is still in force, and its units are free again.
    expect(await row('allocations', revoked.importAllocationId)).toMatchObject({ reserved_units: 0, shipped_units: 0 });
    expect(await row('allocations', revoked.exportAllocationId)).toMatchObject({ reserved_units: 0 });
    const [expiry] = (await eventsAbout(shipmentId)).filter((event) => event.kind === 'ledger.sweep');
    expect(expiry).toMatchObject({
      org_ids: [world.actors.exporter.orgId, world.actors.alpha.orgId].sort(),
      effects: { shipmentId, from: 'booked', to: 'expired', units: 10, reason: `licence ${revoked.exportLicenceId} is revoked` },
    });
    // Its manifest ended with it: the serial may be listed again.
    await book({ ...revoked, exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport }, 1, '2026-12-01T00:00:00Z', ['LAPSE-REV-1']);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('is expired by a sweep submitted together with the revocation, after it: a sweep starts a batch (found by the model test)', async () => {
    const revoked = await pair({ units: 10, validTo: '2027-01-01T00:00:00Z' });
    const shipmentId = await book(revoked, 2, '2026-12-01T00:00:00Z');
    const [revocation, sweep] = await Promise.all([
      world.ledger.submit('licence.revoke', { licenceId: revoked.exportLicenceId }, world.actors.bis),
      world.ledger.sweep(),
    ]);
    expect(Number(expectOk(sweep).seq)).toBeGreaterThan(Number(expectOk(revocation).seq));
    expect(expectOk(sweep).expiredShipments).toEqual([shipmentId]);
    expect(await row('shipments', shipmentId)).toMatchObject({ status: 'expired' });
  });

  it('takes no more serials once a licence is no longer in force, and the refusal names it', async () => {
    const surrendered = await pair({ units: 3, validTo: '2027-01-01T00:00:00Z' });
    const shipmentId = await book(surrendered, 3, '2026-12-01T00:00:00Z', ['LAPSE-MAN-1']);
    await world.run('licence.surrender', { licenceId: surrendered.importLicenceId }, world.actors.alpha);
    expect(refusal(await world.ledger.submit('manifest.attach', { shipmentId, serials: ['LAPSE-MAN-2'] }, world.actors.exporter))).toMatchObject({
      rule: 'licence-status', message: `couldn't attach serials to shipment ${shipmentId}: licence ${surrendered.importLicenceId} is surrendered, so it can never ship`,
    });
    expect(await row('shipments', shipmentId)).toMatchObject({ status: 'booked', serial_count: 1 });
    // Under a licence in force it still takes them.
    const inForce = await pair({ units: 2, validTo: '2027-01-01T00:00:00Z' });
    const open = await book(inForce, 2, '2026-12-01T00:00:00Z', ['LAPSE-MAN-3']);
    expectOk(await world.ledger.submit('manifest.attach', { shipmentId: open, serials: ['LAPSE-MAN-4'] }, world.actors.exporter));
    // And the sweep expires the one that can never ship.
    expect(expectOk(await world.ledger.sweep()).expiredShipments).toEqual([shipmentId]);
  });

  it('is expired by the sweep when a licence is surrendered', async () => {
    const surrendered = await pair({ units: 4, validTo: '2027-01-01T00:00:00Z' });
    const shipmentId = await book(surrendered, 4, '2026-12-01T00:00:00Z');
    await world.run('licence.surrender', { licenceId: surrendered.importLicenceId }, world.actors.alpha);
    expect(expectOk(await world.ledger.sweep()).expiredShipments).toEqual([shipmentId]);
    const [expiry] = (await eventsAbout(shipmentId)).filter((event) => event.kind === 'ledger.sweep');
    expect(expiry!.effects.reason).toBe(`licence ${surrendered.importLicenceId} is surrendered`);
    expect(await row('allocations', surrendered.exportAllocationId)).toMatchObject({ reserved_units: 0 });
  });

  it('is expired with the licence whose validity an amendment cut short, in the same sweep', async () => {
    const cut = await pair({ units: 6, validTo: '2027-01-01T00:00:00Z' });
    const shipmentId = await book(cut, 6, '2026-12-01T00:00:00Z');
    const at = world.clock.now().getTime();
    const end = new Date(at + 60_000).toISOString();
    await world.run('licence.amend', { licenceId: cut.exportLicenceId, reason: 'shortened', validTo: end }, world.actors.bis);
    world.clock.set(new Date(at + 120_000));

    const swept = expectOk(await world.ledger.sweep());
    expect(swept.expiredShipments).toEqual([shipmentId]);
    expect(swept.expiredLicences).toEqual([cut.exportLicenceId]);
    const [expiry] = (await eventsAbout(shipmentId)).filter((event) => event.kind === 'ledger.sweep');
    // Due at the licence's new end, not when the sweep ran.
    expect(expiry!.effects).toEqual({ shipmentId, from: 'booked', to: 'expired', units: 6, reason: `licence ${cut.exportLicenceId}'s validity ended at ${end}`, dueAt: end });
    expect(await row('allocations', cut.importAllocationId)).toMatchObject({ reserved_units: 0 });
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('is left booked while its licence is only suspended: it may be reinstated', async () => {
    const suspended = await pair({ units: 2, validTo: '2027-01-01T00:00:00Z' });
    const shipmentId = await book(suspended, 2, '2026-12-01T00:00:00Z', ['LAPSE-SUS-1', 'LAPSE-SUS-2']);
    await world.run('licence.suspend', { licenceId: suspended.importLicenceId }, world.actors.mofcom);
    expect(refusal(await world.ledger.sweep())).toMatchObject({ code: 'conflict', rule: 'sweep-nothing-due' });
    expect(await row('shipments', shipmentId)).toMatchObject({ status: 'booked' });
    await world.run('licence.reinstate', { licenceId: suspended.importLicenceId }, world.actors.mofcom);
    expect(expectOk(await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter))).toMatchObject({ status: 'shipped' });
  });
});

describe('a licence exhausted by shipping', () => {
  it('has an event of its own, read by its holder and parties, that does not name the shipment', async () => {
    const used = await pair({ units: 2, validTo: '2027-01-01T00:00:00Z' });
    const shipmentId = await book(used, 2, '2026-12-01T00:00:00Z', ['LAPSE-SHIP-1', 'LAPSE-SHIP-2']);
    const shipped = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    expectOk(shipped);
    const seq = shipped.ok ? shipped.seq : -1;

    const [shipEvent] = (await eventsAbout(shipmentId)).filter((event) => event.kind === 'shipment.ship');
    expect(shipEvent).toMatchObject({ seq, effects: { licencesExhausted: [used.exportLicenceId, used.importLicenceId] }, input: { shipmentId } });
    const exportEvent = (await eventsAbout(used.exportLicenceId)).at(-1)!;
    const importEvent = (await eventsAbout(used.importLicenceId)).at(-1)!;
    expect(exportEvent).toEqual({
      seq: seq + 1, kind: 'shipment.ship', subject_id: used.exportLicenceId, org_ids: [world.actors.exporter.orgId, world.actors.alpha.orgId].sort(),
      effects: { licenceId: used.exportLicenceId, from: 'issued', to: 'exhausted' }, input: null,
    });
    // The import licence's holder and consignee read it, though the shipment is not theirs to read.
    expect(importEvent).toEqual({
      seq: seq + 2, kind: 'shipment.ship', subject_id: used.importLicenceId, org_ids: [world.actors.alpha.orgId, world.actors.beta.orgId, world.actors.exporter.orgId].sort(),
      effects: { licenceId: used.importLicenceId, from: 'issued', to: 'exhausted' }, input: null,
    });
    // Each licence's row names the event that exhausted it.
    expect(await row('licences', used.exportLicenceId)).toMatchObject({ status: 'exhausted', updated_seq: seq + 1 });
    expect(await row('licences', used.importLicenceId)).toMatchObject({ status: 'exhausted', updated_seq: seq + 2 });
    expect(Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size)).toBe(seq + 3);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('writes no licence event when the shipment leaves units on both licences', async () => {
    const roomy = await pair({ units: 3, validTo: '2027-01-01T00:00:00Z' });
    const shipmentId = await book(roomy, 1, '2026-12-01T00:00:00Z', ['LAPSE-ROOM-1']);
    const shipped = await world.ledger.submit('shipment.ship', { shipmentId }, world.actors.exporter);
    expectOk(shipped);
    expect((await eventsAbout(roomy.exportLicenceId)).map((event) => event.kind)).toEqual(['licence.create', 'licence.issue']);
    expect(Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size)).toBe((shipped.ok ? shipped.seq : -1) + 1);
  });
});

describe('a recipient an amendment dropped from a licence, still holding an allocation on it', () => {
  it('reads the licence and its later events, as the read side shows it the licence', async () => {
    const { run, actors } = world;
    const licensed = await pair({ units: 10, validTo: '2027-01-01T00:00:00Z' });
    await run('allocation.resize', { allocationId: licensed.importAllocationId, units: 8 }, actors.mofcom);
    await run('allocation.create', { licenceId: licensed.importLicenceId, recipientId: actors.beta.orgId, units: 2 }, actors.mofcom);
    await run('licence.amend', { licenceId: licensed.importLicenceId, reason: 'consignee removed', parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }] }, actors.mofcom);
    await run('licence.suspend', { licenceId: licensed.importLicenceId, reason: 'review' }, actors.mofcom);
    const suspended = (await eventsAbout(licensed.importLicenceId)).find((event) => event.kind === 'licence.suspend')!;
    expect(suspended.org_ids).toContain(actors.beta.orgId);
    // A command on it is refused for what beta may do, not as if the licence did not exist.
    const surrender = await world.ledger.submit('licence.surrender', { licenceId: licensed.importLicenceId }, actors.beta);
    expect(surrender.ok ? 'accepted' : surrender.error.code).not.toBe('not_found');
    expect(await world.ledger.violations()).toEqual([]);
  });
});
