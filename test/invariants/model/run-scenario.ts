/**
 * One run: a fresh database and world from the template, two ledgers on it, the model built
 * from the world's rows, the steps walked, and at the end the database's balances compared
 * with the model's.
 */
import { expect } from 'vitest';
import { Ledger } from '../../../src/ledger/ledger.ts';
import { createPool } from '../../../src/store/pool.ts';
import type { World } from '../../world.ts';
import type { LedgerModel } from './ledger-model.ts';
import { hourMs, type Step } from './commands.ts';
import type { Coverage } from './coverage.ts';
import { Run } from './run.ts';
import { worldTemplate } from './world.ts';
import { testSealingKey } from '../../support/sealing-key.ts';
import { replayFindings } from '../../support/replay.ts';

export async function runScenario(steps: Step[], coverage: Coverage): Promise<void> {
  const fresh = await (await worldTemplate()).fresh();
  const { world, pool } = fresh;
  const secondPool = createPool({ url: fresh.url, connectionsMax: 4, applicationName: 'chipledger-test-second-ledger' });
  const second = await Ledger.open({ logSealingKey: testSealingKey, pool: secondPool, clock: world.clock });
  try {
    const size = Number((await pool.query('SELECT size FROM log_head')).rows[0].size);
    const sites = (await pool.query<{ id: string }>('SELECT id FROM sites ORDER BY created_seq')).rows.map((row) => row.id);
    const run = new Run(world, size, sites, coverage, [world.ledger, second]);
    await loadModel(run.model, pool);
    for (const next of steps) {
      if (next.kind === 'advance') {
        world.clock.advanceMs(next.ms);
        run.model.nowMs += next.ms;
        run.log.push(`(clock +${next.ms / hourMs} h)`);
        continue;
      }
      await run.runGroup(next.commands, next.writer);
    }
    await compareBalances(run, pool);
    // The log, replayed command by command through the rules, makes this state exactly: the
    // groups above went in batches, to two ledgers, and the replay sends the commands of each
    // recorded instant together, to one ledger with no row cache (ledger/replay).
    const { report, differences } = await replayFindings(pool);
    expect(report.divergence, run.log.join('\n')).toBeUndefined();
    expect(differences, run.log.join('\n')).toEqual([]);
  } finally {
    await second.close();
    await secondPool.end();
    await fresh.drop();
  }
}

/** Each serial live in a shipment, with it: a unit is its shipment's manifest line while that is under way (migration 075). */
const liveSerialsSql = `SELECT u.serial, u.shipment_id FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE s.status IN ('booked', 'shipped', 'cleared') ORDER BY u.serial`;

/** The world as the template left it, read once into the model: licences, allocations, sites, shipments, units and live serials. */
async function loadModel(model: LedgerModel, pool: World['ledger']['pool']): Promise<void> {
  const rows = async (sql: string) => (await pool.query(sql)).rows;
  const suppliers = await rows("SELECT licence_id, org_id FROM licence_parties WHERE role = 'supplier' ORDER BY org_id");
  for (const row of await rows('SELECT * FROM licences ORDER BY created_seq')) {
    model.licences.set(row.id, {
      id: row.id, authorityOrgId: row.authority_org_id, holderOrgId: row.holder_org_id,
      supplierOrgIds: suppliers.filter((party) => party.licence_id === row.id).map((party) => party.org_id), direction: row.direction, authorisedUnits: row.authorised_units,
      allocatedUnits: row.allocated_units, shippedUnits: row.shipped_units, status: row.status,
      validFromMs: Date.parse(row.valid_from), validToMs: Date.parse(row.valid_to), version: row.version,
    });
  }
  for (const row of await rows('SELECT * FROM allocations ORDER BY created_seq')) {
    model.allocations.set(row.id, { id: row.id, licenceId: row.licence_id, recipientOrgId: row.recipient_org_id, units: row.units, reservedUnits: row.reserved_units, shippedUnits: row.shipped_units });
  }
  for (const row of await rows('SELECT id, country FROM organisations')) model.countries.set(row.id, row.country);
  for (const row of await rows('SELECT * FROM sites ORDER BY created_seq')) {
    model.sites.set(row.id, { id: row.id, orgId: row.org_id, country: row.country, capacityUnits: row.capacity_units, deployedUnits: row.deployed_units });
  }
  for (const row of await rows('SELECT * FROM shipments ORDER BY created_seq')) {
    model.shipments.set(row.id, {
      id: row.id, exporterOrgId: row.exporter_org_id, exportAllocationId: row.export_allocation_id, importAllocationId: row.import_allocation_id, recipientOrgId: row.recipient_org_id,
      units: row.units, status: row.status, deadlineMs: Date.parse(row.deadline), serialCount: row.serial_count,
    });
  }
  for (const row of await rows('SELECT * FROM units ORDER BY serial')) {
    model.units.set(row.serial, {
      serial: row.serial, custody: row.custody, shipmentId: row.shipment_id, siteId: row.site_id, recipientOrgId: row.recipient_org_id,
      gpuUuid: row.gpu_uuid, everShipped: row.ever_shipped, gpuUuidShipped: row.gpu_uuid_shipped,
    });
  }
  for (const row of await rows(liveSerialsSql)) model.live.set(row.serial, row.shipment_id);
}

/** The database's balances next to the model's, table by table. */
async function compareBalances(run: { model: LedgerModel }, pool: World['ledger']['pool']): Promise<void> {
  const { model } = run;
  const query = async (sql: string) => (await pool.query(sql)).rows;
  const sortById = <T extends { id?: string; serial?: string }>(rows: T[]) => rows.sort((a, b) => String(a.id ?? a.serial).localeCompare(String(b.id ?? b.serial)));
  expect(await query('SELECT id, units, reserved_units, shipped_units FROM allocations ORDER BY id')).toEqual(sortById(
    [...model.allocations.values()].map((a) => ({ id: a.id, units: a.units, reserved_units: a.reservedUnits, shipped_units: a.shippedUnits }))));
  expect(await query('SELECT id, status, allocated_units, shipped_units FROM licences ORDER BY id')).toEqual(sortById(
    [...model.licences.values()].map((l) => ({ id: l.id, status: l.status, allocated_units: l.allocatedUnits, shipped_units: l.shippedUnits }))));
  expect(await query('SELECT id, status, units, serial_count FROM shipments ORDER BY id')).toEqual(sortById(
    [...model.shipments.values()].map((s) => ({ id: s.id, status: s.status, units: s.units, serial_count: s.serialCount }))));
  expect(await query('SELECT serial, custody, shipment_id, site_id, gpu_uuid, ever_shipped, gpu_uuid_shipped FROM units ORDER BY serial')).toEqual(sortById(
    [...model.units.values()].map((u) => ({ serial: u.serial, custody: u.custody, shipment_id: u.shipmentId, site_id: u.siteId, gpu_uuid: u.gpuUuid, ever_shipped: u.everShipped, gpu_uuid_shipped: u.gpuUuidShipped }))));
  expect(await query('SELECT id, authorised_units, valid_to, version FROM licences ORDER BY id')).toEqual(sortById(
    [...model.licences.values()].map((l) => ({ id: l.id, authorised_units: l.authorisedUnits, valid_to: new Date(l.validToMs).toISOString(), version: l.version }))));
  expect(await query('SELECT id, deployed_units FROM sites ORDER BY id')).toEqual(sortById(
    [...model.sites.values()].map((s) => ({ id: s.id, deployed_units: s.deployedUnits }))));
  expect(await query(liveSerialsSql)).toEqual(
    [...model.live].sort(([a], [b]) => a.localeCompare(b)).map(([serial, shipmentId]) => ({ serial, shipment_id: shipmentId })));
  expect(await query('SELECT (SELECT size FROM log_head) AS size, count(*)::int AS events, coalesce(max(seq), -1) AS max_seq FROM events'))
    .toEqual([{ size: model.seq, events: model.seq, max_seq: model.seq - 1 }]);
  expect(await query('SELECT * FROM ledger_violations()')).toEqual([]);
}
