/**
 * Migration 040: allocation.create and allocation.resize are in their licence's history. The
 * ledger names the licence as a further subject of both (ledger/handlers/allocations.ts); the
 * migration gives the events written before it the same rows, and adds nothing when run again
 * or over rows the ledger wrote.
 */
import { describe, expect, it } from 'vitest';
import { listMigrations } from './migrate.ts';
import type { Pool } from './pool.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';
import type { TestDatabase } from '../../test/database.ts';

let api: ApiWorld;
let database: TestDatabase;

apiWorldPerFile((made, db) => {
  api = made;
  database = db;
});

type Row = { subject_id: string; seq: number };
const key = (row: Row) => `${row.seq} ${row.subject_id}`;

async function allRows(reader: Pick<Pool, 'query'>): Promise<Row[]> {
  return (await reader.query('SELECT subject_id, seq::int FROM event_subjects ORDER BY seq, subject_id')).rows as Row[];
}

const migration = (version: number) => listMigrations().find((found) => found.version === version)!;

describe('migration 040', () => {
  it("gives each allocation event written before it its licence as a further subject, as the ledger writes it now", async () => {
    const { world } = api;
    const { actors, allocations } = world;
    await world.run('allocation.resize', { allocationId: allocations.alphaExport, units: 400 }, actors.bis);
    await world.run('allocation.resize', { allocationId: allocations.betaImport, units: 450 }, actors.mofcom);
    await world.run('allocation.resize', { allocationId: allocations.alphaExport, units: 420 }, actors.bis);
    // A unit event with a further subject of its own (038's), which 040 leaves alone.
    const { serials } = await api.shipment('own', 'delivered', 1);
    await world.run('units.deploy', { siteId: api.sites.alpha, serials }, actors.alpha);
    const site = String((await world.run('site.register', { name: 'Backfill 040', province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10 }, actors.alpha)).siteId);
    await world.run('units.deploy', { siteId: site, serials }, actors.alpha);

    // The truth, from the events alone: a creation's input names its licence, and a resize's
    // allocation is the one a creation made.
    const truth = (await database.pool.query<Row>(`
      SELECT (convert_from(c.canonical, 'UTF8')::jsonb -> 'input' ->> 'licenceId') AS subject_id, e.seq::int AS seq
      FROM events e JOIN events c ON c.kind = 'allocation.create' AND c.subject_id = e.subject_id
      WHERE e.kind IN ('allocation.create', 'allocation.resize') ORDER BY e.seq`)).rows;
    const allocationEvents = (await database.pool.query<{ kind: string; count: number }>(
      "SELECT kind, count(*)::int AS count FROM events WHERE kind LIKE 'allocation.%' GROUP BY kind ORDER BY kind")).rows;
    expect(allocationEvents.map((row) => row.kind)).toEqual(['allocation.create', 'allocation.resize']);
    expect(truth).toHaveLength(allocationEvents.reduce((sum, row) => sum + row.count, 0));
    expect(new Set(truth.map((row) => row.subject_id))).toEqual(new Set([world.exportLicenceId, world.importLicenceId, api.exporter2LicenceId, api.betaImportLicenceId]));

    // What the ledger wrote: each allocation event names its licence, once.
    const written = await allRows(database.pool);
    const allocationSeqs = new Set(truth.map((row) => row.seq));
    expect(written.filter((row) => allocationSeqs.has(row.seq)).map(key)).toEqual(truth.map(key));
    expect(written.some((row) => !allocationSeqs.has(row.seq))).toBe(true); // the move's

    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      // Run again over the rows the ledger wrote: nothing added, nothing refused.
      await client.query(migration(40).sql);
      expect(await allRows(client)).toEqual(written);
      // The same events as 039 left them: the table as 038 makes it from them, then 040, twice.
      await client.query('DROP TABLE event_subjects');
      await client.query(migration(38).sql);
      expect((await allRows(client)).filter((row) => allocationSeqs.has(row.seq))).toEqual([]);
      await client.query(migration(40).sql);
      expect(await allRows(client)).toEqual(written);
      await client.query(migration(40).sql);
      expect(await allRows(client)).toEqual(written);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    expect(await world.ledger.violations()).toEqual([]);
  });
});
