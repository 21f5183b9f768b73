/**
 * A licence's totals never give away another recipient's figures: a recipient reads
 * allocated, reserved and shipped units (and what derives from them) over its own
 * allocations only; authorities, auditors and the exporter that holds the licence read
 * the licence-wide figures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildApiWorld, type ApiWorld } from '../../test/support/server.ts';

let database: TestDatabase;
let api: ApiWorld;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await buildApiWorld(database.pool);
  // A live booking of alpha's: 5 units reserved on its allocations, beside the 3 delivered.
  await api.shipment('own', 'booked', 5);
});
afterAll(async () => {
  await api?.app.close();
  await api?.world.ledger.close();
  await database?.drop();
});

type Item = Record<string, unknown>;

async function get(url: string, token: string): Promise<Item> {
  const response = await api.request({ method: 'GET', url, token });
  expect(response.statusCode).toBe(200);
  return response.json() as Item;
}
const listed = async (url: string, token: string, licenceId: string, key = 'id') =>
  ((await get(`${url}?limit=500`, token)).items as Item[]).find((row) => row[key] === licenceId)!;

describe('licence totals per viewer', () => {
  it('shows a recipient the totals of its own allocations on the export licence, in detail, list and report', async () => {
    const { world, tokens } = api;
    const licenceId = world.exportLicenceId;
    // Each recipient holds 20,000 of the licence's 40,000 allocated units; alpha shipped 3 and reserved 5.
    const own = {
      beta: { allocatedUnits: 20_000, shippedUnits: 0, reservedUnits: 0 },
      alpha: { allocatedUnits: 20_000, shippedUnits: 3, reservedUnits: 5 },
    };
    for (const [token, figures] of [[tokens.beta, own.beta], [tokens.recipient, own.alpha]] as const) {
      const totals = { allocatedUnits: figures.allocatedUnits, shippedUnits: figures.shippedUnits, totalsScope: 'own_allocations' };
      // updatedSeq moves with every allocation and shipment under the licence: not for a recipient.
      expect(await get(`/v1/licences/${licenceId}`, token)).toMatchObject({ ...totals, updatedSeq: null });
      expect(await listed('/v1/licences', token, licenceId)).toMatchObject({ ...totals, updatedSeq: null });
      expect(await listed('/v1/reports/utilisation', token, licenceId, 'licenceId')).toMatchObject({
        ...totals,
        units: 100_000,
        reservedUnits: figures.reservedUnits,
        unallocatedUnits: null,
        availableUnits: figures.allocatedUnits - figures.reservedUnits - figures.shippedUnits,
      });
    }
  });

  it('shows a recipient that holds the import licence only its own allocation there too', async () => {
    const { world, tokens } = api;
    // Alpha holds the import licence, yet beta's allocation on it is beta's alone.
    const forAlpha = await get(`/v1/licences/${world.importLicenceId}`, tokens.recipient);
    expect(forAlpha).toMatchObject({ holderId: api.orgs.alpha, allocatedUnits: 20_000, shippedUnits: 3, totalsScope: 'own_allocations' });
    expect(await listed('/v1/reports/utilisation', tokens.recipient, world.importLicenceId, 'licenceId')).toMatchObject({ allocatedUnits: 20_000, reservedUnits: 5, shippedUnits: 3 });
  });

  it('keeps the licence-wide figures for authorities, the auditor and the exporter that holds the licence', async () => {
    const { world, tokens } = api;
    const licenceId = world.exportLicenceId;
    const totals = { allocatedUnits: 40_000, shippedUnits: 3, totalsScope: 'licence' };
    for (const token of [tokens.authority_officer, tokens.authority_admin, tokens.auditor, tokens.exporter]) {
      expect(await get(`/v1/licences/${licenceId}`, token)).toMatchObject({ ...totals, updatedSeq: expect.any(Number) });
      expect(await listed('/v1/licences', token, licenceId)).toMatchObject(totals);
      expect(await listed('/v1/reports/utilisation', token, licenceId, 'licenceId')).toMatchObject({
        ...totals, units: 100_000, reservedUnits: 5, unallocatedUnits: 60_000, availableUnits: 100_000 - 5 - 3,
      });
    }
    // The exporter supplies the import licence: it sees every allocation there, so it gets its totals too.
    expect(await get(`/v1/licences/${world.importLicenceId}`, tokens.exporter)).toMatchObject({ allocatedUnits: 40_000, shippedUnits: 3, totalsScope: 'licence' });
  });

  it('gives every recipient totals equal to the sums over the allocations it is shown', async () => {
    for (const token of [api.tokens.recipient, api.tokens.beta]) {
      const report = (await get('/v1/reports/utilisation?limit=500', token)).items as Item[];
      expect(report.length).toBeGreaterThan(0);
      for (const row of report) {
        const allocations = row.allocations as Item[];
        const sum = (key: string) => allocations.reduce((total, allocation) => total + Number(allocation[key]), 0);
        expect({ allocatedUnits: row.allocatedUnits, reservedUnits: row.reservedUnits, shippedUnits: row.shippedUnits })
          .toEqual({ allocatedUnits: sum('units'), reservedUnits: sum('reservedUnits'), shippedUnits: sum('shippedUnits') });
        const licence = await get(`/v1/licences/${String(row.licenceId)}`, token);
        expect({ allocatedUnits: licence.allocatedUnits, shippedUnits: licence.shippedUnits }).toEqual({ allocatedUnits: sum('units'), shippedUnits: sum('shippedUnits') });
      }
    }
  });
});
