/** Organisations, products and tokens: the ledger's reference rows. */
import { createHash, randomBytes } from 'node:crypto';
import { validateUscc } from '../../core/uscc.ts';
import { classifyAccelerator } from '../../policy/classification.ts';
import { newId, refuse, type Handler } from '../handler.ts';
import { systemActor } from '../permissions.ts';

export const organisationRegister: Handler<'organisation.register'> = {
  kind: 'organisation.register',
  keys() {},
  run(context, input) {
    const uscc = input.identifiers.uscc;
    if (input.country === 'CN' && uscc === undefined) {
      throw refuse.invalid('uscc-required', 'an organisation in CN needs its Unified Social Credit Code in identifiers.uscc');
    }
    if (uscc !== undefined) {
      const check = validateUscc(uscc);
      if (!check.ok) throw refuse.invalid('uscc-check', `identifiers.uscc ${uscc} is not a valid Unified Social Credit Code: ${check.reason}`);
    }
    const id = newId('ORG', context);
    context.state.put('organisations', {
      id,
      name: input.name,
      name_romanised: input.nameRomanised ?? null,
      country: input.country,
      roles: [...new Set(input.roles)],
      identifiers: input.identifiers,
      address: input.address ?? null,
      kyc_verified: false,
      demo: input.demo,
      created_seq: context.seq,
    });
    return { subjectId: id, orgIds: [id], effects: { organisationId: id }, answer: { organisationId: id } };
  },
};

export const organisationSetKyc: Handler<'organisation.set_kyc'> = {
  kind: 'organisation.set_kyc',
  keys(input, keys) {
    keys.organisations.add(input.organisationId);
  },
  run(context, input) {
    const org = context.state.get('organisations', input.organisationId);
    if (!org) throw refuse.notFound('organisation', input.organisationId);
    context.state.update('organisations', org, { kyc_verified: input.verified });
    return { subjectId: org.id, orgIds: [org.id], effects: {}, answer: { organisationId: org.id, kycVerified: input.verified } };
  },
};

export const productRegister: Handler<'product.register'> = {
  kind: 'product.register',
  keys() {},
  run(context, input) {
    const classification = classifyAccelerator({ model: input.model, ...input.parameters });
    const id = newId('PRD', context);
    context.state.put('products', {
      id,
      model: input.model,
      vendor: input.vendor,
      parameters: { ...input.parameters, tpp: classification.tpp, performanceDensity: classification.performanceDensity, classification: { paragraph: classification.paragraph, reasons: classification.reasons, chinaPolicy: classification.chinaPolicy } },
      eccn: classification.eccn,
      demo: input.demo,
      created_seq: context.seq,
    });
    const effects = { productId: id, eccn: classification.eccn, paragraph: classification.paragraph, tpp: classification.tpp };
    return { subjectId: id, orgIds: [], effects, answer: effects };
  },
};

/** Secrets carry a prefix so that scanners can spot a leaked one. */
export const tokenSecretPrefix = 'clt_';

export function hashTokenSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
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
      throw refuse.conflict('token-role', `organisation ${org.id} is not an ${needs[input.role]}, so it cannot hold a ${input.role} token`);
    }
    if (input.role.startsWith('authority') && org.id !== context.actor.orgId && context.actor.id !== systemActor.id) {
      throw refuse.forbidden(`an authority admin makes authority tokens for its own organisation only; ${org.id}'s are made by the operator (chipledger token create)`);
    }
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
    if (token.role.startsWith('authority') && token.org_id !== context.actor.orgId && context.actor.id !== systemActor.id) {
      throw refuse.forbidden(`an authority admin revokes authority tokens of its own organisation only; ${token.id} belongs to ${token.org_id}`);
    }
    if (token.revoked_at !== null) throw refuse.conflict('token-status', `token ${token.id} was already revoked at ${token.revoked_at}`);
    context.state.update('tokens', token, { revoked_at: context.at });
    return { subjectId: token.id, orgIds: [token.org_id], effects: {}, answer: { tokenId: token.id, revokedAt: context.at } };
  },
};
