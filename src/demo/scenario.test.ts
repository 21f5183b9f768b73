/**
 * The demo's Unified Social Credit Codes are made up, but as well formed as issued ones: each
 * passes GB 32100's check character (position 18, which validateUscc requires) and GB 11714's
 * check character of its organisation code (position 17, which issued codes carry and
 * validateUscc leaves alone). CLI review: 4 of the 5 failed the second.
 */
import { describe, expect, it } from 'vitest';
import { organisationCodeCheckCharacter, validateUscc } from '../core/uscc.ts';
import { organisations } from './scenario.ts';

describe('the demo organisations', () => {
  it('have credit codes that pass both check characters', () => {
    const coded = organisations.filter((organisation) => organisation.uscc !== undefined);
    expect(coded.map((organisation) => organisation.key)).toEqual(['mofcom', 'importer', 'yunchuan', 'xinglan', 'penghai']);
    for (const { key, uscc } of coded) {
      expect(validateUscc(uscc!), `${key} ${uscc}`).toEqual({ ok: true });
      expect(organisationCodeCheckCharacter(uscc!.slice(8, 16)), `${key} ${uscc}: GB 11714 check character of ${uscc!.slice(8, 17)}`).toBe(uscc![16]);
    }
  });

  it('have credit codes of their own', () => {
    const codes = organisations.flatMap((organisation) => (organisation.uscc === undefined ? [] : [organisation.uscc]));
    expect(new Set(codes).size).toBe(codes.length);
  });
});
