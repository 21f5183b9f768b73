/**
 * A GPU UUID another unit already has (the unique index units_gpu_uuid_key, migrations 008
 * and 027) is refused with a rule of its own, naming the UUID: no SQL text, no index, and
 * words that do not say whose unit holds it (s13 review, units #6). Before, it was
 * invariant-4's "second listing", quoting the database's key expression.
 */
import { describe, expect, it } from 'vitest';
import { worldPerFile, type World } from '../../test/world.ts';
import { toRefusal } from './refusals.ts';

let world: World;

worldPerFile((made) => {
  world = made;
});

const clash = 'GPU-f03051f0-1111-2222-3333-444455556666';
/** As PostgreSQL 16 reports a duplicate in units_gpu_uuid_key (an expression index). */
const databaseError = (detail: string | undefined) => Object.assign(new Error('duplicate key value violates unique constraint "units_gpu_uuid_key"'), {
  code: '23505', table: 'units', constraint: 'units_gpu_uuid_key', ...(detail === undefined ? {} : { detail }),
});

describe('a GPU UUID already recorded', () => {
  it('is refused as unit-gpu-uuid, naming the UUID and nothing of the database', () => {
    const refusal = toRefusal(databaseError(`Key (('GPU-'::text || lower(substr(gpu_uuid, 5))))=(${clash}) already exists.`));
    expect({ code: refusal.code, rule: refusal.rule, details: refusal.details }).toEqual({ code: 'conflict', rule: 'unit-gpu-uuid', details: { gpuUuid: clash } });
    expect(refusal.message).toBe(`GPU UUID ${clash} is already recorded for another unit; a GPU is one unit (invariant 4), so the serial cannot be listed with it`);
    // Without a detail to read the UUID from, the same rule, in words that name none.
    const bare = toRefusal(databaseError(undefined));
    expect({ rule: bare.rule, details: bare.details }).toEqual({ rule: 'unit-gpu-uuid', details: undefined });
    expect(bare.message).not.toMatch(/units_gpu_uuid_key|duplicate key/);
  });

  it('is answered so through the ledger, with the other unit\'s shipment, recipient and serial left unsaid', async () => {
    const { allocations, productId, actors } = world;
    const book = (recipient: 'alpha' | 'beta', serial: string) => world.ledger.submit('shipment.book', {
      exportAllocationId: recipient === 'alpha' ? allocations.alphaExport : allocations.betaExport,
      importAllocationId: recipient === 'alpha' ? allocations.alphaImport : allocations.betaImport,
      productId, units: 1, deadline: '2026-03-01T00:00:00Z', serials: [{ serial, gpuUuid: serial === 'UUID-FIRST' ? clash : clash.toUpperCase() }],
    }, actors.exporter);
    const first = await book('alpha', 'UUID-FIRST');
    if (!first.ok) expect.fail(first.error.message);
    const second = await book('beta', 'UUID-SECOND');
    if (second.ok) expect.fail('the second unit with the same GPU UUID was accepted');
    expect({ code: second.error.code, rule: second.error.rule, details: second.error.details }).toEqual({ code: 'conflict', rule: 'unit-gpu-uuid', details: { gpuUuid: clash } });
    for (const unsaid of ['UUID-FIRST', String(first.body.shipmentId), actors.alpha.orgId, 'units_gpu_uuid_key', 'Key (', 'second listing']) {
      expect(second.error.message, unsaid).not.toContain(unsaid);
    }
    expect((await world.ledger.pool.query(`SELECT 1 FROM units WHERE serial = 'UUID-SECOND'`)).rowCount).toBe(0);
    expect(await world.ledger.violations()).toEqual([]);
  });
});
