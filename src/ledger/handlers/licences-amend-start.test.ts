/**
 * A draft's start can be put right before it is issued (a validFrom typed in UTC when Beijing's
 * midnight was meant), still before its end and not past a tranche already made under it;
 * once issued, the start stays. The new start is in the licence, its new version and its
 * version's snapshot, which the database holds the licence to (migration 030).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk, refusalOf, worldPerFile, type World } from '../../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

async function draft(reference: string): Promise<string> {
  const { run, actors, productId } = world;
  return String((await run('licence.create', {
    reference, direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-03-01T00:00:00Z', validTo: '2026-12-01T00:00:00Z',
  }, actors.mofcom)).licenceId);
}

const amend = (licenceId: string, fields: Record<string, unknown>) =>
  world.ledger.submit('licence.amend', { licenceId, reason: 'validFrom typed in UTC; Beijing midnight meant', ...fields }, world.actors.mofcom);

describe("a draft's validFrom", () => {
  it('is amended, in the licence and its new version, and the licence issued with it', async () => {
    const licenceId = await draft('MOFCOM-START-1');
    expect(expectOk(await amend(licenceId, { validFrom: '2026-03-01T00:00:00+08:00' }))).toMatchObject({ licenceId, version: 2, status: 'draft' });
    const licence = (await database.pool.query("SELECT valid_from = '2026-02-28T16:00:00Z'::timestamptz AS moved, version FROM licences WHERE id = $1", [licenceId])).rows[0];
    expect(licence).toEqual({ moved: true, version: 2 });
    const version = (await database.pool.query('SELECT snapshot FROM licence_versions WHERE licence_id = $1 AND version = 2', [licenceId])).rows[0];
    expect(version.snapshot.valid_from).toBe('2026-02-28T16:00:00.000Z');
    expectOk(await world.ledger.submit('licence.issue', { licenceId }, world.actors.mofcom));
    expect((await database.pool.query('SELECT invariant, subject FROM ledger_violations()')).rows).toEqual([]);
  });

  it('is refused at or after the validTo (its own or the one amended with it), naming both', async () => {
    const licenceId = await draft('MOFCOM-START-2');
    expect(refusalOf(await amend(licenceId, { validFrom: '2026-12-01T00:00:00Z' }))).toEqual({
      code: 'invalid_input', rule: 'licence-validity',
      message: `couldn't amend licence ${licenceId}: validTo 2026-12-01T00:00:00.000Z must be after its validFrom, 2026-12-01T00:00:00.000Z`,
      details: { licenceId, validFrom: '2026-12-01T00:00:00.000Z', validTo: '2026-12-01T00:00:00.000Z' },
    });
    expect(refusalOf(await amend(licenceId, { validFrom: '2026-06-01T00:00:00Z', validTo: '2026-05-01T00:00:00Z' }))).toMatchObject({ rule: 'licence-validity' });
    // Both moved together, the new start before the new end: taken.
    expect(expectOk(await amend(licenceId, { validFrom: '2027-01-01T00:00:00Z', validTo: '2027-06-01T00:00:00Z' }))).toMatchObject({ version: 2 });
  });

  it('is refused past a tranche already made under the draft, which would then end before the validity begins', async () => {
    const licenceId = await draft('MOFCOM-START-3');
    const allocationId = String((await world.run('allocation.create', {
      licenceId, recipientId: world.actors.alpha.orgId, units: 10, periodStart: '2026-03-01', periodEnd: '2026-03-31',
    }, world.actors.mofcom)).allocationId);
    expect(refusalOf(await amend(licenceId, { validFrom: '2026-04-01T00:00:00Z' }))).toEqual({
      code: 'conflict', rule: 'allocation-period',
      message: `couldn't amend licence ${licenceId} to validFrom 2026-04-01T00:00:00.000Z: allocation ${allocationId} (10 units) is for the period 2026-03-01 to 2026-03-31, which ends before the first day of the new validity, 2026-04-01; no booking could reserve its units (a validFrom before 2026-04-01T00:00:00.000Z keeps it a day)`,
      details: { licenceId, validFrom: '2026-04-01T00:00:00.000Z', allocationId, periodStart: '2026-03-01', periodEnd: '2026-03-31', firstDay: '2026-04-01' },
    });
    // A start within the tranche's period keeps it days to be booked on.
    expectOk(await amend(licenceId, { validFrom: '2026-03-31T12:00:00Z' }));
  });

  it('past two tranches, names the one that ends nearest the new start and counts the other', async () => {
    const licenceId = await draft('MOFCOM-START-5');
    const tranche = async (periodStart: string, periodEnd: string) => String((await world.run('allocation.create', {
      licenceId, recipientId: world.actors.alpha.orgId, units: 10, periodStart, periodEnd,
    }, world.actors.mofcom)).allocationId);
    await tranche('2026-03-01', '2026-03-31');
    const april = await tranche('2026-04-01', '2026-04-30');
    const refused = refusalOf(await amend(licenceId, { validFrom: '2026-05-01T00:00:00Z' }));
    expect(refused).toMatchObject({ code: 'conflict', rule: 'allocation-period', details: { allocationId: april, periodStart: '2026-04-01', periodEnd: '2026-04-30', firstDay: '2026-05-01' } });
    expect(refused.message).toContain(`allocation ${april} (10 units) is for the period 2026-04-01 to 2026-04-30, which ends before the first day of the new validity, 2026-05-01 (and 1 more allocation before it);`);
    expect(refused.message).toContain('(a validFrom before 2026-05-01T00:00:00.000Z keeps it a day)');
  });

  it('stays once the licence is issued (licence-status)', async () => {
    const licenceId = await draft('MOFCOM-START-4');
    await world.run('licence.issue', { licenceId }, world.actors.mofcom);
    expect(refusalOf(await amend(licenceId, { validFrom: '2026-02-28T16:00:00Z' }))).toEqual({
      code: 'conflict', rule: 'licence-status',
      message: `couldn't amend licence ${licenceId} to validFrom 2026-02-28T16:00:00.000Z: it is issued, and only a draft's start can change`,
      details: { licenceId, status: 'issued', validFrom: '2026-02-28T16:00:00.000Z' },
    });
  });
});
