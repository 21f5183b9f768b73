/**
 * The input of every ledger command, as zod schemas: the API validates requests with
 * them, the OpenAPI document is generated from them, and the ledger checks them again
 * for callers that do not come through HTTP.
 */
import { z } from 'zod';
import { isCountryCode } from '../core/countries.ts';
import { isCurrencyCode } from '../core/currencies.ts';
import { limits } from '../core/limits.ts';
import { newSerialPattern, problemOfNewSerial, problemOfSerial, serialPattern } from '../core/serial.ts';
import { asciiUpperCase, codePointLabel, dashCharacters, identityProblem, invisibleCharacters, lookAlikeScript, newerUnicodeProblem, normaliseLineEndings, textProblem, toNfc, whiteSpaceCharacters } from '../core/text.ts';
import { bitLengthMax, dramBandwidthGbSMin, logicDieAreaMm2Min, precisionProblem, significantDigitsProblem } from '../policy/datasheet.ts';

/**
 * Text as core/text.ts holds every free-text field: line endings as LF (a browser sends a
 * textarea with CRLF, and "A\r\nB" and "A\nB" are one text), then valid Unicode (no lone
 * surrogates), free of control characters (C0 but tab and LF, DEL, C1: U+009B is a
 * terminal's CSI) and bidi controls, each refused naming its code point and position (in the
 * text with its line endings as LF); stored in NFC. The length is checked again after
 * normalising: NFC can lengthen a text (U+0344 becomes two code points), and the database's
 * CHECK on the stored length would refuse it.
 */
export const text = (max: number = limits.textLengthMax) =>
  z
    .string()
    .max(max)
    .transform(normaliseLineEndings)
    .superRefine((value, context) => {
      const problem = textProblem(value);
      if (problem !== undefined) context.addIssue({ code: 'custom', message: `must be free of control characters and bidi controls, and well-formed Unicode: ${problem}`, input: value });
    })
    .transform(toNfc)
    .pipe(z.string().max(max, `must be at most ${max} characters once normalised to NFC`));
/**
 * A list's bound, as its refusal says it: how many were given, and the bound by its name in
 * limits.ts, as the units of a shipment are refused (zod's own words give neither). The
 * refusal is a 413 (refusals.ts, invalidInput), which reads the bound from the issue.
 */
export function listMax(max: number, bound: string, holder: string, items: string): { error: (issue: { input?: unknown }) => string } {
  return {
    error: (issue) => `${Array.isArray(issue.input) ? `${issue.input.length.toLocaleString('en-US')} given; ` : ''}${holder} at most ${max.toLocaleString('en-US')} ${items} (${bound})`,
  };
}

/**
 * A character that shows: not white space, a format character (U+200B, U+2060, U+FEFF, …)
 * or another character that renders as nothing (core/text.ts invisibleCharacters: U+3164,
 * variation selectors, …).
 */
const visible = new RegExp(`[^\\s\\p{Cf}${invisibleCharacters}]`, 'u');

/** What a list's refinement says of an item whose key an earlier item had. */
type Twice<T> = (item: T, earlier: number, index: number) => { message: string; path: PropertyKey[] };

/**
 * Refuses every item of a list whose key an earlier item had, as `twice` says it: a list that
 * is a set (a licence's products and parties, an organisation's roles), and a licence's
 * conditions, each under an id of its own.
 */
function givenOnce<T>(keyOf: (item: T) => string, twice: Twice<T>): (list: T[], context: z.RefinementCtx<T[]>) => void {
  return (list, context) => {
    const first = new Map<string, number>();
    list.forEach((item, index) => {
      const key = keyOf(item);
      const earlier = first.get(key);
      if (earlier === undefined) first.set(key, index);
      else context.addIssue({ code: 'custom', ...twice(item, earlier, index), input: list });
    });
  };
}
/**
 * An item of a set given twice, named, with both places. The handlers keep each once, so the
 * event would record the list as sent and the row another one (the input review of
 * session 24).
 */
const sameItemTwice = <T>(named: (item: T) => string): Twice<T> => (item, earlier, index) => ({
  message: `${named(item)} is given twice (items ${earlier} and ${index}); give it once`, path: [index],
});
/**
 * Said in words, not as uniqueItems: the event bodies the document describes reuse these
 * schemas, and events recorded before the rule may repeat an item.
 */
const eachOnce = 'Each item once: a request that gives one twice is refused (400, naming both places).';
const productIdsOnce = givenOnce<string>((productId) => productId, sameItemTwice((productId) => `product ${productId}`));
const partiesOnce = givenOnce<{ organisationId: string; role: string }>((party) => `${party.organisationId}/${party.role}`, sameItemTwice((party) => `party ${party.organisationId} as ${party.role}`));

/**
 * A name: text that is not blank, stored without the white space around it (the OpenAPI
 * document says so with minLength and a pattern). Invisible characters alone (a zero-width
 * space, U+200B, which trim keeps) are blank too.
 */
export const name = () => text().pipe(z.string().trim().min(1, 'must not be empty').regex(visible, 'must hold a visible character, not only white space or invisible ones'))
  .meta({ minLength: 1, pattern: '\\S' });

/**
 * A name by which a thing is told from others (a product's model, a licence's reference): a
 * name on one line, without invisible characters (core/text.ts identityProblem), and without
 * characters that an older database's Unicode may fold otherwise than the ledger
 * (newerUnicodeProblem), each refused naming its code point. Compared with what is stored, by
 * a fold that a zero-width space or a line break would get past (s21 identity review, finding
 * 1), in the ledger and in the database (migration 050), which must agree.
 */
export const identityName = (max: number = limits.textLengthMax) =>
  text(max)
    .superRefine((value, context) => {
      const problem = identityProblem(value);
      if (problem !== undefined) context.addIssue({ code: 'custom', message: `must be one line of visible characters: ${problem}`, input: value });
      const newer = newerUnicodeProblem(value);
      if (newer !== undefined) context.addIssue({ code: 'custom', message: `has ${newer}`, input: value });
    })
    .pipe(z.string().trim().min(1, 'must not be empty'))
    .meta({ minLength: 1, pattern: '\\S' });

/** Secrets carry a prefix so that scanners (and id and tokenId below) can spot a leaked one. */
export const tokenSecretPrefix = 'clt_';
/**
 * An id. A token's secret given where an id goes (a path such as /v1/licences/{id}/suspend
 * takes it) is refused without being quoted: a refusal the handler made would quote it, and
 * be remembered under the idempotency key in plain text; a refusal by the schema is not.
 */
export const id = z.string().min(1).max(limits.referenceLengthMax).regex(/^[A-Za-z0-9_-]+$/, 'must be an id such as ORG-3, L-7 or S-12 (letters, digits, - and _)')
  .refine((value) => !value.startsWith(tokenSecretPrefix), { message: "is a token's secret, not an id: treat it as leaked, and revoke its token" });
export const country = z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code such as CN')
  .refine(isCountryCode, { message: 'must be the ISO 3166-1 alpha-2 code of a country, such as CN (not a reserved or user-assigned code such as UK, EU or XX)' });
export const units = z.number().int('must be a whole number').positive('must be at least 1').max(limits.unitsMax);
/**
 * Instants and days from year 1 to 9999, in UTC. PostgreSQL has no year 0 (a date such as
 * 0001-01-01T00:30:00+01:00 is in it once in UTC) and JavaScript writes years past 9999
 * with a sign; either would reach the database as a value it refuses.
 */
const fourDigitYear = /^(?!0000)\d{4}-/;
/** The form an instant is given in, as a refusal of another form says it. */
export const instantForm = 'a date and time with its offset, such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00';
/**
 * What a client reads of an instant and a day in the OpenAPI document (request bodies): the
 * form, what is stored, and how the ledger reads a validity and a tranche's days at their
 * ends (checkCovers and checkBookingPeriod in handlers/shipment-checks.ts), which decides
 * whether a licence's last day is in it.
 */
export const instantNote = 'RFC 3339 date and time with its offset (Z or ±hh:mm), such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00; stored in UTC at millisecond precision (finer digits are cut off), and answered as 2027-01-01T00:00:00.000Z. A validity is half-open: validFrom is its first instant, validTo the first instant after it, so a licence valid through 31 December 2026 in Beijing has validTo 2027-01-01T00:00:00+08:00 (not 2026-12-31T00:00:00+08:00, which loses that day).';
const dayNote = "A calendar day, YYYY-MM-DD (RFC 3339 full-date), in UTC: a tranche's periodStart and periodEnd are its first and last days, both included, and a booking falls on the UTC date of its time (a tranche ending 2026-03-31 takes bookings until 2026-04-01T00:00:00Z, 08:00 on 1 April in Beijing).";
export const instant = z.iso
  .datetime({ offset: true, error: `must be ${instantForm}` })
  .transform((value) => new Date(value).toISOString())
  .refine((value) => fourDigitYear.test(value), { message: 'must be between the years 1 and 9999 in UTC' })
  .describe(instantNote);
export const day = z.iso.date().refine((value) => fourDigitYear.test(value), { message: 'must be between the years 1 and 9999' }).describe(dayNote);
/**
 * A serial refused in the words the CLI's CSV check gives (core/serial.ts: the character at
 * fault, the first one, or the spelling to send), not zod's, and once: zod's own .min, .max
 * and .regex would each add a refusal of one serial. Not checks that abort either: a manifest
 * entry is a union with an object, and a union of two aborted options answers "Invalid input"
 * alone. The OpenAPI document gets the bounds and the pattern from the meta.
 */
function serialOf(problemOf: (value: string) => string | undefined, pattern: RegExp, description: string) {
  return z
    .string()
    .superRefine((value, context) => {
      const problem = problemOf(value);
      if (problem !== undefined) context.addIssue({ code: 'custom', message: problem, input: value });
    })
    .meta({ minLength: 1, maxLength: limits.serialLengthMax, pattern: pattern.source, description });
}
/**
 * A serial that names a unit (units.deploy and the units' ends, GET /v1/units/{serial}, a
 * page's cursor): in either case, since earlier releases made units in lower case, which must
 * still be deployed, ended and looked up (core/serial.ts says why).
 */
export const serial = serialOf(problemOfSerial, serialPattern,
  'A serial that names a unit: ASCII letters, digits and . _ : / -, starting with a letter or digit, compared exactly. New serials are in capitals; a unit made in lower case by an earlier release is named as it was made.');
/**
 * A serial that makes a unit or a manifest line (a manifest's entries): in capitals, so that
 * ABC1654X01 and abc1654x01 are never two units (core/serial.ts says why).
 */
export const newSerial = serialOf(problemOfNewSerial, newSerialPattern,
  'A new serial: capital ASCII letters, digits and . _ : / -, starting with a letter or digit. A lower-case letter is refused, naming the capitals to send.');
export const role = z.enum(['authority_admin', 'authority_officer', 'exporter', 'recipient', 'auditor']);

/**
 * What the spelling of an identifier leaves out: the separators a code is printed with between
 * its groups (white space, any dash, "." and "/": "5493 001K JTII GC8Y 1R12", "15-048-3782",
 * "CHE-123.456.789", "12.345.678/0001-95") and invisible characters.
 */
const identifierSeparators = new RegExp(`[${invisibleCharacters}${whiteSpaceCharacters}${dashCharacters}./]+`, 'gu');
/**
 * An identifier as two organisations may not share it, in the ledger and in the database
 * (migration 050, organisation_identifier_spelling, character for character): in NFKC,
 * without white space, dashes, dots, slashes or invisible characters, ASCII letters in
 * capitals. The schema stores identifiers in this spelling; rows written before it may hold
 * others (spaces, dots, lower case, full width), which compare the same.
 */
export function identifierSpelling(value: string): string {
  return asciiUpperCase(value.normalize('NFKC').replace(identifierSeparators, ''));
}

/** A character an identifier keeps, once in NFKC and capitals: A-Z, 0-9, "&", and Latin letters (Ñ, Ü, Ç). */
const identifierKept = /^(?:[A-Z0-9&]|(?=\p{Script=Latin})\p{L})$/u;
/** The separators between groups that the schema takes, once in NFKC (a no-break space is a space), and identifierSpelling leaves out; a tab or an en dash is refused, as no code is printed with one. */
const identifierGroupSeparator = /^[ \-./]$/;
/** The alphabet, as a refusal and the OpenAPI document say it. */
const identifierAlphabet = 'A-Z, 0-9, "&" and Latin letters (Ñ, Ü), grouped by spaces, "-", "." or "/", which are dropped';

/** The first character of an identifier (in NFKC and capitals) outside its alphabet, named with its script where that is Cyrillic or Greek; or undefined. */
function identifierCharacterProblem(value: string): string | undefined {
  let position = 0;
  for (const character of value) {
    if (!identifierKept.test(character) && !identifierGroupSeparator.test(character)) {
      const script = lookAlikeScript(character);
      const what = script === undefined ? '' : `, a ${script} letter`;
      return `has ${JSON.stringify(character)} (${codePointLabel(character.codePointAt(0)!)}${what}) at position ${position} once in NFKC and capitals; an identifier holds ${identifierAlphabet}`;
    }
    position += character.length;
  }
  return undefined;
}

/**
 * An organisation's identifier in its one spelling (identifierSpelling): in NFKC, in capitals,
 * without the separators of its groups. NFKC makes full-width ５４９３ the digits 5493 (typed
 * so by Chinese input methods); a code printed in groups ("5493 001K JTII GC8Y 1R12",
 * "15-048-3782", "CHE-123.456.789", "12.345.678/0001-95") is the code without them, so a Swiss
 * UID with and without its dots is one code (s21 ledger review, finding 3). Then only A-Z,
 * 0-9, "&" (a Mexican RFC: A&B010101AAA) and Latin letters (MUÑ850101AB1) are left, and any
 * other character is refused, naming it: a letter of another script that looks like a Latin
 * one (Cyrillic А, Greek Ι), another dash, a zero-width space or a BOM would make one code
 * two. A character that an older database's Unicode may fold otherwise is refused as in a
 * model (core/text.ts newerUnicodeProblem). Capitals can lengthen a text ('ß' becomes 'SS',
 * 'ﬃ' 'FFI'), so the length is checked once more after: 128 'ß' were stored as 256 letters,
 * past the bound the first check held.
 */
const identifier = text(limits.referenceLengthMax)
  .superRefine((value, context) => {
    const problem = newerUnicodeProblem(value);
    if (problem !== undefined) context.addIssue({ code: 'custom', message: `has ${problem}`, input: value });
  })
  .transform((value) => value.normalize('NFKC').trim().toUpperCase())
  .superRefine((value, context) => {
    const problem = identifierCharacterProblem(value);
    if (problem !== undefined) context.addIssue({ code: 'custom', message: problem, input: value });
  })
  .transform(identifierSpelling)
  .pipe(z.string().min(1, 'must not be empty').max(limits.referenceLengthMax, `must be at most ${limits.referenceLengthMax} characters once trimmed and in capitals (referenceLengthMax)`))
  .describe(`An identifier of the organisation (its USCC, LEI, DUNS, VAT or company number), in NFKC (full-width ５ is 5) and capitals, which holds ${identifierAlphabet}. Stored and compared in that one spelling: CHE-123.456.789 is CHE123456789, and one that another organisation holds under the same kind, in any spelling, is refused (409, rule organisation-identifier). A letter of another script, another dash, an invisible or other character is refused, naming it.`);

export const organisationRegister = z.strictObject({
  name: name(),
  nameRomanised: name().optional(),
  country,
  roles: z.array(z.enum(['authority', 'exporter', 'recipient', 'auditor'])).min(1).max(4).superRefine(givenOnce((role) => role, sameItemTwice((role) => `role ${role}`))).describe(eachOnce),
  // An identifier is a code (a USCC, an LEI, a DUNS number): held in one spelling, in
  // capitals without the spaces, hyphens, dots or slashes of its groups, so that one
  // organisation's code typed in lower case, full width or in groups is still the code
  // another organisation holds (ledger/handlers/organisations.ts).
  // `__proto__` is no kind (zod drops it from a record without a word: commandInputDropped).
  identifiers: z.record(z.string().regex(/^[a-z_]{1,32}$/), identifier).default({}),
  address: text().optional(),
  demo: z.boolean().default(false),
});

export const organisationSetKyc = z.strictObject({ organisationId: id, verified: z.boolean() });

/**
 * A datasheet figure: at most datasheetSignificantDigitsMax significant digits, so that a
 * float artefact (199.99999999999997 for 200) is refused, naming its field, rather than
 * deciding a threshold (policy/classification.ts says why).
 */
const datasheetFigure = (schema: z.ZodNumber) =>
  schema.superRefine((value, context) => {
    const problem = significantDigitsProblem(value);
    if (problem !== undefined) context.addIssue({ code: 'custom', message: problem, input: value });
  });

const denseTops = datasheetFigure(z.number().positive().max(1e7));
const bitLength = z.number().int().positive().max(bitLengthMax);

/**
 * A datasheet gives a dense rate per precision (FP8, FP16, INT8…), and TPP is the highest
 * over them (policy/classification.ts): registering all of them lets the ledger pick it,
 * instead of trusting the registrant to send the one that decides. The single-rate form
 * (denseTops with its bitLength) stays for datasheets that give the decisive rate alone.
 */
const denseRate = z.strictObject({ precision: text(32).optional(), denseTops, bitLength }).superRefine((rate, context) => {
  const problem = precisionProblem(rate); // FP16 given 8 bits, or a sparse rate
  if (problem !== undefined) context.addIssue({ code: 'custom', message: problem.message, path: [problem.field] });
});

export const productRegister = z.strictObject({
  model: identityName(),
  // A name, not an identity: no rule holds a vendor once, and the catalogue compares it
  // exactly (policy/catalogue.ts catalogueMismatch), so Persian and Devanagari spellings that
  // need a zero-width non-joiner or joiner (U+200C, U+200D) are taken.
  vendor: name(),
  parameters: z.strictObject({
    denseRates: z.array(denseRate).min(1).max(limits.denseRatesMax).optional(),
    denseTops: denseTops.optional(),
    bitLength: bitLength.optional(),
    logicDieAreaMm2: datasheetFigure(z.number().min(logicDieAreaMm2Min, `must be at least ${logicDieAreaMm2Min} mm² (logicDieAreaMm2Min)`).max(1e5)),
    dramBandwidthGbS: datasheetFigure(z.number().min(dramBandwidthGbSMin, `must be at least ${dramBandwidthGbSMin} GB/s (dramBandwidthGbSMin)`).max(1e6)),
    memoryGb: datasheetFigure(z.number().nonnegative().max(1e5)).optional(),
    designedForDatacenter: z.boolean(),
  })
    .refine((p) => p.denseRates === undefined || (p.denseTops === undefined && p.bitLength === undefined), { message: 'give either denseRates or denseTops with bitLength, not both', path: ['denseRates'] })
    .refine((p) => p.denseRates !== undefined || (p.denseTops !== undefined && p.bitLength !== undefined), { message: 'give denseRates, or denseTops with its bitLength', path: ['denseTops'] })
    // The two refinements above, for the OpenAPI document: denseRates alone, or denseTops with bitLength.
    .meta({ oneOf: [{ required: ['denseRates'], not: { anyOf: [{ required: ['denseTops'] }, { required: ['bitLength'] }] } }, { required: ['denseTops', 'bitLength'], not: { required: ['denseRates'] } }] }),
  demo: z.boolean().default(false),
});

export const tokenCreate = z.strictObject({ organisationId: id, role, label: name() });

const tokenIdInSecret = new RegExp(`^${tokenSecretPrefix}(TOK-[0-9]{1,16})_`);
/**
 * A token's id as token.create makes it: TOK-<seq> (handler.ts newId). A token's secret,
 * clt_<tokenId>_<random> (server/auth.ts), given where the id goes is refused here, before
 * the ledger, and the refusal does not quote it: a refusal goes back in the answer and into
 * logs, and one the handler made would be remembered under the idempotency key, in plain
 * text (the database keeps only SHA-256 of secrets). A refusal by the schema is never
 * remembered (ledger/sequencer.ts submit). The message names the token's id instead, which
 * the secret carries, so that the caller can revoke the token it has just exposed.
 */
const tokenId = z
  .string()
  .superRefine((value, context) => {
    if (!value.startsWith(tokenSecretPrefix)) return;
    const carried = tokenIdInSecret.exec(value)?.[1];
    const message = carried === undefined
      ? "that looks like a token's secret (clt_…), not its id such as TOK-12; treat the secret as leaked, and revoke its token by id"
      : `that is a token's secret, not its id; its id is ${carried} (revoke that, and treat the secret as leaked)`;
    // continue: false, so that the id pattern below does not add a second issue.
    context.addIssue({ code: 'custom', message, continue: false });
  })
  .regex(/^TOK-[0-9]{1,16}$/, 'must be a token id such as TOK-12 (not its secret)');
export const tokenRevoke = z.strictObject({ tokenId });

const condition = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]{1,64}$/, 'must be a short slug such as no-military-end-use'),
  text: name(),
  kind: z.enum(['obligation', 'max_units_per_shipment', 'end_user_kyc_required']).default('obligation'),
  value: units.optional(),
}).refine((c) => (c.kind === 'max_units_per_shipment') === (c.value !== undefined), {
  message: 'value is required for max_units_per_shipment and only for it',
});
/**
 * A licence's conditions, each under an id of its own: an id given twice would leave a
 * reference to the condition (in a decision, a report, an amendment's reason) naming two
 * obligations, so it is refused, naming the id.
 */
const conditions = z.array(condition).max(limits.listItemsMax, listMax(limits.listItemsMax, 'listItemsMax', 'a licence has', 'conditions')).superRefine(givenOnce(
  (item) => item.id,
  (item, _earlier, index) => ({ message: `condition id ${JSON.stringify(item.id)} is given twice; each condition needs an id of its own`, path: [index, 'id'] }),
));
const party = z.strictObject({ organisationId: id, role: z.enum(['consignee', 'end_user', 'supplier']) });

/**
 * A licence's stated value: a term the authority records and amends with the licence, which
 * nothing consumes. Shipments carry no declared value (a later feature), so the ledger
 * enforces units, not value; the value is kept, versioned and logged as the licence states it.
 * A currency is a current ISO 4217 code (core/currencies.ts): any three capitals let ZZZ in,
 * and a value in a currency that does not exist states no value at all.
 */
const licenceValueNote = 'The value the licence states, recorded and amended with it (each version keeps its own), not consumed by shipments: the ledger enforces units, not value.';
const valueMinor = z.number().int().nonnegative().max(limits.valueMinorMax)
  .describe(`${licenceValueNote} In the currency's minor unit (cents for USD; yen for JPY, which has none smaller). Given with currency, or neither.`);
const currency = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 alphabetic currency code such as USD or CNY')
  .refine(isCurrencyCode, { message: 'must be the ISO 4217 code of a current currency, such as USD or CNY (not a fund, metal or test code such as XXX, nor a withdrawn one such as HRK)' })
  .describe(`${licenceValueNote} Its ISO 4217 currency code, such as USD or CNY. Given with valueMinor, or neither.`);
const valueTogether = { message: 'valueMinor and currency go together', path: ['currency'] };

export const licenceCreate = z
  .strictObject({
    reference: identityName().pipe(z.string().max(limits.referenceLengthMax))
      .describe("The issuing authority's reference for the licence (its document number), kept as given but for the white space around it: one line, without invisible characters. One licence of an authority per reference, compared in NFKC (full-width ２０２６ is 2026), every dash as '-', without white space and without regard to the case of ASCII letters: a second is refused (409, rule licence-reference)."),
    direction: z.enum(['export', 'import']),
    holderId: id,
    productIds: z.array(id).min(1).max(limits.listItemsMax, listMax(limits.listItemsMax, 'listItemsMax', 'a licence names', 'products')).superRefine(productIdsOnce).describe(eachOnce),
    origin: country,
    destination: country,
    authorisedUnits: units,
    valueMinor: valueMinor.optional(),
    currency: currency.optional(),
    validFrom: instant,
    validTo: instant,
    conditions: conditions.default([]),
    riders: z.array(name()).max(limits.listItemsMax, listMax(limits.listItemsMax, 'listItemsMax', 'a licence has', 'riders')).default([]),
    parties: z.array(party).max(limits.listItemsMax, listMax(limits.listItemsMax, 'listItemsMax', 'a licence names', 'parties')).superRefine(partiesOnce).describe(eachOnce).default([]),
    demo: z.boolean().default(false),
  })
  .refine((l) => l.validTo > l.validFrom, { message: 'validTo must be after validFrom', path: ['validTo'] })
  .refine((l) => (l.valueMinor === undefined) === (l.currency === undefined), valueTogether)
  .meta({ dependentRequired: { valueMinor: ['currency'], currency: ['valueMinor'] } });

export const licenceTransition = z.strictObject({ licenceId: id, reason: text().optional() });

/**
 * What an amendment may change; a term left out stays as it is. The value is stated afresh
 * whole, valueMinor with its currency, as on creation: a new amount read in the old
 * currency (or the old amount in a new one) would be a value nobody stated. The reference,
 * route, direction, holder and authority have no field: they are the licence's identity.
 * The start (validFrom) changes on a draft only.
 */
export const licenceAmend = z
  .strictObject({
    licenceId: id,
    reason: name(),
    authorisedUnits: units.optional(),
    valueMinor: valueMinor.optional(),
    currency: currency.optional(),
    // A draft's start only (ledger/handlers/licences.ts, checkStartAmendable): once issued, a
    // licence's start is what it was used under.
    validFrom: instant.optional().describe(`A new start of the licence's validity, while it is a draft only (a licence issued since is refused, 409, rule licence-status); still before validTo. ${instantNote}`),
    validTo: instant.optional(),
    productIds: z.array(id).min(1).max(limits.listItemsMax, listMax(limits.listItemsMax, 'listItemsMax', 'a licence names', 'products')).superRefine(productIdsOnce).describe(eachOnce).optional(),
    conditions: conditions.optional(),
    riders: z.array(name()).max(limits.listItemsMax, listMax(limits.listItemsMax, 'listItemsMax', 'a licence has', 'riders')).optional(),
    parties: z.array(party).max(limits.listItemsMax, listMax(limits.listItemsMax, 'listItemsMax', 'a licence names', 'parties')).superRefine(partiesOnce).describe(eachOnce).optional(),
  })
  .refine((l) => (l.valueMinor === undefined) === (l.currency === undefined), valueTogether)
  .meta({ dependentRequired: { valueMinor: ['currency'], currency: ['valueMinor'] } });

export const allocationCreate = z
  .strictObject({
    licenceId: id,
    recipientId: id,
    units,
    periodStart: day.optional(),
    periodEnd: day.optional(),
    demo: z.boolean().default(false),
  })
  .refine((a) => (a.periodStart === undefined) === (a.periodEnd === undefined), { message: 'periodStart and periodEnd go together', path: ['periodEnd'] })
  .refine((a) => a.periodEnd === undefined || a.periodEnd >= a.periodStart!, { message: 'periodEnd must not be before periodStart', path: ['periodEnd'] })
  .meta({ dependentRequired: { periodStart: ['periodEnd'], periodEnd: ['periodStart'] } });

/**
 * A resize may take an allocation to 0: a tranche whose period has ended, or one nobody will
 * book, gives every unit back to the licence (there is no command to close an allocation),
 * so that a later tranche can have them. It never goes below what is reserved or shipped
 * (invariant 2, allocations.ts). Creating one still takes at least 1.
 */
const allocationUnits = z.number().int('must be a whole number').min(0, 'must be at least 0').max(limits.unitsMax)
  .describe('The allocation\'s new units; 0 gives them all back to the licence. At least what it has reserved and shipped.');
export const allocationResize = z.strictObject({ allocationId: id, units: allocationUnits });

/**
 * A GPU UUID as nvidia-smi prints it: `GPU-` and 32 hex digits in groups of 8-4-4-4-12, the
 * digits in either case. Nothing looser: with hyphens anywhere, the same 128-bit UUID
 * hyphenated two ways would be two GPUs to the unique index, and `GPU---------` one at all.
 * The CLI's CSV reader checks lines with this pattern (cli/serials-csv.ts), so the two never
 * disagree.
 */
export const gpuUuidPattern = /^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/**
 * Stored in one spelling: the hex digits in lower case. GPU-ABCDEF12-… and GPU-abcdef12-…
 * name the same GPU; stored as given, the manifest's duplicate check and the database's
 * unique index (units_gpu_uuid_key) would take them for two (the CLI's CSV reader already
 * counts them as one). The database refuses any other form or spelling (migrations 025 and
 * 037, units_gpu_uuid_canonical).
 */
const gpuUuidPrefix = 'GPU-';
export function canonicalGpuUuid(value: string): string {
  return gpuUuidPrefix + value.slice(gpuUuidPrefix.length).toLowerCase();
}
const gpuUuid = z.string().regex(gpuUuidPattern).transform(canonicalGpuUuid);
const manifestEntry = z.union([newSerial, z.strictObject({ serial: newSerial, gpuUuid: gpuUuid.optional() })]);
export const manifest = z.array(manifestEntry).min(1).max(limits.shipmentSerialsMax, listMax(limits.shipmentSerialsMax, 'shipmentSerialsMax', 'a manifest lists', 'serials'));

/**
 * A shipment carries at most as many units as its manifest can list (shipmentSerialsMax):
 * it ships only with a serial for every unit (manifest-complete), and attaching more than it
 * has room for is refused, so this is what bounds a manifest across several attaches.
 */
const shipmentUnitsMax = limits.shipmentSerialsMax;
const shipmentUnits = units.max(shipmentUnitsMax, {
  error: (issue) => `a shipment carries at most ${shipmentUnitsMax.toLocaleString('en-US')} units, the most serials its manifest lists (shipmentSerialsMax); ${typeof issue.input === 'number' ? issue.input.toLocaleString('en-US') : String(issue.input)} given`,
});

export const shipmentBook = z.strictObject({
  exportAllocationId: id,
  importAllocationId: id,
  productId: id,
  units: shipmentUnits,
  // The bounds shipmentBook (ledger/handlers/shipments.ts) refuses, and what the deadline ends.
  deadline: instant.describe(`The instant the booking lapses unless it has shipped: after now, within ${limits.bookingDeadlineMaxMs / 86_400_000} days, and not after the earlier validTo of its two licences (a booking cannot outlast its licences); any other is refused (400, rule booking-deadline). From then on the booking can no longer be shipped, added to or cancelled, and the sweep expires it, releasing its units; the same holds before it once either licence has ended (revoked, surrendered, or its validity ended). ${instantNote}`),
  reference: text(limits.referenceLengthMax).optional(),
  serials: manifest.optional(),
  demo: z.boolean().default(false),
});

export const shipmentTransition = z.strictObject({ shipmentId: id, reason: text().optional() });
/** A shipment turned back before import clearance: the reason (refused entry, and by whom) is the record's. */
export const shipmentReturn = z.strictObject({ shipmentId: id, reason: name() });
export const manifestAttach = z.strictObject({ shipmentId: id, serials: manifest });

export const siteRegister = z.strictObject({
  name: name(),
  province: name(),
  city: name(),
  country: country.optional().describe("The site's country, an ISO 3166-1 alpha-2 code; absent: the registering organisation's. Units are deployed only at a site in the country their shipment was imported into (rule deployment-destination): a move abroad is a re-export, which needs a licence of its own."),
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  capacityUnits: units,
  demo: z.boolean().default(false),
});

const serialList = z.array(serial).min(1).max(limits.deploymentSerialsMax, listMax(limits.deploymentSerialsMax, 'deploymentSerialsMax', 'a command lists', 'serials'));
export const unitsDeploy = z.strictObject({ siteId: id, serials: serialList });
export const unitsEnd = z.strictObject({ serials: serialList, reason: name() });
export const ledgerSweep = z.strictObject({});

export const commandSchemas = {
  'organisation.register': organisationRegister,
  'organisation.set_kyc': organisationSetKyc,
  'product.register': productRegister,
  'token.create': tokenCreate,
  'token.revoke': tokenRevoke,
  'licence.create': licenceCreate,
  'licence.issue': licenceTransition,
  'licence.suspend': licenceTransition,
  'licence.reinstate': licenceTransition,
  'licence.revoke': licenceTransition,
  'licence.surrender': licenceTransition,
  'licence.amend': licenceAmend,
  'allocation.create': allocationCreate,
  'allocation.resize': allocationResize,
  'shipment.book': shipmentBook,
  'shipment.ship': shipmentTransition,
  'shipment.clear': shipmentTransition,
  'shipment.deliver': shipmentTransition,
  'shipment.cancel': shipmentTransition,
  'shipment.return': shipmentReturn,
  'manifest.attach': manifestAttach,
  'site.register': siteRegister,
  'units.deploy': unitsDeploy,
  'units.decommission': unitsEnd,
  'units.report_lost': unitsEnd,
  'units.return': unitsEnd,
  'ledger.sweep': ledgerSweep,
} as const;

export type CommandKind = keyof typeof commandSchemas;
export type CommandInput<K extends CommandKind> = z.output<(typeof commandSchemas)[K]>;
export type CommandRequest<K extends CommandKind> = z.input<(typeof commandSchemas)[K]>;

/**
 * What of a command's input its schema would drop without a word: a key `__proto__` in a
 * record (zod skips it, since assigned it would set the object's prototype). The commands'
 * one record is organisation.register's identifiers, where that would register the
 * organisation without an identifier it was given: the sequencer refuses such input before
 * parsing it, naming the key. HTTP bodies never hold the key (server/body.ts refuses it).
 */
export function commandInputDropped(kind: CommandKind, input: unknown): Array<{ path: PropertyKey[]; message: string }> {
  if (kind !== 'organisation.register' || input === null || typeof input !== 'object') return [];
  const identifiers = (input as { identifiers?: unknown }).identifiers;
  if (identifiers === null || typeof identifiers !== 'object' || !Object.hasOwn(identifiers, '__proto__')) return [];
  return [{ path: ['identifiers', '__proto__'], message: 'a kind must not be __proto__, the name of an object\'s prototype' }];
}
