/** Organisations, products and tokens: the ledger's reference rows. */
import { createHash, randomBytes } from 'node:crypto';
import { cut } from '../../core/text.ts';
import { validateLei } from '../../core/lei.ts';
import { mixedScriptProblem } from '../../core/text.ts';
import { validateUscc } from '../../core/uscc.ts';
import { catalogueMismatch, decisionOf, listedAccelerator, modelReading } from '../../policy/catalogue.ts';
import { classifyAccelerator, type Classification } from '../../policy/classification.ts';
import { organisationIdentifierKey } from '../../store/batch-keys.ts';
import { newId, refuse, type CommandContext, type Handler } from '../handler.ts';
import { systemActor } from '../permissions.ts';
import { identifierSpelling, tokenSecretPrefix, type CommandInput } from '../schemas.ts';
import type { OrganisationRow, Role } from '../rows.ts';

export const organisationRegister: Handler<'organisation.register'> = {
  kind: 'organisation.register',
  keys(input, keys) {
    for (const [kind, value] of Object.entries(input.identifiers)) keys.organisationIdentifiers.add(organisationIdentifierKey(kind, value));
  },
  run(context, input) {
    const uscc = input.identifiers.uscc;
    if (input.country === 'CN' && uscc === undefined) {
      // The CLI's callers give it as --uscc: the message names both spellings.
      throw refuse.invalid('uscc-required', 'an organisation in CN needs its Unified Social Credit Code in identifiers.uscc (the CLI\'s --uscc)');
    }
    if (uscc !== undefined) {
      const check = validateUscc(uscc);
      if (!check.ok) throw refuse.invalid('uscc-check', `identifiers.uscc ${uscc} is not a valid Unified Social Credit Code: ${check.reason}`);
    }
    const lei = input.identifiers.lei;
    if (lei !== undefined) {
      const check = validateLei(lei);
      if (!check.ok) throw refuse.invalid(leiCheckRule, `identifiers.lei ${lei} is not a valid Legal Entity Identifier (ISO 17442): ${check.reason}`);
    }
    checkUsccKind(input.identifiers);
    checkIdentifiersFree(context, input.identifiers);
    const id = newId('ORG', context);
    context.state.put('organisations', {
      id,
      name: input.name,
      name_romanised: input.nameRomanised ?? null,
      country: input.country,
      roles: [...new Set(input.roles)],
      identifiers: input.identifiers,
      address: input.address ?? null,
      kyc_verified_by: [],
      demo: input.demo,
      created_seq: context.seq,
    });
    return { subjectId: id, orgIds: [id], effects: { organisationId: id }, answer: { organisationId: id } };
  },
};

/** The rule of an LEI whose check digits fail (ISO 17442, core/lei.ts). */
export const leiCheckRule = 'lei-check';
/** The rule of a Unified Social Credit Code given under a kind other than uscc. */
export const usccKindRule = 'uscc-kind';

/**
 * A Unified Social Credit Code is given as identifiers.uscc, and under no other kind: kinds are
 * free (lower-case letters and '_'), and ORG-3's code under social_credit_code was another
 * identifier, compared with nobody's uscc (s21 identity review, finding 3). Refused rather
 * than compared across kinds, so that the database's rule (migration 050) stays kind=value:
 * a value that passes the code's check character is taken for one (a chance of 1 in 31 for an
 * 18-character value of its alphabet that is not one; the message says where it goes).
 */
function checkUsccKind(identifiers: Record<string, string>): void {
  for (const [kind, value] of Object.entries(identifiers)) {
    if (kind === 'uscc' || !validateUscc(value).ok) continue;
    throw refuse.invalid(usccKindRule, `identifiers.${kind} ${value} is a Unified Social Credit Code: give it as identifiers.uscc (the CLI's --uscc), under which it is compared with the codes other organisations hold`, { kind, value });
  }
}

/**
 * Each identifier (kind=value: a USCC, an LEI, …) belongs to one organisation: KYC, licence
 * parties and allocations are kept by organisation id, so a legal entity registered twice
 * would have a KYC status and allocations per registration. Compared as the database's
 * trigger compares them (migration 050: identifierSpelling, without spaces, dashes, dots,
 * slashes or invisible characters, in NFKC and capitals, which also reads rows stored before
 * the schema spelt identifiers so), among the organisations loaded by identifier
 * (keys.organisationIdentifiers, by that same spelling: store/batch-state.ts) and those an
 * earlier command of this batch made. The trigger stays behind this. The holder is named: only an authority or the operator registers
 * organisations (permissions.ts).
 */
function checkIdentifiersFree(context: CommandContext, identifiers: Record<string, string>): void {
  for (const [kind, value] of Object.entries(identifiers)) {
    const spelling = identifierSpelling(value);
    for (const organisation of context.state.all('organisations')) {
      // Own members only: a kind may be named `constructor`, which every object inherits.
      const held = Object.hasOwn(organisation.identifiers, kind) ? organisation.identifiers[kind] : undefined;
      if (held === undefined || identifierSpelling(held) !== spelling) continue;
      const spelt = held === value ? '' : ` (as ${JSON.stringify(held)})`;
      throw refuse.conflict('organisation-identifier', `identifiers.${kind} ${JSON.stringify(value)} is already held by organisation ${organisation.id}${spelt}; an identifier belongs to one organisation, whose KYC, licences and allocations are kept under its id`, {
        kind,
        value,
        organisationId: organisation.id,
      });
    }
  }
}

/**
 * KYC is recorded per authority: each authority vouches for its own review, and a licence's
 * end_user_kyc_required condition counts only its own authority's (shipment-checks.ts). So one
 * authority can neither satisfy nor withdraw the review another authority's licence requires.
 */
export const organisationSetKyc: Handler<'organisation.set_kyc'> = {
  kind: 'organisation.set_kyc',
  keys(input, keys) {
    keys.organisations.add(input.organisationId);
  },
  run(context, input) {
    const { state, actor } = context;
    const org = state.get('organisations', input.organisationId);
    if (!org) throw refuse.notFound('organisation', input.organisationId);
    const authority = state.get('organisations', actor.orgId);
    if (!authority?.roles.includes('authority')) {
      throw refuse.forbidden(`KYC is recorded by an authority for its own licences; ${actor.orgId} is not an authority organisation`, 'kyc-authority');
    }
    const others = org.kyc_verified_by.filter((id) => id !== authority.id);
    const verifiedBy = input.verified ? [...others, authority.id].sort() : others;
    state.update('organisations', org, { kyc_verified_by: verifiedBy });
    return {
      subjectId: org.id,
      orgIds: [org.id],
      effects: { authorityId: authority.id },
      answer: { organisationId: org.id, authorityId: authority.id, kycVerified: input.verified, kycVerifiedBy: verifiedBy },
    };
  },
};

/**
 * The product catalogue is shared by every authority, and a model is registered once
 * (migration 026): the first registration holds the model for all, with its figures. So the
 * row records the authority that registered it (registered_by, migration 036; the event's
 * actor records it too), a second registration of the model is refused naming the product
 * that holds it and its registrant, and a model the accelerator catalogue lists
 * (policy/accelerators.csv) is registered with the catalogue's datasheet figures only.
 */
export const productRegister: Handler<'product.register'> = {
  kind: 'product.register',
  keys(input, keys) {
    keys.productModels.add(input.model);
  },
  run(context, input) {
    const registrant = productRegistrant(context);
    const { denseRates, denseTops, bitLength, ...common } = input.parameters;
    // The schema gives one form or the other (ledger/schemas.ts).
    const rates = denseRates ?? [{ denseTops: denseTops!, bitLength: bitLength! }];
    const classification = classifyAccelerator({ model: input.model, ...common, denseRates: rates });
    checkModelScript(input.model);
    // A spelling of a listed model is told the listed model's (product-catalogue), as before
    // models were compared by their reading, whether or not that model is registered yet.
    checkCatalogueSpelling(input.model);
    checkModelFree(context, input.model);
    checkCatalogueFigures(input, classification);
    const id = newId('PRD', context);
    context.state.put('products', {
      id,
      model: input.model,
      vendor: input.vendor,
      parameters: { ...input.parameters, tpp: classification.tpp, performanceDensity: classification.performanceDensity, classification: { paragraph: classification.paragraph, reasons: classification.reasons, chinaPolicy: classification.chinaPolicy } },
      eccn: classification.eccn,
      registered_by: registrant.id,
      demo: input.demo,
      created_seq: context.seq,
    });
    const effects = { productId: id, eccn: classification.eccn, paragraph: classification.paragraph, tpp: classification.tpp };
    return { subjectId: id, orgIds: [], effects, answer: effects };
  },
};

/**
 * An authority registers products, and answers for their figures: its organisation is the
 * registrant. The operator's system actor, whose organisation is none, may not (as with KYC).
 */
function productRegistrant(context: CommandContext): OrganisationRow {
  const { actor, state } = context;
  const org = state.get('organisations', actor.orgId);
  if (!org?.roles.includes('authority')) {
    throw refuse.forbidden(`a product is registered by an authority, which answers for its figures; ${actor.orgId} is not an authority organisation`, 'product-registrant');
  }
  return org;
}

/** How much of a model a refusal quotes (a model may be 2,000 characters). */
const quotedModelLengthMax = 80;

function quotedModel(model: string): string {
  return JSON.stringify(cut(model, quotedModelLengthMax));
}

/** The rule of a model whose letters mix Latin with Cyrillic or Greek (core/text.ts mixedScriptProblem). */
export const mixedScriptRule = 'mixed-script';

/**
 * A model is written in Latin letters or in others, not both mixed with Cyrillic or Greek:
 * "Н200 SXM" with a Cyrillic Н reads as H200 SXM to everyone, and was registered beside it,
 * outside 3A090 (s21 identity review, finding 1). Refused naming the letter, before the
 * model is compared with the catalogue or the products.
 */
function checkModelScript(model: string): void {
  const problem = mixedScriptProblem(model);
  if (problem === undefined) return;
  throw refuse.invalid(mixedScriptRule, `model ${quotedModel(model)} ${problem}; write the model in one of the two (rule ${mixedScriptRule})`, { model: cut(model, quotedModelLengthMax) });
}

/**
 * One product per model as a reader takes it (policy/catalogue.ts modelReading: "GAUDI 3",
 * "Gaudi-3" and "Gaudi ３" are Gaudi 3), compared as the database's trigger compares them
 * (migration 050, product_model_reading): among the products loaded by model
 * (keys.productModels), and those an earlier command of this batch made. The database's
 * trigger, and products_model_key for the exact text, stay behind this.
 */
function checkModelFree(context: CommandContext, model: string): void {
  const reading = modelReading(model);
  for (const product of context.state.all('products')) {
    if (modelReading(product.model) !== reading) continue;
    const by = product.registered_by === null
      ? `by the actor of event ${product.created_seq} (registered before registrants were recorded)`
      : `by ${product.registered_by}`;
    const as = product.model === model ? '' : ` (as ${quotedModel(product.model)}, which reads the same: case, width, spaces, dashes and invisible characters aside)`;
    throw refuse.conflict('product-model', `model ${quotedModel(model)} is already registered, as product ${product.id} ${by}${as}; a model is registered once, and every licence names that product`, {
      productId: product.id,
      registeredBy: product.registered_by,
    });
  }
}

/**
 * A model the accelerator catalogue lists is registered with its datasheet figures
 * (checkCatalogueFigures), and a model that reads as a listed one (case, width, spaces,
 * dashes or invisible characters aside) as that model (checkCatalogueSpelling): otherwise the
 * first authority to register a known part could give it figures that classify it outside
 * 3A090, for every licence that names it.
 */
function checkCatalogueSpelling(model: string): void {
  const found = listedAccelerator(model);
  if (found === undefined || found.exact) return;
  const { product } = found.listed;
  throw refuse.invalid('product-catalogue', `model ${quotedModel(model)} reads as ${JSON.stringify(product.model)} of the accelerator catalogue (line ${product.line}); register it as ${JSON.stringify(product.model)}, with its datasheet figures`, { model: product.model, line: product.line });
}

function checkCatalogueFigures(input: CommandInput<'product.register'>, classification: Classification): void {
  const found = listedAccelerator(input.model);
  if (found === undefined || !found.exact) return;
  const { product } = found.listed;
  const where = { model: product.model, line: product.line };
  const { parameters } = input;
  const mismatch = catalogueMismatch(found.listed, {
    vendor: input.vendor,
    rate: parameters.denseRates === undefined ? { denseTops: parameters.denseTops!, bitLength: parameters.bitLength! } : undefined,
    rates: parameters.denseRates ?? [{ denseTops: parameters.denseTops!, bitLength: parameters.bitLength! }],
    tpp: classification.tpp,
    decision: decisionOf(classification),
    logicDieAreaMm2: parameters.logicDieAreaMm2,
    dramBandwidthGbS: parameters.dramBandwidthGbS,
    memoryGb: parameters.memoryGb,
    designedForDatacenter: parameters.designedForDatacenter,
  });
  if (mismatch === undefined) return;
  throw refuse.invalid('product-catalogue', `model ${JSON.stringify(product.model)} is in the accelerator catalogue (line ${product.line}) and is registered with its datasheet figures: ${mismatch.statement}`, { ...where, field: mismatch.field });
}

export function hashTokenSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/**
 * Who may hold whose keys: an authority admin makes and revokes authority tokens of its own
 * organisation only, and exporter, recipient and auditor tokens only for organisations in
 * its own jurisdiction (the country of its organisation); otherwise one authority could
 * mint a token for a party another authority regulates, and act as that party. The
 * operator (the system actor: `chipledger token create`) may do either for anyone.
 */
export const tokenJurisdictionRule = 'token-jurisdiction';

function checkTokenJurisdiction(context: CommandContext, role: Role, target: OrganisationRow | string, doing: 'makes' | 'revokes'): void {
  const { actor, state } = context;
  if (actor.id === systemActor.id) return;
  const targetId = typeof target === 'string' ? target : target.id;
  const operator = doing === 'makes' ? 'chipledger token create' : 'chipledger token revoke';
  if (role.startsWith('authority')) {
    if (targetId !== actor.orgId) throw refuse.forbidden(`an authority admin ${doing} authority tokens of its own organisation only; ${targetId}'s are the operator's (${operator})`, tokenJurisdictionRule);
    return;
  }
  const own = state.get('organisations', actor.orgId);
  const org = typeof target === 'string' ? state.get('organisations', target) : target;
  // Fail closed: without both rows the jurisdiction cannot be compared.
  if (!own || !org) throw refuse.forbidden(`an authority admin ${doing} ${role} tokens only for organisations of its own jurisdiction; couldn't compare ${actor.orgId} with ${targetId}`, tokenJurisdictionRule);
  if (org.country !== own.country) {
    throw refuse.forbidden(`an authority admin ${doing} ${role} tokens only for organisations of its own jurisdiction (${own.country}); ${org.id} is in ${org.country}, so its tokens are the operator's (${operator})`, tokenJurisdictionRule);
  }
}

export const tokenCreate: Handler<'token.create'> = {
  kind: 'token.create',
  keys(input, keys) {
    keys.organisations.add(input.organisationId);
  },
  run(context, input) {
    const org = context.state.get('organisations', input.organisationId);
    if (!org) throw refuse.notFound('organisation', input.organisationId);
    const needs = { authority_admin: 'authority', authority_officer: 'authority', exporter: 'exporter', recipient: 'recipient', auditor: 'auditor' } as const;
    if (!org.roles.includes(needs[input.role])) {
      const needed = needs[input.role];
      throw refuse.conflict('token-role', `organisation ${org.id} is not ${/^[aeiou]/.test(needed) ? 'an' : 'a'} ${needed}, so it cannot hold ${/^[aeiou]/.test(input.role) ? 'an' : 'a'} ${input.role} token`, {
        organisationId: org.id, role: input.role, neededRole: needed, roles: org.roles,
      });
    }
    checkTokenJurisdiction(context, input.role, org, 'makes');
    const id = newId('TOK', context);
    const secret = `${tokenSecretPrefix}${id}_${randomBytes(32).toString('base64url')}`;
    context.state.put('tokens', {
      id,
      org_id: org.id,
      role: input.role,
      label: input.label,
      secret_hash: `\\x${hashTokenSecret(secret).toString('hex')}`,
      created_at: context.at,
      revoked_at: null,
    });
    // The secret goes to the caller once and nowhere else: not the event, not the
    // idempotency record (a retry is told the token exists instead).
    return { subjectId: id, orgIds: [org.id], effects: { tokenId: id }, answer: { tokenId: id, secret }, redact: ['secret'] };
  },
};

export const tokenRevoke: Handler<'token.revoke'> = {
  kind: 'token.revoke',
  keys(input, keys) {
    keys.tokens.add(input.tokenId);
  },
  run(context, input) {
    const token = context.state.get('tokens', input.tokenId);
    if (!token) throw refuse.notFound('token', input.tokenId);
    checkTokenJurisdiction(context, token.role, token.org_id, 'revokes');
    if (token.revoked_at !== null) throw refuse.conflict('token-status', `token ${token.id} was already revoked at ${token.revoked_at}`, { tokenId: token.id, revokedAt: token.revoked_at });
    context.state.update('tokens', token, { revoked_at: context.at });
    return { subjectId: token.id, orgIds: [token.org_id], effects: {}, answer: { tokenId: token.id, revokedAt: context.at } };
  },
};
