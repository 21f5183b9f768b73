/**
 * What the API answers, field by field: one schema per presented record and one per
 * command's answer. The OpenAPI document is generated from these (src/server/openapi.ts),
 * the presenters are typed by them (a missing or extra field does not compile), and the
 * tests validate real answers against the generated document, so a client generated from
 * it reads what the server sends.
 *
 * Every object is strict: the document says `additionalProperties: false`, which is what
 * lets a client rely on the fields it lists and nothing else.
 */
import { z } from 'zod';
import type { CommandKind } from '../ledger/schemas.ts';
import { count, custody, day, demo, eccn, instant, licenceStatus, seq, shipmentStatus, totalsScope, unitSite } from './wire-fields.ts';
import { eventBodySchema } from './wire-events.ts';

export const organisation = z.strictObject({
  id: z.string(),
  name: z.string(),
  nameRomanised: z.string().nullable(),
  country: z.string(),
  roles: z.array(z.enum(['authority', 'exporter', 'recipient', 'auditor'])),
  identifiers: z.record(z.string(), z.string()).describe('duns, uscc (the Unified Social Credit Code), ...'),
  address: z.string().nullable(),
  kycVerifiedBy: z.array(z.string()).describe('The authorities that verified this organisation.'),
  demo,
  createdSeq: seq,
});

export const product = z.strictObject({
  id: z.string(),
  model: z.string(),
  vendor: z.string(),
  eccn: eccn.describe('The export control classification derived from the parameters: 3A090.a, 3A090.b, or not 3A090 (outside the ECCN).'),
  parameters: z.record(z.string(), z.unknown()).describe('The datasheet figures as registered, with tpp, performanceDensity and the classification.'),
  registeredBy: z.string().nullable().describe('The authority organisation that registered the product and answers for its figures; null for a product registered before registrants were recorded (its product.register event names the actor).'),
  demo,
  createdSeq: seq,
});

const condition = z.strictObject({
  id: z.string(),
  text: z.string(),
  kind: z.enum(['obligation', 'max_units_per_shipment', 'end_user_kyc_required']),
  value: z.number().int().optional(),
});

export const licence = z.strictObject({
  id: z.string(),
  version: z.number().int().min(1),
  reference: z.string().describe("The issuing authority's reference for the licence, as it gave it: one licence of that authority per reference, compared trimmed and without regard to the case of ASCII letters."),
  authorityId: z.string(),
  direction: z.enum(['export', 'import']),
  holderId: z.string(),
  productIds: z.array(z.string()),
  origin: z.string(),
  destination: z.string(),
  authorisedUnits: count,
  allocatedUnits: count,
  shippedUnits: count,
  totalsScope,
  valueMinor: z.number().int().nullable().describe("The value the licence states, in the currency's minor unit (cents for USD), recorded and amended with the licence like its other terms; null when it states none. Shipments do not consume it: they carry no declared value, and the ledger enforces the licence's units, not its value."),
  currency: z.string().nullable().describe('The currency of valueMinor, as its ISO 4217 alphabetic code: USD, CNY, ...; null when the licence states no value.'),
  validFrom: instant,
  validTo: instant,
  conditions: z.array(condition),
  riders: z.array(z.string()),
  status: licenceStatus,
  demo,
  createdSeq: seq,
  updatedSeq: seq.nullable().describe('The event that last changed the licence: its own, an allocation\'s under it, or a shipment.ship that posted units to it (a shipment\'s event, which the licence\'s history does not list); null when the totals are only the viewer\'s own.'),
});

export const party = z.strictObject({ organisationId: z.string(), role: z.enum(['consignee', 'end_user', 'supplier']) });

export const allocation = z.strictObject({
  id: z.string(),
  licenceId: z.string(),
  recipientId: z.string(),
  units: count,
  reservedUnits: count,
  shippedUnits: count,
  availableUnits: count.describe('units − reserved − shipped: what the allocation still holds. Whether it can be booked now also depends on the licence (issued, within its validity) and this period.'),
  periodStart: day.nullable(),
  periodEnd: day.nullable(),
  demo,
  createdSeq: seq,
});

export const licenceDetail = z.strictObject({
  ...licence.shape,
  parties: z.array(party),
  allocations: z.array(allocation).describe('The allocations the caller sees, at most a page of them.'),
  allocationsTruncated: z.boolean(),
});

export const licenceVersion = z.strictObject({
  licenceId: z.string(),
  version: z.number().int().min(1),
  seq,
  terms: z.record(z.string(), z.unknown()).describe("The licence's terms as this version set them, named as a licence is read (holderId, authorityId, productIds, authorisedUnits, valueMinor and currency, validFrom, validTo, conditions, riders, parties of { organisationId, role }, ...); a version keeps the fields its day had."),
  demo,
});

export const shipment = z.strictObject({
  id: z.string(),
  exporterId: z.string(),
  recipientId: z.string(),
  productId: z.string(),
  origin: z.string(),
  destination: z.string(),
  exportAllocationId: z.string(),
  importAllocationId: z.string(),
  units: count,
  status: shipmentStatus,
  bookedAt: instant,
  deadline: instant,
  reference: z.string().nullable(),
  serialCount: count,
  demo,
  createdSeq: seq,
  updatedSeq: seq,
});

export const serial = z.strictObject({
  serial: z.string(),
  live: z.boolean().describe('Whether the serial is still on this manifest (false once the shipment ended and freed it).'),
  gpuUuid: z.string().nullable(),
  custody: custody.nullable().describe("The unit's custody while this shipment holds it; null once another shipment does."),
  siteId: unitSite,
  demo,
});

export const unit = z.strictObject({
  serial: z.string(),
  gpuUuid: z.string().nullable(),
  productId: z.string(),
  recipientId: z.string(),
  custody,
  shipmentId: z.string(),
  siteId: unitSite,
  demo,
  updatedSeq: seq.nullable().describe("The event that last changed the unit; null for a reader that does not see where the unit runs (its exporter): the last change is often a deployment, a move or a decommission, its recipient's alone to read."),
});

export const site = z.strictObject({
  id: z.string(),
  organisationId: z.string(),
  name: z.string(),
  province: z.string(),
  city: z.string(),
  country: z.string().describe('ISO 3166-1 alpha-2. Units are deployed here only if their shipment was imported into this country (rule deployment-destination).'),
  latitude: z.number(),
  longitude: z.number(),
  capacityUnits: count,
  deployedUnits: count,
  demo,
  createdSeq: seq,
});

export const event = z.strictObject({
  seq,
  leafIndex: seq,
  at: instant,
  kind: z.string().describe('The command that made it, e.g. shipment.book.'),
  actor: z.string().describe('The token that ran the command.'),
  subjectId: z.string().nullable(),
  organisationIds: z.array(z.string()).describe('Who reads the event: every reader for authorities and auditors; for any other caller, its own id alone (who else reads an event is not its to know).'),
  canonical: z.string().describe("The event's canonical bytes (RFC 8785), base64: the log's leaf."),
  body: eventBodySchema.describe("The same bytes, parsed: the event's body, one shape per kind (EventBody)."),
  demo: z.boolean().describe("Served from a database that holds the demo (`chipledger demo`, `serve --demo`): the demo's events and any made on top of it share one log, so every event of such a database is marked, as every answer of its server is (X-Chipledger-Demo). A row's own demo flag says whether the demo loaded that row."),
});

/** An allocation's figures in the utilisation report: named allocationId, without its licence (the row's) and seq. */
const { id: _id, licenceId: _licenceId, createdSeq: _createdSeq, ...allocationFigures } = allocation.shape;
const utilisationAllocation = z.strictObject({ allocationId: z.string(), ...allocationFigures });

export const utilisation = z.strictObject({
  licenceId: z.string(),
  reference: z.string(),
  direction: z.enum(['export', 'import']),
  status: licenceStatus,
  holderId: z.string(),
  authorityId: z.string(),
  units: count,
  totalsScope,
  allocatedUnits: count,
  unallocatedUnits: count.nullable(),
  reservedUnits: count,
  shippedUnits: count,
  availableUnits: count.describe("What the quota still holds: for the whole licence its units − reserved − shipped, unallocated units included; for a recipient (totalsScope own_allocations) the same over its own allocations. Whether any of it can be booked now also depends on the licence's status and validity and each allocation's period."),
  demo,
  allocations: z.array(utilisationAllocation),
  allocationsTruncated: z.boolean(),
});

// The commands' answers: the event's seq and what the command made or changed.

const answer = <S extends z.ZodRawShape>(shape: S) => z.strictObject({ seq, ...shape });
const licenceStatusAnswer = answer({ licenceId: z.string(), status: licenceStatus });
const shipmentStatusAnswer = answer({ shipmentId: z.string(), status: shipmentStatus });
const unitsEndAnswer = answer({ count, custody });

export const commandAnswers = {
  'organisation.register': answer({ organisationId: z.string() }),
  'organisation.set_kyc': answer({ organisationId: z.string(), authorityId: z.string(), kycVerified: z.boolean(), kycVerifiedBy: z.array(z.string()) }),
  'product.register': answer({ productId: z.string(), eccn, paragraph: z.string(), tpp: z.number() }),
  'token.create': answer({ tokenId: z.string(), secret: z.string().describe('The bearer secret: shown in this answer only, stored hashed.') }),
  'token.revoke': answer({ tokenId: z.string(), revokedAt: instant }),
  'licence.create': answer({ licenceId: z.string(), version: z.literal(1), status: z.literal('draft') }),
  'licence.issue': licenceStatusAnswer,
  'licence.suspend': licenceStatusAnswer,
  'licence.reinstate': licenceStatusAnswer,
  'licence.revoke': licenceStatusAnswer,
  'licence.surrender': licenceStatusAnswer,
  'licence.amend': answer({ licenceId: z.string(), version: z.number().int().min(2), status: licenceStatus }),
  'allocation.create': answer({ allocationId: z.string(), units: count }),
  'allocation.resize': answer({ allocationId: z.string(), units: count }),
  'shipment.book': answer({ shipmentId: z.string(), status: z.literal('booked'), units: count, serialCount: count }),
  'shipment.ship': shipmentStatusAnswer,
  'shipment.clear': shipmentStatusAnswer,
  'shipment.deliver': shipmentStatusAnswer,
  'shipment.cancel': shipmentStatusAnswer,
  'shipment.return': shipmentStatusAnswer,
  'manifest.attach': answer({ shipmentId: z.string(), added: count, serialCount: count }),
  'site.register': answer({ siteId: z.string() }),
  'units.deploy': answer({ siteId: z.string(), deployed: count, moved: count.describe('Of those, units moved here from another site.') }),
  'units.decommission': unitsEndAnswer,
  'units.report_lost': unitsEndAnswer,
  'units.return': unitsEndAnswer,
  'ledger.sweep': answer({ expiredShipments: z.array(z.string()), expiredLicences: z.array(z.string()) }),
} satisfies Record<CommandKind, z.ZodType>;

// The transparency log's JSON answers (the rest are its standard text and binary formats).

const base64Hash = z.string().describe('A SHA-256 hash, base64.');
export const logKeys = z.strictObject({
  keys: z.array(z.strictObject({
    verifierKey: z.string().describe('name+hexid+base64 (C2SP signed-note verifier key).'),
    firstSize: count.describe('The tree size of the first checkpoint signed with this key.'),
    announcement: z.string().nullable().describe('The checkpoint, signed with the key before, that announced this one; null for the first key.'),
  })),
});
export const inclusionProof = z.strictObject({ index: count, size: count, hashes: z.array(base64Hash) });
export const consistencyProof = z.strictObject({ from: count, to: count, hashes: z.array(base64Hash) });
export const cosignaturesStored = z.strictObject({
  stored: count.describe('Cosignatures of configured witnesses taken from this note (one already stored is stored once).'),
  witnesses: z.array(z.string()).describe("The configured witnesses whose cosignatures the note carried and the log took, each as name+hexid: a witness that does not find itself here was not taken (its key is not configured), though the note carried others'."),
});

/** The records the read routes answer, by the name the OpenAPI document gives them. */
export const resources = {
  Organisation: organisation, Product: product, Licence: licence, LicenceDetail: licenceDetail, LicenceVersion: licenceVersion,
  Allocation: allocation, Shipment: shipment, Serial: serial, Unit: unit, Site: site, Event: event, Utilisation: utilisation,
  LogKeys: logKeys, InclusionProof: inclusionProof, ConsistencyProof: consistencyProof, CosignaturesStored: cosignaturesStored,
} satisfies Record<string, z.ZodType>;
export type ResourceName = keyof typeof resources;

export type Organisation = z.output<typeof organisation>;
export type Product = z.output<typeof product>;
export type Licence = z.output<typeof licence>;
export type Party = z.output<typeof party>;
export type LicenceDetailWire = z.output<typeof licenceDetail>;
export type LicenceVersion = z.output<typeof licenceVersion>;
export type Allocation = z.output<typeof allocation>;
export type Shipment = z.output<typeof shipment>;
export type Serial = z.output<typeof serial>;
export type Unit = z.output<typeof unit>;
export type Site = z.output<typeof site>;
export type Event = z.output<typeof event>;
export type { EventBody } from './wire-events.ts';
export type Utilisation = z.output<typeof utilisation>;
