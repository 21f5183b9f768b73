/** Allocations: slices of a licence's units for one recipient (invariant 1). */
import { newId, refuse, formatUnits, type Handler } from '../handler.ts';
import type { LicenceWithParties } from '../state.ts';
import { visibleLicence } from './licences.ts';

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

/** Units are handed out only under a licence that is being prepared or is in force. */
function checkAllocatable(licence: LicenceWithParties, doing: string): void {
  if (licence.status !== 'draft' && licence.status !== 'issued') {
    throw refuse.conflict('licence-status', `couldn't ${doing}: licence ${licence.id} is ${licence.status}; only a draft or issued licence hands out units`, { licenceId: licence.id, status: licence.status });
  }
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
    if (licence.authority_org_id !== actor.orgId) throw refuse.forbidden(`only ${licence.authority_org_id}, which issued licence ${licence.id}, may allocate it`);
    checkAllocatable(licence, `allocate ${formatUnits(input.units)} units to ${input.recipientId}`);
    const recipient = state.get('organisations', input.recipientId);
    if (!recipient) throw refuse.notFound('organisation', input.recipientId);
    if (!recipient.roles.includes('recipient')) throw refuse.conflict('allocation-recipient', `organisation ${recipient.id} is not a recipient`);
    if (!namesRecipient(licence, recipient.id)) {
      throw refuse.licence('licence-recipient', `licence ${licence.id} does not name ${recipient.id} as holder, consignee or end user`);
    }
    const unallocated = licence.authorised_units - licence.allocated_units;
    if (input.units > unallocated) {
      throw refuse.units('invariant-1', `licence ${licence.id} has ${formatUnits(unallocated)} units unallocated; ${formatUnits(input.units)} requested`, { licenceId: licence.id, unallocatedUnits: unallocated, requestedUnits: input.units });
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
    state.update('licences', licence, { allocated_units: licence.allocated_units + input.units, updated_seq: context.seq });
    return {
      subjectId: id,
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
    if (licence.authority_org_id !== actor.orgId) throw refuse.forbidden(`only ${licence.authority_org_id} may resize allocations of licence ${licence.id}`);
    // Growing hands out more units, so it needs the licence status that creating an
    // allocation needs. Shrinking stays allowed in any status: it only gives units back to
    // the licence (a suspended or revoked licence's authority must be able to claw back
    // what nobody has reserved), and the reserved and shipped floor below still holds.
    if (input.units > allocation.units) checkAllocatable(licence, `grow allocation ${allocation.id} to ${formatUnits(input.units)} units`);
    const used = allocation.reserved_units + allocation.shipped_units;
    if (input.units < used) {
      throw refuse.units('invariant-2', `allocation ${allocation.id} has ${formatUnits(used)} units reserved or shipped; it cannot shrink to ${formatUnits(input.units)}`, { usedUnits: used, requestedUnits: input.units });
    }
    const allocated = licence.allocated_units - allocation.units + input.units;
    if (allocated > licence.authorised_units) {
      const unallocated = licence.authorised_units - licence.allocated_units;
      throw refuse.units('invariant-1', `licence ${licence.id} has ${formatUnits(unallocated)} units unallocated; ${formatUnits(input.units - allocation.units)} more requested`, { unallocatedUnits: unallocated, requestedUnits: input.units - allocation.units });
    }
    state.update('allocations', allocation, { units: input.units });
    state.update('licences', licence, { allocated_units: allocated, updated_seq: context.seq });
    return {
      subjectId: allocation.id,
      orgIds: allocationOrgIds(licence, allocation.recipient_org_id),
      effects: { from: allocation.units, to: input.units },
      answer: { allocationId: allocation.id, units: input.units },
    };
  },
};
