/** Licences: drafted, issued, suspended, reinstated, revoked, surrendered, amended, expired. */
import { asciiLowerCase, dashCharacters, invisibleCharacters, whiteSpaceCharacters } from '../../core/text.ts';
import { licenceReferenceKey } from '../../store/batch-keys.ts';
import { newId, refuse, formatUnits, type CommandContext, type Handler, type Outcome } from '../handler.ts';
import type { Actor } from '../permissions.ts';
import type { LicenceCondition, LicencePartyRow, LicenceStatus, OrganisationRow, PartyRole } from '../rows.ts';
import type { CommandInput } from '../schemas.ts';
import type { BatchState, LicenceWithParties } from '../state.ts';
import { checkTranchesWithin, invariant1Details } from './allocations.ts';

/** Who reads a licence's events: its holder, its parties, and the recipients of its allocations. */
export function licenceOrgIds(licence: LicenceWithParties): string[] {
  return [...new Set([licence.holder_org_id, ...licence.parties.map((party) => party.org_id), ...licence.allocation_recipients])];
}

/** The licence, if this actor may see it; unknown and invisible look the same. */
export function visibleLicence(state: BatchState, actor: Actor, licenceId: string): LicenceWithParties {
  const licence = state.get('licences', licenceId);
  if (!licence) throw refuse.notFound('licence', licenceId);
  const sees = actor.role === 'auditor' || actor.role.startsWith('authority') || licenceOrgIds(licence).includes(actor.orgId);
  if (!sees) throw refuse.notFound('licence', licenceId);
  return licence;
}

/**
 * The rule of a refusal to an organisation that is not the licence's issuing authority (or
 * no authority at all) acting on a licence as its authority: issuing, suspending, amending,
 * allocating it. It sees the licence (every authority reads every licence), so it hears why.
 */
export const licenceIssuerRule = 'licence-issuer';

/** The rule of a licence's surrender asked by an organisation other than its holder. */
export const licenceHolderRule = 'licence-holder';

/** Only the authority that issued a licence acts on it as authority. */
function ownLicence(state: BatchState, actor: Actor, licenceId: string): LicenceWithParties {
  const licence = visibleLicence(state, actor, licenceId);
  if (licence.authority_org_id !== actor.orgId) {
    throw refuse.forbidden(`licence ${licence.id} was issued by ${licence.authority_org_id}; only that authority may change it`, licenceIssuerRule);
  }
  return licence;
}

/**
 * A licence whose every authorised unit has shipped is exhausted: nothing more can go
 * under it. Only an issued licence turns exhausted; a suspended, revoked or expired one
 * keeps the status its authority gave it. Shipping (units posted) and amending (units
 * cut to what has shipped) both decide it here, so the two can never disagree.
 */
export function statusAfterUse(status: LicenceStatus, shippedUnits: number, authorisedUnits: number): LicenceStatus {
  return shippedUnits === authorisedUnits && status === 'issued' ? 'exhausted' : status;
}

/**
 * An amendment decides exhaustion afresh, by the same rule: an exhausted licence given
 * units beyond what has shipped is issued again (it was issued until its units ran out, and
 * nothing else ended it), and an issued one cut to what has shipped is exhausted. Any other
 * status stays as its authority set it (statusAfterUse).
 */
export function statusAfterAmendment(status: LicenceStatus, shippedUnits: number, authorisedUnits: number): LicenceStatus {
  if (status === 'exhausted') return shippedUnits === authorisedUnits ? 'exhausted' : 'issued';
  return statusAfterUse(status, shippedUnits, authorisedUnits);
}

/**
 * The country whose authority licenses a side of a shipment: the one the units leave for an
 * export licence (its origin), the one they enter for an import licence (its destination).
 * Both licences must cover every shipment (invariant 3) precisely because each country
 * decides its own side; an authority that could license the other side too would decide
 * both alone.
 */
export function licensingCountry(licence: { direction: 'export' | 'import'; origin: string; destination: string }): string {
  return licence.direction === 'export' ? licence.origin : licence.destination;
}

/** The rule, in code and in the database (migration 025, licences_authority_country). */
export const licenceAuthorityRule = 'licence-authority';

/** The rule, in code and in the database (migration 035, licences_cross_border). */
export const licenceCrossBorderRule = 'licence-cross-border';

/**
 * A licence covers units leaving one country for another. On a route inside one country the
 * one authority of that country would license both sides of every shipment under it (its
 * export licence by the origin, its import licence by the destination), which is what
 * licence-authority is there to prevent, and an organisation that is both exporter and
 * recipient could ship to itself under two licences of that authority. A licence's route
 * never changes after this (licence.amend has no field for it), so creating is the one
 * place to check.
 */
function checkCrossesBorder(input: LicenceCreateInput): void {
  if (input.origin !== input.destination) return;
  throw refuse.invalid(
    licenceCrossBorderRule,
    `couldn't create ${input.direction} licence ${input.reference} for ${input.origin} → ${input.destination}: its origin and destination are both ${input.origin}; a licence covers units leaving one country for another, each side licensed by its own country's authority, and on this route one authority would license both`,
    { origin: input.origin, destination: input.destination },
  );
}

/** The rule, in code and in the database (migration 043, licences_reference_once). */
export const licenceReferenceRule = 'licence-reference';

/** Dropped from a reference's spelling: white space and invisible characters (core/text.ts). */
const referenceSpaces = new RegExp(`[${invisibleCharacters}${whiteSpaceCharacters}]+`, 'gu');
/** Each read as "-" in a reference's spelling: every dash, and the minus sign (core/text.ts). */
const referenceDashes = new RegExp(`[${dashCharacters}]`, 'gu');

/**
 * A reference as two of an authority's licences may not share it, as licence_reference_key
 * spells it in the database (migration 050, character for character): in NFKC, without white
 * space or invisible characters, every dash as "-", its ASCII letters in lower case. People
 * quote a licence by its reference, retyped from a paper or a PDF: "bis-d-2026-h200-0417 ",
 * "BIS–D-2026-H200-0417" (an en dash), "BIS-D-２０２６-H200-0417" (full-width digits, as
 * Chinese input methods type them) and "BIS-D-2026 -H200-0417" are BIS-D-2026-H200-0417, and
 * two licences under it would leave a shipment's paperwork naming either. White space is
 * dropped, not made one space: a document number's spaces are its layout, and "2026 -H200"
 * reads as "2026-H200". Only ASCII letters are folded: references are ASCII codes or CJK text
 * (no case; NFKC makes full-width letters ASCII first), and JavaScript and PostgreSQL fold
 * other letters by different Unicode tables (the database's by its locale), so a wider fold
 * could make the ledger and the trigger disagree.
 */
export function referenceSpelling(reference: string): string {
  return asciiLowerCase(reference.normalize('NFKC').replace(referenceSpaces, '').replace(referenceDashes, '-'));
}

/**
 * An authority gives a reference to one licence. Looked for among the licences loaded by
 * reference (keys.licenceReferences, which finds every spelling the database folds alike) and
 * those an earlier command of this batch made; the first made is named. The database's
 * trigger stays behind this. An amendment cannot change a reference or an authority (the
 * schema has no field for them), so creating is the one place to check.
 */
function checkReferenceFree(state: BatchState, authorityId: string, input: LicenceCreateInput): void {
  const spelling = referenceSpelling(input.reference);
  const holders = [...state.all('licences')]
    .filter((licence) => licence.authority_org_id === authorityId && referenceSpelling(licence.reference) === spelling)
    .sort((a, b) => a.created_seq - b.created_seq);
  const holder = holders[0];
  if (holder === undefined) return;
  const spelt = holder.reference === input.reference ? '' : ` (as ${JSON.stringify(holder.reference)}: references are compared in NFKC, every dash as "-", without white space and without regard to the case of ASCII letters)`;
  throw refuse.conflict(
    licenceReferenceRule,
    `couldn't create ${input.direction} licence ${input.reference}: ${authorityId} gave that reference to licence ${holder.id} already${spelt}; an authority's reference names one licence`,
    { reference: input.reference, licenceId: holder.id, heldAs: holder.reference },
  );
}

function checkAuthorityCountry(authority: OrganisationRow, input: LicenceCreateInput): void {
  const country = licensingCountry(input);
  if (authority.country === country) return;
  const end = input.direction === 'export' ? 'origin' : 'destination';
  throw refuse.forbidden(
    `couldn't create ${input.direction} licence ${input.reference} for ${input.origin} → ${input.destination}: an ${input.direction} licence is issued by an authority of its ${end}, ${country}; ${authority.id} is an authority of ${authority.country}`,
    licenceAuthorityRule,
  );
}

function partiesOf(licenceId: string, parties: Array<{ organisationId: string; role: PartyRole }>): LicencePartyRow[] {
  const seen = new Set<string>();
  const rows: LicencePartyRow[] = [];
  for (const party of parties) {
    const key = `${party.organisationId}/${party.role}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({ licence_id: licenceId, org_id: party.organisationId, role: party.role });
  }
  return rows;
}

function checkReferences(state: BatchState, input: { productIds?: string[]; parties?: Array<{ organisationId: string }> }): void {
  for (const productId of input.productIds ?? []) {
    if (!state.get('products', productId)) throw refuse.notFound('product', productId);
  }
  for (const party of input.parties ?? []) {
    if (!state.get('organisations', party.organisationId)) throw refuse.notFound('organisation', party.organisationId);
  }
}

function snapshot(state: BatchState, licence: LicenceWithParties, seq: number): void {
  const { allocated_units: _a, shipped_units: _s, allocation_recipients: _r, ...terms } = licence;
  state.append('licence_versions', { licence_id: licence.id, version: licence.version, snapshot: terms, seq });
}

export const licenceCreate: Handler<'licence.create'> = {
  kind: 'licence.create',
  keys(input, keys, actor) {
    keys.organisations.add(input.holderId).add(actor.orgId);
    for (const party of input.parties) keys.organisations.add(party.organisationId);
    for (const productId of input.productIds) keys.products.add(productId);
    keys.licenceReferences.add(licenceReferenceKey(actor.orgId, input.reference));
  },
  run(context, input) {
    const { state, actor } = context;
    const authority = state.get('organisations', actor.orgId);
    if (!authority?.roles.includes('authority')) throw refuse.forbidden(`organisation ${actor.orgId} is not a licensing authority`, licenceIssuerRule);
    checkCrossesBorder(input);
    checkAuthorityCountry(authority, input);
    checkReferenceFree(state, authority.id, input);
    const holder = state.get('organisations', input.holderId);
    if (!holder) throw refuse.notFound('organisation', input.holderId);
    checkReferences(state, input);
    const id = newId('L', context);
    const licence: LicenceWithParties = {
      id,
      version: 1,
      reference: input.reference,
      authority_org_id: authority.id,
      direction: input.direction,
      holder_org_id: holder.id,
      product_ids: [...new Set(input.productIds)],
      origin: input.origin,
      destination: input.destination,
      authorised_units: input.authorisedUnits,
      value_minor: input.valueMinor ?? null,
      currency: input.currency ?? null,
      valid_from: input.validFrom,
      valid_to: input.validTo,
      conditions: input.conditions as LicenceCondition[],
      riders: input.riders,
      status: 'draft',
      allocated_units: 0,
      shipped_units: 0,
      demo: input.demo,
      created_seq: context.seq,
      updated_seq: context.seq,
      parties: partiesOf(id, input.parties),
      allocation_recipients: [],
    };
    state.put('licences', licence);
    state.pushList('replacedPartiesOf', id);
    snapshot(state, licence, context.seq);
    return { subjectId: id, orgIds: licenceOrgIds(licence), effects: { licenceId: id, version: 1 }, answer: { licenceId: id, version: 1, status: 'draft' } };
  },
};

interface Transition {
  from: readonly LicenceStatus[];
  to: LicenceStatus;
  /** Holder acts (surrender) rather than the issuing authority. */
  byHolder?: boolean;
}

function transition<K extends 'licence.issue' | 'licence.suspend' | 'licence.reinstate' | 'licence.revoke' | 'licence.surrender'>(kind: K, rule: Transition): Handler<K> {
  return {
    kind,
    keys(input, keys) {
      keys.licences.add(input.licenceId);
    },
    run(context, input) {
      const { state, actor } = context;
      const licence = rule.byHolder ? visibleLicence(state, actor, input.licenceId) : ownLicence(state, actor, input.licenceId);
      if (rule.byHolder && licence.holder_org_id !== actor.orgId) {
        throw refuse.forbidden(`only the holder ${licence.holder_org_id} may surrender licence ${licence.id}`, licenceHolderRule);
      }
      const verb = kind.slice('licence.'.length);
      if (!rule.from.includes(licence.status)) {
        throw refuse.conflict('licence-status', `couldn't ${verb} licence ${licence.id}: it is ${licence.status}, and only a licence that is ${statusList(rule.from)} can be`, { status: licence.status });
      }
      // A draft is not in force, and the sweep never expires one: revoking it stays open.
      if (rule.to === 'issued' || licence.status !== 'draft') checkValidityLeft(licence, context.at, verb);
      // A licence reinstated with every unit shipped (amended down while suspended) has
      // nothing left to give: it is exhausted, by the rule shipping and amending apply.
      const to = rule.to === 'issued' ? statusAfterUse('issued', licence.shipped_units, licence.authorised_units) : rule.to;
      state.update('licences', licence, { status: to, updated_seq: context.seq });
      return statusOutcome(licence, licence.status, to, input.reason);
    },
  };
}

/** "draft", "issued or suspended", "draft, issued, suspended or exhausted". */
function statusList(statuses: readonly LicenceStatus[]): string {
  return statuses.length === 1 ? statuses[0]! : `${statuses.slice(0, -1).join(', ')} or ${statuses.at(-1)}`;
}

/**
 * A licence whose validity has ended is expired in all but name (the sweep may not have
 * reached it yet): nothing may put it back in force, neither issuing or reinstating it nor
 * an amendment that extends its validity or gives an exhausted one units again; nor may it
 * be suspended, revoked or surrendered, which would leave it revoked or surrendered for
 * good before the sweep and expired after. Once the sweep has run the licence is expired,
 * and no step leaves expired (migration 025); this makes the answer the same before the
 * sweep runs as after.
 */
function checkValidityLeft(licence: LicenceWithParties, at: string, verb: string): void {
  if (licence.valid_to > at) return;
  throw refuse.conflict('licence-validity', `couldn't ${verb} licence ${licence.id}: its validity ended at ${licence.valid_to}`, { licenceId: licence.id, validTo: licence.valid_to });
}

/**
 * An amendment keeps a licence that is in force in force: a new validity that ends at or
 * before the command's time would leave it ended, and then nothing could put it right (an
 * amendment of an ended licence is refused, checkValidityLeft), a typo included. Ending a
 * licence now has its own commands, which say so in the log: revoke by its authority,
 * surrender by its holder. A draft is not in force, so its validity may still be set to
 * anything after its start (it cannot be issued once that has ended). Its start may change
 * only while it is a draft (checkStartAmendable), so the end is the one to check.
 */
function checkValidityKept(licence: LicenceWithParties, validTo: string, at: string): void {
  if (licence.status === 'draft' || validTo > at) return;
  throw refuse.invalid(
    'licence-validity',
    `couldn't amend licence ${licence.id}: validTo ${validTo} is not after the time of the command, ${at}; an amendment keeps a licence in force, and ending it now is licence.revoke (its authority) or licence.surrender (its holder)`,
    { licenceId: licence.id, validTo, at },
  );
}

/**
 * A draft's start may be put right before it is issued (a validFrom typed in UTC when the
 * authority's own midnight was meant): nothing is booked under a draft, so no booking's time
 * can fall outside the new start, and its tranches are checked against it
 * (checkTranchesWithin). Once issued, the start is what the licence was used under, and
 * stays: a later start would leave earlier bookings outside the validity they were made in.
 */
function checkStartAmendable(licence: LicenceWithParties, validFrom: string): void {
  if (licence.status === 'draft') return;
  throw refuse.conflict('licence-status', `couldn't amend licence ${licence.id} to validFrom ${validFrom}: it is ${licence.status}, and only a draft's start can change`, {
    licenceId: licence.id, status: licence.status, validFrom,
  });
}

function statusOutcome(licence: LicenceWithParties, from: LicenceStatus, to: LicenceStatus, reason: string | undefined): Outcome {
  return {
    subjectId: licence.id,
    orgIds: licenceOrgIds(licence),
    effects: { from, to, ...(reason === undefined ? {} : { reason }) },
    answer: { licenceId: licence.id, status: to },
  };
}

export const licenceIssue = transition('licence.issue', { from: ['draft'], to: 'issued' });
// An exhausted licence is still in force for the clearances of what shipped under it, so an
// authority may pause those too; reinstated, it is exhausted again (statusAfterUse).
export const licenceSuspend = transition('licence.suspend', { from: ['issued', 'exhausted'], to: 'suspended' });
export const licenceReinstate = transition('licence.reinstate', { from: ['suspended'], to: 'issued' });
export const licenceRevoke = transition('licence.revoke', { from: ['draft', 'issued', 'suspended', 'exhausted'], to: 'revoked' });
export const licenceSurrender = transition('licence.surrender', { from: ['issued', 'suspended', 'exhausted'], to: 'surrendered', byHolder: true });

/**
 * An exhausted licence is amendable: an authority that calibrates upwards gives it units
 * again (statusAfterAmendment). Its route, direction and authority are not amendable at all
 * (the schema has no field for them), so licence-authority and licence-cross-border hold for
 * every version.
 */
const amendableStatuses: readonly LicenceStatus[] = ['draft', 'issued', 'suspended', 'exhausted'];

export const licenceAmend: Handler<'licence.amend'> = {
  kind: 'licence.amend',
  keys(input, keys) {
    keys.licences.add(input.licenceId);
    for (const party of input.parties ?? []) keys.organisations.add(party.organisationId);
    for (const productId of input.productIds ?? []) keys.products.add(productId);
    // A new validity is checked against every tranche under the licence (checkTranchesWithin).
    if (input.validTo !== undefined || input.validFrom !== undefined) keys.allocationsOfLicences.add(input.licenceId);
  },
  run(context, input) {
    const { state, actor } = context;
    const licence = ownLicence(state, actor, input.licenceId);
    if (!amendableStatuses.includes(licence.status)) {
      throw refuse.conflict('licence-status', `couldn't amend licence ${licence.id}: it is ${licence.status}, and only a licence that is ${statusList(amendableStatuses)} can be`, { status: licence.status });
    }
    // A draft is not in force yet: its authority may still set its validity before issuing.
    if (licence.status !== 'draft') checkValidityLeft(licence, context.at, 'amend');
    checkReferences(state, input);
    const units = input.authorisedUnits ?? licence.authorised_units;
    const used = Math.max(licence.allocated_units, licence.shipped_units);
    if (units < used) {
      throw refuse.units('invariant-1', `couldn't amend licence ${licence.id} to ${formatUnits(units)} units: ${formatUnits(licence.allocated_units)} are already allocated`, invariant1Details(licence, { requestedAuthorisedUnits: units }));
    }
    if (input.validFrom !== undefined) checkStartAmendable(licence, input.validFrom);
    const validFrom = input.validFrom ?? licence.valid_from;
    const validTo = input.validTo ?? licence.valid_to;
    if (validTo <= validFrom) {
      throw refuse.invalid('licence-validity', `couldn't amend licence ${licence.id}: validTo ${validTo} must be after its validFrom, ${validFrom}`, { licenceId: licence.id, validFrom, validTo });
    }
    if (input.validTo !== undefined) checkValidityKept(licence, input.validTo, context.at);
    if (input.validTo !== undefined || input.validFrom !== undefined) checkTranchesWithin(state, licence, { valid_from: validFrom, valid_to: validTo });
    const parties = input.parties ? partiesOf(licence.id, input.parties) : licence.parties;
    const amended: LicenceWithParties = {
      ...licence,
      version: licence.version + 1,
      authorised_units: units,
      // Stated whole, amount with currency (the schema takes both or neither); its version
      // and its event record it, as every term. Nothing consumes it (schemas.ts says why).
      value_minor: input.valueMinor ?? licence.value_minor,
      currency: input.currency ?? licence.currency,
      status: statusAfterAmendment(licence.status, licence.shipped_units, units),
      valid_from: validFrom,
      valid_to: validTo,
      product_ids: input.productIds ? [...new Set(input.productIds)] : licence.product_ids,
      conditions: (input.conditions as LicenceCondition[] | undefined) ?? licence.conditions,
      riders: input.riders ?? licence.riders,
      parties,
      updated_seq: context.seq,
    };
    state.put('licences', amended);
    if (input.parties) state.pushList('replacedPartiesOf', licence.id);
    snapshot(state, amended, context.seq);
    return {
      subjectId: licence.id,
      orgIds: [...new Set([...licenceOrgIds(licence), ...licenceOrgIds(amended)])],
      // statusFrom and statusTo are always recorded, equal when the amendment kept the
      // status: cutting the units to what has shipped exhausts the licence, and the log
      // must say so in the event that did it.
      effects: { version: amended.version, statusFrom: licence.status, statusTo: amended.status },
      answer: { licenceId: licence.id, version: amended.version, status: amended.status },
    };
  },
};

/** Used by the sweep: a licence whose validity ended is expired. */
export function expireLicence(context: CommandContext, licence: LicenceWithParties): void {
  context.state.update('licences', licence, { status: 'expired', updated_seq: context.seq });
}

export type LicenceCreateInput = CommandInput<'licence.create'>;
