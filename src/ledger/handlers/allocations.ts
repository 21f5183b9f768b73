/** Allocations: slices of a licence's units for one recipient (invariant 1). */
import { newId, refuse, formatUnits, type Handler } from '../handler.ts';
import type { OrganisationRow } from '../rows.ts';
import type { BatchState, LicenceWithParties } from '../state.ts';
import { licenceIssuerRule, visibleLicence } from './licences.ts';

/**
 * Who reads an allocation's events besides authorities: its recipient, and the exporters
 * that ship under it (the export licence's holder, the import licence's suppliers); never
 * another recipient, even one that holds or is named on the same licence.
 */
export function allocationOrgIds(licence: LicenceWithParties, recipientId: string): string[] {
  const exporters = licence.direction === 'export' ? [licence.holder_org_id] : licence.parties.filter((party) => party.role === 'supplier').map((party) => party.org_id);
  return [...new Set([recipientId, ...exporters])];
}

/** A licence names a recipient as its holder, consignee or end user. */
export function namesRecipient(licence: LicenceWithParties, orgId: string): boolean {
  return licence.holder_org_id === orgId || licence.parties.some((party) => party.org_id === orgId && party.role !== 'supplier');
}

/**
 * Units go only to a recipient the licence names: when they are allocated, and when an
 * allocation grows (an amendment may have dropped the recipient since it was made).
 */
function checkNamesRecipient(licence: LicenceWithParties, recipientId: string, doing: string): void {
  if (namesRecipient(licence, recipientId)) return;
  throw refuse.licence('licence-recipient', `couldn't ${doing}: licence ${licence.id} does not name ${recipientId} as holder, consignee or end user`, { licenceId: licence.id, recipientId });
}

/**
 * The details of every invariant-1 refusal (allocated ≤ authorised), whichever command met it:
 * the licence's figures now, and what the command asked for. `requestedUnits` is always units
 * more to allocate (allocation.create, a growing allocation.resize, which names its allocation);
 * an amendment asks for a new authorised total instead (requestedAuthorisedUnits).
 */
export function invariant1Details(licence: LicenceWithParties, asked: { requestedUnits: number; allocationId?: string } | { requestedAuthorisedUnits: number }): Record<string, unknown> {
  const { authorised_units: authorisedUnits, allocated_units: allocatedUnits } = licence;
  return { licenceId: licence.id, authorisedUnits, allocatedUnits, unallocatedUnits: authorisedUnits - allocatedUnits, ...asked };
}

/** A tranche: the UTC days, first and last inclusive, on which its units may be booked. */
interface Period {
  start: string;
  end: string;
}

/**
 * The UTC days on which a booking under the licence can be made: validity runs from the
 * instant valid_from up to, not including, valid_to (checkCovers in shipment-checks.ts), so its
 * last day is that of the instant before valid_to (valid to 2027-01-01T00:00Z: through
 * 2026-12-31).
 */
export function validityDays(licence: Pick<LicenceWithParties, 'valid_from' | 'valid_to'>): Period {
  return { start: licence.valid_from.slice(0, 10), end: new Date(Date.parse(licence.valid_to) - 1).toISOString().slice(0, 10) };
}

/**
 * Units are handed out only under a licence that is being prepared or is in force, whose
 * validity has not ended at the command's time, and, for a tranche, only for a period that
 * has not ended (its last day is today or later, in UTC, as checkBookingPeriod in
 * shipment-checks.ts reads the day) and lies within the days of its validity: each day of the
 * period must be one on which a booking could be made (validityDays), or the tranche would
 * hold units that no booking could ever reserve.
 */
function checkAllocatable(licence: LicenceWithParties, doing: string, at: string, period: Period | null): void {
  if (licence.status !== 'draft' && licence.status !== 'issued') {
    throw refuse.conflict('licence-status', `couldn't ${doing}: licence ${licence.id} is ${licence.status}; only a draft or issued licence hands out units`, { licenceId: licence.id, status: licence.status });
  }
  if (at >= licence.valid_to) {
    throw refuse.conflict('licence-validity', `couldn't ${doing}: the validity of licence ${licence.id} ended at ${licence.valid_to} (now ${at})`, { licenceId: licence.id, validTo: licence.valid_to, at });
  }
  const today = at.slice(0, 10);
  if (period !== null && period.end < today) {
    throw refuse.conflict('allocation-period-ended', `couldn't ${doing}: the period ${period.start} to ${period.end} ended before today, ${today} (a UTC day); no booking could reserve its units`, {
      licenceId: licence.id, periodStart: period.start, periodEnd: period.end, today,
    });
  }
  const days = validityDays(licence);
  if (period !== null && (period.start < days.start || period.end > days.end)) {
    throw refuse.conflict('allocation-period', `couldn't ${doing}: the period ${period.start} to ${period.end} is not within the validity of licence ${licence.id}, ${days.start} to ${days.end} (${licence.valid_from} to ${licence.valid_to})`, {
      licenceId: licence.id, periodStart: period.start, periodEnd: period.end, validFrom: licence.valid_from, validTo: licence.valid_to,
    });
  }
}

/**
 * A validity an amendment shortens keeps a day on which each tranche under the licence can be
 * booked: refused (allocation-period, as allocation.create refuses such a tranche) when some
 * tranche's period begins on or after the new validTo's day, so that its first instant is at or
 * after validTo and no booking could reserve its units any more. Such a tranche was never
 * booked: a booking under it was made on a day of its period, before this command, and an
 * amendment's validTo is after the command's time (checkValidityKept), so that period began
 * before validTo; a draft has no bookings. A tranche whose period only runs past the new end
 * keeps its earlier days, and stays (it may no longer grow, checkAllocatable). A draft's start
 * moved later is judged the same way from the other end: a tranche whose period ends before
 * the new first day is refused, one that only begins before it keeps its later days. Every
 * allocation of the licence is loaded (keys.allocationsOfLicences), and those an earlier
 * command of the batch made are in the state.
 */
export function checkTranchesWithin(state: BatchState, licence: LicenceWithParties, validity: Pick<LicenceWithParties, 'valid_from' | 'valid_to'>): void {
  const days = validityDays(validity);
  const tranches = [...state.all('allocations')].filter((allocation) => allocation.licence_id === licence.id && allocation.period_start !== null);
  const beyond = tranches.filter((allocation) => allocation.period_start! > days.end)
    .sort((a, b) => (a.period_start! < b.period_start! ? -1 : a.period_start! > b.period_start! ? 1 : a.created_seq - b.created_seq));
  const before = tranches.filter((allocation) => allocation.period_end! < days.start)
    .sort((a, b) => (a.period_end! > b.period_end! ? -1 : a.period_end! < b.period_end! ? 1 : a.created_seq - b.created_seq));
  const others = (list: readonly unknown[], where: string) => (list.length === 1 ? '' : ` (and ${list.length - 1} more allocation${list.length === 2 ? '' : 's'} ${where} it)`);
  const first = beyond[0];
  if (first !== undefined) {
    throw refuse.conflict('allocation-period', `couldn't amend licence ${licence.id} to validTo ${validity.valid_to}: allocation ${first.id} (${formatUnits(first.units)} units) is for the period ${first.period_start} to ${first.period_end}, which begins after the last day of the new validity, ${days.end}${others(beyond, 'after')}; no booking could reserve its units (a validTo after ${first.period_start}T00:00:00.000Z keeps it a day)`, {
      licenceId: licence.id, validTo: validity.valid_to, allocationId: first.id, periodStart: first.period_start, periodEnd: first.period_end, lastDay: days.end,
    });
  }
  const last = before[0];
  if (last === undefined) return;
  throw refuse.conflict('allocation-period', `couldn't amend licence ${licence.id} to validFrom ${validity.valid_from}: allocation ${last.id} (${formatUnits(last.units)} units) is for the period ${last.period_start} to ${last.period_end}, which ends before the first day of the new validity, ${days.start}${others(before, 'before')}; no booking could reserve its units (a validFrom before ${dayAfter(last.period_end!)}T00:00:00.000Z keeps it a day)`, {
    licenceId: licence.id, validFrom: validity.valid_from, allocationId: last.id, periodStart: last.period_start, periodEnd: last.period_end, firstDay: days.start,
  });
}

/** The UTC day after a day, as YYYY-MM-DD. */
function dayAfter(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

/**
 * A licence covers one route, and a shipment's destination is its recipient's country
 * (shipment-checks.ts, licence-route at booking): units allocated to a recipient in any other
 * country could never be booked. Neither changes afterwards (no amendment has a field for a
 * licence's route, and an organisation's country is fixed at registration), so creating the
 * allocation is the one place to check.
 */
function checkRecipientOnRoute(licence: LicenceWithParties, recipient: OrganisationRow, doing: string): void {
  if (recipient.country === licence.destination) return;
  throw refuse.licence('licence-route', `couldn't ${doing}: ${recipient.id} is in ${recipient.country}, and licence ${licence.id} covers ${licence.origin} → ${licence.destination}; units go to a recipient in the licence's destination, ${licence.destination}, as a shipment under it goes`, {
    licenceId: licence.id, recipientId: recipient.id, recipientCountry: recipient.country, destination: licence.destination,
  });
}

export const allocationCreate: Handler<'allocation.create'> = {
  kind: 'allocation.create',
  keys(input, keys) {
    keys.licences.add(input.licenceId);
    keys.organisations.add(input.recipientId);
  },
  run(context, input) {
    const { state, actor } = context;
    const licence = visibleLicence(state, actor, input.licenceId);
    if (licence.authority_org_id !== actor.orgId) throw refuse.forbidden(`only ${licence.authority_org_id}, which issued licence ${licence.id}, may allocate it`, licenceIssuerRule);
    const period = input.periodStart === undefined ? null : { start: input.periodStart, end: input.periodEnd! };
    checkAllocatable(licence, `allocate ${formatUnits(input.units)} units to ${input.recipientId}`, context.at, period);
    const recipient = state.get('organisations', input.recipientId);
    if (!recipient) throw refuse.notFound('organisation', input.recipientId);
    if (!recipient.roles.includes('recipient')) {
      throw refuse.conflict('allocation-recipient', `organisation ${recipient.id} is not a recipient; units are allocated to an organisation registered as one`, { organisationId: recipient.id, roles: recipient.roles });
    }
    checkNamesRecipient(licence, recipient.id, `allocate ${formatUnits(input.units)} units to ${recipient.id}`);
    checkRecipientOnRoute(licence, recipient, `allocate ${formatUnits(input.units)} units to ${recipient.id}`);
    const unallocated = licence.authorised_units - licence.allocated_units;
    if (input.units > unallocated) {
      throw refuse.units('invariant-1', `licence ${licence.id} has ${formatUnits(unallocated)} units unallocated; ${formatUnits(input.units)} requested`, invariant1Details(licence, { requestedUnits: input.units }));
    }
    const id = newId('A', context);
    state.put('allocations', {
      id,
      licence_id: licence.id,
      recipient_org_id: recipient.id,
      units: input.units,
      period_start: input.periodStart ?? null,
      period_end: input.periodEnd ?? null,
      reserved_units: 0,
      shipped_units: 0,
      demo: input.demo,
      created_seq: context.seq,
    });
    state.update('licences', licence, {
      allocated_units: licence.allocated_units + input.units, updated_seq: context.seq,
      allocation_recipients: licence.allocation_recipients.includes(recipient.id) ? licence.allocation_recipients : [...licence.allocation_recipients, recipient.id],
    });
    return {
      subjectId: id,
      // The licence's allocatedUnits changed too, so the event is in the licence's history as
      // well. Its readers may be told so: its input names the licence.
      moreSubjectIds: [licence.id],
      orgIds: allocationOrgIds(licence, recipient.id),
      // Not the licence's new total: the recipient reads this event, and the total less its
      // own units would tell it what the licence's other recipients were given.
      effects: { allocationId: id },
      answer: { allocationId: id, units: input.units },
    };
  },
};

export const allocationResize: Handler<'allocation.resize'> = {
  kind: 'allocation.resize',
  keys(input, keys) {
    keys.allocations.add(input.allocationId);
  },
  run(context, input) {
    const { state, actor } = context;
    const allocation = state.get('allocations', input.allocationId);
    if (!allocation) throw refuse.notFound('allocation', input.allocationId);
    const licence = visibleLicence(state, actor, allocation.licence_id);
    if (licence.authority_org_id !== actor.orgId) throw refuse.forbidden(`only ${licence.authority_org_id}, which issued licence ${licence.id}, may resize its allocations`, licenceIssuerRule);
    // Growing hands out more units, so it needs what creating an allocation needs: the
    // licence's status, a validity that has not ended, the tranche's days within it (an
    // amendment may have cut the validity short since), and a licence that still names the
    // recipient (an amendment may have dropped it). Shrinking stays allowed in any case:
    // it only gives units back to the licence (a suspended or revoked licence's authority
    // must be able to claw back what nobody has reserved, from a recipient it no longer
    // names too), and the reserved and shipped floor below still holds.
    if (input.units > allocation.units) {
      const period = allocation.period_start === null ? null : { start: allocation.period_start, end: allocation.period_end! };
      const doing = `grow allocation ${allocation.id} to ${formatUnits(input.units)} units`;
      checkAllocatable(licence, doing, context.at, period);
      checkNamesRecipient(licence, allocation.recipient_org_id, doing);
    }
    const used = allocation.reserved_units + allocation.shipped_units;
    if (input.units < used) {
      throw refuse.units('invariant-2', `allocation ${allocation.id} has ${formatUnits(used)} units reserved or shipped; it cannot shrink to ${formatUnits(input.units)}`, { allocationId: allocation.id, usedUnits: used, requestedUnits: input.units });
    }
    const allocated = licence.allocated_units - allocation.units + input.units;
    if (allocated > licence.authorised_units) {
      const unallocated = licence.authorised_units - licence.allocated_units;
      throw refuse.units('invariant-1', `licence ${licence.id} has ${formatUnits(unallocated)} units unallocated; ${formatUnits(input.units - allocation.units)} more requested`, invariant1Details(licence, { requestedUnits: input.units - allocation.units, allocationId: allocation.id }));
    }
    state.update('allocations', allocation, { units: input.units });
    state.update('licences', licence, { allocated_units: allocated, updated_seq: context.seq });
    return {
      subjectId: allocation.id,
      moreSubjectIds: [licence.id], // its allocatedUnits changed, as on creation
      orgIds: allocationOrgIds(licence, allocation.recipient_org_id),
      effects: { from: allocation.units, to: input.units },
      answer: { allocationId: allocation.id, units: input.units },
    };
  },
};
