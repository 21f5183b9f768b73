/**
 * Who may run which command: one declarative table (STYLE.md habit 6), tested as a full
 * matrix. Ownership (is this the licence's authority, the shipment's exporter?) is
 * checked by each handler against the rows; this table is the first gate.
 */
import { DomainError } from '../core/errors.ts';
import type { CommandKind } from './schemas.ts';
import type { Role } from './rows.ts';

const authority: Role[] = ['authority_admin', 'authority_officer'];

export const commandRoles: Record<CommandKind, readonly Role[]> = {
  'organisation.register': ['authority_admin'],
  'organisation.set_kyc': authority,
  'product.register': authority,
  'token.create': ['authority_admin'],
  'token.revoke': ['authority_admin'],
  'licence.create': authority,
  'licence.issue': authority,
  'licence.suspend': authority,
  'licence.reinstate': authority,
  'licence.revoke': authority,
  'licence.surrender': ['exporter', 'recipient'],
  'licence.amend': authority,
  'allocation.create': authority,
  'allocation.resize': authority,
  'shipment.book': ['exporter'],
  'shipment.ship': ['exporter'],
  'shipment.clear': [...authority, 'recipient'],
  'shipment.deliver': ['recipient'],
  'shipment.cancel': ['exporter'],
  'shipment.return': [...authority, 'exporter'],
  'manifest.attach': ['exporter'],
  'site.register': ['recipient'],
  'units.deploy': ['recipient'],
  'units.decommission': ['recipient'],
  'units.report_lost': ['recipient'],
  'units.return': ['recipient'],
  'ledger.sweep': ['authority_admin'],
};

/** The actor behind a command: a token, or the ledger itself for timed sweeps. */
export interface Actor {
  /** Token id, or 'system'. */
  id: string;
  orgId: string;
  role: Role;
}

export const systemActor: Actor = { id: 'system', orgId: 'system', role: 'authority_admin' };

/**
 * The refusal of a token that is not valid: at the API's door (server/auth.ts: malformed,
 * unknown, revoked or a wrong secret) and when the ledger applies a command (revoked since,
 * or no such token), in the same words, so a client sees one behaviour whichever check caught it.
 */
export function tokenNotValid(): DomainError {
  return new DomainError('unauthenticated', 'the bearer token is not valid: it is malformed, unknown or revoked');
}

export function mayRun(role: Role, kind: CommandKind): boolean {
  return commandRoles[kind].includes(role);
}

/**
 * The refusal of a command its caller's role may not run, or undefined when it may: one
 * wording for the sequencer (every caller of the ledger) and the API (before a body is read).
 */
export function roleRefusal(actor: Actor, kind: CommandKind): DomainError | undefined {
  if (mayRun(actor.role, kind)) return undefined;
  const allowedRoles = commandRoles[kind];
  const others = allowedRoles.slice(0, -1);
  const by = others.length === 0 ? allowedRoles[0]! : `${others.join(', ')} or ${allowedRoles.at(-1)!}`;
  return new DomainError('forbidden', `${article(actor.role)} ${actor.role} token may not run ${kind}; it is run by ${article(by)} ${by} token`, {
    rule: roleRule, details: { role: actor.role, command: kind, allowedRoles },
  });
}

/** The rule of a command refused for its caller's role: the table above, whose roles the refusal lists. */
export const roleRule = 'role';

function article(word: string): 'a' | 'an' {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}
