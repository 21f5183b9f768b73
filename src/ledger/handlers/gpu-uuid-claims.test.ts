/**
 * A GPU UUID is a unit's for good once it ships with it, not when a booking lists it
 * (migration 037, gpu_uuid_shipped): a booking that ends unshipped lets go of every GPU UUID
 * it gave, on a unit that shipped before (returned and listed again) as on a new one, so no
 * exporter keeps another's GPU by listing its own returned unit with that GPU's UUID and
 * cancelling. Two exporters (test/support/server.ts): the exporter ships to alpha, exporter2
 * to beta. The database's side of these rules is in store/constraints-037.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk } from '../../../test/world.ts';
import { apiWorldPerFile, bookListing, type ApiWorld, type ManifestEntry } from '../../../test/support/server.ts';
import type { Answer } from '../batch-apply.ts';

let database: TestDatabase;
let api: ApiWorld;

apiWorldPerFile((made, madeDatabase) => {
  api = made;
  database = madeDatabase;
});

const book = (side: 'own' | 'other', serials: ManifestEntry[]): Promise<Answer> => bookListing(api, side, serials);

function ruleOf(answer: Answer): string | undefined {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return answer.error.rule;
}

async function unitRow(serial: string) {
  const result = await database.pool.query('SELECT custody, shipment_id, gpu_uuid, ever_shipped, gpu_uuid_shipped FROM units WHERE serial = $1', [serial]);
  return result.rows[0];
}

/** A unit the exporter shipped without a GPU UUID (as most are), delivered to alpha and returned. */
async function returnedUnit(): Promise<string> {
  const serial = (await api.shipment('own', 'delivered', 1)).serials[0]!;
  await api.world.run('units.return', { serials: [serial], reason: 'RMA' }, api.world.actors.alpha);
  return serial;
}

const uuid = (n: number, tag: string) => `GPU-${tag}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

describe('a GPU UUID given to a unit that shipped before', () => {
  it('is let go when the booking that gave it is cancelled: the GPU it names can be listed by its own exporter, and the unit with its true one', async () => {
    const { run, actors } = api.world;
    const serial = await returnedUnit();
    const theirs = uuid(1, 'bbbbbbbb');
    const listed = expectOk(await book('own', [{ serial, gpuUuid: theirs }]));
    expect(await unitRow(serial)).toMatchObject({ gpu_uuid: theirs, gpu_uuid_shipped: false });
    // While the booking lasts it is the unit's, as any listing's claim.
    expect(ruleOf(await book('other', [{ serial: api.serial('REAL'), gpuUuid: theirs }]))).toBe('unit-gpu-uuid');

    await run('shipment.cancel', { shipmentId: String(listed.shipmentId) }, actors.exporter);
    expect(await unitRow(serial)).toMatchObject({ custody: 'licensed', gpu_uuid: null, ever_shipped: true, gpu_uuid_shipped: false });
    expectOk(await book('other', [{ serial: api.serial('REAL'), gpuUuid: theirs }]));
    const own = uuid(2, 'cccccccc');
    expectOk(await book('own', [{ serial, gpuUuid: own }]));
    expect(await unitRow(serial)).toMatchObject({ gpu_uuid: own, gpu_uuid_shipped: false });
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('is the unit’s for good once a shipment carrying it ships: another is refused, and a cancelled booking keeps it', async () => {
    const { run, actors } = api.world;
    const serial = await returnedUnit();
    const fixed = uuid(3, 'dddddddd');
    const shipped = String(expectOk(await book('own', [{ serial, gpuUuid: fixed }])).shipmentId);
    await run('shipment.ship', { shipmentId: shipped }, actors.exporter);
    expect(await unitRow(serial)).toMatchObject({ custody: 'in_transit', gpu_uuid: fixed, gpu_uuid_shipped: true });
    await run('shipment.clear', { shipmentId: shipped }, actors.mofcom);
    await run('shipment.deliver', { shipmentId: shipped }, actors.alpha);
    await run('units.return', { serials: [serial], reason: 'RMA' }, actors.alpha);

    expect(ruleOf(await book('own', [{ serial, gpuUuid: uuid(4, 'dddddddd') }]))).toBe('unit-gpu-uuid');
    const again = String(expectOk(await book('own', [serial])).shipmentId);
    await run('shipment.cancel', { shipmentId: again }, actors.exporter);
    expect(await unitRow(serial)).toMatchObject({ gpu_uuid: fixed, gpu_uuid_shipped: true });
    expect(ruleOf(await book('other', [{ serial: api.serial('ELSE'), gpuUuid: fixed }]))).toBe('unit-gpu-uuid');
    expect(await api.world.ledger.violations()).toEqual([]);
  });
});

describe('the mark of a shipped GPU UUID on many units', () => {
  const count = 300; // past bulkRowsMin (store/batch-steps.ts): new units go by COPY, shipping by one UPDATE

  const manifestOf = (tag: string) => Array.from({ length: count }, (_, index) => ({ serial: `${tag}-${index}`, gpuUuid: uuid(index, tag === 'MANY-A' ? 'aaaa0000' : 'aaaa1111') }));
  const marks = async (tag: string) => (await database.pool.query(
    `SELECT custody, gpu_uuid_shipped, count(*)::int AS units FROM units WHERE serial LIKE $1 GROUP BY 1, 2`, [`${tag}-%`])).rows;

  it('is set by the set-based shipping of units the batch did not load', async () => {
    const shipmentId = String(expectOk(await book('other', manifestOf('MANY-A'))).shipmentId);
    expect(await marks('MANY-A')).toEqual([{ custody: 'licensed', gpu_uuid_shipped: false, units: count }]);
    await api.world.run('shipment.ship', { shipmentId }, api.exporter2);
    expect(await marks('MANY-A')).toEqual([{ custody: 'in_transit', gpu_uuid_shipped: true, units: count }]);
  });

  it('is written with new units booked and shipped in one batch', async () => {
    const { ledger } = api.world;
    // Ids carry their event's seq (handler.ts newId): the booking's is the log's next.
    const next = Number((await database.pool.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
    const batchesBefore = ledger.sequencer.stats.batches;
    const [booked, shipped] = await Promise.all([
      book('other', manifestOf('MANY-B')),
      ledger.submit('shipment.ship', { shipmentId: `S-${next}` }, api.exporter2),
    ]);
    expect(expectOk(booked).shipmentId).toBe(`S-${next}`);
    expectOk(shipped);
    expect(ledger.sequencer.stats.batches).toBe(batchesBefore + 1);
    expect(await marks('MANY-B')).toEqual([{ custody: 'in_transit', gpu_uuid_shipped: true, units: count }]);
    expect(await ledger.violations()).toEqual([]);
  });
});
