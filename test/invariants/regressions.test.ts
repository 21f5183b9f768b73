/**
 * Minimal reproductions of bugs the invariant tests found, one per test, each small
 * enough to read as a bug report. Each must pass once its bug is fixed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../database.ts';
import { buildWorld, expectOk, type World } from '../world.ts';
import { answerWithin } from '../support/answers.ts';

let database: TestDatabase;
let world: World;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 100, allocationUnits: 50 });
});
afterAll(async () => {
  // A stuck sequencer never flushes: do not wait for it forever.
  await Promise.race([world?.ledger.close(), new Promise((done) => setTimeout(done, 2_000))]);
  await database?.drop();
});

/** Books, ships, clears and delivers `serials` to alpha; returns the shipment id. */
async function deliverToAlpha(serials: string[]): Promise<string> {
  const { run, actors, allocations, productId } = world;
  const booked = await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId,
    units: serials.length, deadline: '2026-03-01T00:00:00Z', serials,
  }, actors.exporter);
  const shipmentId = String(booked.shipmentId);
  await run('shipment.ship', { shipmentId }, actors.exporter);
  await run('shipment.clear', { shipmentId }, actors.alpha);
  await run('shipment.deliver', { shipmentId }, actors.alpha);
  return shipmentId;
}

async function site(name: string, capacityUnits: number): Promise<string> {
  return String((await world.run('site.register', { name, province: 'Guizhou', city: 'Guiyang', latitude: 26.6, longitude: 106.7, capacityUnits }, world.actors.alpha)).siteId);
}

describe('regressions', () => {
  it('decommissions a unit that is deployed at a site (the site row must be loaded)', async () => {
    await deliverToAlpha(['REG-DEC-1']);
    const siteId = await site('Guiyang DC 1', 5);
    expectOk(await world.ledger.submit('units.deploy', { siteId, serials: ['REG-DEC-1'] }, world.actors.alpha));
    const answer = await answerWithin(world.ledger.submit('units.decommission', { serials: ['REG-DEC-1'], reason: 'end of life' }, world.actors.alpha), 5_000);
    expect(answer.ok ? answer.body : answer.error.message).toMatchObject({ count: 1, custody: 'decommissioned' });
    const row = await database.pool.query('SELECT deployed_units FROM sites WHERE id = $1', [siteId]);
    expect(row.rows[0].deployed_units).toBe(0);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('moves a deployed unit to another site (the old site row must be loaded)', async () => {
    await deliverToAlpha(['REG-MOVE-1']);
    const from = await site('Guiyang DC 2', 5);
    const to = await site('Guiyang DC 3', 5);
    expectOk(await world.ledger.submit('units.deploy', { siteId: from, serials: ['REG-MOVE-1'] }, world.actors.alpha));
    const answer = await answerWithin(world.ledger.submit('units.deploy', { siteId: to, serials: ['REG-MOVE-1'] }, world.actors.alpha), 5_000);
    expect(answer.ok ? answer.body : answer.error.message).toMatchObject({ deployed: 1, moved: 1 });
    const rows = await database.pool.query('SELECT id, deployed_units FROM sites WHERE id = ANY($1) ORDER BY id', [[from, to]]);
    expect(Object.fromEntries(rows.rows.map((row) => [row.id, row.deployed_units]))).toEqual({ [from]: 0, [to]: 1 });
    expect(await world.ledger.violations()).toEqual([]);
  });
});
