/**
 * One GPU, one unit, whatever the case its UUID is written in (invariant 4): a GPU UUID is
 * stored as `GPU-` and lower-case hex (schemas.ts), so the manifest's duplicate check and the
 * unique index units_gpu_uuid_key see case variants as the GPU they are; the database
 * refuses any other spelling (migration 025, units_gpu_uuid_canonical).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { firstRefusal } from '../../../test/support/rolled-back.ts';
import { worldPerFile, expectOk, type World } from '../../../test/world.ts';
import type { Answer } from '../ledger.ts';
import { canonicalGpuUuid, manifest } from '../schemas.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const lower = 'GPU-abcdef12-aaaa-bbbb-cccc-123456789012';
const upper = 'GPU-ABCDEF12-AAAA-BBBB-CCCC-123456789012';

/** Books one unit per entry, the exporter to alpha (or beta). */
function book(serials: Array<{ serial: string; gpuUuid?: string }>, recipient: 'alpha' | 'beta' = 'alpha'): Promise<Answer> {
  const { allocations, productId, actors } = world;
  return world.ledger.submit('shipment.book', {
    exportAllocationId: recipient === 'alpha' ? allocations.alphaExport : allocations.betaExport,
    importAllocationId: recipient === 'alpha' ? allocations.alphaImport : allocations.betaImport,
    productId, units: serials.length, deadline: '2026-03-01T00:00:00Z', serials,
  }, actors.exporter);
}

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string } {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, message: answer.error.message };
}

async function gpuUuidOf(serial: string): Promise<string | undefined> {
  return (await database.pool.query<{ gpu_uuid: string }>('SELECT gpu_uuid FROM units WHERE serial = $1', [serial])).rows[0]?.gpu_uuid;
}

describe('the GPU UUID of a manifest entry', () => {
  it('is read in its one spelling: GPU- and lower-case hex, as the CLI’s CSV reader compares them', () => {
    expect(canonicalGpuUuid(upper)).toBe(lower);
    expect(manifest.parse([{ serial: 'S1', gpuUuid: upper }, { serial: 'S2', gpuUuid: 'GPU-AbC00000-0000-0000-0000-00001234dEf5' }, 'S3'])).toEqual([
      { serial: 'S1', gpuUuid: lower }, { serial: 'S2', gpuUuid: 'GPU-abc00000-0000-0000-0000-00001234def5' }, 'S3',
    ]);
    // The prefix is not a matter of case: nvidia-smi prints GPU-.
    expect(manifest.safeParse([{ serial: 'S1', gpuUuid: 'gpu-abcdef12-0000' }]).success).toBe(false);
  });
});

describe('one GPU under two serials, by letter case', () => {
  it('is refused within one manifest, naming the GPU UUID', async () => {
    expect(refusal(await book([{ serial: 'U1', gpuUuid: lower }, { serial: 'U2', gpuUuid: upper }]))).toEqual({
      code: 'conflict', rule: 'invariant-4', message: `GPU UUID ${lower} appears twice in the manifest`,
    });
    expect(await gpuUuidOf('U1')).toBeUndefined();
  });

  it('is refused across shipments by the unique index, and the first is stored in lower case', async () => {
    expectOk(await book([{ serial: 'U3', gpuUuid: upper }]));
    expect(await gpuUuidOf('U3')).toBe(lower);
    for (const spelling of [lower, 'GPU-ABCDEF12-aaaa-bbbb-cccc-123456789012']) {
      expect(refusal(await book([{ serial: 'U4', gpuUuid: spelling }], 'beta'))).toMatchObject({ code: 'conflict', rule: 'unit-gpu-uuid' });
    }
    expect(await gpuUuidOf('U4')).toBeUndefined();
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('the database keeps GPU UUIDs in one spelling (migration 025)', () => {
  it('refuses a unit written with upper-case hex, new or given one later', async () => {
    const booked = String(expectOk(await book([{ serial: 'DBU-1' }])).shipmentId);
    const insert = await firstRefusal(database.pool, [
      `INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, updated_seq) VALUES ('DBU-2', $1, $2, $3, 'licensed', $4, 999999)`,
      ['GPU-FEEDFACE-0000-0000-0000-000000000001', world.productId, world.actors.alpha.orgId, booked],
    ]);
    expect(insert).toEqual({ code: '23514', message: 'unit DBU-2 has GPU UUID GPU-FEEDFACE-0000-0000-0000-000000000001; a GPU UUID is stored as GPU- and lower-case hex (GPU-feedface-0000-0000-0000-000000000001)' });
    expect((await firstRefusal(database.pool, [`UPDATE units SET gpu_uuid = $1 WHERE serial = 'DBU-1'`, ['GPU-00AA0000-0000-0000-0000-000000000001']]))?.code).toBe('23514');
    expect(await firstRefusal(database.pool, [`UPDATE units SET gpu_uuid = $1 WHERE serial = 'DBU-1'`, ['GPU-00aa0000-0000-0000-0000-000000000001']])).toBeUndefined();
  });

  it('lets a unit stored in upper case before the rule ship, arrive, come back and be listed again, keeping its GPU UUID', async () => {
    const { run, actors } = world;
    const oldUuid = 'GPU-0DD00000-0000-0000-0000-00001234ABCD';
    const first = String(expectOk(await book([{ serial: 'OLD-1', gpuUuid: oldUuid }])).shipmentId);
    // As on a database migrated from 024: the GPU UUID as it was given, rules 019 and 025 off for the write.
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE units DISABLE TRIGGER units_keep_identity, DISABLE TRIGGER units_gpu_uuid_canonical_update');
      await client.query(`UPDATE units SET gpu_uuid = $1 WHERE serial = 'OLD-1'`, [oldUuid]);
      await client.query('ALTER TABLE units ENABLE TRIGGER units_keep_identity, ENABLE TRIGGER units_gpu_uuid_canonical_update');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await run('shipment.ship', { shipmentId: first }, actors.exporter);
    await run('shipment.clear', { shipmentId: first }, actors.alpha);
    await run('shipment.deliver', { shipmentId: first }, actors.alpha);
    await run('units.return', { serials: ['OLD-1'], reason: 'faulty' }, actors.alpha);
    // Given again in any case, it is the same GPU: listed, its stored spelling kept.
    expectOk(await book([{ serial: 'OLD-1', gpuUuid: oldUuid }]));
    expect(await gpuUuidOf('OLD-1')).toBe(oldUuid);
    // And no other serial may record that GPU, in its new spelling (migration 027's index).
    expect(refusal(await book([{ serial: 'OLD-2', gpuUuid: 'GPU-0dd00000-0000-0000-0000-00001234abcd' }], 'beta'))).toMatchObject({ code: 'conflict', rule: 'unit-gpu-uuid' });
    expect(await gpuUuidOf('OLD-2')).toBeUndefined();
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('migration 027 on a database that recorded one GPU twice, in two cases', () => {
  it('stops and names the serials, rather than build its index over the clash', async () => {
    const migration = readFileSync(new URL('../../store/migrations/027_units_gpu_uuid_any_case.sql', import.meta.url), 'utf8');
    const shipmentId = String(expectOk(await book([{ serial: 'CLASH-1', gpuUuid: 'GPU-c1a50000-0000-0000-0000-000000000001' }, { serial: 'CLASH-2' }])).shipmentId);
    expect(shipmentId).toBeTruthy();
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      // As a database at 026 could hold: the byte-wise index, and the GPU under a second serial in upper case.
      await client.query(`DROP INDEX units_gpu_uuid_key; CREATE UNIQUE INDEX units_gpu_uuid_key ON units (gpu_uuid) WHERE gpu_uuid IS NOT NULL`);
      await client.query('ALTER TABLE units DISABLE TRIGGER units_keep_identity, DISABLE TRIGGER units_gpu_uuid_canonical_update');
      await client.query(`UPDATE units SET gpu_uuid = 'GPU-C1A50000-0000-0000-0000-000000000001' WHERE serial = 'CLASH-2'`);
      await expect(client.query(migration)).rejects.toThrow(/one GPU under several serials, their GPU UUIDs differing only in case \(invariant 4\): GPU-c1a50000-0000-0000-0000-000000000001 \(serials CLASH-1, CLASH-2\)/);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    // Without the clash it runs, and the index it leaves refuses the second spelling.
    const again = await database.pool.connect();
    try {
      await again.query('BEGIN');
      await again.query(migration);
      await expect(again.query(`UPDATE units SET gpu_uuid = 'GPU-c1a50000-0000-0000-0000-000000000001' WHERE serial = 'CLASH-2'`)).rejects.toThrow(/units_gpu_uuid_key/);
    } finally {
      await again.query('ROLLBACK');
      again.release();
    }
  });
});
