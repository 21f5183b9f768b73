/**
 * An event's body as its canonical bytes hold it (src/ledger/batch-apply.ts builds it with
 * eventBody, src/ledger/events.ts): seq, at, kind, actor, subject, input, effects, nonce. One
 * schema per kind, and per part where a command writes more than one event (a licence that
 * shipping used up, each record the sweep expires, the sites a return or a loss left):
 * the OpenAPI document publishes them as EventBody, a oneOf discriminated by `kind`
 * (src/server/openapi.ts), and the API tests check every event they read against it.
 *
 * This describes what the handlers (src/ledger/handlers/*.ts) write; it changes nothing
 * they write. Every object is strict, so a handler that writes a field this does not list
 * fails the tests that read its events.
 *
 * The input is the command's input as the ledger parsed it (defaults filled in, texts in
 * NFC, instants in UTC), so the command schemas (src/ledger/schemas.ts) describe it as they
 * answer, not as a client sends them; a serial list is recorded by its count and digest.
 */
import { z } from 'zod';
import { commandSchemas, role, type CommandKind } from '../ledger/schemas.ts';
import type { Paragraph } from '../policy/classification.ts';
import { count, eccn, eventNonce, instant, licenceStatus, seq } from './wire-fields.ts';

const id = z.string();
const positive = z.number().int().min(1);

/** The classification's deciding paragraphs (policy/classification.ts), every one of them. */
const paragraphs = ['3A090.a.1', '3A090.a.2', '3A090.b.1', '3A090.b.2', 'Note 2 to 3A090', 'below 3A090 thresholds'] as const satisfies readonly Paragraph[];
const paragraphsComplete: [Exclude<Paragraph, (typeof paragraphs)[number]>] extends [never] ? true : never = true;
void paragraphsComplete;

/**
 * A serial list as its event records it (recordSerials): its length and the SHA-256 of its
 * sorted lines, which GET /v1/events/{seq}/serials serves to the event's readers.
 */
const recordedSerials = {
  serialCount: positive.describe('How many entries the serial list had.'),
  serialsSha256: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 (hex) of the lines "serial" or "serial gpuUuid", each ending in a newline, sorted in byte order: the bytes GET /v1/events/{seq}/serials serves. A serial is hashed as sent (ASCII letters, digits and . _ : / -, new ones in capitals, so there is nothing to normalise); a GPU UUID as stored, `GPU-` and its hex digits in lower case, whatever case was sent (GPU-ABCDEF12-… is hashed as GPU-abcdef12-…).'),
};

const inputNote = "The command's input as the ledger recorded it: the request with its defaults filled in (demo is true only for `chipledger demo`'s records), texts in NFC, instants in UTC.";
const serialsNote = ' Its serial list is recorded by count and digest (serialCount, serialsSha256), not in full.';
/**
 * The further events that record no input (null): a licence that shipping used up, and the
 * sites a return or a loss left. The input is the first event's, which their readers may not
 * read. The sweep's further events are not of these: they record its input, {}, as its first does.
 */
const noInput = z.null().describe("None: this further event of a command records no input. The input, and its serial list, are in the command's first event, which this event's readers may not read.");

/** The recorded inputs of the commands that carry a serial list. */
const recordedInputs = {
  'shipment.book': commandSchemas['shipment.book'].omit({ serials: true })
    .extend({ serialCount: recordedSerials.serialCount.optional(), serialsSha256: recordedSerials.serialsSha256.optional() })
    .meta({ dependentRequired: { serialCount: ['serialsSha256'], serialsSha256: ['serialCount'] } })
    .describe(`${inputNote}${serialsNote} Both are absent when the booking listed no serials.`),
  'manifest.attach': commandSchemas['manifest.attach'].omit({ serials: true }).extend(recordedSerials).describe(inputNote + serialsNote),
  'units.deploy': commandSchemas['units.deploy'].omit({ serials: true }).extend(recordedSerials).describe(inputNote + serialsNote),
  unitsEnding: commandSchemas['units.return'].omit({ serials: true }).extend(recordedSerials).describe(inputNote + serialsNote),
};

/** The command's own input, as recorded (no serial list in it). */
const recorded = <K extends CommandKind>(kind: K) => commandSchemas[kind].describe(inputNote);

const actor = z.strictObject({
  id: z.string().describe('The token that ran the command (system: an admin command or the sweep run by the server).'),
  org: z.string().describe("The token's organisation."),
  role,
});

/** One event's body: what every event has, and this kind's subject, input and effects. */
function body<K extends CommandKind, I extends z.ZodType, E extends z.ZodType>(kind: K, parts: { subject: z.ZodType; input: I; effects: E; description: string }) {
  return z.strictObject({
    seq,
    at: instant.describe("The batch's time: every event of a batch has the same."),
    kind: z.literal(kind),
    actor,
    subject: parts.subject,
    input: parts.input,
    effects: parts.effects,
    // Every event written since the nonce was added has one. The log's earlier events have
    // none, and never will: their bytes are leaves already, fixed by every checkpoint since.
    nonce: eventNonce.optional(),
  }).describe(parts.description);
}

const subject = (what: string) => id.describe(what);
const counts = (what: string) => z.record(z.string(), positive).describe(what);

// Licences.

const transitionEffects = (from: readonly [string, ...string[]], to: readonly [string, ...string[]]) => z.strictObject({
  from: z.enum(from).describe('The status before.'),
  to: z.enum(to).describe('The status after.'),
  reason: z.string().optional().describe("The input's reason, when it gave one."),
});
const licenceTransition = <K extends 'licence.issue' | 'licence.suspend' | 'licence.reinstate' | 'licence.revoke' | 'licence.surrender'>(kind: K, from: readonly [string, ...string[]], to: readonly [string, ...string[]], description: string) =>
  body(kind, { subject: subject('The licence.'), input: recorded(kind), effects: transitionEffects(from, to), description });

/** A licence's status as only an issued one changes it by use: shipping its last units exhausts it (statusAfterUse). */
const licenceExhausted = body('shipment.ship', {
  subject: subject('The licence.'),
  input: noInput,
  effects: z.strictObject({ licenceId: id, from: z.literal('issued'), to: z.literal('exhausted') }),
  description: "A licence this shipment used up (its every authorised unit shipped): an event of its own, after the shipment's, read by the licence's organisations. It names no shipment: the shipment may be another recipient's.",
});

// Shipments.

const shipmentStep = <K extends 'shipment.ship' | 'shipment.clear' | 'shipment.deliver' | 'shipment.cancel' | 'shipment.return'>(kind: K, from: string, to: string, extra: z.ZodRawShape, description: string) =>
  body(kind, {
    subject: subject('The shipment.'),
    input: recorded(kind),
    effects: z.strictObject({ from: z.literal(from), to: z.literal(to), units: positive.describe("The shipment's units."), ...extra }),
    description,
  });

// Units: an ending (decommission, loss, return) counts its units by shipment and by site left.

const shipmentsCounted = counts('How many of the units came in each shipment: { "S-81": 3 }.');
const fromSites = counts('How many of the units left each site they were deployed at: { "SITE-41": 2 }; {} when none was deployed.');
const endingSubject = id.nullable().describe("The units' shipment when they all came in one; null otherwise.");
const endingFirst = <K extends 'units.report_lost' | 'units.return'>(kind: K, what: string) => body(kind, {
  subject: endingSubject,
  input: recordedInputs.unitsEnding,
  effects: z.strictObject({ count: positive, shipments: shipmentsCounted }),
  description: `Units ${what}: read by the recipient and the exporter of their shipments, so without the sites they left (those are the next event's, the recipient's alone).`,
});
const endingSites = <K extends 'units.report_lost' | 'units.return'>(kind: K) => body(kind, {
  subject: id.nullable().describe('The site when the units all left one; null otherwise.'),
  input: noInput,
  effects: z.strictObject({ fromSites: counts('How many of the units left each site they were deployed at: { "SITE-41": 2 }; never empty (no site left, no event).').meta({ minProperties: 1 }) }),
  description: "The sites the units of the command's first event left, read by the recipient only: where a unit runs is not its exporter's to know. Written only when some unit was deployed.",
});

// The sweep: one event per record it expires, each read by that record's parties.

const sweptShipment = body('ledger.sweep', {
  subject: subject('The shipment.'),
  input: recorded('ledger.sweep'),
  effects: z.strictObject({
    shipmentId: id,
    from: z.literal('booked'),
    to: z.literal('expired'),
    units: positive,
    reason: z.string().optional().describe('Why a booking before its deadline expired: the licence no longer in force (licence L-7 is revoked). Absent for a booking past its deadline.'),
    dueAt: instant.optional().describe("When the booking fell due, which `at` (when the sweep ran) may be long after: its deadline, or the validTo of the licence whose validity ended it. Absent when a revocation or a surrender ended it (that licence's own event dates it), and on older events, written before it was recorded."),
  }),
  description: 'A booking the sweep expired (past its deadline, or under a licence no longer in force), its reservation released: read by its exporter and recipient.',
});
const sweptLicence = body('ledger.sweep', {
  subject: subject('The licence.'),
  input: recorded('ledger.sweep'),
  effects: z.strictObject({
    licenceId: id, from: z.enum(['issued', 'suspended', 'exhausted']), to: z.literal('expired'),
    dueAt: instant.optional().describe("The licence's validTo, when its validity ended; `at` is when the sweep ran, which may be long after. Absent on older events, written before it was recorded."),
  }),
  description: "A licence the sweep expired, its validity ended: read by the licence's organisations.",
});

const amendableStatus = licenceStatus.extract(['draft', 'issued', 'suspended', 'exhausted']);

/**
 * Every kind's event bodies: its first event, then the further events it may write, in the
 * order they follow it. A kind with several parts is published as a oneOf of them.
 */
export const eventBodies = {
  'organisation.register': [body('organisation.register', { subject: subject('The organisation.'), input: recorded('organisation.register'), effects: z.strictObject({ organisationId: id }), description: 'An organisation registered.' })],
  'organisation.set_kyc': [body('organisation.set_kyc', { subject: subject('The organisation.'), input: recorded('organisation.set_kyc'), effects: z.strictObject({ authorityId: id.describe('The authority whose verification this sets or withdraws (input.verified).') }), description: "An authority's KYC verification of an organisation, set or withdrawn." })],
  'product.register': [body('product.register', { subject: subject('The product.'), input: recorded('product.register'), effects: z.strictObject({ productId: id, eccn, paragraph: z.enum(paragraphs), tpp: z.number() }), description: 'A product registered, with the classification derived from its parameters.' })],
  'token.create': [body('token.create', { subject: subject('The token.'), input: recorded('token.create'), effects: z.strictObject({ tokenId: id }), description: 'An API token made (its secret is in the answer only, never in the event).' })],
  'token.revoke': [body('token.revoke', { subject: subject('The token.'), input: recorded('token.revoke'), effects: z.strictObject({}), description: 'An API token revoked.' })],
  'licence.create': [body('licence.create', { subject: subject('The licence.'), input: recorded('licence.create'), effects: z.strictObject({ licenceId: id, version: z.literal(1) }), description: 'A licence drafted: version 1.' })],
  // A draft has shipped nothing, so issuing it never exhausts it; reinstating may (statusAfterUse).
  'licence.issue': [licenceTransition('licence.issue', ['draft'], ['issued'], 'A draft licence issued.')],
  'licence.suspend': [licenceTransition('licence.suspend', ['issued', 'exhausted'], ['suspended'], 'A licence suspended: an exhausted one too, whose clearances it pauses.')],
  'licence.reinstate': [licenceTransition('licence.reinstate', ['suspended'], ['issued', 'exhausted'], 'A suspended licence reinstated: exhausted when its every unit has shipped.')],
  'licence.revoke': [licenceTransition('licence.revoke', ['draft', 'issued', 'suspended', 'exhausted'], ['revoked'], 'A licence revoked.')],
  'licence.surrender': [licenceTransition('licence.surrender', ['issued', 'suspended', 'exhausted'], ['surrendered'], 'A licence surrendered by its holder.')],
  'licence.amend': [body('licence.amend', {
    subject: subject('The licence.'),
    input: recorded('licence.amend'),
    effects: z.strictObject({
      version: z.number().int().min(2).describe('The version the amendment made.'),
      statusFrom: amendableStatus,
      statusTo: amendableStatus.describe('Equal to statusFrom unless the amendment exhausted the licence (units cut to what has shipped) or gave an exhausted one units again.'),
    }),
    description: "A licence amended: a new version. Its input records each term it stated afresh (units, value as valueMinor with currency, validity, products, conditions, riders, parties); a term it left out stays as the version before set it. The value is the licence's stated value, recorded, not consumed by shipments.",
  })],
  'allocation.create': [body('allocation.create', { subject: subject('The allocation.'), input: recorded('allocation.create'), effects: z.strictObject({ allocationId: id }), description: "Part of a licence's units allocated to a recipient (the event gives no licence total: its recipient reads it). Listed in the licence's history as well as the allocation's (GET /v1/events?subjectId=): it changes the licence's allocatedUnits." })],
  'allocation.resize': [body('allocation.resize', { subject: subject('The allocation.'), input: recorded('allocation.resize'), effects: z.strictObject({ from: count.describe('Its units before (0 for one resized to 0 before).'), to: count.describe('Its units after: 0 gives them all back to the licence.') }), description: "An allocation resized: from and to are units, not statuses. Listed in the licence's history as well as the allocation's (GET /v1/events?subjectId=): it changes the licence's allocatedUnits." })],
  'shipment.book': [body('shipment.book', {
    subject: subject('The shipment.'),
    input: recordedInputs['shipment.book'],
    effects: z.strictObject({ shipmentId: id, recipientId: id, origin: z.string().describe("The exporter's country."), destination: z.string().describe("The recipient's country.") }),
    description: 'A shipment booked, reserving its units on both allocations.',
  })],
  'shipment.ship': [
    shipmentStep('shipment.ship', 'booked', 'shipped', { licencesExhausted: z.array(id).describe('The licences this shipment used up, each with an event of its own right after this one; [] when none.') }, 'A shipment shipped: its reservation posted on both allocations and licences.'),
    licenceExhausted,
  ],
  'shipment.clear': [shipmentStep('shipment.clear', 'shipped', 'cleared', {
    importLicence: z.strictObject({ id, status: licenceStatus, validTo: instant }).optional()
      .describe("The shipment's import licence as it stood when the clearance was recorded. A recipient clears only under one in force (issued or exhausted, before its validTo); a status or validTo that says otherwise is a clearance its issuing authority recorded late. Absent on older events, written before it was recorded."),
  }, "A shipment cleared on import: by its recipient while the import licence is in force, or by that licence's issuing authority (late, too: `at` is when it was recorded).")],
  'shipment.deliver': [shipmentStep('shipment.deliver', 'cleared', 'delivered', {}, 'A shipment delivered.')],
  'shipment.cancel': [shipmentStep('shipment.cancel', 'booked', 'cancelled', {}, 'A booking cancelled, its reservation released.')],
  'shipment.return': [shipmentStep('shipment.return', 'shipped', 'returned', {}, "A shipment turned back before import clearance (entry refused, or recalled on the way), recorded by its exporter or by the authority of its import licence; the input's reason says why. Its units in transit became returned and its serials may be listed again by the same exporter. What it shipped stays shipped on both licences: a return credits neither back.")],
  'manifest.attach': [body('manifest.attach', {
    subject: subject('The shipment.'),
    input: recordedInputs['manifest.attach'],
    effects: z.strictObject({ added: count.describe('Serials added to the manifest.'), serialCount: count.describe("The manifest's serials after.") }),
    description: "Serials attached to a booked shipment's manifest.",
  })],
  'site.register': [body('site.register', { subject: subject('The site.'), input: recorded('site.register'), effects: z.strictObject({ siteId: id }), description: "A data-centre site registered. Its input records a country only where the request gave one; without one the site is in its organisation's country (GET /v1/sites/<id> gives it), as every site registered before sites had a country is." })],
  'units.deploy': [body('units.deploy', {
    subject: subject('The site.'),
    input: recordedInputs['units.deploy'],
    effects: z.strictObject({
      deployed: positive,
      moved: count.describe('Of those, units moved here from another site.'),
      movedFrom: counts('How many units left each site they were deployed at: { "SITE-41": 2 }; {} when none moved. (An ending names these fromSites.)'),
    }),
    description: 'Units deployed at a site, read by the recipient only.',
  })],
  'units.decommission': [body('units.decommission', {
    subject: endingSubject,
    input: recordedInputs.unitsEnding,
    effects: z.strictObject({ count: positive, shipments: shipmentsCounted, fromSites }),
    description: "Units decommissioned: the recipient's own record, read by it alone, so one event with the sites they left.",
  })],
  'units.report_lost': [endingFirst('units.report_lost', 'reported lost'), endingSites('units.report_lost')],
  'units.return': [endingFirst('units.return', 'returned to the exporter'), endingSites('units.return')],
  'ledger.sweep': [sweptShipment, sweptLicence],
} as const satisfies { [K in CommandKind]: readonly [z.ZodType<{ kind: K }>, ...Array<z.ZodType<{ kind: K }>>] };

export type EventBody = z.output<(typeof eventBodies)[CommandKind][number]>;

const allParts = Object.values(eventBodies).flat() as unknown as readonly [z.ZodType<EventBody>, ...Array<z.ZodType<EventBody>>];
/** Any event's body. The document publishes it by reference, as EventBody, with its discriminator. */
export const eventBodySchema = z.union(allParts);
