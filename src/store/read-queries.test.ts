import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import * as read from './read-queries.ts';
import type { Viewer } from './read-queries.ts';

let database: TestDatabase;
let world: World;
const shipmentIds: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000, allocationUnits: 5_000 });
  const { run, actors, allocations, productId } = world;
  // Enough shipments that ids cross a digit boundary (S-99 < S-100 by number, not by text).
  for (let index = 0; index < 90; index += 1) {
    const alpha = index % 3 !== 0;
    const booked = await run('shipment.book', {
      exportAllocationId: alpha ? allocations.alphaExport : allocations.betaExport,
      importAllocationId: alpha ? allocations.alphaImport : allocations.betaImport,
      productId, units: 2, deadline: '2026-03-01T00:00:00Z', serials: [`RQ-${index}-a`, `RQ-${index}-b`],
    }, actors.exporter);
    shipmentIds.push(String(booked.shipmentId));
  }
  await run('shipment.ship', { shipmentId: shipmentIds[1]! }, actors.exporter);
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

const everything: Viewer = { orgId: null, allocations: 'related' };
const recipient = (orgId: string): Viewer => ({ orgId, allocations: 'received' });
const exporter = (orgId: string): Viewer => ({ orgId, allocations: 'related' });

async function all<T, K extends number | string>(fetch: (page: read.PageRequest<K>) => Promise<read.Page<T, K>>, limit: number): Promise<T[]> {
  const rows: T[] = [];
  let after: K | null = null;
  for (;;) {
    const page = await fetch({ after, limit });
    rows.push(...page.rows);
    if (page.nextAfter === null) return rows;
    after = page.nextAfter;
  }
}

describe('read queries', () => {
  it('pages shipments by creation order across id digit boundaries, without gaps or repeats', async () => {
    const rows = await all((page: read.PageRequest<number>) => read.listShipments(database.pool, everything, page), 7);
    expect(rows.map((row) => row.id)).toEqual(shipmentIds);
    expect(shipmentIds.some((id) => Number(id.slice(2)) >= 100)).toBe(true);
  });

  it('filters by tenant in SQL: a recipient sees its own rows only, an unknown and an invisible id look alike', async () => {
    const alpha = world.actors.alpha.orgId;
    const beta = world.actors.beta.orgId;
    const shipments = await all((page: read.PageRequest<number>) => read.listShipments(database.pool, recipient(alpha), page), 10);
    expect(shipments.length).toBe(60);
    expect(shipments.every((row) => row.recipient_org_id === alpha)).toBe(true);
    const allocations = await all((page: read.PageRequest<number>) => read.listAllocations(database.pool, recipient(alpha), page), 10);
    expect(allocations.map((row) => row.id).sort()).toEqual([world.allocations.alphaExport, world.allocations.alphaImport].sort());
    // Alpha holds the import licence, yet beta's allocation on it stays beta's.
    expect(await read.findAllocation(database.pool, recipient(alpha), world.allocations.betaImport)).toBeNull();
    expect(await read.findAllocation(database.pool, exporter(world.actors.exporter.orgId), world.allocations.betaImport)).not.toBeNull();
    const betaShipment = shipmentIds[0]!;
    expect(await read.findShipment(database.pool, recipient(alpha), betaShipment)).toBeNull();
    expect(await read.findShipment(database.pool, recipient(alpha), 'S-999999')).toBeNull();
    expect(await read.findShipment(database.pool, recipient(beta), betaShipment)).not.toBeNull();
    expect(await read.listShipmentSerials(database.pool, recipient(alpha), betaShipment, { after: null, limit: 10 })).toBeNull();
    const units = await all((page: read.PageRequest<string>) => read.listUnits(database.pool, recipient(beta), page), 9);
    expect(units.length).toBe(60);
    expect(units.every((row) => row.recipient_org_id === beta)).toBe(true);
    expect([...units.map((row) => row.serial)].sort()).toEqual(units.map((row) => row.serial));
    const events = await all((page: read.PageRequest<number>) => read.listEvents(database.pool, recipient(beta), page), 25);
    expect(events.every((row) => row.org_ids.includes(beta))).toBe(true);
    expect(events.some((row) => row.kind === 'shipment.book')).toBe(true);
  });

  it('pages a tenant\'s events from its cursor without gaps or repeats: every event it reads, in order', async () => {
    for (const orgId of [world.actors.alpha.orgId, world.actors.beta.orgId, world.actors.exporter.orgId]) {
      const readable = await database.pool.query<{ seq: number }>('SELECT seq FROM event_readers WHERE org_id = $1 ORDER BY seq', [orgId]);
      expect(readable.rows.length).toBeGreaterThan(20);
      const paged = await all((page: read.PageRequest<number>) => read.listEvents(database.pool, recipient(orgId), page), 7);
      expect(paged.map((row) => row.seq)).toEqual(readable.rows.map((row) => row.seq));
    }
  });

  it('reports utilisation per licence and allocation', async () => {
    const rows = await all((page: read.PageRequest<number>) => read.utilisation(database.pool, everything, page), 1);
    const exportLicence = rows.find((row) => row.id === world.exportLicenceId)!;
    expect(exportLicence.allocated_units).toBe(10_000);
    expect(exportLicence.reserved_units + exportLicence.shipped_units).toBe(180);
    const alphaExport = exportLicence.allocations.find((row) => row.id === world.allocations.alphaExport)!;
    expect(alphaExport.reserved_units + alphaExport.shipped_units).toBe(120);
    expect(alphaExport.shipped_units).toBe(2);
    const forAlpha = await all((page: read.PageRequest<number>) => read.utilisation(database.pool, recipient(world.actors.alpha.orgId), page), 5);
    expect(forAlpha.flatMap((row) => row.allocations).every((row) => row.recipient_org_id === world.actors.alpha.orgId)).toBe(true);
  });

  it('finds a token credential by id with its hash', async () => {
    const credential = await read.findTokenCredential(database.pool, 'TOK-none');
    expect(credential).toBeNull();
    await expect(read.ping(database.pool)).resolves.toBeUndefined();
  });
});
