/**
 * How rows look on the wire: camelCase, explicit field by field, so that a new column
 * never reaches clients by accident. Every presented row says whether it is demo data.
 * Each presenter returns its type from src/server/wire.ts, the schema the OpenAPI
 * document publishes: a field missing from either side does not compile.
 */
import type {
  AllocationRow, LicencePartyRow, LicenceVersionRow, OrganisationRow, ProductRow, ShipmentRow, SiteRow,
} from '../ledger/rows.ts';
import type { EventRow, LicenceDetail, LicenceView, SerialView, UnitView, UtilisationLicence } from '../store/read-queries.ts';
import type * as wire from './wire.ts';

export function presentOrganisation(row: OrganisationRow): wire.Organisation {
  return {
    id: row.id,
    name: row.name,
    nameRomanised: row.name_romanised,
    country: row.country,
    roles: row.roles,
    identifiers: row.identifiers,
    address: row.address,
    kycVerifiedBy: row.kyc_verified_by,
    demo: row.demo,
    createdSeq: row.created_seq,
  };
}

export function presentProduct(row: ProductRow): wire.Product {
  return { id: row.id, model: row.model, vendor: row.vendor, eccn: row.eccn, parameters: row.parameters, registeredBy: row.registered_by, demo: row.demo, createdSeq: row.created_seq };
}

/**
 * allocatedUnits and shippedUnits reach as far as totalsScope says: the whole licence, or
 * (for a recipient) only the allocations made to the viewer.
 */
export function presentLicence(row: LicenceView): wire.Licence {
  return {
    id: row.id,
    version: row.version,
    reference: row.reference,
    authorityId: row.authority_org_id,
    direction: row.direction,
    holderId: row.holder_org_id,
    productIds: row.product_ids,
    origin: row.origin,
    destination: row.destination,
    authorisedUnits: row.authorised_units,
    allocatedUnits: row.allocated_units,
    shippedUnits: row.shipped_units,
    totalsScope: row.totals_scope,
    valueMinor: row.value_minor,
    currency: row.currency,
    validFrom: row.valid_from,
    validTo: row.valid_to,
    conditions: row.conditions,
    riders: row.riders,
    status: row.status,
    demo: row.demo,
    createdSeq: row.created_seq,
    // A licence's row changes with every allocation and shipment under it: to a viewer who
    // sees only its own allocations, when it last changed would tell of the others' activity.
    updatedSeq: row.totals_scope === 'licence' ? row.updated_seq : null,
  };
}

export function presentParty(row: LicencePartyRow): wire.Party {
  return { organisationId: row.org_id, role: row.role };
}

export function presentLicenceDetail(row: LicenceDetail): wire.LicenceDetailWire {
  return {
    ...presentLicence(row),
    parties: row.parties.map(presentParty),
    allocations: row.allocations.map(presentAllocation),
    allocationsTruncated: row.allocations_truncated,
  };
}

export function presentLicenceVersion(row: LicenceVersionRow): wire.LicenceVersion {
  const demo = (row.snapshot as { demo?: unknown } | null)?.demo === true;
  return { licenceId: row.licence_id, version: row.version, seq: row.seq, terms: licenceTerms(row.snapshot), demo };
}

/** Stored column names that the Licence resource (presentLicence, presentParty) names otherwise. */
const licenceTermNames: Readonly<Record<string, string>> = { holderOrgId: 'holderId', authorityOrgId: 'authorityId' };

/**
 * A version's terms under the names a licence is read with (GET /v1/licences/:id): holderId,
 * authorityId, parties of { organisationId, role }. Whatever else the stored row of its day
 * held is camelCased as it is.
 */
function licenceTerms(snapshot: unknown): Record<string, unknown> {
  if (snapshot === null || typeof snapshot !== 'object' || Array.isArray(snapshot)) return {};
  const { parties, ...rest } = snapshot as { parties?: unknown };
  const named = Object.fromEntries(Object.entries(camelKeys(rest) as Record<string, unknown>).map(([key, value]) => [licenceTermNames[key] ?? key, value]));
  // Party rows as stored (licence_id, org_id, role): presented as a licence's parties are.
  if (parties === undefined) return named;
  return { ...named, parties: Array.isArray(parties) ? (parties as LicencePartyRow[]).map(presentParty) : camelKeys(parties) };
}

/** Snapshots are stored rows of their day: their keys are camelCased generically. */
function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase()), camelKeys(inner)]));
}

export function presentAllocation(row: AllocationRow): wire.Allocation {
  return {
    id: row.id,
    licenceId: row.licence_id,
    recipientId: row.recipient_org_id,
    units: row.units,
    reservedUnits: row.reserved_units,
    shippedUnits: row.shipped_units,
    availableUnits: row.units - row.reserved_units - row.shipped_units,
    periodStart: row.period_start,
    periodEnd: row.period_end,
    demo: row.demo,
    createdSeq: row.created_seq,
  };
}

export function presentShipment(row: ShipmentRow): wire.Shipment {
  return {
    id: row.id,
    exporterId: row.exporter_org_id,
    recipientId: row.recipient_org_id,
    productId: row.product_id,
    origin: row.origin,
    destination: row.destination,
    exportAllocationId: row.export_allocation_id,
    importAllocationId: row.import_allocation_id,
    units: row.units,
    status: row.status,
    bookedAt: row.booked_at,
    deadline: row.deadline,
    reference: row.reference,
    serialCount: row.serial_count,
    demo: row.demo,
    createdSeq: row.created_seq,
    updatedSeq: row.updated_seq,
  };
}

export function presentSerial(row: SerialView): wire.Serial {
  return { serial: row.serial, live: row.live, gpuUuid: row.gpu_uuid, custody: row.custody, siteId: row.site_id, demo: row.demo };
}

export function presentUnit(row: UnitView): wire.Unit {
  return {
    serial: row.serial,
    gpuUuid: row.gpu_uuid,
    productId: row.product_id,
    recipientId: row.recipient_org_id,
    custody: row.custody,
    shipmentId: row.shipment_id,
    siteId: row.site_id,
    demo: row.demo,
    updatedSeq: row.updated_seq,
  };
}

export function presentSite(row: SiteRow): wire.Site {
  return {
    id: row.id,
    organisationId: row.org_id,
    name: row.name,
    province: row.province,
    city: row.city,
    country: row.country,
    latitude: row.latitude,
    longitude: row.longitude,
    capacityUnits: row.capacity_units,
    deployedUnits: row.deployed_units,
    demo: row.demo,
    createdSeq: row.created_seq,
  };
}

/**
 * An event as the transparency log sees it: its canonical bytes (the leaf, base64) and
 * the same bytes parsed. The leaf index is the sequence number. Events carry no demo
 * column; a server whose database holds the demo serves every event as demo data.
 */
export function presentEvent(row: EventRow, demo: boolean): wire.Event {
  return {
    seq: row.seq,
    leafIndex: row.seq,
    at: row.at,
    kind: row.kind,
    actor: row.actor,
    subjectId: row.subject_id,
    // Its readers as the read path gives them to this viewer: a tenant reads only its own id
    // (store/event-queries.ts eventAsSeenBy).
    organisationIds: row.org_ids,
    canonical: row.canonical.toString('base64'),
    // The bytes the ledger wrote with its handlers' effects: wire.EventBody describes them
    // (the API tests check every event they read against the document).
    body: JSON.parse(row.canonical.toString('utf8')) as wire.EventBody,
    demo,
  };
}

/**
 * A licence's utilisation. With totalsScope 'licence' the figures are the licence's: what is
 * unallocated, and what is still available of its units. With 'own_allocations' (a
 * recipient) they are sums over the viewer's own allocations: what is available is what
 * remains on those, and what is unallocated on the licence is not the viewer's to know
 * (it would give away the other recipients' allocations), so it is null.
 */
export function presentUtilisation(row: UtilisationLicence): wire.Utilisation {
  const wholeLicence = row.totals_scope === 'licence';
  const used = row.reserved_units + row.shipped_units;
  return {
    licenceId: row.id,
    reference: row.reference,
    direction: row.direction,
    status: row.status,
    holderId: row.holder_org_id,
    authorityId: row.authority_org_id,
    units: row.authorised_units,
    totalsScope: row.totals_scope,
    allocatedUnits: row.allocated_units,
    unallocatedUnits: wholeLicence ? row.authorised_units - row.allocated_units : null,
    reservedUnits: row.reserved_units,
    shippedUnits: row.shipped_units,
    availableUnits: (wholeLicence ? row.authorised_units : row.allocated_units) - used,
    demo: row.demo,
    allocations: row.allocations.map((allocation) => ({
      allocationId: allocation.id,
      recipientId: allocation.recipient_org_id,
      units: allocation.units,
      reservedUnits: allocation.reserved_units,
      shippedUnits: allocation.shipped_units,
      availableUnits: allocation.units - allocation.reserved_units - allocation.shipped_units,
      periodStart: allocation.period_start,
      periodEnd: allocation.period_end,
      demo: allocation.demo,
    })),
    allocationsTruncated: row.allocations_truncated,
  };
}
