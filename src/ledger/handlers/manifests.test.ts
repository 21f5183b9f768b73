import { describe, expect, it } from 'vitest';
import type { LoadedState } from '../../store/ledger-tables.ts';
import type { ShipmentRow, UnitRow } from '../rows.ts';
import { BatchState } from '../state.ts';
import { attachSerials, type ManifestEntry } from './manifests.ts';

const shipment: ShipmentRow = {
  id: 'S-1', exporter_org_id: 'ORG-1', recipient_org_id: 'ORG-2', product_id: 'PRD-1', origin: 'US', destination: 'CN',
  export_allocation_id: 'A-1', import_allocation_id: 'A-2', units: 10, status: 'booked', booked_at: '2026-02-01T00:00:00.000Z',
  deadline: '2026-06-01T00:00:00.000Z', reference: null, serial_count: 0, demo: false, created_seq: 1, updated_seq: 1,
};
const returned: UnitRow = { serial: 'BACK-1', gpu_uuid: 'GPU-7', product_id: 'PRD-1', recipient_org_id: 'ORG-2', custody: 'returned', shipment_id: 'S-0', site_id: null, updated_seq: 3 };
const deployed: UnitRow = { serial: 'DEPLOYED-1', gpu_uuid: null, product_id: 'PRD-1', recipient_org_id: 'ORG-2', custody: 'deployed', shipment_id: 'S-0', site_id: 'SITE-1', updated_seq: 3 };

function freshState(): BatchState {
  const loaded: LoadedState = {
    organisations: [], products: [], tokens: [], licences: [], allocations: [], sites: [], shipments: [shipment], units: [returned, deployed], liveSerials: [],
  };
  return new BatchState(loaded);
}

/** Runs one manifest as the sequencer runs a command: begin, the handler, and rollback if it refuses. */
function attach(state: BatchState, seq: number, entries: ManifestEntry[]): string {
  state.begin();
  try {
    return `listed ${attachSerials({ state, actor: { id: 'TOK-1', orgId: 'ORG-1', role: 'exporter' }, at: '2026-02-02T00:00:00.000Z', seq }, state.get('shipments', 'S-1')!, entries)}`;
  } catch (error) {
    state.rollback();
    return (error as Error).message;
  }
}

/** What the batch would write, as comparable text. */
function written(state: BatchState) {
  const { inserted, updated } = state.changedRows();
  return {
    newUnits: (inserted.units ?? []).map((unit) => `${unit.serial}:${unit.custody}:${unit.shipment_id}:${unit.gpu_uuid}`),
    changedUnits: (updated.units ?? []).map((unit) => `${unit.serial}:${unit.custody}:${unit.shipment_id}:${unit.gpu_uuid}`),
    manifest: (inserted.shipment_serials ?? []).map((row) => `${row.shipment_id}:${row.serial}:${row.live}`),
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
      manifest: ['S-1:NEW-1:true', 'S-1:BACK-1:true', 'S-1:NEW-2:true'],
      serialCount: 3,
    });
    expect(state.liveSerialsOf('S-1').sort()).toEqual(['BACK-1', 'NEW-1', 'NEW-2']);
    expect(state.unitsOfShipment('S-1').map((unit) => unit.serial).sort()).toEqual(['BACK-1', 'NEW-1', 'NEW-2']);
  });

  it('refuses a serial given twice, naming the entry, and undoes every serial listed before it', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1', 'BACK-1', 'NEW-2', 'BACK-1'])).toBe('serial BACK-1 appears twice in the manifest (entry 4)');
    expect(written(state)).toEqual({ newUnits: [], changedUnits: [], manifest: [], serialCount: 0 });
    expect(state.liveShipmentOf('NEW-1')).toBeUndefined();
    expect(state.get('units', 'BACK-1')).toBe(returned);
    expect(state.get('units', 'NEW-1')).toBeUndefined();
    // The same serials in the next command of the batch go in.
    expect(attach(state, 6, ['NEW-1', 'BACK-1'])).toBe('listed 2');
    expect(written(state).manifest).toEqual(['S-1:NEW-1:true', 'S-1:BACK-1:true']);
  });

  it('tells a serial listed by an earlier command of the batch from one given twice', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1'])).toBe('listed 1');
    expect(attach(state, 6, ['NEW-2', 'NEW-1'])).toBe('serial NEW-1 is already in live shipment S-1');
    expect(written(state)).toEqual({ newUnits: ['NEW-1:licensed:S-1:null'], changedUnits: [], manifest: ['S-1:NEW-1:true'], serialCount: 1 });
  });

  it('refuses a deployed unit and a GPU UUID given twice, undoing what came before', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1', 'DEPLOYED-1'])).toBe('serial DEPLOYED-1 is deployed at site SITE-1; it cannot be listed in a shipment');
    expect(attach(state, 6, [{ serial: 'NEW-1', gpuUuid: 'GPU-1' }, { serial: 'NEW-2', gpuUuid: 'GPU-1' }])).toBe('GPU UUID GPU-1 appears twice in the manifest');
    expect(written(state)).toEqual({ newUnits: [], changedUnits: [], manifest: [], serialCount: 0 });
    expect(state.get('units', 'DEPLOYED-1')).toBe(deployed);
  });

  it('undoes a listing when the command is refused after its handler (an event too big)', () => {
    const state = freshState();
    expect(attach(state, 5, ['NEW-1', 'BACK-1'])).toBe('listed 2');
    state.rollback(); // the sequencer's refusal after the handler returned
    expect(written(state)).toEqual({ newUnits: [], changedUnits: [], manifest: [], serialCount: 0 });
    expect(state.get('units', 'BACK-1')).toBe(returned);
    expect(state.liveShipmentOf('BACK-1')).toBeUndefined();
  });
});
