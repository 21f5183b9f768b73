/**
 * The sweep expires records in the order they were made, whatever order the batch loaded them
 * in (the database's plan, the row cache): the log's order then follows from the ledger's
 * state alone, as a replay of the log (ledger/replay) must make it again.
 */
import { expect, it } from 'vitest';
import { worldPerFile, type World } from '../../../test/world.ts';
import type { TestDatabase } from '../../../test/database.ts';
import { emptyKeys } from '../../store/batch-keys.ts';
import { loadBatchState } from '../../store/batch-state.ts';
import { systemActor } from '../permissions.ts';
import { BatchState } from '../state.ts';
import { ledgerSweep } from './sweep.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

it('expires due bookings and licences in creation order, however the batch loaded them', async () => {
  const { actors, allocations, productId, run, clock } = world;
  // The first booking falls due last: by deadline the second comes first.
  const book = async (deadline: string) => String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 1, deadline,
  }, actors.exporter)).shipmentId);
  const made = [await book('2026-02-03T00:00:00Z'), await book('2026-02-02T00:00:00Z'), await book('2026-02-02T12:00:00Z')];
  // Likewise two licences: the first made ends last.
  const licence = async (reference: string, validTo: string) => {
    const licenceId = String((await run('licence.create', {
      reference, direction: 'export', holderId: actors.exporter.orgId, productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10,
      validFrom: '2026-01-01T00:00:00Z', validTo, parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
    }, actors.bis)).licenceId);
    await run('licence.issue', { licenceId }, actors.bis);
    return licenceId;
  };
  const licences = [await licence('BIS-SWEEP-1', '2026-02-04T00:00:00Z'), await licence('BIS-SWEEP-2', '2026-02-03T00:00:00Z')];
  clock.advanceMs(4 * 24 * 60 * 60 * 1000);
  const at = clock.now().toISOString();
  const keys = emptyKeys();
  ledgerSweep.keys({}, keys, systemActor);
  keys.dueAt = at;
  const client = await database.pool.connect();
  try {
    const loaded = await loadBatchState(client, keys);
    const shipmentOrders = [
      [...loaded.shipments].sort((one, other) => other.created_seq - one.created_seq),
      [...loaded.shipments].sort((one, other) => one.deadline.localeCompare(other.deadline)),
    ];
    const newestFirst = [...loaded.licences].sort((one, other) => other.created_seq - one.created_seq);
    for (const shipments of shipmentOrders) {
      const state = new BatchState({ ...loaded, shipments, licences: newestFirst });
      const outcome = ledgerSweep.run({ state, actor: systemActor, at, seq: 1_000 }, {});
      expect(outcome.answer).toEqual({ expiredShipments: made, expiredLicences: licences });
      const parts = [outcome, ...outcome.moreEvents!];
      expect(parts.map((part) => part.effects.shipmentId ?? part.effects.licenceId)).toEqual([...made, ...licences]);
    }
  } finally {
    client.release();
  }
});
