/**
 * Units are handed out only while a licence's validity lasts, and a tranche only for days
 * of it: on each day of its period a booking must be possible (validity is an instant range,
 * valid_to excluded; a period is UTC days, both ends included).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';
import { validityDays } from './allocations.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let counter = 0;

/** A fresh import licence of 100 units held by alpha (issued unless asked for a draft). */
async function licence(validFrom: string, validTo: string, options: { draft?: boolean } = {}): Promise<string> {
  const { run, actors, productId } = world;
  const licenceId = String((await run('licence.create', {
    reference: `MOFCOM-V-${++counter}`, direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom, validTo,
  }, actors.mofcom)).licenceId);
  if (!options.draft) await run('licence.issue', { licenceId }, actors.mofcom);
  return licenceId;
}

function allocate(licenceId: string, units: number, period?: { periodStart: string; periodEnd: string }): Promise<Answer> {
  return world.ledger.submit('allocation.create', { licenceId, recipientId: world.actors.alpha.orgId, units, ...period }, world.actors.mofcom);
}

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string } | 'accepted' {
  return answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule, message: answer.error.message };
}

async function allocatedUnits(licenceId: string): Promise<number> {
  return (await database.pool.query<{ allocated_units: number }>('SELECT allocated_units FROM licences WHERE id = $1', [licenceId])).rows[0]!.allocated_units;
}

describe('validityDays', () => {
  it('runs from the day of valid_from to the day of the last instant before valid_to', () => {
    expect(validityDays({ valid_from: '2026-01-01T00:00:00.000Z', valid_to: '2027-01-01T00:00:00.000Z' })).toEqual({ start: '2026-01-01', end: '2026-12-31' });
    expect(validityDays({ valid_from: '2026-01-15T12:00:00.000Z', valid_to: '2026-06-30T00:00:00.001Z' })).toEqual({ start: '2026-01-15', end: '2026-06-30' });
  });
});

describe('a tranche is allocated only for days of the licence validity', () => {
  it('takes a period from the first to the last day of validity, and refuses one a day longer at either end', async () => {
    const licenceId = await licence('2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z');
    expect(expectOk(await allocate(licenceId, 5, { periodStart: '2026-01-01', periodEnd: '2026-12-31' }))).toMatchObject({ units: 5 });
    expect(refusal(await allocate(licenceId, 5, { periodStart: '2025-12-31', periodEnd: '2026-03-31' }))).toEqual({
      code: 'conflict', rule: 'allocation-period',
      message: `couldn't allocate 5 units to ${world.actors.alpha.orgId}: the period 2025-12-31 to 2026-03-31 is not within the validity of licence ${licenceId}, 2026-01-01 to 2026-12-31 (2026-01-01T00:00:00.000Z to 2027-01-01T00:00:00.000Z)`,
    });
    // valid_to is excluded: nothing can be booked on 2027-01-01.
    expect(refusal(await allocate(licenceId, 5, { periodStart: '2026-12-01', periodEnd: '2027-01-01' }))).toMatchObject({ rule: 'allocation-period' });
    expect(await allocatedUnits(licenceId)).toBe(5);
  });

  it('counts a day that validity covers only in part, as a booking could be made on it', async () => {
    const licenceId = await licence('2026-01-15T12:00:00Z', '2026-06-30T12:00:00Z');
    expectOk(await allocate(licenceId, 5, { periodStart: '2026-01-15', periodEnd: '2026-06-30' }));
    expect(refusal(await allocate(licenceId, 5, { periodStart: '2026-01-14', periodEnd: '2026-02-28' }))).toMatchObject({ rule: 'allocation-period' });
    expect(refusal(await allocate(licenceId, 5, { periodStart: '2026-06-01', periodEnd: '2026-07-01' }))).toMatchObject({ rule: 'allocation-period' });
  });

  it('refuses to grow a tranche that an amendment has left outside the validity, and lets it shrink', async () => {
    const licenceId = await licence('2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z');
    const allocationId = String(expectOk(await allocate(licenceId, 10, { periodStart: '2026-10-01', periodEnd: '2026-12-31' })).allocationId);
    await world.run('licence.amend', { licenceId, reason: 'cut short', validTo: '2026-12-01T00:00:00Z' }, world.actors.mofcom);
    const grown = await world.ledger.submit('allocation.resize', { allocationId, units: 11 }, world.actors.mofcom);
    expect(refusal(grown)).toEqual({
      code: 'conflict', rule: 'allocation-period',
      message: `couldn't grow allocation ${allocationId} to 11 units: the period 2026-10-01 to 2026-12-31 is not within the validity of licence ${licenceId}, 2026-01-01 to 2026-11-30 (2026-01-01T00:00:00.000Z to 2026-12-01T00:00:00.000Z)`,
    });
    expect(expectOk(await world.ledger.submit('allocation.resize', { allocationId, units: 4 }, world.actors.mofcom))).toMatchObject({ units: 4 });
    expect(await allocatedUnits(licenceId)).toBe(4);
  });
});

// These move the world's clock forward: they come last.
describe('no units are handed out once the licence validity has ended', () => {
  it('refuses to allocate under an issued licence at or after its valid_to, before the sweep marks it expired', async () => {
    const licenceId = await licence('2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z');
    const allocationId = String(expectOk(await allocate(licenceId, 10)).allocationId);
    world.clock.set('2026-02-28T23:59:59.999Z');
    expectOk(await allocate(licenceId, 1));
    world.clock.set('2026-03-01T00:00:00Z');
    const at = world.clock.now().toISOString();
    expect(refusal(await allocate(licenceId, 1))).toEqual({
      code: 'conflict', rule: 'licence-validity',
      message: `couldn't allocate 1 units to ${world.actors.alpha.orgId}: the validity of licence ${licenceId} ended at 2026-03-01T00:00:00.000Z (now ${at})`,
    });
    // Growing refused alike; shrinking still gives units back.
    const grown = await world.ledger.submit('allocation.resize', { allocationId, units: 12 }, world.actors.mofcom);
    expect(refusal(grown)).toMatchObject({ code: 'conflict', rule: 'licence-validity', message: expect.stringContaining(`couldn't grow allocation ${allocationId} to 12 units: the validity of licence ${licenceId} ended`) });
    expect(expectOk(await world.ledger.submit('allocation.resize', { allocationId, units: 3 }, world.actors.mofcom))).toMatchObject({ units: 3 });
    expect(await allocatedUnits(licenceId)).toBe(4);
  });

  it('refuses to allocate a draft whose validity has ended (it could never be issued)', async () => {
    const now = world.clock.now().getTime();
    const licenceId = await licence('2026-01-01T00:00:00Z', new Date(now - 86_400_000).toISOString(), { draft: true });
    expect(refusal(await allocate(licenceId, 1))).toMatchObject({ code: 'conflict', rule: 'licence-validity' });
    expect(await world.ledger.violations()).toEqual([]);
  });
});
