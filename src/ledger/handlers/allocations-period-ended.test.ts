/**
 * A tranche is handed out only for a period that has not ended (allocation-period-ended):
 * its last day must be the batch's day or later (UTC), or no booking could ever reserve its
 * units. On creating it and on growing it; shrinking stays allowed.
 */
import { describe, expect, it } from 'vitest';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';

let world: World;

// The world's clock reads 2026-02-01T00:00:00Z; its licences are valid through 2026.
worldPerFile((made) => {
  world = made;
}, { licenceUnits: 1_000, allocationUnits: 100 });

function allocate(periodStart: string, periodEnd: string): Promise<Answer> {
  return world.ledger.submit('allocation.create', { licenceId: world.exportLicenceId, recipientId: world.actors.alpha.orgId, units: 10, periodStart, periodEnd }, world.actors.bis);
}

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string; details: unknown } {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, details: answer.error.details };
}

describe('a tranche whose period has ended', () => {
  it('is refused, naming the rule and the dates', async () => {
    expect(refusal(await allocate('2026-01-01', '2026-01-31'))).toEqual({
      code: 'conflict', rule: 'allocation-period-ended',
      message: `couldn't allocate 10 units to ${world.actors.alpha.orgId}: the period 2026-01-01 to 2026-01-31 ended before today, 2026-02-01 (a UTC day); no booking could reserve its units`,
      details: { licenceId: world.exportLicenceId, periodStart: '2026-01-01', periodEnd: '2026-01-31', today: '2026-02-01' },
    });
  });

  it('is allocated when it ends today or later, also one that began before today', async () => {
    expectOk(await allocate('2026-01-01', '2026-02-01'));
    expectOk(await allocate('2026-02-01', '2026-02-28'));
  });

  // Moves the world's clock forward: last.
  it('cannot grow once its period has ended, and can still shrink', async () => {
    const allocationId = String(expectOk(await allocate('2026-02-01', '2026-02-28')).allocationId);
    world.clock.set('2026-03-01T00:00:00Z');
    const grown = await world.ledger.submit('allocation.resize', { allocationId, units: 11 }, world.actors.bis);
    expect(refusal(grown)).toMatchObject({
      code: 'conflict', rule: 'allocation-period-ended',
      message: `couldn't grow allocation ${allocationId} to 11 units: the period 2026-02-01 to 2026-02-28 ended before today, 2026-03-01 (a UTC day); no booking could reserve its units`,
    });
    expect(expectOk(await world.ledger.submit('allocation.resize', { allocationId, units: 4 }, world.actors.bis))).toMatchObject({ units: 4 });
    expect(await world.ledger.violations()).toEqual([]);
  });
});
