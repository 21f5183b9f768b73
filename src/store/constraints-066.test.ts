/**
 * Migration 066: rules the ledger held in code alone (the s32 review), held again by the
 * database. Each case writes around the ledger, straight into the tables, in a transaction
 * that is always rolled back: before 066 the database took every refused one.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, insertShipments, type Statement } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';

let database: TestDatabase;
let world: World;

// Licences with units left to allocate (an allocation written by hand must fit).
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
}, { licenceUnits: 10_000, allocationUnits: 1_000 });

const refusal = (...statements: Statement[]) => firstRefusal(database.pool, ...statements);
const handedOut = (message: string) => ({ code: '23514', message });

/** A new allocation of one unit of the import licence, counted by the licence as the ledger counts one; `period` a tranche's days. */
function allocate(recipient: string, period?: [string, string]): Statement[] {
  return [
    ['UPDATE licences SET allocated_units = allocated_units + 1 WHERE id = $1', [world.importLicenceId]],
    [`INSERT INTO allocations (id, licence_id, recipient_org_id, units, period_start, period_end, created_seq) VALUES ('A-NEW', $1, $2, 1, $3, $4, 999999)`,
      [world.importLicenceId, recipient, period?.[0] ?? null, period?.[1] ?? null]],
  ];
}

/** The import licence put in `status` by hand (the licences' own triggers off: only the status matters here, not how it came). */
const importLicenceIs = (status: string): Statement[] => [
  ['ALTER TABLE licences DISABLE TRIGGER USER'],
  [`UPDATE licences SET status = '${status}' WHERE id = $1`, [world.importLicenceId]],
];

describe('migration 066: a booking cannot outlast its licences', () => {
  it('refuses a deadline past either licence\'s validity, names the rule, and takes one at its end', async () => {
    // Both licences are valid to 2027-01-01T00:00:00Z (test/world.ts).
    const past = await refusal(insertShipments(world, [{ deadline: '2027-01-01T00:00:00.001Z' }]));
    expect(past?.code, past?.message ?? 'the database accepted it').toBe('23514');
    expect(past?.message).toMatch(/^invariant 3: shipment S-X booked under licences \S+ and \S+ that do not cover it \(booking-deadline\)$/);
    expect(await refusal(insertShipments(world, [{ deadline: '2027-01-01T00:00:00Z' }]))).toBeUndefined();
    // In a group, a row within the validity does not hide the one past it.
    const group = await refusal(insertShipments(world, [{ id: 'S-X1' }, { id: 'S-X2', deadline: '2027-06-01T00:00:00Z' }]));
    expect(group?.message ?? 'the database accepted it').toMatch(/^invariant 3: shipment S-X2 .*\(booking-deadline\)$/);
  });
});

describe('migration 066: units are handed out only under a draft or issued licence that names the recipient, on days of its validity', () => {
  it('takes an allocation the ledger would make', async () => {
    expect(await refusal(...allocate(world.actors.beta.orgId))).toBeUndefined();
    expect(await refusal(...allocate(world.actors.beta.orgId, ['2026-01-01', '2026-12-31']))).toBeUndefined();
  });

  it.each(['suspended', 'revoked', 'surrendered', 'expired'])('refuses an allocation made under a %s licence', async (status) => {
    expect(await refusal(...importLicenceIs(status), ...allocate(world.actors.beta.orgId))).toEqual(handedOut(
      `allocation A-NEW hands out units of licence ${world.importLicenceId}, which is ${status}: only a draft or issued licence hands out units`,
    ));
  });

  it('refuses an allocation to a recipient the licence does not name (the exporter is its supplier, not its recipient)', async () => {
    expect(await refusal(...allocate(world.actors.exporter.orgId))).toEqual(handedOut(
      `allocation A-NEW hands out units of licence ${world.importLicenceId} to ${world.actors.exporter.orgId}, which the licence does not name as holder, consignee or end user`,
    ));
  });

  it('refuses a tranche with a day outside the validity, at either end, in UTC whatever the session\'s time zone', async () => {
    for (const period of [['2025-12-31', '2026-06-30'], ['2026-06-01', '2027-01-01']] as Array<[string, string]>) {
      expect(await refusal(['SET LOCAL TIME ZONE \'Asia/Shanghai\''], ...allocate(world.actors.beta.orgId, period))).toEqual(handedOut(
        `allocation A-NEW is for the period ${period[0]} to ${period[1]}, not within the validity of licence ${world.importLicenceId}, 2026-01-01 to 2026-12-31`,
      ));
    }
  });

  it('refuses growing an allocation under a suspended licence, and takes shrinking it', async () => {
    const resize = (delta: number): Statement[] => [
      ['UPDATE licences SET allocated_units = allocated_units + $2 WHERE id = $1', [world.importLicenceId, delta]],
      ['UPDATE allocations SET units = units + $2 WHERE id = $1', [world.allocations.betaImport, delta]],
    ];
    expect(await refusal(...importLicenceIs('suspended'), ...resize(1))).toEqual(handedOut(
      `allocation ${world.allocations.betaImport} hands out units of licence ${world.importLicenceId}, which is suspended: only a draft or issued licence hands out units`,
    ));
    expect(await refusal(...importLicenceIs('suspended'), ...resize(-1))).toBeUndefined();
    expect(await refusal(...resize(1))).toBeUndefined();
  });

  it('refuses changing a tranche\'s period', async () => {
    expect(await refusal(['UPDATE allocations SET period_start = \'2026-03-01\', period_end = \'2026-03-31\' WHERE id = $1', [world.allocations.betaImport]])).toEqual({
      code: '23514', message: `allocation ${world.allocations.betaImport} is for the period none to none; a tranche keeps its period (its shipments were booked on its days)`,
    });
  });
});
