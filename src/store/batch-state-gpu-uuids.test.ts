/**
 * The batch's look-up of the units holding the GPU UUIDs it gives (keys.gpuUuids,
 * unitsByGpuUuidSql): every holder, in any spelling the unique index units_gpu_uuid_key takes
 * for the same GPU, by that index, and no round trip for a batch that gives none. The ledger's
 * refusal of a clash in code stands on it (ledger/handlers/gpu-uuid-batch.test.ts). And the
 * plan of its sibling, the look-up of units by serial (unitsBySerialSql).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import { manifestKeys } from '../ledger/handlers/manifests.ts';
import { emptyKeys } from './batch-keys.ts';
import { loadBatchState, unitsByGpuUuidSql, unitsBySerialSql } from './batch-state.ts';
import type { PoolClient } from './pool.ts';

let world: World;
let database: TestDatabase;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const held = 'GPU-5e1d0000-0000-4000-8000-000000000001';
const legacy = 'GPU-5E1D0000-0000-4000-8000-0000000000AB';

/** Books the units, the exporter to alpha; the shipment's id. */
async function book(serials: Array<{ serial: string; gpuUuid?: string }>): Promise<string> {
  const { allocations, productId, actors } = world;
  return String(expectOk(await world.ledger.submit('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: serials.length, deadline: '2026-06-01T00:00:00Z', serials,
  }, actors.exporter)).shipmentId);
}

/** The statements a load runs, by their text. */
async function loadCounting(keys: ReturnType<typeof emptyKeys>): Promise<{ serials: string[]; statements: string[] }> {
  const client = await database.pool.connect();
  const statements: string[] = [];
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const first = args[0] as string | { text: string };
    statements.push(typeof first === 'string' ? first : first.text);
    return query(...args);
  };
  try {
    const loaded = await loadBatchState(client, keys);
    return { serials: loaded.units.map((unit) => unit.serial).sort(), statements };
  } finally {
    (client as unknown as { query: unknown }).query = query;
    client.release();
  }
}

describe('the units holding the GPU UUIDs a batch gives', () => {
  it('are loaded once each, a holder listed before migration 025 in upper case too; a manifest without GPU UUIDs, or giving units their own, looks none up', async () => {
    await book([{ serial: 'HELD-1', gpuUuid: held }, { serial: 'LEGACY-1', gpuUuid: legacy }, { serial: 'PLAIN-1' }]);
    // As on a database migrated from 024: the GPU UUID as it was given, rules 019 and 025 off for the write.
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE units DISABLE TRIGGER units_keep_identity, DISABLE TRIGGER units_gpu_uuid_canonical_update');
      await client.query(`UPDATE units SET gpu_uuid = $1 WHERE serial = 'LEGACY-1'`, [legacy]);
      await client.query('ALTER TABLE units ENABLE TRIGGER units_keep_identity, ENABLE TRIGGER units_gpu_uuid_canonical_update');
      await client.query('COMMIT');
    } finally {
      client.release();
    }

    const keys = emptyKeys();
    // A new serial with the held GPU UUID, the legacy one in upper case (read in its one spelling), and a holder named by serial too.
    manifestKeys([{ serial: 'NEW-1', gpuUuid: held }, { serial: 'NEW-2', gpuUuid: legacy }, { serial: 'HELD-1', gpuUuid: held }], keys);
    expect([...keys.gpuUuids].sort()).toEqual([held, legacy.slice(0, 4) + legacy.slice(4).toLowerCase()].sort());
    const found = await loadCounting(keys);
    expect(found.serials).toEqual(['HELD-1', 'LEGACY-1']);
    expect(found.statements.filter((text) => text === unitsByGpuUuidSql)).toHaveLength(1);

    // Its own GPU UUID given with a unit named by serial: that unit is its one holder, already loaded.
    const own = emptyKeys();
    manifestKeys([{ serial: 'HELD-1', gpuUuid: held }], own);
    const again = await loadCounting(own);
    expect(again.serials).toEqual(['HELD-1']);
    expect(again.statements.filter((text) => text === unitsByGpuUuidSql)).toEqual([]);

    // Its own GPU UUID given with the legacy unit named by serial: looked up, as its upper case is not the key's spelling, and loaded once all the same.
    const legacyOwn = emptyKeys();
    manifestKeys([{ serial: 'LEGACY-1', gpuUuid: legacy }], legacyOwn);
    const once = await loadCounting(legacyOwn);
    expect(once.serials).toEqual(['LEGACY-1']);
    expect(once.statements.filter((text) => text === unitsByGpuUuidSql)).toHaveLength(1);

    const plain = emptyKeys();
    manifestKeys(['NEW-3', { serial: 'NEW-4' }], plain);
    expect(plain.gpuUuids.size).toBe(0);
    const none = await loadCounting(plain);
    expect(none.serials).toEqual([]);
    expect(none.statements.filter((text) => text.includes('gpu_uuid'))).toEqual([]);
  });

  it('reads units_gpu_uuid_key, at 5,000 units with GPU UUIDs, in its cached plan', async () => {
    const shipmentId = await book([{ serial: 'PLAN-0' }]);
    const plan = await inRolledBack(database.pool, async (client: PoolClient) => {
      await client.query(`INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, updated_seq)
        SELECT 'PLAN-' || n, 'GPU-' || lpad(to_hex(n), 8, '0') || '-0000-4000-8000-000000000000', product_id, recipient_org_id, 'licensed', shipment_id, updated_seq
        FROM units, generate_series(1, 5000) AS n WHERE serial = 'PLAN-0'`);
      expect(shipmentId).toBeTruthy();
      await client.query('ANALYZE units');
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE gpu_uuid_holders(text[]) AS ${unitsByGpuUuidSql}`);
      try {
        return (await client.query(`EXPLAIN EXECUTE gpu_uuid_holders('{GPU-00000011-0000-4000-8000-000000000000}')`)).rows.map((row) => row['QUERY PLAN']).join('\n');
      } finally {
        await client.query('DEALLOCATE gpu_uuid_holders');
      }
    });
    expect(plan).toMatch(/Index Scan using units_gpu_uuid_key|Bitmap Index Scan on units_gpu_uuid_key/);
  });
});

describe('the units of the serials a batch names', () => {
  // A manifest's 100,000 serials took 66 ms to plan when the planner weighed each against the
  // statistics; from a sub-select the array is a value of the plan's start (InitPlan), unread
  // by the planner, and the plan the same probes of the primary key.
  it('reads units_pkey for the serials, which the planner does not weigh one by one', async () => {
    const shipmentId = await book([{ serial: 'PROBE-0' }]);
    const plan = await inRolledBack(database.pool, async (client: PoolClient) => {
      await client.query(`INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, updated_seq)
        SELECT 'PROBE-' || n, NULL, product_id, recipient_org_id, 'licensed', shipment_id, updated_seq
        FROM units, generate_series(1, 5000) AS n WHERE serial = 'PROBE-0'`);
      expect(shipmentId).toBeTruthy();
      await client.query('ANALYZE units');
      return (await client.query(`EXPLAIN ${unitsBySerialSql}`, [['PROBE-7', 'PROBE-11', 'PROBE-NONE']])).rows.map((row) => row['QUERY PLAN']).join('\n');
    });
    expect(plan).toMatch(/Index Scan using units_pkey|Bitmap Index Scan on units_pkey/);
    expect(plan).toMatch(/InitPlan/);
  });
});
