/**
 * The checks a shipment makes of its allocations and licences, each failure a refusal naming
 * its rule and the numbers behind it: at booking, that each side's allocation is one the
 * exporter ships under and of the right direction, its licence covers the shipment within its
 * conditions (invariant 3), the allocation's period holds today and its units suffice
 * (invariant 2); at shipping, that the booking is live and its licences still cover it; at
 * clearance, that the import licence is still in force; and for the sweep, manifests and
 * cancellation, whether a booking can still ship at all.
 */
import { assert, type DomainError } from '../../core/errors.ts';
import { refuse, formatUnits, type CommandContext } from '../handler.ts';
import type { AllocationRow, LicenceCondition, LicenceStatus, ShipmentRow } from '../rows.ts';
import type { BatchState, LicenceWithParties } from '../state.ts';
import { namesRecipient } from './allocations.ts';

export interface Side {
  allocation: AllocationRow;
  licence: LicenceWithParties;
}

export function side(state: BatchState, allocationId: string): Side {
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
export function bookingSide(state: BatchState, allocationId: string, direction: 'export' | 'import', exporterId: string): Side {
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
export function checkCovers(context: CommandContext, { licence, allocation }: Side, shipment: CoveredTerms): void {
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
export function checkBookingPeriod(context: CommandContext, { allocation }: Side): void {
  const today = context.at.slice(0, 10);
  if (allocation.period_start !== null && (today < allocation.period_start || today > allocation.period_end!)) {
    throw refuse.licence('allocation-period', `allocation ${allocation.id} is for ${allocation.period_start} to ${allocation.period_end}, and today is ${today} (UTC days: the booking's time is ${context.at})`, {
      allocationId: allocation.id, periodStart: allocation.period_start, periodEnd: allocation.period_end, today,
    });
  }
}

export function checkAvailable({ allocation, licence }: Side, units: number): void {
  const available = allocation.units - allocation.reserved_units - allocation.shipped_units;
  if (units > available) {
    throw refuse.units('invariant-2', `allocation ${allocation.id} of licence ${licence.id} has ${formatUnits(available)} units available; ${formatUnits(units)} requested`, { allocationId: allocation.id, licenceId: licence.id, availableUnits: available, requestedUnits: units });
  }
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
 * loadDue), and meanwhile nothing more is attached to it (manifest.attach) nor is it
 * cancelled (checkCancellable).
 */
export function lapsedLicence(state: BatchState, shipment: ShipmentRow, at: string): Lapse | null {
  return licenceLapses(state, shipment, at)[0] ?? null;
}

/**
 * The lapse of each of a booking's licences that no longer covers it, the export side's
 * first (lapsedLicence names that one): the sweep dates an expiry by the earliest of them
 * (sweep.ts bookingDue), which may be the import side's when both have lapsed.
 */
export function licenceLapses(state: BatchState, shipment: ShipmentRow, at: string): Lapse[] {
  const lapses: Lapse[] = [];
  for (const allocationId of [shipment.export_allocation_id, shipment.import_allocation_id]) {
    const allocation = state.get('allocations', allocationId);
    const licence = allocation && state.get('licences', allocation.licence_id);
    assert(licence !== undefined, `a shipment's allocations and their licences are loaded with it (${shipment.id})`);
    // An expired licence was expired by the calendar (the sweep expires nothing else), so its
    // end is its validTo; a revocation or surrender is dated by its own event only.
    const dueAt = licence.status === 'expired' ? licence.valid_to : null;
    if (endedStatuses.includes(licence.status)) lapses.push({ rule: 'licence-status', licenceId: licence.id, reason: `licence ${licence.id} is ${licence.status}`, dueAt });
    else if (licence.valid_to <= at) lapses.push({ rule: 'licence-validity', licenceId: licence.id, reason: `licence ${licence.id}'s validity ended at ${licence.valid_to}`, dueAt: licence.valid_to });
  }
  return lapses;
}

/**
 * Why a booking's licence no longer covers it (lapsedLicence), with the instant that ended it
 * when the calendar did (its validTo; null for a revocation or a surrender, which its own
 * event dates): the sweep's expiry event records it as dueAt.
 */
export interface Lapse {
  rule: 'licence-status' | 'licence-validity';
  licenceId: string;
  reason: string;
  dueAt: string | null;
}

/**
 * The statuses in which a licence is in force: issued, or exhausted (its every unit has
 * shipped; the shipments that took them are still under it). Suspended is not: its authority
 * has stopped its use until it reinstates it.
 */
const inForceStatuses: readonly LicenceStatus[] = ['issued', 'exhausted'];

/**
 * Clearance is the import recorded (DESIGN), and an import is made under a licence in force:
 * customs do not release goods against an import licence that has expired, been revoked,
 * surrendered or suspended (货物进口许可证管理办法: a licence is used within its validity).
 * Why the shipment's import licence is not in force at the command's time, with the rule
 * checkCovers names for the same (its status first, then its validity, half-open: at validTo
 * it has ended, whether or not the sweep has marked it expired); null while it is.
 */
export function importLicenceLapse(licence: LicenceWithParties, at: string): { rule: 'licence-status' | 'licence-validity'; reason: string; details: Record<string, unknown> } | null {
  if (!inForceStatuses.includes(licence.status)) {
    return { rule: 'licence-status', reason: `its import licence ${licence.id} is ${licence.status}, not issued or exhausted`, details: { licenceId: licence.id, status: licence.status } };
  }
  if (licence.valid_to <= at) {
    return { rule: 'licence-validity', reason: `the validity of its import licence ${licence.id} ended at ${licence.valid_to} (now ${at})`, details: { licenceId: licence.id, validTo: licence.valid_to, at } };
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
 * A booking that can never ship is expired in all but name, as one past its deadline is
 * (checkDeadline): the sweep ends it (sweep.ts, lapsedLicence), releasing its reservation as
 * a cancellation would. Cancelled by its exporter before the sweep, it would end cancelled,
 * and its twin cancelled after the sweep would be refused as expired: its end would be the
 * sweep's timing's. So cancelling it is refused, by the rule the sweep's reason gives
 * (licence-status or licence-validity, as manifest.attach names it), saying the sweep
 * expires it. The deadline is judged first: at or past it, the refusal is booking-deadline,
 * as it was before a lapse was judged here.
 */
export function checkCancellable(context: CommandContext, shipment: ShipmentRow): void {
  checkDeadline(context, shipment, 'cancel');
  const lapse = lapsedLicence(context.state, shipment, context.at);
  if (lapse === null) return;
  throw refuse.licence(lapse.rule, `couldn't cancel shipment ${shipment.id}: ${lapse.reason}, so it can never ship; the sweep expires it and releases its reserved units`, {
    licenceId: lapse.licenceId,
  });
}

/**
 * Shipping needs a live booking, a full manifest and licences that still cover the
 * shipment (invariant 3 holds when the units leave, not only when they were booked: a
 * licence may have been suspended, or amended to drop the product, the exporter as
 * supplier, or add a condition, in between). Availability is not checked again: the
 * booking already reserved the units. Nor is the allocation's period (checkBookingPeriod).
 */
export function checkShippable(context: CommandContext, shipment: ShipmentRow): void {
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
