/**
 * The re-check read with a bound (ledgerViolationsBounded, what `chipledger check` reads): at
 * most violationsShownPerInvariantMax rows of each invariant reach this process, in one order,
 * and every invariant's count is exact. Planted parts (as ledger-checks.test.ts plants them,
 * in a transaction rolled back) stand for a damaged database: one floods an invariant with
 * thousands of rows, another breaks a second invariant a few times, which the flood must not
 * hide.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import type { PoolClient } from './pool.ts';
import { ledgerViolations, ledgerViolationsBounded, violationsShownPerInvariantMax } from './violations.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

/** Well past the bound, and not a round number, so a count that is off by the bound or by one shows. */
const floodRows = 5_003;

/** Runs `work` with parts planted that break 'probe-flood' floodRows times and 'probe-few' three times; rolled back. */
async function withPlantedParts<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    // The flood's subjects run S-1 … S-5003, written in an order unlike the one shown, so the
    // rows shown are the function's choice, not the order they were made in.
    await client.query(`CREATE FUNCTION ledger_check_probe_flood() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
      SELECT 'probe-flood', 'S-' || g, 'planted ' || g FROM generate_series(${floodRows}, 1, -1) g $$`);
    await client.query(`CREATE FUNCTION ledger_check_probe_few() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
      SELECT 'probe-few', 'F-' || g, 'planted' FROM generate_series(3, 1, -1) g $$`);
    await client.query(`INSERT INTO ledger_checks (position, part) VALUES (100001, 'ledger_check_probe_flood'), (100002, 'ledger_check_probe_few')`);
    return await work(client);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

describe('ledgerViolationsBounded', () => {
  it('says every invariant holds where ledger_violations() finds nothing', async () => {
    expect(await ledgerViolations(database.pool)).toEqual([]);
    expect(await ledgerViolationsBounded(database.pool)).toEqual({ shown: [], tallies: [] });
  });

  it("shows at most the bound of an invariant's violations and counts every one, beside another invariant's, shown whole", async () => {
    expect(floodRows).toBeGreaterThan(violationsShownPerInvariantMax);
    const { shown, tallies } = await withPlantedParts((client) => ledgerViolationsBounded(client));
    expect(tallies).toEqual([
      { invariant: 'probe-few', violations: 3, shown: 3 },
      { invariant: 'probe-flood', violations: floodRows, shown: violationsShownPerInvariantMax },
    ]);
    // By invariant, then subject, shorter first: S-1 … S-9, S-10 … S-20, not S-1, S-10, S-100, S-1000.
    expect(shown).toEqual([
      ...[1, 2, 3].map((n) => ({ invariant: 'probe-few', subject: `F-${n}`, detail: 'planted' })),
      ...Array.from({ length: violationsShownPerInvariantMax }, (_, index) => ({ invariant: 'probe-flood', subject: `S-${index + 1}`, detail: `planted ${index + 1}` })),
    ]);
  });

  it('counts what the unbounded read lists, invariant by invariant', async () => {
    const { all, bounded } = await withPlantedParts(async (client) => ({ all: await ledgerViolations(client), bounded: await ledgerViolationsBounded(client, 2) }));
    expect(all).toHaveLength(floodRows + 3);
    const counted = new Map<string, number>();
    for (const { invariant } of all) counted.set(invariant, (counted.get(invariant) ?? 0) + 1);
    expect(new Map(bounded.tallies.map((tally) => [tally.invariant, tally.violations]))).toEqual(counted);
    expect(bounded.tallies.map((tally) => tally.shown)).toEqual([2, 2]);
    expect(bounded.shown.map((violation) => violation.subject)).toEqual(['F-1', 'F-2', 'S-1', 'S-2']);
  });

  it('refuses a bound that would show nothing', async () => {
    for (const bound of [0, -1, 1.5]) await expect(ledgerViolationsBounded(database.pool, bound)).rejects.toThrow(/at least 1/);
  });
});
