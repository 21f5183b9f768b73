/**
 * Serial manifests: which physical units travel in a shipment (invariant 4: a serial is
 * in at most one live shipment). A manifest is all or nothing: one bad serial refuses
 * the whole list, naming it, except where naming more would tell of another tenant. Every
 * bad serial is named at once (up to refusedSerialsListedMax), so a large manifest is not
 * corrected one upload per serial.
 */
import { DomainError } from '../../core/errors.ts';
import { refuse, formatUnits, type CommandContext, type Handler } from '../handler.ts';
import { unshippedEndStatuses, type ShipmentRow, type UnitRow } from '../rows.ts';
import { canonicalGpuUuid } from '../schemas.ts';
import type { BatchState } from '../state.ts';
import { gpuUuidRecordedRefusal } from '../refusals.ts';
import type { BatchKeys } from '../../store/batch-keys.ts';
import { checkDeadline, lapsedLicence } from './shipment-checks.ts';
import { shipmentOrgIds, shipmentPartyRule, visibleShipment } from './shipments.ts';

export type ManifestEntry = string | { serial: string; gpuUuid?: string | undefined };

const serialOf = (entry: ManifestEntry): string => (typeof entry === 'string' ? entry : entry.serial);

export function manifestKeys(entries: ManifestEntry[], keys: BatchKeys): void {
  // A list of bare serials is its own list of keys (most manifests: a CSV of serials).
  if (entries.every((entry) => typeof entry === 'string')) {
    keys.serials.addAll(entries as string[]);
    return;
  }
  keys.serials.addAll(entries.map(serialOf));
  for (const entry of entries) {
    // The loader brings the units that hold it (checkGpuUuidsFree); none given, no look-up.
    if (typeof entry !== 'string' && entry.gpuUuid !== undefined) keys.gpuUuids.add(canonicalGpuUuid(entry.gpuUuid));
  }
}

/** Units that may be listed again: never shipped, or shipped and returned. */
const reshippable = new Set(['licensed', 'returned']);

/**
 * The one refusal for a serial that another exporter's shipment holds or last held, whatever
 * its state: the same words and rule whether it is live, deployed, returned or left licensed,
 * so that it tells nothing of another tenant's shipments, sites or custody.
 */
function notAvailable(serial: string): DomainError {
  return refuse.conflict('unit-owner', `serial ${serial} is not available to list in a shipment`, { serial });
}

/**
 * A serial's refusal, built only if the manifest's refusal names it (RefusedSerials): past the
 * first refusedSerialsListedMax a bad serial is only counted. An Error is built with its stack,
 * and one for each entry of a refused 100,000-entry manifest held the batch for a second or more,
 * five times what listing a valid one takes.
 */
type SerialRefusal = () => DomainError;

/** What checkListable found: the serial's refusal, or whether its unit is released (isReleased). */
type Listability = { refused: SerialRefusal } | { refused: undefined; released: boolean };

// The two answers for a listable serial, made once: a manifest asks 100,000 times.
const listableReleased: Listability = Object.freeze({ refused: undefined, released: true });
const listableKept: Listability = Object.freeze({ refused: undefined, released: false });
const listable = (released: boolean): Listability => (released ? listableReleased : listableKept);
const refused = (refusal: SerialRefusal): Listability => ({ refused: refusal });

/**
 * Whether a unit is free to be listed afresh, as if it had no row: it never shipped, and the
 * booking that listed it was cancelled or expired. A listing only claims a unit while its
 * booking lasts; what a unit is and whose is fixed when it ships (migration 033). Otherwise a
 * manifest's typo could never be put right, and an exporter could keep another's serials
 * for ever by listing them in a booking it cancels.
 */
function isReleased(unit: UnitRow, shipment: ShipmentRow): boolean {
  return !unit.ever_shipped && unshippedEndStatuses.includes(shipment.status);
}

/**
 * Checks that a serial may be listed in the shipment: returns its refusal, unbuilt, or whether
 * its unit is released (isReleased: listed afresh, keeping nothing of its claim). `unit` is the
 * batch's row for it and `live` the live shipment that lists it, if any. A unit that has shipped
 * stays with the exporter whose shipment last held it (a returned unit goes back to that
 * exporter's side): another exporter listing it would take it over, its row rewritten to a
 * shipment its first exporter and recipient cannot see. It also keeps what it physically
 * is: its product and its GPU UUID, once known. A GPU UUID that is not fixed yet (it has not
 * shipped with the unit, gpu_uuid_shipped) belongs to the live booking that gave it; a booking
 * that ends lets it go (shipments.ts, releaseClaims), so it is never one a booking left behind.
 */
function checkListable(state: BatchState, shipment: ShipmentRow, serial: string, unit: UnitRow | undefined, live: string | undefined, given: string | undefined): Listability {
  const exporter = shipment.exporter_org_id;
  if (live !== undefined) {
    // A listing of this batch or of the database: its shipment came with the unit.
    if (state.get('shipments', live)?.exporter_org_id !== exporter) return refused(() => notAvailable(serial));
    return refused(() => refuse.conflict('invariant-4', `serial ${serial} is already in live shipment ${live}`, { serial, shipmentId: live }));
  }
  if (unit === undefined) return listable(false);
  const previous = state.shipmentOfUnit(unit);
  if (isReleased(unit, previous)) return listable(true);
  if (previous.exporter_org_id !== exporter) return refused(() => notAvailable(serial));
  if (!reshippable.has(unit.custody)) {
    // Not where it is deployed: the site is its recipient's to know, and this goes to an exporter.
    return refused(() => refuse.conflict('invariant-4', `serial ${serial} is ${unit.custody}; it cannot be listed in a shipment`, { serial, custody: unit.custody }));
  }
  if (unit.product_id !== shipment.product_id) {
    return refused(() => refuse.conflict('unit-product', `serial ${serial} is a unit of product ${unit.product_id}; shipment ${shipment.id} is of product ${shipment.product_id}`, { serial, productId: unit.product_id }));
  }
  // A given GPU UUID is in its one spelling (schemas.ts); a unit listed before migration 025
  // may keep another case, which the database never changes once known (019).
  if (given !== undefined && unit.gpu_uuid !== null && given !== canonicalGpuUuid(unit.gpu_uuid)) {
    const known = unit.gpu_uuid;
    return refused(() => refuse.conflict('unit-gpu-uuid', `serial ${serial} has GPU UUID ${known}; ${given} given`, { serial, gpuUuid: known, given }));
  }
  return listable(false);
}

/**
 * Refuses the manifest if a GPU UUID it gives is held by another unit: one the database holds
 * (the loader brings every unit holding a GPU UUID the batch gives, keys.gpuUuids), or one an
 * earlier command of the batch gave it. A unit whose booking ended unshipped earlier in the
 * batch holds it no longer (releaseClaims), and a unit given its own again is no clash. Left to
 * the unique index, a clash failed the whole batch, which the sequencer then ran again in
 * halves down to this command, every other organisation's commands in it waiting for that.
 * Run after every entry has passed checkListable, as that index ran after every check in
 * code: a manifest wrong in both ways is answered as before, with the other refusal.
 */
function checkGpuUuidsFree(state: BatchState, given: Array<{ serial: string; gpuUuid: string }>): void {
  for (const { serial, gpuUuid } of given) {
    if (state.gpuUuidHolder(gpuUuid, serial) !== undefined) throw gpuUuidRecordedRefusal(gpuUuid);
  }
}

/**
 * Serials a manifest's refusal names one by one, each with its rule and words; the others
 * refused are counted. A refusal is sent, logged and stored under its Idempotency-Key, so it
 * must not grow with the manifest (100,000 serials): 50 serials of at most 64 characters, each
 * with its sentence, keep it to some 15 kB.
 */
export const refusedSerialsListedMax = 50;

/** The serials of one manifest refused so far: the first refusedSerialsListedMax kept, the rest counted. */
class RefusedSerials {
  readonly listed: Array<{ serial: string; error: DomainError }> = [];
  count = 0;

  add(serial: string, refusal: SerialRefusal): void {
    this.count += 1;
    if (this.listed.length < refusedSerialsListedMax) this.listed.push({ serial, error: refusal() });
  }

  /**
   * One refusal for the manifest: a lone bad serial's own (its rule, words and details, as
   * before), or the first's with every listed serial in details.serials and a count of the
   * rest in details.more. Every per-serial refusal is one the caller would have been given
   * alone, so listing them tells no more of another tenant than one would.
   */
  refusal(): DomainError | undefined {
    const [first] = this.listed;
    if (first === undefined) return undefined;
    if (this.count === 1) return first.error;
    const others = this.count - 1;
    const more = this.count - this.listed.length;
    const named = more === 0 ? 'details.serials names each' : `details.serials names the first ${formatUnits(this.listed.length)}, details.more counts the other ${formatUnits(more)}`;
    return new DomainError(first.error.code, `${first.error.message}; and ${formatUnits(others)} more serial${others === 1 ? ' is' : 's are'} refused (${named})`, {
      ...(first.error.rule === undefined ? {} : { rule: first.error.rule }),
      details: { ...first.error.details, serials: this.listed.map(({ serial, error }) => ({ serial, rule: error.rule, message: error.message, ...error.details })), more },
    });
  }
}

/**
 * Lists the serials in the shipment, checking each as it goes; a bad serial is left out and
 * named, and any refuses the whole manifest, undoing those listed (the command's rollback).
 * Each serial is looked up once: a serial this command already listed is live in this
 * shipment with a unit of this command's seq.
 */
export function attachSerials(context: CommandContext, shipment: ShipmentRow, entries: ManifestEntry[]): number {
  const { state, seq } = context;
  const room = shipment.units - shipment.serial_count;
  if (entries.length > room) {
    // Manifests add up: a file imported again after part of it went in is too long by what went in.
    const listed = shipment.serial_count === 0 ? '' : ` (${formatUnits(shipment.serial_count)} of its ${formatUnits(shipment.units)} units are listed already: manifests add up)`;
    throw refuse.conflict('manifest-size', `shipment ${shipment.id} has room for ${formatUnits(room)} more serial${room === 1 ? '' : 's'}${listed}; ${formatUnits(entries.length)} given`, { room, given: entries.length, listed: shipment.serial_count });
  }
  const uuids = new Set<string>();
  const given: Array<{ serial: string; gpuUuid: string }> = [];
  const listing = state.listing(shipment.id);
  const refusedSerials = new RefusedSerials();
  entries.forEach((entry, index) => {
    const serial = serialOf(entry);
    const unit = state.get('units', serial);
    const live = state.liveShipmentOf(serial);
    const gpuUuid = typeof entry === 'string' ? undefined : entry.gpuUuid;
    if (live === shipment.id && unit?.shipment_id === shipment.id && unit.updated_seq === seq) {
      refusedSerials.add(serial, () => refuse.conflict('invariant-4', `serial ${serial} appears twice in the manifest (entry ${index + 1})`, { serial, entry: index + 1 }));
      return;
    }
    const listability = checkListable(state, shipment, serial, unit, live, gpuUuid);
    if (listability.refused !== undefined) {
      refusedSerials.add(serial, listability.refused);
      return;
    }
    if (gpuUuid !== undefined && uuids.has(gpuUuid)) {
      refusedSerials.add(serial, () => refuse.conflict('invariant-4', `GPU UUID ${gpuUuid} appears twice in the manifest`, { gpuUuid }));
      return;
    }
    const { released } = listability;
    if (gpuUuid !== undefined) {
      uuids.add(gpuUuid);
      given.push({ serial, gpuUuid: canonicalGpuUuid(gpuUuid) });
    }
    listing.add({
      serial,
      // The unit's own GPU UUID first: a given one equals it (checkListable) but for the
      // case of one stored before 025, which the database keeps as it is. A released unit
      // keeps nothing of its claim (and its booking's end let go of its GPU UUID already).
      // A GPU UUID given here is this booking's claim until it ships (gpu_uuid_shipped).
      gpu_uuid: (released ? null : unit?.gpu_uuid) ?? gpuUuid ?? null,
      product_id: shipment.product_id,
      recipient_org_id: shipment.recipient_org_id,
      custody: 'licensed',
      shipment_id: shipment.id,
      site_id: null,
      updated_seq: seq,
      ever_shipped: unit?.ever_shipped ?? false,
      gpu_uuid_shipped: unit?.gpu_uuid_shipped ?? false,
    }, unit);
  });
  const refusal = refusedSerials.refusal();
  if (refusal !== undefined) throw refusal;
  checkGpuUuidsFree(state, given);
  const current = state.get('shipments', shipment.id)!;
  state.update('shipments', current, { serial_count: current.serial_count + entries.length, updated_seq: seq });
  return entries.length;
}

export const manifestAttach: Handler<'manifest.attach'> = {
  kind: 'manifest.attach',
  keys(input, keys) {
    keys.shipments.add(input.shipmentId);
    manifestKeys(input.serials, keys);
  },
  run(context, input) {
    const shipment = visibleShipment(context.state, context.actor, input.shipmentId);
    if (shipment.exporter_org_id !== context.actor.orgId) throw refuse.forbidden(`only the exporter ${shipment.exporter_org_id} may attach serials to shipment ${shipment.id}`, shipmentPartyRule);
    if (shipment.status !== 'booked') throw refuse.conflict('shipment-status', `couldn't attach serials to shipment ${shipment.id}: it is ${shipment.status}, not booked`, { status: shipment.status });
    checkDeadline(context, shipment, 'attach serials to');
    // A booking that can never ship takes no more serials: they would be tied up until the
    // sweep expires it.
    const lapsed = lapsedLicence(context.state, shipment, context.at);
    if (lapsed !== null) {
      throw refuse.licence(lapsed.rule, `couldn't attach serials to shipment ${shipment.id}: ${lapsed.reason}, so it can never ship`, { licenceId: lapsed.licenceId });
    }
    const added = attachSerials(context, shipment, input.serials);
    const serialCount = shipment.serial_count + added;
    return {
      subjectId: shipment.id,
      orgIds: shipmentOrgIds(shipment),
      effects: { added, serialCount },
      answer: { shipmentId: shipment.id, added, serialCount },
    };
  },
};
