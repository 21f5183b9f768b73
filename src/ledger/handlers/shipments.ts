/**
 * Shipments: a two-phase transfer on every covering licence. Booking reserves units on
 * the export-side and the import-side allocation together (invariant 2), only under
 * licences that cover it (invariant 3); shipping posts the reservation; cancelling or
 * expiring releases it.
 */
import { assert, type DomainError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';
import { newId, refuse, formatUnits, seesAll, type CommandContext, type EventPart, type Handler, type Outcome } from '../handler.ts';
import type { Actor } from '../permissions.ts';
import { liveShipmentStatuses, unshippedEndStatuses, type AllocationRow, type LicenceCondition, type LicenceStatus, type ShipmentRow, type ShipmentStatus } from '../rows.ts';
import type { CommandInput } from '../schemas.ts';
import type { BatchState, LicenceWithParties } from '../state.ts';
import { namesRecipient } from './allocations.ts';
import { licenceOrgIds, statusAfterUse } from './licences.ts';
import { attachSerials, manifestKeys } from './manifests.ts';

export const bookingDeadlineMaxMs = limits.bookingDeadlineMaxMs;

export function shipmentOrgIds(shipment: ShipmentRow): string[] {
  return [shipment.exporter_org_id, shipment.recipient_org_id];
}

export function visibleShipment(state: BatchState, actor: Actor, shipmentId: string): ShipmentRow {
  const shipment = state.get('shipments', shipmentId);
  if (!shipment || !(seesAll(actor) || shipmentOrgIds(shipment).includes(actor.orgId))) throw refuse.notFound('shipment', shipmentId);
  return shipment;
}

interface Side {
  allocation: AllocationRow;
  licence: LicenceWithParties;
}

function side(state: BatchState, allocationId: string): Side {
  const allocation = state.get('allocations', allocationId);
  const licence = allocation && state.get('licences', allocation.licence_id);
  if (!allocation || !licence) throw refuse.notFound('allocation', allocationId);
  return { allocation, licence };
}

/**
 * Whether a licence lets this exporter ship under it: an export licence it holds, or an
 * import licence that names it as a supplier. Holding an import licence is not enough: an
 * import licence names who may ship into its country as its suppliers, and only they read
 * its allocations (allocationOrgIds; store/visibility.ts shipsUnder), so a holder it does
 * not name would book under an allocation it cannot see. Booking looks for it (an
 * allocation of any other licence is not the exporter's to see) and shipping checks it
 * again (checkExporter): an amendment may drop the supplier in between. The database holds
 * the same (migration 035).
 */
function letsExporterShip(licence: LicenceWithParties, exporterId: string): boolean {
  if (licence.direction === 'export') return licence.holder_org_id === exporterId;
  return licence.parties.some((party) => party.org_id === exporterId && party.role === 'supplier');
}

/** The field of shipment.book that names each side's allocation. */
const allocationField = { export: 'exportAllocationId', import: 'importAllocationId' } as const;

/**
 * One side of a booking: an allocation of the licence direction the field takes, that this
 * exporter ships under. An allocation it cannot read (letsExporterShip: the allocations it
 * reads are those it ships under) is not found, whatever it is. One it reads but of the other
 * direction (the two ids swapped, most likely) is refused saying so: a 404 for an allocation
 * that GET /v1/allocations/:id shows it would send it looking for a typo.
 */
function bookingSide(state: BatchState, allocationId: string, direction: 'export' | 'import', exporterId: string): Side {
  const found = side(state, allocationId);
  const { licence } = found;
  if (!letsExporterShip(licence, exporterId)) throw refuse.notFound('allocation', allocationId);
  if (licence.direction === direction) return found;
  const takes = direction === 'export' ? 'an export licence you hold' : 'an import licence that names you as a supplier';
  throw refuse.invalid('allocation-direction', `allocation ${allocationId} is of ${licence.direction} licence ${licence.id}, so it goes in ${allocationField[licence.direction]}; ${allocationField[direction]} takes an allocation of ${takes}`, {
    field: allocationField[direction], allocationId, licenceId: licence.id, direction: licence.direction, expectedDirection: direction,
  });
}

/**
 * Shipping's form of booking's exporter check: the shipment is the exporter's own (the
 * ledger checked that), so a licence that no longer names it is a refusal by rule, naming
 * the licence, not an allocation that cannot be found.
 */
function checkExporter({ licence }: Side, shipment: Pick<ShipmentRow, 'id' | 'exporter_org_id'>): void {
  if (letsExporterShip(licence, shipment.exporter_org_id)) return;
  const exporter = `the exporter ${shipment.exporter_org_id} of shipment ${shipment.id}`;
  const message = licence.direction === 'export'
    ? `licence ${licence.id} is held by ${licence.holder_org_id}, not ${exporter}`
    : `licence ${licence.id} does not name ${exporter} as a supplier${licence.holder_org_id === shipment.exporter_org_id ? ' (holding an import licence does not let an exporter ship under it)' : ''}`;
  throw refuse.licence('licence-exporter', message, { licenceId: licence.id });
}

/**
 * Invariant 3: the licence is issued, valid now, and names this product, route and
 * recipient, within its conditions. Booking and shipping both run it (a licence may be
 * suspended or amended between the two); the allocation's period is booking's alone
 * (checkBookingPeriod).
 */
function checkCovers(context: CommandContext, { licence, allocation }: Side, shipment: CoveredTerms): void {
  const at = context.at;
  if (licence.status !== 'issued') throw refuse.licence('licence-status', `licence ${licence.id} is ${licence.status}, not issued`, { licenceId: licence.id, status: licence.status });
  if (at < licence.valid_from || at >= licence.valid_to) {
    throw refuse.licence('licence-validity', `licence ${licence.id} is valid from ${licence.valid_from} to ${licence.valid_to}, not at ${at}`, { licenceId: licence.id, validFrom: licence.valid_from, validTo: licence.valid_to, at });
  }
  if (!licence.product_ids.includes(shipment.product_id)) {
    throw refuse.licence('licence-product', `licence ${licence.id} does not cover product ${shipment.product_id}`, { licenceId: licence.id, productId: shipment.product_id, productIds: licence.product_ids });
  }
  if (licence.origin !== shipment.origin || licence.destination !== shipment.destination) {
    throw refuse.licence('licence-route', `licence ${licence.id} covers ${licence.origin} → ${licence.destination}, not ${shipment.origin} → ${shipment.destination}`, {
      licenceId: licence.id, licenceOrigin: licence.origin, licenceDestination: licence.destination, origin: shipment.origin, destination: shipment.destination,
    });
  }
  if (allocation.recipient_org_id !== shipment.recipient_org_id) throw recipientPairRefusal(context.state, { licence, allocation }, shipment);
  if (!namesRecipient(licence, shipment.recipient_org_id)) {
    throw refuse.licence('licence-recipient', `licence ${licence.id} does not name ${shipment.recipient_org_id} as holder, consignee or end user`, { licenceId: licence.id, recipientId: shipment.recipient_org_id });
  }
  for (const condition of licence.conditions) checkCondition(context, licence, condition, shipment);
}

/** What checkCovers reads of a shipment: its terms, and (booking or shipped) its import allocation, whose recipient is the shipment's. */
type CoveredTerms = Pick<ShipmentRow, 'product_id' | 'origin' | 'destination' | 'recipient_org_id' | 'units' | 'import_allocation_id'>;

/**
 * The shipment's recipient is its import allocation's (shipmentBook), so an export allocation
 * for another recipient is a mismatched pair, not a licence that fails to name the recipient:
 * the export licence may well name it, on another of its allocations. Both allocations are the
 * exporter's to read (shipmentBook found them), and so are their recipients.
 */
function recipientPairRefusal(state: BatchState, exportSide: Side, shipment: CoveredTerms): DomainError {
  const importSide = side(state, shipment.import_allocation_id);
  const exportAllocation = exportSide.allocation;
  const importAllocation = importSide.allocation;
  return refuse.licence(
    'allocation-recipient-pair',
    `allocation ${exportAllocation.id} (export, licence ${exportSide.licence.id}) is for ${exportAllocation.recipient_org_id}, and allocation ${importAllocation.id} (import, licence ${importSide.licence.id}) is for ${importAllocation.recipient_org_id}; both allocations of a booking must be for the same recipient`,
    { exportAllocationId: exportAllocation.id, exportRecipientId: exportAllocation.recipient_org_id, importAllocationId: importAllocation.id, importRecipientId: importAllocation.recipient_org_id },
  );
}

/**
 * The rule of a licence condition's refusal. A condition's id is the issuing authority's
 * slug (schemas.ts: any of ^[a-z0-9-]{1,64}$, invariant-2 included), so it cannot be the rule
 * a client keys on: the refusal names it in its details, with the condition's kind.
 */
export const licenceConditionRule = 'licence-condition';

function checkCondition(context: CommandContext, licence: LicenceWithParties, condition: LicenceCondition, shipment: CoveredTerms): void {
  const named = { licenceId: licence.id, conditionId: condition.id, kind: condition.kind };
  if (condition.kind === 'max_units_per_shipment' && shipment.units > condition.value!) {
    throw refuse.licence(licenceConditionRule, `licence ${licence.id} condition ${condition.id} allows at most ${formatUnits(condition.value!)} units per shipment; ${formatUnits(shipment.units)} requested`, {
      ...named, maxUnits: condition.value!, requestedUnits: shipment.units,
    });
  }
  if (condition.kind !== 'end_user_kyc_required') return;
  const recipientId = shipment.recipient_org_id;
  const kycVerifiedBy = context.state.get('organisations', recipientId)?.kyc_verified_by ?? [];
  if (kycVerifiedBy.includes(licence.authority_org_id)) return;
  // KYC is per authority (organisation.set_kyc): another authority's review does not count, so say whose is needed and whose there is.
  const has = kycVerifiedBy.length === 0 ? `${recipientId} has no verified KYC` : `${recipientId} is verified by ${listed(kycVerifiedBy)} only`;
  throw refuse.licence(licenceConditionRule, `licence ${licence.id} condition ${condition.id} requires ${recipientId}'s KYC verified by ${licence.authority_org_id}, the authority that issued ${licence.id}; ${has}`, {
    ...named, recipientId, authorityId: licence.authority_org_id, kycVerifiedBy,
  });
}

/** "A", "A and B", "A, B and C". */
function listed(items: readonly string[]): string {
  return items.length === 1 ? items[0]! : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/**
 * A tranche's period bounds when its units may be booked, not when they may leave: a
 * booking made inside the period reserved them, and it may ship after the period ends
 * (until its deadline). So shipping does not run this. Days are UTC days, as the database
 * judges them ((booked_at AT TIME ZONE 'UTC')::date): the refusal names the day it took as
 * today, and says it is UTC, since an authority's own day may already be another.
 */
function checkBookingPeriod(context: CommandContext, { allocation }: Side): void {
  const today = context.at.slice(0, 10);
  if (allocation.period_start !== null && (today < allocation.period_start || today > allocation.period_end!)) {
    throw refuse.licence('allocation-period', `allocation ${allocation.id} is for ${allocation.period_start} to ${allocation.period_end}, and today is ${today} (UTC days: the booking's time is ${context.at})`, {
      allocationId: allocation.id, periodStart: allocation.period_start, periodEnd: allocation.period_end, today,
    });
  }
}

function checkAvailable({ allocation, licence }: Side, units: number): void {
  const available = allocation.units - allocation.reserved_units - allocation.shipped_units;
  if (units > available) {
    throw refuse.units('invariant-2', `allocation ${allocation.id} of licence ${licence.id} has ${formatUnits(available)} units available; ${formatUnits(units)} requested`, { allocationId: allocation.id, licenceId: licence.id, availableUnits: available, requestedUnits: units });
  }
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

type Move = 'post' | 'release' | 'none';

interface Step {
  from: ShipmentStatus;
  to: ShipmentStatus;
  /** What happens to the reservation on both allocations. */
  move: Move;
  /** Which party acts: the shipment's exporter or recipient (the import licence's authority may also clear). */
  by: 'exporter' | 'recipient';
  custody?: { from: 'licensed' | 'in_transit'; to: 'in_transit' | 'delivered' };
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

/** Ends a shipment's manifest: its serials are free to be listed again. */
function endManifest(context: CommandContext, shipment: ShipmentRow): void {
  const { state } = context;
  state.pushList('endedShipments', shipment.id);
  for (const serial of state.liveSerialsOf(shipment.id)) state.setLive(serial, undefined);
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
  if (!liveShipmentStatuses.includes(step.to)) endManifest(context, shipment);
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
 * Clearance is the import side's act: besides the recipient, only the authority that
 * issued the import licence behind the shipment may record it, not any authority (the
 * exporting country's, say). The loader brings a shipment's allocations and their
 * licences (store/batch-state.ts), so the licence is in the batch.
 */
function clearsAsAuthority(context: CommandContext, shipment: ShipmentRow): boolean {
  const { actor, state } = context;
  return actor.role.startsWith('authority') && importAuthorityId(state, shipment) === actor.orgId;
}

function importAuthorityId(state: BatchState, shipment: ShipmentRow): string {
  return side(state, shipment.import_allocation_id).licence.authority_org_id;
}

/** The rule of a shipment's step taken by an organisation that is not the party (or authority) that takes it. */
export const shipmentPartyRule = 'shipment-party';

function step<K extends 'shipment.ship' | 'shipment.clear' | 'shipment.deliver' | 'shipment.cancel'>(kind: K, rule: Step): Handler<K> {
  return {
    kind,
    keys(input, keys) {
      keys.shipments.add(input.shipmentId);
    },
    run(context, input: CommandInput<K>) {
      const { state, actor } = context;
      const shipment = visibleShipment(state, actor, input.shipmentId);
      const party = rule.by === 'exporter' ? shipment.exporter_org_id : shipment.recipient_org_id;
      if (party !== actor.orgId && !(kind === 'shipment.clear' && clearsAsAuthority(context, shipment))) {
        const orAuthority = kind === 'shipment.clear' ? ` or ${importAuthorityId(state, shipment)}, the authority of its import licence,` : '';
        throw refuse.forbidden(`only the ${rule.by} ${party}${orAuthority} may ${kind.slice('shipment.'.length)} shipment ${shipment.id}`, shipmentPartyRule);
      }
      if (shipment.status !== rule.from) {
        throw refuse.conflict('shipment-status', `couldn't ${kind.slice('shipment.'.length)} shipment ${shipment.id}: it is ${shipment.status}, not ${rule.from}`, { status: shipment.status });
      }
      if (kind === 'shipment.ship') checkShippable(context, shipment);
      return applyStep(context, shipment, rule);
    },
  };
}

/**
 * The statuses a licence ends in: nothing brings it back from them (migration 025). An
 * exhausted licence is not among them (an amendment may give it units again), and holds no
 * booking anyway: its every unit has shipped. A suspended one is not either: its authority
 * may reinstate it, and its bookings wait for that, or for their deadline.
 */
const endedStatuses: readonly LicenceStatus[] = ['expired', 'revoked', 'surrendered'];

/**
 * Why a booking can never ship, if it can't: one of its licences has ended, or its
 * validity has (checkCovers refuses either at shipping), with the rule checkCovers would
 * name. Its reservation would otherwise hold units on the other licence's allocation until
 * its own deadline, up to a year, and only its exporter could release them: the sweep
 * expires it (sweep.ts; the loader finds these by the same test, store/sweep-due.ts
 * loadDue), and nothing more is attached to it meanwhile (manifest.attach).
 */
export function lapsedLicence(state: BatchState, shipment: ShipmentRow, at: string): { rule: 'licence-status' | 'licence-validity'; licenceId: string; reason: string } | null {
  for (const allocationId of [shipment.export_allocation_id, shipment.import_allocation_id]) {
    const allocation = state.get('allocations', allocationId);
    const licence = allocation && state.get('licences', allocation.licence_id);
    assert(licence !== undefined, `a shipment's allocations and their licences are loaded with it (${shipment.id})`);
    if (endedStatuses.includes(licence.status)) return { rule: 'licence-status', licenceId: licence.id, reason: `licence ${licence.id} is ${licence.status}` };
    if (licence.valid_to <= at) return { rule: 'licence-validity', licenceId: licence.id, reason: `licence ${licence.id}'s validity ended at ${licence.valid_to}` };
  }
  return null;
}

/**
 * A booking past its deadline is expired in all but name (the sweep may not have run yet):
 * its reservation can no longer be posted or added to.
 */
export function checkDeadline(context: CommandContext, shipment: ShipmentRow, doing: string): void {
  if (shipment.deadline <= context.at) {
    throw refuse.conflict('booking-deadline', `couldn't ${doing} shipment ${shipment.id}: its booking deadline ${shipment.deadline} has passed`, { deadline: shipment.deadline });
  }
}

/**
 * Shipping needs a live booking, a full manifest and licences that still cover the
 * shipment (invariant 3 holds when the units leave, not only when they were booked: a
 * licence may have been suspended, or amended to drop the product, the exporter as
 * supplier, or add a condition, in between). Availability is not checked again: the
 * booking already reserved the units. Nor is the allocation's period (checkBookingPeriod).
 */
function checkShippable(context: CommandContext, shipment: ShipmentRow): void {
  checkDeadline(context, shipment, 'ship');
  if (shipment.serial_count !== shipment.units) {
    throw refuse.conflict('manifest-complete', `shipment ${shipment.id} lists ${formatUnits(shipment.serial_count)} of its ${formatUnits(shipment.units)} serials; attach the rest before shipping`, { serialCount: shipment.serial_count, units: shipment.units });
  }
  for (const allocationId of [shipment.export_allocation_id, shipment.import_allocation_id]) {
    const covering = side(context.state, allocationId);
    checkExporter(covering, shipment);
    checkCovers(context, covering, shipment);
  }
}

export const shipmentShip = step('shipment.ship', { from: 'booked', to: 'shipped', move: 'post', by: 'exporter', custody: { from: 'licensed', to: 'in_transit' } });
export const shipmentClear = step('shipment.clear', { from: 'shipped', to: 'cleared', move: 'none', by: 'recipient' });
export const shipmentDeliver = step('shipment.deliver', { from: 'cleared', to: 'delivered', move: 'none', by: 'recipient', custody: { from: 'in_transit', to: 'delivered' } });
export const shipmentCancel = step('shipment.cancel', { from: 'booked', to: 'cancelled', move: 'release', by: 'exporter' });
export const expireStep: Step = { from: 'booked', to: 'expired', move: 'release', by: 'exporter' };

