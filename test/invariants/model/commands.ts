/**
 * The model test's command language: commands and steps as plain data, which the generators
 * draw and the tour writes by hand, and the serial pool and manifests they draw on. Ids are
 * not in the data: a run picks them from the model's state when a command runs (run.ts).
 */
import type { ShipmentStatus } from '../../../src/ledger/rows.ts';
import type { ManifestEntry } from './ledger-model.ts';

export const hourMs = 3_600_000;
export const dayMs = 24 * hourMs;
export const serialPool = Array.from({ length: 24 }, (_, index) => `SN-${index}`);
/** The serials the template's shipments list, from the end of the pool the runs list from. */
export const templateSerials = { deployed: serialPool.slice(19, 21), inTransit: serialPool.slice(21, 22), booked: serialPool.slice(22, 24) };
export const unknownId = (prefix: string) => `${prefix}-999999`;
/**
 * A manifest's GPU UUIDs: none, each unit's own, or a typo (another UUID, one per serial, so
 * that no two units ever claim one). A unit that has shipped keeps its own; a typo on a
 * booking that ended unshipped is put right by the next listing (the unit was released).
 */
export type Gpu = 'none' | 'own' | 'typo';
const gpuUuidOf = (serial: string, gpu: Exclude<Gpu, 'none'>) =>
  `GPU-${Math.max(serialPool.indexOf(serial), 0).toString(16).padStart(8, '0')}-0000-4000-8000-${gpu === 'own' ? '000000000001' : '000000000002'}`;
export const manifestOf = (serials: string[], gpu: Gpu): ManifestEntry[] => serials.map((serial) => (gpu === 'none' ? { serial } : { serial, gpuUuid: gpuUuidOf(serial, gpu) }));
/** As the API takes a manifest: plain serials, or serials with their GPU UUIDs. */
export const manifestInput = (entries: ManifestEntry[]) => entries.map((entry) => (entry.gpuUuid === undefined ? entry.serial : entry));

// ---------------------------------------------------------------------------------------
// Commands as generated data; ids are picked from the model's state when a command runs.

/** An index counted from the newest item (small picks hit what was just made); -1: an unknown id. */
export type Pick = number;
export type Who = 0 | 1; // alpha, beta
/** Which exporter books: the world's first, or the second (world.ts), which ships only to beta unless a run allocates it more. */
export type By = 0 | 1;
/**
 * A shipment: 'wanted' picks among those in the state the command needs, 'shipped' and
 * 'received' (cleared or delivered) among those past booking, which cancel and attach must
 * refuse and never touch, 'any' among all. When none fits, among all.
 */
export interface ShipmentPick { fit: 'wanted' | 'shipped' | 'received' | 'any'; at: Pick }
export const received: readonly ShipmentStatus[] = ['cleared', 'delivered'];
/**
 * Serials: given ones (duplicates and strangers happen), `fit` ones the model knows would
 * pass, or `clash` ones it knows would not (listed live elsewhere or gone into service, for
 * a manifest; another's, or not in service, for a recipient's units). `again`: for a
 * manifest, fit ones the ledger has seen before (returned, or left by a booking that ended),
 * so that listing units again is tried often; for a recipient's units, as `fit`.
 */
export type Serials = { given: string[] } | { fit: number; at: Pick } | { clash: number; at: Pick } | { again: number; at: Pick };

export type Command =
  /** allocations: 'usable' picks the recipient's allocations on licences in force, 'own' any of the recipient's, 'any' any at all. */
  /** by: the exporter that books (the first when absent); its allocations are those of licences it may ship under. */
  /**
   * swapped: the two picked allocations given each in the other's field (an exporter's slip);
   * importRecipient: the import allocation picked among another recipient's (a mismatched pair).
   */
  | {
    kind: 'book'; by?: By; allocations: 'usable' | 'own' | 'any'; recipient: Who; exportPick: Pick; importPick: Pick; units: number | 'fit'; deadlineMs: number;
    serials: Serials | null; gpu?: Gpu; unknownProduct: boolean; keyed: boolean; swapped?: boolean; importRecipient?: Who;
  }
  | { kind: 'attach'; shipmentPick: ShipmentPick; serials: Serials; gpu?: Gpu }
  | { kind: 'ship' | 'cancel'; shipmentPick: ShipmentPick; keyed: boolean }
  | { kind: 'clear' | 'deliver'; shipmentPick: ShipmentPick; otherRecipient: boolean }
  /** A shipment turned back at the border, recorded by its exporter or an authority (the import licence's, or the other). */
  | { kind: 'return'; shipmentPick: ShipmentPick; by: 'exporter' | 'importAuthority' | 'exportAuthority' }
  | { kind: 'sweep' }
  | { kind: 'allocate'; direction: 'export' | 'import' | 'unknown'; licencePick: Pick; recipient: Who; units: number; wrongAuthority: boolean }
  | { kind: 'resize'; allocationPick: Pick; units: number; wrongAuthority: boolean }
  /** toggle: reinstate a suspended licence, or else suspend one. */
  | { kind: 'licence'; action: 'toggle' | 'suspend' | 'reinstate' | 'revoke'; direction: 'export' | 'import'; licencePick: Pick; wrongAuthority: boolean }
  | { kind: 'deploy'; recipient: Who; sitePick: Pick; serials: Serials }
  | { kind: 'decommission'; recipient: Who; serials: Serials }
  /** A recipient returns units, or reports them lost. */
  | { kind: 'end'; to: 'returned' | 'lost'; recipient: Who; serials: Serials }
  /**
   * An authority amends a licence's units (to what is allocated or shipped, below it, or
   * more) or its validity (later, ending within the hour, ended already, or before it starts;
   * the last two refused, a draft aside, which the model's licences never are). validFrom: a
   * start a day earlier or later (absent: the same), refused once issued (licence-status), so
   * always here.
   */
  | {
    kind: 'amend'; direction: 'export' | 'import'; licencePick: Pick; units: 'same' | 'used' | 'shipped' | 'below' | 'more'; validTo: 'same' | 'later' | 'soon' | 'ended' | 'beforeStart';
    validFrom?: 'same' | 'earlier' | 'later'; wrongAuthority: boolean;
  }
  | { kind: 'replay'; pick: Pick; changed: boolean }
  /**
   * A licence of a live booking (the newest booked one whose deadline is ahead, under the
   * small export or the short import licence) ends under it: revoked, or amended to a
   * validity that ends within the half hour (no amendment ends a licence at once). The next
   * sweep after it ended must expire the booking although its deadline is ahead (a lapse
   * expiry), which other commands reach only when a licence they end happens to carry a
   * booking. The large licences are left be: ending one would end most of a run's flow.
   * Where such a booking is there already, a sweep instead; where no booking is under those
   * licences, a booking under the short import licence. A group takes it three times in a
   * row (runGroup), so that a revocation can walk the whole way in one group: book, end,
   * sweep (the sweeps starting a batch of its own: ledger/sequencer.ts takeBatch); an
   * amended validity ends after the next advance, and a later lapse or sweep finds it.
   */
  | { kind: 'lapse'; how: 'revoke' | 'end' }
  /** The next natural step of a live shipment: attach the rest of its manifest, ship, clear or deliver. */
  | { kind: 'progress'; at: Pick; choice: number };

/** Which of the two ledgers on the database takes a group. */
export type Writer = 0 | 1;
export type Step = { kind: 'advance'; ms: number } | { kind: 'group'; commands: Command[]; writer?: Writer };

/**
 * A booking under the recipient's own allocations, for the tour and a run's lapse steps. Picks
 * count from the newest allocation; the tour (tour.ts) says which one each pick lands on.
 */
export const book = (recipient: Who, units: number | 'fit', serials: Serials | null, deadlineMs: number, keyed = false, picks: { exportPick: Pick; importPick: Pick } = { exportPick: 1, importPick: 1 }): Extract<Command, { kind: 'book' }> =>
  ({ kind: 'book', allocations: 'own', recipient, ...picks, units, deadlineMs, serials, unknownProduct: false, keyed });
