import { describe, expect, it, vi } from 'vitest';
import type { LoadedState } from '../../store/batch-state.ts';
import type { ShipmentRow, UnitRow } from '../rows.ts';
import { BatchState } from '../state.ts';
import type { DomainError } from '../../core/errors.ts';
import { refuse } from '../handler.ts';
import { attachSerials, refusedSerialsListedMax, type ManifestEntry } from './manifests.ts';

const shipment: ShipmentRow = {
  id: 'S-1', exporter_org_id: 'ORG-1', recipient_org_id: 'ORG-2', product_id: 'PRD-1', origin: 'US', destination: 'CN',
  export_allocation_id: 'A-1', import_allocation_id: 'A-2', units: 10, status: 'booked', booked_at: '2026-02-01T00:00:00.000Z',
  deadline: '2026-06-01T00:00:00.000Z', reference: null, serial_count: 0, demo: false, created_seq: 1, updated_seq: 1,
};
/** The delivered shipment the units came in, and one of another exporter (ORG-3) to another recipient. */
const earlier: ShipmentRow = { ...shipment, id: 'S-0', status: 'delivered', serial_count: 10, created_seq: 0, updated_seq: 2 };
const theirs: ShipmentRow = { ...shipment, id: 'S-9', exporter_org_id: 'ORG-3', recipient_org_id: 'ORG-4', status: 'delivered', serial_count: 10, created_seq: 0, updated_seq: 2 };
const returned: UnitRow = { serial: 'BACK-1', gpu_uuid: 'GPU-7', product_id: 'PRD-1', recipient_org_id: 'ORG-2', custody: 'returned', shipment_id: 'S-0', site_id: null, updated_seq: 3, ever_shipped: true, gpu_uuid_shipped: true };
const deployed: UnitRow = { serial: 'DEPLOYED-1', gpu_uuid: null, product_id: 'PRD-1', recipient_org_id: 'ORG-2', custody: 'deployed', shipment_id: 'S-0', site_id: 'SITE-1', updated_seq: 3, ever_shipped: true, gpu_uuid_shipped: false };
/** A returned unit without a GPU UUID, and one of another product. */
const unknownUuid: UnitRow = { ...returned, serial: 'BACK-2', gpu_uuid: null, gpu_uuid_shipped: false };
const otherProduct: UnitRow = { ...returned, serial: 'BACK-H20', gpu_uuid: 'GPU-8', product_id: 'PRD-H20' };
/** ORG-3's units: returned by ORG-4, deployed at ORG-4's site, live in ORG-3's shipment S-8. */
const theirReturned: UnitRow = { ...returned, serial: 'THEIRS-1', gpu_uuid: null, gpu_uuid_shipped: false, recipient_org_id: 'ORG-4', shipment_id: 'S-9' };
const theirDeployed: UnitRow = { ...deployed, serial: 'THEIRS-2', recipient_org_id: 'ORG-4', shipment_id: 'S-9', site_id: 'SITE-22' };
const theirLive: ShipmentRow = { ...theirs, id: 'S-8', status: 'shipped', serial_count: 1 };
const theirListed: UnitRow = { ...returned, serial: 'THEIRS-3', gpu_uuid: null, gpu_uuid_shipped: false, recipient_org_id: 'ORG-4', custody: 'in_transit', shipment_id: 'S-8' };

function freshState(): BatchState {
  // As store/batch-state.ts loads them: each unit with the shipment that last held it.
  const loaded: LoadedState = {
    organisations: [], products: [], tokens: [], licences: [], allocations: [], sites: [], shipments: [shipment, earlier, theirs, theirLive],
    units: [returned, deployed, unknownUuid, otherProduct, theirReturned, theirDeployed, theirListed],
  };
  return new BatchState(loaded);
}

/** Runs one manifest as the sequencer runs a command: begin, the handler, and rollback if it refuses. */
function attach(state: BatchState, seq: number, entries: ManifestEntry[], shipmentId = 'S-1'): string {
  state.begin();
  try {
    return `listed ${attachSerials({ state, actor: { id: 'TOK-1', orgId: 'ORG-1', role: 'exporter' }, at: '2026-02-02T00:00:00.000Z', seq }, state.get('shipments', shipmentId)!, entries)}`;
  } catch (error) {
    state.rollback();
    return (error as Error).message;
  }
}

/** The serials the batch holds live in the shipment, sorted. */
function liveIn(state: BatchState, shipmentId: string): string[] {
  return state.unitsOfShipment(shipmentId).map((unit) => unit.serial).filter((serial) => state.liveShipmentOf(serial) === shipmentId).sort();
}

/** What the batch would write, as comparable text. */
function written(state: BatchState) {
  const { inserted, updated } = state.changedRows();
  return {
    newUnits: (inserted.units ?? []).map((unit) => `${unit.serial}:${unit.custody}:${unit.shipment_id}:${unit.gpu_uuid}`),
    changedUnits: (updated.units ?? []).map((unit) => `${unit.serial}:${unit.custody}:${unit.shipment_id}:${unit.gpu_uuid}`),
    // A unit is its shipment's manifest line (migration 075): these are the serials live in S-1.
    live: liveIn(state, 'S-1'),
    serialCount: state.get('shipments', 'S-1')!.serial_count,
  };
}

describe('attaching a manifest to a batch', () => {
  it('lists new and returned units, keeping a returned unit’s GPU UUID, and writes the returned one as a change', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1', 'BACK-1', { serial: 'NEW-2', gpuUuid: 'GPU-9' }])).toBe('listed 3');
    expect(written(state)).toEqual({
      newUnits: ['NEW-1:licensed:S-1:null', 'NEW-2:licensed:S-1:GPU-9'],
      changedUnits: ['BACK-1:licensed:S-1:GPU-7'],
      live: ['BACK-1', 'NEW-1', 'NEW-2'],
      serialCount: 3,
    });
    expect(liveIn(state, 'S-1')).toEqual(['BACK-1', 'NEW-1', 'NEW-2']);
    expect(state.unitsOfShipment('S-1').map((unit) => unit.serial).sort()).toEqual(['BACK-1', 'NEW-1', 'NEW-2']);
  });

  it('adds manifests up to the shipment\'s units, and a refusal for too many says how many are listed already', () => {
    const state = freshState();
    const serials = (from: number, count: number) => Array.from({ length: count }, (_, i) => `PART-${from + i}`);
    expect(attach(state, 5, serials(0, 4))).toBe('listed 4');
    // The whole file again, after its first part went in: too long by what went in.
    expect(attach(state, 6, serials(0, 10))).toBe('shipment S-1 has room for 6 more serials (4 of its 10 units are listed already: manifests add up); 10 given');
    expect(attach(state, 7, serials(4, 6))).toBe('listed 6');
    expect(state.get('shipments', 'S-1')!.serial_count).toBe(10);
    expect(attach(freshState(), 5, serials(0, 11))).toBe('shipment S-1 has room for 10 more serials; 11 given');
  });

  it('refuses a serial given twice, naming the entry, and undoes every serial listed before it', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1', 'BACK-1', 'NEW-2', 'BACK-1'])).toBe('serial BACK-1 appears twice in the manifest (entry 4)');
    expect(written(state)).toEqual({ newUnits: [], changedUnits: [], live: [], serialCount: 0 });
    expect(state.liveShipmentOf('NEW-1')).toBeUndefined();
    expect(state.get('units', 'BACK-1')).toBe(returned);
    expect(state.get('units', 'NEW-1')).toBeUndefined();
    // The same serials in the next command of the batch go in.
    expect(attach(state, 6, ['NEW-1', 'BACK-1'])).toBe('listed 2');
    expect(written(state).live).toEqual(['BACK-1', 'NEW-1']);
  });

  it('tells a serial listed by an earlier command of the batch from one given twice', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1'])).toBe('listed 1');
    expect(attach(state, 6, ['NEW-2', 'NEW-1'])).toBe('serial NEW-1 is already in live shipment S-1');
    expect(written(state)).toEqual({ newUnits: ['NEW-1:licensed:S-1:null'], changedUnits: [], live: ['NEW-1'], serialCount: 1 });
  });

  it('refuses a deployed unit and a GPU UUID given twice, undoing what came before', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1', 'DEPLOYED-1'])).toBe('serial DEPLOYED-1 is deployed; it cannot be listed in a shipment');
    expect(attach(state, 6, [{ serial: 'NEW-1', gpuUuid: 'GPU-1' }, { serial: 'NEW-2', gpuUuid: 'GPU-1' }])).toBe('GPU UUID GPU-1 appears twice in the manifest');
    expect(written(state)).toEqual({ newUnits: [], changedUnits: [], live: [], serialCount: 0 });
    expect(state.get('units', 'DEPLOYED-1')).toBe(deployed);
  });

  it('undoes a listing when the command is refused after its handler (an event too big)', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1', 'BACK-1'])).toBe('listed 2');
    state.rollback(); // the sequencer's refusal after the handler returned
    expect(written(state)).toEqual({ newUnits: [], changedUnits: [], live: [], serialCount: 0 });
    expect(state.get('units', 'BACK-1')).toBe(returned);
    expect(state.liveShipmentOf('BACK-1')).toBeUndefined();
  });
});

/** Refuses the manifest and leaves the batch as it was: nothing written, the unit untouched. */
function expectRefusedUntouched(state: BatchState, entries: ManifestEntry[], message: string, unit: UnitRow): void {
  expect(attach(state, 5, entries)).toBe(message);
  expect(written(state)).toEqual({ newUnits: [], changedUnits: [], live: [], serialCount: 0 });
  expect(state.get('units', unit.serial)).toBe(unit);
}

describe('a unit listed in two shipments of one batch', () => {
  it('is staged as it left the first, for the database to see it move (migration 075), and unstaged with a refused command', () => {
    const state = freshState();
    state.put('shipments', { ...shipment, id: 'S-2' });
    expect(attach(state, 5, ['NEW-1', 'BACK-1'])).toBe('listed 2');
    // S-1 ends in the batch: its serials are free again (BatchState.liveShipmentOf).
    state.update('shipments', state.get('shipments', 'S-1')!, { status: 'cancelled' });
    expect(state.liveShipmentOf('NEW-1')).toBeUndefined();
    const inS1 = ['NEW-1', 'BACK-1'].map((serial) => state.get('units', serial)!);
    // A refused command stages nothing.
    expect(attach(state, 6, ['NEW-1', 'DEPLOYED-1'], 'S-2')).toBe('serial DEPLOYED-1 is deployed; it cannot be listed in a shipment');
    expect(state.changedRows().unitStages).toEqual([]);
    expect(attach(state, 7, ['NEW-1', 'BACK-1'], 'S-2')).toBe('listed 2');
    const { inserted, updated, unitStages } = state.changedRows();
    expect(unitStages).toEqual(inS1);
    // NEW-1 has no row in the database: its stage makes one, so its last row is an upsert.
    expect({ inserted: (inserted.units ?? []).map((unit) => unit.serial), updated: (updated.units ?? []).map((unit) => `${unit.serial}:${unit.shipment_id}`).sort() })
      .toEqual({ inserted: [], updated: ['BACK-1:S-2', 'NEW-1:S-2'] });
  });
});

describe('a unit listed again stays what and whose it was', () => {
  it('refuses a unit whose last shipment was another exporter’s, returned or left licensed, after listing others', () => {
    const state = freshState();
    expectRefusedUntouched(state, ['NEW-1', 'THEIRS-1'], 'serial THEIRS-1 is not available to list in a shipment', theirReturned);
    const licensed: UnitRow = { ...theirReturned, custody: 'licensed' };
    const cancelled = new BatchState({
      organisations: [], products: [], tokens: [], licences: [], allocations: [], sites: [], shipments: [shipment, { ...theirs, status: 'cancelled' }], units: [licensed],
    });
    expectRefusedUntouched(cancelled, [licensed.serial], `serial ${licensed.serial} is not available to list in a shipment`, licensed);
  });

  it('lists afresh a unit that never shipped, left by another exporter’s cancelled or expired booking, as any product and with any GPU UUID', () => {
    for (const status of ['cancelled', 'expired'] as const) {
      const claimed: UnitRow = { ...theirReturned, serial: 'CLAIMED-1', custody: 'licensed', product_id: 'PRD-H20', gpu_uuid: null, ever_shipped: false };
      const state = new BatchState({
        organisations: [], products: [], tokens: [], licences: [], allocations: [], sites: [], shipments: [shipment, { ...theirs, status }], units: [claimed],
      });
      expect(attach(state, 5, [{ serial: 'CLAIMED-1', gpuUuid: 'GPU-11' }])).toBe('listed 1');
      expect(state.get('units', 'CLAIMED-1')).toEqual({ ...claimed, product_id: 'PRD-1', recipient_org_id: 'ORG-2', shipment_id: 'S-1', gpu_uuid: 'GPU-11', updated_seq: 5 });
    }
    // Still booked, the claim holds: the serial is live there.
    const claimed: UnitRow = { ...theirReturned, serial: 'CLAIMED-2', custody: 'licensed', ever_shipped: false };
    const held = new BatchState({
      organisations: [], products: [], tokens: [], licences: [], allocations: [], sites: [], shipments: [shipment, { ...theirs, status: 'booked' }], units: [claimed],
    });
    expectRefusedUntouched(held, ['CLAIMED-2'], 'serial CLAIMED-2 is not available to list in a shipment', claimed);
  });

  it('refuses a unit of another product, keeping its product', () => {
    expectRefusedUntouched(freshState(), ['NEW-1', 'BACK-H20'], 'serial BACK-H20 is a unit of product PRD-H20; shipment S-1 is of product PRD-1', otherProduct);
  });

  it('refuses a GPU UUID other than the unit’s, and takes the same one', () => {
    const state = freshState();
    expectRefusedUntouched(state, [{ serial: 'BACK-1', gpuUuid: 'GPU-70' }], 'serial BACK-1 has GPU UUID GPU-7; GPU-70 given', returned);
    expect(attach(state, 6, [{ serial: 'BACK-1', gpuUuid: 'GPU-7' }])).toBe('listed 1');
    expect(written(state).changedUnits).toEqual(['BACK-1:licensed:S-1:GPU-7']);
  });

  it('lists the exporter’s own returned unit again, to another recipient, and gives a unit without a GPU UUID one', () => {
    const state = freshState();
    const elsewhere: ShipmentRow = { ...shipment, id: 'S-2', recipient_org_id: 'ORG-5' };
    state.put('shipments', elsewhere);
    state.begin();
    expect(attachSerials({ state, actor: { id: 'TOK-1', orgId: 'ORG-1', role: 'exporter' }, at: '2026-02-02T00:00:00.000Z', seq: 5 }, elsewhere, ['BACK-1', { serial: 'BACK-2', gpuUuid: 'GPU-2' }])).toBe(2);
    expect([state.get('units', 'BACK-1'), state.get('units', 'BACK-2')].map((unit) => `${unit!.serial}:${unit!.recipient_org_id}:${unit!.shipment_id}:${unit!.gpu_uuid}`))
      .toEqual(['BACK-1:ORG-5:S-2:GPU-7', 'BACK-2:ORG-5:S-2:GPU-2']);
  });
});

describe('refusals for another tenant’s serial', () => {
  it('say the same, naming neither shipment nor site nor custody, whether the serial is returned, deployed or live', () => {
    const refusals = ['THEIRS-1', 'THEIRS-2', 'THEIRS-3'].map((serial) => {
      const state = freshState();
      state.begin();
      try {
        attachSerials({ state, actor: { id: 'TOK-1', orgId: 'ORG-1', role: 'exporter' }, at: '2026-02-02T00:00:00.000Z', seq: 5 }, shipment, [serial]);
        return 'accepted';
      } catch (error) {
        return JSON.stringify(error).replaceAll(serial, '<serial>');
      }
    });
    expect(refusals).toEqual(Array(3).fill(JSON.stringify({ code: 'conflict', message: 'serial <serial> is not available to list in a shipment', rule: 'unit-owner', details: { serial: '<serial>' } })));
    for (const refusal of refusals) expect(refusal).not.toMatch(/S-[089]|SITE-22|deployed|returned|in_transit/);
  });

  it('still name the shipment and the site to the unit’s own exporter', () => {
    const state = freshState();
    expect(attach(state, 5, ['DEPLOYED-1'])).toBe('serial DEPLOYED-1 is deployed; it cannot be listed in a shipment');
    expect(attach(state, 6, ['NEW-1'])).toBe('listed 1');
    expect(attach(state, 7, ['NEW-1'])).toBe('serial NEW-1 is already in live shipment S-1');
  });
});

describe('a manifest with several bad serials', () => {
  /** The refusal itself, as the sequencer would answer it. */
  function refusalOf(entries: ManifestEntry[]) {
    const state = freshState();
    state.begin();
    try {
      attachSerials({ state, actor: { id: 'TOK-1', orgId: 'ORG-1', role: 'exporter' }, at: '2026-02-02T00:00:00.000Z', seq: 5 }, state.get('shipments', 'S-1')!, entries);
    } catch (error) {
      state.rollback();
      expect(written(state)).toEqual({ newUnits: [], changedUnits: [], live: [], serialCount: 0 });
      return (error as DomainError).toJSON();
    }
    return expect.fail('the manifest was listed');
  }

  it('names every one at once, each with its rule, under the first one\'s rule and words', () => {
    expect(refusalOf(['NEW-1', 'DEPLOYED-1', 'THEIRS-1', 'BACK-H20', 'NEW-2'])).toEqual({
      code: 'conflict', rule: 'invariant-4',
      message: 'serial DEPLOYED-1 is deployed; it cannot be listed in a shipment; and 2 more serials are refused (details.serials names each)',
      details: {
        serial: 'DEPLOYED-1', custody: 'deployed', more: 0,
        serials: [
          { serial: 'DEPLOYED-1', rule: 'invariant-4', message: 'serial DEPLOYED-1 is deployed; it cannot be listed in a shipment', custody: 'deployed' },
          { serial: 'THEIRS-1', rule: 'unit-owner', message: 'serial THEIRS-1 is not available to list in a shipment' },
          { serial: 'BACK-H20', rule: 'unit-product', message: 'serial BACK-H20 is a unit of product PRD-H20; shipment S-1 is of product PRD-1', productId: 'PRD-H20' },
        ],
      },
    });
  });

  it('keeps a lone bad serial\'s refusal as it was', () => {
    expect(refusalOf(['NEW-1', 'THEIRS-1'])).toEqual({ code: 'conflict', rule: 'unit-owner', message: 'serial THEIRS-1 is not available to list in a shipment', details: { serial: 'THEIRS-1' } });
  });

  it(`names the first ${refusedSerialsListedMax} and counts the rest`, () => {
    const many = (() => {
      const state = freshState();
      // A shipment with room for the whole list: the count is of refusals, not of room.
      const big = state.update('shipments', state.get('shipments', 'S-1')!, { units: 100 });
      state.begin();
      try {
        attachSerials({ state, actor: { id: 'TOK-1', orgId: 'ORG-1', role: 'exporter' }, at: '2026-02-02T00:00:00.000Z', seq: 5 }, big, Array.from({ length: refusedSerialsListedMax + 7 }, () => 'THEIRS-2'));
      } catch (error) {
        return (error as DomainError).toJSON();
      }
      return expect.fail('the manifest was listed');
    })();
    expect(many.message).toBe(`serial THEIRS-2 is not available to list in a shipment; and ${refusedSerialsListedMax + 6} more serials are refused (details.serials names the first ${refusedSerialsListedMax}, details.more counts the other 7)`);
    expect(many.details).toMatchObject({ more: 7 });
    expect((many.details!.serials as unknown[]).length).toBe(refusedSerialsListedMax);
  });

  it('builds the refusal of only the serials it names: the rest are counted, each without an Error and its stack', () => {
    const state = freshState();
    const big = state.update('shipments', state.get('shipments', 'S-1')!, { units: 1000 });
    // Every kind of bad serial past the first refusedSerialsListedMax: another exporter's, one
    // given twice, a deployed one, another product's, a GPU UUID given twice.
    const bad: ManifestEntry[] = [
      ...Array.from({ length: refusedSerialsListedMax }, () => 'THEIRS-2'),
      'NEW-1', 'NEW-1', 'DEPLOYED-1', 'BACK-H20', 'THEIRS-3', { serial: 'NEW-2', gpuUuid: 'GPU-X' }, { serial: 'NEW-3', gpuUuid: 'GPU-X' }, { serial: 'BACK-1', gpuUuid: 'GPU-OTHER' },
    ];
    const built = vi.spyOn(refuse, 'conflict');
    let calls: number;
    let details: Record<string, unknown> | undefined;
    state.begin();
    try {
      attachSerials({ state, actor: { id: 'TOK-1', orgId: 'ORG-1', role: 'exporter' }, at: '2026-02-02T00:00:00.000Z', seq: 5 }, big, bad);
    } catch (error) {
      details = (error as DomainError).details;
    } finally {
      calls = built.mock.calls.length;
      built.mockRestore();
    }
    expect(details).toMatchObject({ more: 6 });
    expect(calls).toBe(refusedSerialsListedMax);
  });
});
