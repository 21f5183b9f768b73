/**
 * A GPU UUID another unit holds is refused in code, as one command's refusal, so the batch it
 * came in commits in one transaction with everyone else's commands (fairness review, s20
 * finding 2). Left to the unique index units_gpu_uuid_key, it failed the whole batch, which
 * the sequencer ran again in halves down to it: one organisation repeating such a booking
 * slowed every other organisation's bookings 6–60×. The refusal the client sees is the one the
 * index was answered with (ledger/refusals.ts), and that index stays behind the check.
 * Two exporters (test/support/server.ts): the exporter books to alpha ('own'), exporter2 to
 * beta ('other').
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk } from '../../../test/world.ts';
import { apiWorldPerFile, bookListing, type ApiWorld, type ManifestEntry } from '../../../test/support/server.ts';
import type { Answer } from '../batch-apply.ts';
import { toRefusal } from '../refusals.ts';

let database: TestDatabase;
let api: ApiWorld;

apiWorldPerFile((made, madeDatabase) => {
  api = made;
  database = madeDatabase;
});

const book = (side: 'own' | 'other', serials: ManifestEntry[]): Promise<Answer> => bookListing(api, side, serials);

const uuid = (n: number) => `GPU-0b5e0000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** What the unique index's refusal says (refusals.ts), as PostgreSQL 16 words the duplicate. */
function indexRefusal(gpuUuid: string): { code: string; rule: string | undefined; message: string; details: unknown } {
  const refusal = toRefusal(Object.assign(new Error('duplicate key value violates unique constraint "units_gpu_uuid_key"'), {
    code: '23505', table: 'units', constraint: 'units_gpu_uuid_key', detail: `Key (('GPU-'::text || lower(substr(gpu_uuid, 5))))=(${gpuUuid}) already exists.`,
  }));
  return { code: refusal.code, rule: refusal.rule, message: refusal.message, details: refusal.details };
}

function outcome(answer: Answer): 'accepted' | { code: string; rule: string | undefined; message: string; details: unknown } {
  return answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, details: answer.error.details };
}

/**
 * Submits the commands at once, so that they make one batch, and checks that it was one
 * transaction: one batch more, and none failed (a failed batch is run again in halves).
 */
async function inOneBatch(commands: Array<() => Promise<Answer>>): Promise<Answer[]> {
  const { stats } = api.world.ledger.sequencer;
  const batches = stats.batches;
  const failed = stats.failedBatches;
  const answers = await Promise.all(commands.map((command) => command()));
  expect({ batches: stats.batches - batches, failedBatches: stats.failedBatches - failed }).toEqual({ batches: 1, failedBatches: 0 });
  return answers;
}

async function gpuUuidOf(serial: string): Promise<string | null | undefined> {
  return (await database.pool.query<{ gpu_uuid: string | null }>('SELECT gpu_uuid FROM units WHERE serial = $1', [serial])).rows[0]?.gpu_uuid;
}

describe('a booking giving a GPU UUID another unit holds', () => {
  it('is refused in its batch, as the index refused it, and the other organisation’s bookings in that batch commit with it in one transaction', async () => {
    const held = uuid(1);
    const holder = api.serial('HOLD');
    expectOk(await book('other', [{ serial: holder, gpuUuid: held }]));
    const clash = api.serial('CLASH');
    const answers = await inOneBatch([
      () => book('own', [api.serial('B')]),
      () => book('other', [{ serial: clash, gpuUuid: held }]),
      () => api.world.ledger.submit('shipment.book', {
        exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 3, deadline: '2026-06-01T00:00:00Z',
      }, api.world.actors.exporter),
      () => book('own', [api.serial('B'), api.serial('B')]),
    ]);
    expect(answers.map(outcome)).toEqual(['accepted', indexRefusal(held), 'accepted', 'accepted']);
    expect(await gpuUuidOf(clash)).toBeUndefined();
    expect(await gpuUuidOf(holder)).toBe(held);
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('is refused in code when an earlier command of the same batch gave it, the earlier one kept', async () => {
    const given = uuid(2);
    const [first, second] = [api.serial('FIRST'), api.serial('SECOND')];
    const answers = await inOneBatch([
      () => book('own', [{ serial: first, gpuUuid: given }]),
      () => book('other', [{ serial: second, gpuUuid: given }]),
    ]);
    expect(answers.map(outcome)).toEqual(['accepted', indexRefusal(given)]);
    expect([await gpuUuidOf(first), await gpuUuidOf(second)]).toEqual([given, undefined]);
  });

  it('is free again when the manifest that gave it is refused for another entry, for a later command of the same batch', async () => {
    const given = uuid(6);
    const live = api.serial('LIVE');
    expectOk(await book('own', [live]));
    const [undone, taker] = [api.serial('UNDONE'), api.serial('TAKER')];
    const answers = await inOneBatch([
      () => book('own', [{ serial: undone, gpuUuid: given }, live]),
      () => book('other', [{ serial: taker, gpuUuid: given }]),
    ]);
    expect(answers.map((answer) => (answer.ok ? 'accepted' : answer.error.rule))).toEqual(['invariant-4', 'accepted']);
    expect([await gpuUuidOf(undone), await gpuUuidOf(taker)]).toEqual([undefined, given]);
  });

  it('is accepted when the booking that gave it is cancelled earlier in the same batch, whose release frees it', async () => {
    const freed = uuid(3);
    const holder = api.serial('FREED');
    const listed = String(expectOk(await book('other', [{ serial: holder, gpuUuid: freed }])).shipmentId);
    const taker = api.serial('TAKER');
    const answers = await inOneBatch([
      () => api.world.ledger.submit('shipment.cancel', { shipmentId: listed }, api.exporter2),
      () => book('own', [{ serial: taker, gpuUuid: freed }]),
    ]);
    expect(answers.map(outcome)).toEqual(['accepted', 'accepted']);
    expect([await gpuUuidOf(holder), await gpuUuidOf(taker)]).toEqual([null, freed]);
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('is accepted when the unit that held it was let go and listed again with another earlier in the same batch: a holder is judged by its GPU UUID now', async () => {
    const [released, relisted] = [uuid(7), uuid(8)];
    const holder = api.serial('RELISTED');
    const listed = String(expectOk(await book('other', [{ serial: holder, gpuUuid: released }])).shipmentId);
    const taker = api.serial('TAKER');
    const answers = await inOneBatch([
      () => api.world.ledger.submit('shipment.cancel', { shipmentId: listed }, api.exporter2),
      () => book('other', [{ serial: holder, gpuUuid: relisted }]),
      () => book('own', [{ serial: taker, gpuUuid: released }]),
    ]);
    expect(answers.map(outcome)).toEqual(['accepted', 'accepted', 'accepted']);
    expect([await gpuUuidOf(holder), await gpuUuidOf(taker)]).toEqual([relisted, released]);
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('is refused in code when another unit holds it in the upper case of a unit listed before migration 025', async () => {
    const legacy = 'GPU-0B5E0000-0000-4000-8000-00000000ABCD';
    const holder = api.serial('LEGACY');
    expectOk(await book('other', [{ serial: holder, gpuUuid: legacy }]));
    // As on a database migrated from 024: the GPU UUID as it was given, rules 019 and 025 off for the write.
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE units DISABLE TRIGGER units_keep_identity, DISABLE TRIGGER units_gpu_uuid_canonical_update');
      await client.query('UPDATE units SET gpu_uuid = $1 WHERE serial = $2', [legacy, holder]);
      await client.query('ALTER TABLE units ENABLE TRIGGER units_keep_identity, ENABLE TRIGGER units_gpu_uuid_canonical_update');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const answers = await inOneBatch([
      () => book('own', [{ serial: api.serial('NEW'), gpuUuid: legacy.toLowerCase().replace('gpu-', 'GPU-') }]),
      () => book('own', [api.serial('B')]),
    ]);
    expect(answers.map(outcome)).toEqual([indexRefusal('GPU-0b5e0000-0000-4000-8000-00000000abcd'), 'accepted']);
    expect(await gpuUuidOf(holder)).toBe(legacy);
  });

  it('is accepted when it is the unit’s own, given again to the unit listed again, beside a clash refused in the same batch', async () => {
    const { run, actors } = api.world;
    const own = uuid(5);
    const serial = (await api.shipment('own', 'delivered', 1)).serials[0]!;
    await run('units.return', { serials: [serial], reason: 'RMA' }, actors.alpha);
    const listed = String(expectOk(await book('own', [{ serial, gpuUuid: own }])).shipmentId);
    await run('shipment.ship', { shipmentId: listed }, actors.exporter);
    await run('shipment.clear', { shipmentId: listed }, actors.alpha);
    await run('shipment.deliver', { shipmentId: listed }, actors.alpha);
    await run('units.return', { serials: [serial], reason: 'RMA' }, actors.alpha);
    const answers = await inOneBatch([
      () => book('own', [{ serial, gpuUuid: own }]),
      () => book('other', [{ serial: api.serial('THEIRS'), gpuUuid: own }]),
    ]);
    expect(answers.map(outcome)).toEqual(['accepted', indexRefusal(own)]);
    expect(await gpuUuidOf(serial)).toBe(own);
    expect(await api.world.ledger.violations()).toEqual([]);
  });
});
