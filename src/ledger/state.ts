/**
 * A batch's view of the ledger: the rows loaded for it, with every change made by the
 * batch's commands so far laid over them. Rows are never mutated: update() makes a new
 * row and remembers the old one, so a refused command is undone exactly, wherever in
 * its handler the refusal came from.
 */
import type { TableName, TableRows } from '../store/ledger-tables.ts';
import type { LoadedState } from '../store/batch-state.ts';
import type { UnitsChange } from '../store/batch-writes.ts';
import { assert } from '../core/errors.ts';
import { liveShipmentStatuses } from './rows.ts';
import { canonicalGpuUuid } from './schemas.ts';
import type {
  AllocationRow, LicencePartyRow, LicenceRow, OrganisationRow, ProductRow, ShipmentRow, SiteRow, TokenRow, UnitRow,
} from './rows.ts';

/**
 * A licence as the handlers see it: its row, its parties, and the recipients of its
 * allocations (loaded with it; not a column). A recipient an amendment dropped from the
 * parties still holds its allocation, and still reads the licence (store/visibility.ts
 * visible.licence): the handlers count it among the licence's readers too (licenceOrgIds).
 */
export type LicenceWithParties = LicenceRow & { parties: LicencePartyRow[]; allocation_recipients: string[] };

/** Tables the overlay keeps by key; the rest are append-only lists. */
interface Keyed {
  organisations: OrganisationRow;
  products: ProductRow;
  tokens: TokenRow;
  licences: LicenceWithParties;
  allocations: AllocationRow;
  sites: SiteRow;
  shipments: ShipmentRow;
  units: UnitRow;
}
type KeyedName = keyof Keyed;
const keyOf = (table: KeyedName, row: { id?: string; serial?: string }): string => (table === 'units' ? row.serial! : row.id!);

type AppendName = 'licence_versions';

type UndoStep =
  | { type: 'row'; table: KeyedName; key: string; previous: Keyed[KeyedName] | undefined; wasDirty: boolean }
  | { type: 'append'; table: AppendName; length: number }
  | { type: 'list'; name: 'unitsChanges' | 'replacedPartiesOf'; length: number }
  | { type: 'listing'; serials: string[]; replaced: Array<{ unit: UnitRow; wasDirty: boolean }>; stages: number };

/**
 * Units listed in a live shipment one by one (ManifestListing#add), with one undo step for
 * all of them: a manifest lists up to 100,000.
 */
export interface ManifestListing {
  /**
   * Puts the unit row, which is its manifest line (migration 075): its serial is live in the
   * shipment while that is under way (liveShipmentOf). The caller has looked the serial up:
   * `previous` is the batch's row for it (get('units')), and the serial is live in no shipment
   * (liveShipmentOf), which is what a manifest requires. Taking both from the caller saves
   * look-ups a serial.
   */
  add(unit: UnitRow, previous: UnitRow | undefined): void;
}

export class BatchState {
  private readonly rows: { [T in KeyedName]: Map<string, Keyed[T]> };
  private readonly dirty: { [T in KeyedName]: Set<string> };
  private readonly appended: { licence_versions: TableRows['licence_versions'] } = { licence_versions: [] };
  /**
   * shipment -> serials that were at some point seen with it: noted one by one, and the
   * serials of each listing as the one array the listing keeps anyway (a set entry per
   * serial cost a 100,000-serial manifest about 20 ms). Add-only (undo needs no care), and
   * a serial may be in both: users filter by the row's current value and drop repeats.
   */
  private readonly serialsSeenWith = new Map<string, { noted: Set<string>; listed: string[][] }>();
  /**
   * GPU UUID (in its one spelling) -> the serial, or serials, of units seen with it: loaded
   * (the loader brings every unit that holds a GPU UUID the batch gives, keys.gpuUuids) or
   * given it by this batch. Add-only, like serialsSeenWith: gpuUuidHolder reads each one's
   * current row, so a GPU UUID let go (releaseClaims) or a listing undone (rollback) drops out
   * by itself. One string, not a set, for the usual one unit: a manifest gives up to 100,000.
   */
  private readonly gpuUuidsSeen = new Map<string, string | string[]>();
  /**
   * Keys whose rows the database holds: those loaded under the batch's lock (or taken from
   * the row cache, which holds committed rows of the head the lock returned).
   */
  private readonly stored: { [T in KeyedName]: Set<string> };
  readonly unitsChanges: UnitsChange[] = [];
  /**
   * Units a listing took out of a shipment that this batch had listed them in (and then ended),
   * each as it left that shipment, in order. The database writes a shipment's line for a unit
   * that leaves it only as it sees the unit move (migration 075), so each of these is written
   * before the unit's last row (store/batch-writes.ts): a unit listed, released and listed again
   * in one batch would otherwise take its line out of the shipment in between. Stages and the
   * last row of such a unit are upserts even where the unit is new (changedRows): under the head
   * lock no other writer can have made its row, as for every row this batch makes.
   */
  readonly unitStages: UnitRow[] = [];
  /**
   * The shipment each loaded unit is in, as the database holds it. A unit whose batch row names
   * another shipment was listed there by this batch; listed once more, it leaves a stage.
   */
  private readonly storedShipmentOf = new Map<string, string>();
  readonly replacedPartiesOf: string[] = [];
  private undo: UndoStep[] = [];

  constructor(loaded: LoadedState) {
    const index = <T extends KeyedName>(table: T, list: Keyed[T][]) => new Map(list.map((row) => [keyOf(table, row), row]));
    this.rows = {
      organisations: index('organisations', loaded.organisations),
      products: index('products', loaded.products),
      tokens: index('tokens', loaded.tokens),
      licences: index('licences', loaded.licences),
      allocations: index('allocations', loaded.allocations),
      sites: index('sites', loaded.sites),
      shipments: index('shipments', loaded.shipments),
      units: index('units', loaded.units),
    };
    this.dirty = {
      organisations: new Set(), products: new Set(), tokens: new Set(), licences: new Set(), allocations: new Set(),
      sites: new Set(), shipments: new Set(), units: new Set(),
    };
    for (const unit of loaded.units) {
      this.storedShipmentOf.set(unit.serial, unit.shipment_id);
      this.noteSeen(unit.shipment_id, unit.serial);
      this.noteGpuUuid(unit);
    }
    // Taken before any command runs: the rows loaded so far are the ones the database holds.
    this.stored = Object.fromEntries(Object.entries(this.rows).map(([table, rows]) => [table, new Set(rows.keys())])) as BatchState['stored'];
  }

  private seenWith(shipmentId: string): { noted: Set<string>; listed: string[][] } {
    let seen = this.serialsSeenWith.get(shipmentId);
    if (!seen) this.serialsSeenWith.set(shipmentId, (seen = { noted: new Set(), listed: [] }));
    return seen;
  }

  private noteSeen(shipmentId: string, serial: string): void {
    this.seenWith(shipmentId).noted.add(serial);
  }

  private noteGpuUuid(unit: UnitRow): void {
    if (unit.gpu_uuid === null) return;
    const gpuUuid = canonicalGpuUuid(unit.gpu_uuid);
    const seen = this.gpuUuidsSeen.get(gpuUuid);
    if (seen === undefined) this.gpuUuidsSeen.set(gpuUuid, unit.serial);
    else if (typeof seen === 'string') {
      if (seen !== unit.serial) this.gpuUuidsSeen.set(gpuUuid, [seen, unit.serial]);
    } else if (!seen.includes(unit.serial)) seen.push(unit.serial);
  }

  /**
   * The serial of a unit other than `except` that holds the GPU UUID (in its one spelling) as
   * of this point in the batch, if any: one the database holds and this batch has not let go,
   * or one an earlier command gave it. Only for a GPU UUID among the batch's keys.gpuUuids,
   * whose holders the loader brought: of any other this batch knows only what it wrote.
   */
  gpuUuidHolder(gpuUuid: string, except: string): string | undefined {
    const seen = this.gpuUuidsSeen.get(gpuUuid);
    if (seen === undefined) return undefined;
    for (const serial of typeof seen === 'string' ? [seen] : seen) {
      const unit = serial === except ? undefined : this.rows.units.get(serial);
      if (unit !== undefined && unit.gpu_uuid !== null && canonicalGpuUuid(unit.gpu_uuid) === gpuUuid) return serial;
    }
    return undefined;
  }

  /** Every serial seen with the shipment, once each. */
  private serialsSeen(shipmentId: string): Set<string> {
    const seen = this.serialsSeenWith.get(shipmentId);
    if (!seen) return new Set();
    const serials = new Set(seen.noted);
    for (const list of seen.listed) for (const serial of list) serials.add(serial);
    return serials;
  }

  /** Loaded or new units whose current shipment is this one. */
  unitsOfShipment(shipmentId: string): UnitRow[] {
    const units: UnitRow[] = [];
    for (const serial of this.serialsSeen(shipmentId)) {
      const unit = this.rows.units.get(serial);
      if (unit && unit.shipment_id === shipmentId) units.push(unit);
    }
    return units;
  }

  /** The shipment a loaded unit is in: the loader brings it with the unit (store/batch-state.ts). */
  shipmentOfUnit(unit: UnitRow): ShipmentRow {
    const shipment = this.rows.shipments.get(unit.shipment_id);
    assert(shipment !== undefined, `unit ${unit.serial} names shipment ${unit.shipment_id}, which the batch did not load (store/batch-state.ts loads it with the unit)`);
    return shipment;
  }

  get<T extends KeyedName>(table: T, key: string): Keyed[T] | undefined {
    return this.rows[table].get(key) as Keyed[T] | undefined;
  }

  /** Rows of a table this batch knows, loaded or made. */
  all<T extends KeyedName>(table: T): IterableIterator<Keyed[T]> {
    return this.rows[table].values() as IterableIterator<Keyed[T]>;
  }

  /** Inserts a new row or replaces one; the old row is kept for undo. */
  put<T extends KeyedName>(table: T, row: Keyed[T]): Keyed[T] {
    const key = keyOf(table, row);
    if (table === 'units') {
      this.noteSeen((row as UnitRow).shipment_id, key);
      this.noteGpuUuid(row as UnitRow);
    }
    this.undo.push({ type: 'row', table, key, previous: this.rows[table].get(key), wasDirty: this.dirty[table].has(key) });
    (this.rows[table] as Map<string, Keyed[T]>).set(key, row);
    this.dirty[table].add(key);
    return row;
  }

  update<T extends KeyedName>(table: T, row: Keyed[T], patch: Partial<Keyed[T]>): Keyed[T] {
    return this.put(table, { ...row, ...patch });
  }

  append<T extends AppendName>(table: T, row: TableRows[T][number]): void {
    this.undo.push({ type: 'append', table, length: this.appended[table].length });
    (this.appended[table] as Array<TableRows[T][number]>).push(row);
  }

  /**
   * The shipment under way that lists the serial, if any: its unit's shipment, while that is
   * booked, shipped or cleared (a unit is its shipment's manifest line, migration 075; the
   * database holds the same, units_keep_identity). Undefined for a unit whose shipment the batch
   * did not load, which only a GPU UUID's holder can be (store/batch-state.ts
   * loadGpuUuidHolders): no command of the batch lists one; a unit named by serial comes with
   * its shipment.
   */
  liveShipmentOf(serial: string): string | undefined {
    const unit = this.rows.units.get(serial);
    if (unit === undefined) return undefined;
    const shipment = this.rows.shipments.get(unit.shipment_id);
    return shipment !== undefined && liveShipmentStatuses.includes(shipment.status) ? shipment.id : undefined;
  }

  /**
   * Lists units in a live shipment: for each, what put would do, without its undo step per
   * serial and without noting the serial with its shipment twice. A 100,000-serial manifest
   * spent 390 ms in such calls, much of it making and then collecting the undo steps.
   * rollback() undoes the units listed so far.
   */
  listing(shipmentId: string): ManifestListing {
    const step: Extract<UndoStep, { type: 'listing' }> = { type: 'listing', serials: [], replaced: [], stages: this.unitStages.length };
    this.undo.push(step);
    this.seenWith(shipmentId).listed.push(step.serials);
    const { units } = this.rows;
    const dirty = this.dirty.units;
    const noteGpuUuid = (unit: UnitRow) => this.noteGpuUuid(unit);
    const { storedShipmentOf, unitStages } = this;
    return {
      add(unit: UnitRow, previous: UnitRow | undefined): void {
        if (unit.shipment_id !== shipmentId) throw new Error(`assertion failed: unit ${unit.serial} is listed in shipment ${shipmentId} but names ${unit.shipment_id}`);
        const serial = unit.serial;
        // A serial the batch holds no row for is not dirty either (dirty keys have rows).
        if (previous !== undefined) {
          step.replaced.push({ unit: previous, wasDirty: dirty.has(serial) });
          // In a shipment this batch listed it in: that shipment's line is written by the move out of it.
          if (previous.shipment_id !== storedShipmentOf.get(serial)) unitStages.push(previous);
        }
        step.serials.push(serial);
        units.set(serial, unit);
        dirty.add(serial);
        noteGpuUuid(unit);
      },
    };
  }

  pushList<N extends 'unitsChanges' | 'replacedPartiesOf'>(name: N, value: BatchState[N][number]): void {
    this.undo.push({ type: 'list', name, length: this[name].length });
    (this[name] as Array<BatchState[N][number]>).push(value);
  }

  /** Marks where a command starts: rollback() undoes back to here. */
  begin(): void {
    this.undo = [];
  }

  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i -= 1) {
      const step = this.undo[i]!;
      if (step.type === 'row') {
        const rows = this.rows[step.table] as Map<string, unknown>;
        if (step.previous === undefined) rows.delete(step.key);
        else rows.set(step.key, step.previous);
        if (!step.wasDirty) this.dirty[step.table].delete(step.key);
      } else if (step.type === 'append') {
        this.appended[step.table].length = step.length;
      } else if (step.type === 'listing') {
        for (const serial of step.serials) {
          this.rows.units.delete(serial);
          this.dirty.units.delete(serial);
        }
        for (const { unit, wasDirty } of step.replaced) {
          this.rows.units.set(unit.serial, unit);
          if (wasDirty) this.dirty.units.add(unit.serial);
        }
        this.unitStages.length = step.stages;
      } else {
        this[step.name].length = step.length;
      }
    }
    this.undo = [];
  }

  /** Rows of one table this batch changed, as it left them. */
  dirtyRows<T extends KeyedName>(table: T): Array<Keyed[T]> {
    return [...this.dirty[table]].map((key) => this.rows[table].get(key)!);
  }

  /**
   * The rows to write, per table, as the batch left them, in two parts:
   * - inserted: rows the batch made. No row has their key yet: new ids are never reused, and
   *   the loader reads every row (and every unit serial) a batch names under the lock. They
   *   go in by plain INSERT or COPY: cheaper than an upsert, and a wrong guess fails on the
   *   primary key instead of overwriting a row.
   * - updated: rows that exist, changed by the batch (written as upserts), and new units that
   *   unitStages writes first.
   * - unitStages, as kept.
   */
  changedRows(): { inserted: Partial<TableRows>; updated: Partial<TableRows>; unitStages: UnitRow[] } {
    const staged = new Set(this.unitStages.map((unit) => unit.serial));
    const split = <T extends KeyedName>(table: T): [Keyed[T][], Keyed[T][]] => {
      const made: Keyed[T][] = [];
      const changed: Keyed[T][] = [];
      const stored = this.stored[table];
      for (const row of this.dirtyRows(table)) {
        const key = keyOf(table, row);
        (stored.has(key) || (table === 'units' && staged.has(key)) ? changed : made).push(row);
      }
      return [made, changed];
    };
    const [organisations, changedOrganisations] = split('organisations');
    const [products, changedProducts] = split('products');
    const [tokens, changedTokens] = split('tokens');
    const [licences, changedLicences] = split('licences');
    const [allocations, changedAllocations] = split('allocations');
    const [sites, changedSites] = split('sites');
    const [shipments, changedShipments] = split('shipments');
    const [units, changedUnits] = split('units');
    const withoutParties = (rows: LicenceWithParties[]) => rows.map(({ parties: _parties, allocation_recipients: _recipients, ...row }) => row);
    const parties: LicencePartyRow[] = [];
    for (const id of new Set(this.replacedPartiesOf)) parties.push(...this.rows.licences.get(id)!.parties);
    return {
      inserted: {
        organisations, products, tokens, licences: withoutParties(licences), licence_parties: parties, licence_versions: this.appended.licence_versions,
        allocations, sites, shipments, units,
      },
      updated: {
        organisations: changedOrganisations, products: changedProducts, tokens: changedTokens, licences: withoutParties(changedLicences),
        allocations: changedAllocations, sites: changedSites, shipments: changedShipments, units: changedUnits,
      },
      unitStages: this.unitStages,
    };
  }
}

export type { TableName };
