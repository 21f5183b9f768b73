/**
 * Shipments: a two-phase transfer on every covering licence. Booking reserves units on
 * the export-side and the import-side allocation together (invariant 2), only under
 * licences that cover it (invariant 3); shipping posts the reservation; cancelling or
 * expiring releases it. What booking and shipping check of the allocations and licences is
 * in shipment-checks.ts.
 */
import { limits } from '../../core/limits.ts';
import { newId, refuse, seesAll, type CommandContext, type EventPart, type Handler, type Outcome } from '../handler.ts';
import type { Actor } from '../permissions.ts';
import { unshippedEndStatuses, type LicenceStatus, type ShipmentRow, type ShipmentStatus } from '../rows.ts';
import type { CommandInput } from '../schemas.ts';
import type { BatchState, LicenceWithParties } from '../state.ts';
import { licenceOrgIds, statusAfterUse } from './licences.ts';
import { attachSerials, manifestKeys } from './manifests.ts';
import { bookingSide, checkAvailable, checkBookingPeriod, checkCancellable, checkCovers, checkShippable, importLicenceLapse, side, type Side } from './shipment-checks.ts';

export const bookingDeadlineMaxMs = limits.bookingDeadlineMaxMs;

export function shipmentOrgIds(shipment: ShipmentRow): string[] {
  return [shipment.exporter_org_id, shipment.recipient_org_id];
}

export function visibleShipment(state: BatchState, actor: Actor, shipmentId: string): ShipmentRow {
  const shipment = state.get('shipments', shipmentId);
  if (!shipment || !(seesAll(actor) || shipmentOrgIds(shipment).includes(actor.orgId))) throw refuse.notFound('shipment', shipmentId);
  return shipment;
}

export const shipmentBook: Handler<'shipment.book'> = {
  kind: 'shipment.book',
  keys(input, keys, actor) {
    keys.allocations.add(input.exportAllocationId).add(input.importAllocationId);
    keys.products.add(input.productId);
    keys.organisations.add(actor.orgId);
    if (input.serials) manifestKeys(input.serials, keys);
  },
  run(context, input) {
    const { state, actor } = context;
    const exportSide = bookingSide(state, input.exportAllocationId, 'export', actor.orgId);
    const importSide = bookingSide(state, input.importAllocationId, 'import', actor.orgId);
    if (!state.get('products', input.productId)) throw refuse.notFound('product', input.productId);
    const exporter = state.get('organisations', actor.orgId);
    const recipientId = importSide.allocation.recipient_org_id;
    const recipient = state.get('organisations', recipientId);
    if (!exporter || !recipient) throw refuse.notFound('organisation', exporter ? recipientId : actor.orgId);
    if (input.deadline <= context.at || Date.parse(input.deadline) - Date.parse(context.at) > bookingDeadlineMaxMs) {
      const deadlineMaxDays = bookingDeadlineMaxMs / 86_400_000;
      throw refuse.invalid('booking-deadline', `deadline ${input.deadline} must be after ${context.at} and within ${deadlineMaxDays} days`, { deadline: input.deadline, at: context.at, deadlineMaxDays });
    }
    const terms = { product_id: input.productId, origin: exporter.country, destination: recipient.country, recipient_org_id: recipientId, units: input.units };
    for (const covering of [exportSide, importSide]) {
      checkCovers(context, covering, { ...terms, import_allocation_id: importSide.allocation.id });
      checkBookingPeriod(context, covering);
    }
    checkDeadlineWithinValidity(input.deadline, exportSide, importSide);
    checkAvailable(exportSide, input.units);
    checkAvailable(importSide, input.units);
    const id = newId('S', context);
    const shipment = state.put('shipments', {
      id,
      exporter_org_id: exporter.id,
      ...terms,
      export_allocation_id: exportSide.allocation.id,
      import_allocation_id: importSide.allocation.id,
      status: 'booked',
      booked_at: context.at,
      deadline: input.deadline,
      reference: input.reference ?? null,
      serial_count: 0,
      demo: input.demo,
      created_seq: context.seq,
      updated_seq: context.seq,
    });
    for (const { allocation } of [exportSide, importSide]) {
      state.update('allocations', allocation, { reserved_units: allocation.reserved_units + input.units });
    }
    if (input.serials) attachSerials(context, shipment, input.serials);
    return {
      subjectId: id,
      orgIds: shipmentOrgIds(shipment),
      effects: { shipmentId: id, recipientId, origin: terms.origin, destination: terms.destination },
      answer: { shipmentId: id, status: 'booked', units: input.units, serialCount: state.get('shipments', id)!.serial_count },
    };
  },
};

/**
 * A booking lasts no longer than both its licences: at the earlier validTo it can no longer
 * ship (checkCovers), and the sweep expires it then as lapsed, not at the deadline it was
 * given and shown. So a deadline after that instant is refused, naming both; one at it is
 * taken (the licence and the booking end together). Run after checkCovers, so that a licence
 * whose validity has already ended is refused for that (licence-validity), as before.
 */
function checkDeadlineWithinValidity(deadline: string, exportSide: Side, importSide: Side): void {
  const ending = exportSide.licence.valid_to <= importSide.licence.valid_to ? exportSide.licence : importSide.licence;
  if (deadline <= ending.valid_to) return;
  throw refuse.invalid('booking-deadline', `deadline ${deadline} is after ${ending.valid_to}, when the validity of ${ending.direction} licence ${ending.id} ends (the earlier of the booking's two licences); a booking cannot outlast its licences`, {
    deadline, validTo: ending.valid_to, licenceId: ending.id,
  });
}

type Move = 'post' | 'release' | 'none';

interface Step {
  from: ShipmentStatus;
  to: ShipmentStatus;
  /** What happens to the reservation on both allocations. */
  move: Move;
  /** Which party acts: the shipment's exporter or recipient. */
  by: 'exporter' | 'recipient';
  /**
   * The authority that issued the shipment's import licence may take the step too: the import
   * side's acts, clearing it (customs) and turning it back at the border (entry refused).
   */
  orImportAuthority?: true;
  custody?: { from: 'licensed' | 'in_transit'; to: 'in_transit' | 'delivered' | 'returned' };
}

/**
 * Releases or posts the reservation on both allocations; posting also counts on the
 * licence, which may exhaust it (statusAfterUse). Returns the licences it exhausted, each
 * with the event part that says so (exhaustionPart): the step's own event goes to the
 * shipment's parties, and a licence's holder and parties must read the change of its
 * status too. Exhausted licences' updated_seq names that part's event, the one after the
 * step's own (and after each other, in order); so the caller puts those parts right after
 * its own event.
 */
function moveUnits(context: CommandContext, shipment: ShipmentRow, move: Move): EventPart[] {
  const { state } = context;
  const exhausted: EventPart[] = [];
  for (const allocationId of [shipment.export_allocation_id, shipment.import_allocation_id]) {
    const allocation = state.get('allocations', allocationId)!;
    const reserved = allocation.reserved_units - shipment.units;
    const shipped = allocation.shipped_units + (move === 'post' ? shipment.units : 0);
    state.update('allocations', allocation, { reserved_units: reserved, shipped_units: shipped });
    if (move !== 'post') continue;
    const licence = state.get('licences', allocation.licence_id)!;
    const licenceShipped = licence.shipped_units + shipment.units;
    const status = statusAfterUse(licence.status, licenceShipped, licence.authorised_units);
    const changed = status !== licence.status;
    const seq = changed ? context.seq + 1 + exhausted.length : context.seq;
    if (changed) exhausted.push(exhaustionPart(licence, status));
    state.update('licences', licence, { shipped_units: licenceShipped, status, updated_seq: seq });
  }
  return exhausted;
}

/**
 * The event of a licence that shipping used up, read by the licence's organisations. It
 * names the licence only, in its effects and without the command's input: the shipment
 * that did it may be another recipient's (a consignee on an import licence), which the
 * holder must not learn of.
 */
function exhaustionPart(licence: LicenceWithParties, to: LicenceStatus): EventPart {
  return { subjectId: licence.id, orgIds: licenceOrgIds(licence), effects: { licenceId: licence.id, from: licence.status, to }, withoutInput: true };
}

/**
 * A booking that ends unshipped (cancelled, expired) only claimed the units it listed: those
 * that never shipped are free to be listed afresh, by any exporter, as any product, with any
 * GPU UUID (manifests.ts, isReleased). And every GPU UUID it gave is let go, so that the unit
 * it really belongs to may be listed with it: on a unit that never shipped (migration 033), and
 * on one that shipped without it, was returned and was listed again (037). Otherwise an
 * exporter could list its returned unit with another's GPU UUID, cancel, and keep that GPU
 * for ever. Only a GPU UUID that went out with its unit stays (gpu_uuid_shipped).
 */
function releaseClaims(context: CommandContext, shipment: ShipmentRow): void {
  const { state, seq } = context;
  state.pushList('unitsChanges', { kind: 'release', shipment_id: shipment.id, seq });
  for (const unit of state.unitsOfShipment(shipment.id)) {
    if (!unit.gpu_uuid_shipped && unit.gpu_uuid !== null) state.update('units', unit, { gpu_uuid: null, updated_seq: seq });
  }
}

/**
 * Moves a shipment one step. The event's effects are { from, to, units }; a step that
 * posts units (shipping) adds licencesExhausted, always present there: the ids of the
 * licences this shipment used up (statusAfterUse), empty when none. Each of those also
 * gets an event of its own, after the step's (moreEvents), read by that licence's
 * organisations: a licence's status never changes without an event its parties read.
 */
export function applyStep(context: CommandContext, shipment: ShipmentRow, step: Step): Outcome {
  const { state } = context;
  const exhaustedParts = step.move === 'none' ? [] : moveUnits(context, shipment, step.move);
  const exhausted = exhaustedParts.map((part) => part.subjectId);
  state.update('shipments', shipment, { status: step.to, updated_seq: context.seq });
  if (step.custody) {
    const { from, to } = step.custody;
    // Leaving 'licensed' is shipping: the unit's identity is fixed from now on (migration 033),
    // and its GPU UUID, if it has one, with it (037).
    const markShipped = from === 'licensed';
    state.pushList('unitsChanges', { kind: 'custody', shipment_id: shipment.id, from, to, seq: context.seq, markShipped });
    for (const unit of state.unitsOfShipment(shipment.id)) {
      if (unit.custody !== from) continue;
      const marks = markShipped ? { ever_shipped: true, gpu_uuid_shipped: unit.gpu_uuid !== null } : {};
      state.update('units', unit, { custody: to, updated_seq: context.seq, ...marks });
    }
  }
  if (unshippedEndStatuses.includes(step.to)) releaseClaims(context, shipment);
  return {
    subjectId: shipment.id,
    orgIds: shipmentOrgIds(shipment),
    effects: { from: step.from, to: step.to, units: shipment.units, ...(step.move === 'post' ? { licencesExhausted: exhausted } : {}) },
    answer: { shipmentId: shipment.id, status: step.to },
    ...(exhaustedParts.length > 0 ? { moreEvents: exhaustedParts } : {}),
  };
}

/**
 * Clearance and a return at the border are the import side's acts: besides the party, only
 * the authority that issued the import licence behind the shipment may record them, not any
 * authority (the exporting country's, say). The loader brings a shipment's allocations and
 * their licences (store/batch-state.ts), so the licence is in the batch.
 */
function actsAsImportAuthority(context: CommandContext, shipment: ShipmentRow): boolean {
  const { actor, state } = context;
  return actor.role.startsWith('authority') && importAuthorityId(state, shipment) === actor.orgId;
}

function importAuthorityId(state: BatchState, shipment: ShipmentRow): string {
  return side(state, shipment.import_allocation_id).licence.authority_org_id;
}

/** The rule of a shipment's step taken by an organisation that is not the party (or authority) that takes it. */
export const shipmentPartyRule = 'shipment-party';

function step<K extends 'shipment.ship' | 'shipment.clear' | 'shipment.deliver' | 'shipment.cancel' | 'shipment.return'>(kind: K, rule: Step): Handler<K> {
  return {
    kind,
    keys(input, keys) {
      keys.shipments.add(input.shipmentId);
    },
    run(context, input: CommandInput<K>) {
      const { state, actor } = context;
      const shipment = visibleShipment(state, actor, input.shipmentId);
      const party = rule.by === 'exporter' ? shipment.exporter_org_id : shipment.recipient_org_id;
      if (party !== actor.orgId && !(rule.orImportAuthority && actsAsImportAuthority(context, shipment))) {
        const orAuthority = rule.orImportAuthority ? ` or ${importAuthorityId(state, shipment)}, the authority of its import licence,` : '';
        throw refuse.forbidden(`only the ${rule.by} ${party}${orAuthority} may ${kind.slice('shipment.'.length)} shipment ${shipment.id}`, shipmentPartyRule);
      }
      if (shipment.status !== rule.from) {
        throw refuse.conflict('shipment-status', `couldn't ${kind.slice('shipment.'.length)} shipment ${shipment.id}: it is ${shipment.status}, not ${rule.from}`, { status: shipment.status });
      }
      if (kind === 'shipment.ship') checkShippable(context, shipment);
      // Past its deadline, or under a licence no longer in force, a booking is expired in all
      // but name (the sweep may not have run yet): cancelling it then would end it cancelled
      // before the sweep and expired after.
      if (kind === 'shipment.cancel') checkCancellable(context, shipment);
      if (kind === 'shipment.clear') return clear(context, shipment, rule);
      return applyStep(context, shipment, rule);
    },
  };
}

/**
 * Clearance is the import recorded, under the import licence (importLicenceLapse): the
 * recipient's is refused once that licence is not in force (suspended, revoked, surrendered,
 * expired, or its validity ended, swept or not). A clearance that happened while it was in
 * force may still be recorded late, by the licence's issuing authority alone
 * (actsAsImportAuthority), which answers for it. The event's effects give the import licence as
 * it stood when the clearance was recorded (importLicence: id, status, validTo), on every
 * clearance, so that a late record under a licence no longer in force says so in the log:
 * the event's `at` is when it was recorded, not when the goods were released.
 */
function clear(context: CommandContext, shipment: ShipmentRow, rule: Step): Outcome {
  const { licence } = side(context.state, shipment.import_allocation_id);
  const lapse = importLicenceLapse(licence, context.at);
  if (lapse !== null && !actsAsImportAuthority(context, shipment)) {
    throw refuse.licence(lapse.rule, `couldn't clear shipment ${shipment.id}: ${lapse.reason}; a clearance under it is recorded now only by ${licence.authority_org_id}, the authority that issued it`, lapse.details);
  }
  const importLicence = { id: licence.id, status: licence.status, validTo: licence.valid_to };
  const outcome = applyStep(context, shipment, rule);
  return { ...outcome, effects: { ...outcome.effects, importLicence } };
}

export const shipmentShip = step('shipment.ship', { from: 'booked', to: 'shipped', move: 'post', by: 'exporter', custody: { from: 'licensed', to: 'in_transit' } });
export const shipmentClear = step('shipment.clear', { from: 'shipped', to: 'cleared', move: 'none', by: 'recipient', orImportAuthority: true });
export const shipmentDeliver = step('shipment.deliver', { from: 'cleared', to: 'delivered', move: 'none', by: 'recipient', custody: { from: 'in_transit', to: 'delivered' } });
export const shipmentCancel = step('shipment.cancel', { from: 'booked', to: 'cancelled', move: 'release', by: 'exporter' });
/**
 * A shipment turned back before import clearance (entry refused, or recalled on the way):
 * recorded by its exporter, to whom the goods come back, or by the authority of its import
 * licence, which refused them. Its units in transit become returned (the exporter may list
 * them in a new shipment; one reported lost on the way stays lost) and its manifest ends.
 * What it shipped stays shipped on both allocations and licences: the units did leave under
 * both, and a return credits neither back; the authority that issued one may amend it to
 * give units again. It is recorded whatever the licences' status now: a licence suspended or
 * ended may be why the goods were turned back.
 */
export const shipmentReturn = step('shipment.return', { from: 'shipped', to: 'returned', move: 'none', by: 'exporter', orImportAuthority: true, custody: { from: 'in_transit', to: 'returned' } });
export const expireStep: Step = { from: 'booked', to: 'expired', move: 'release', by: 'exporter' };
