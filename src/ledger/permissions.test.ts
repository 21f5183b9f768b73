/**
 * The role refusal: the rule the table (commandRoles) gives, the roles it allows, and the
 * words that say which token runs the command.
 */
import { describe, expect, it } from 'vitest';
import { commandRoles, roleRefusal, type Actor } from './permissions.ts';
import type { CommandKind } from './schemas.ts';
import type { Role } from './rows.ts';

const actor = (role: Role): Actor => ({ id: 'TOK-1', orgId: 'ORG-1', role });

describe('roleRefusal', () => {
  it('names the rule, the role, the command and the roles that may run it, in details and in words', () => {
    const refusal = roleRefusal(actor('exporter'), 'shipment.deliver');
    expect(refusal?.toJSON()).toEqual({
      code: 'forbidden', rule: 'role',
      message: 'an exporter token may not run shipment.deliver; it is run by a recipient token',
      details: { role: 'exporter', command: 'shipment.deliver', allowedRoles: ['recipient'] },
    });
  });

  it('lists several roles with "or", each article by its word', () => {
    expect(roleRefusal(actor('auditor'), 'shipment.clear')?.message).toBe('an auditor token may not run shipment.clear; it is run by an authority_admin, authority_officer or recipient token');
    expect(roleRefusal(actor('recipient'), 'licence.create')?.message).toBe('a recipient token may not run licence.create; it is run by an authority_admin or authority_officer token');
    expect(roleRefusal(actor('recipient'), 'shipment.book')?.message).toBe('a recipient token may not run shipment.book; it is run by an exporter token');
  });

  it('refuses exactly the roles the table leaves out, every one with rule role', () => {
    const roles: Role[] = ['authority_admin', 'authority_officer', 'exporter', 'recipient', 'auditor'];
    for (const kind of Object.keys(commandRoles) as CommandKind[]) {
      for (const role of roles) {
        const refusal = roleRefusal(actor(role), kind);
        expect(refusal === undefined, `${role} ${kind}`).toBe(commandRoles[kind].includes(role));
        if (refusal) expect(refusal.rule).toBe('role');
      }
    }
  });
});
