/**
 * The licence schemas' own checks, apart from the handlers': what a licence's conditions may
 * hold, on creation and on amendment alike.
 */
import { describe, expect, it } from 'vitest';
import { licenceAmend, licenceCreate, organisationRegister } from './schemas.ts';

const created = {
  reference: 'L-TEST', direction: 'export', holderId: 'ORG-2', productIds: ['PRD-1'], origin: 'US', destination: 'CN',
  authorisedUnits: 10, validFrom: '2026-01-01T00:00:00.000Z', validTo: '2027-01-01T00:00:00.000Z',
};
const condition = (id: string) => ({ id, text: `condition ${id}` });

describe('licence conditions', () => {
  it('refuses a condition id given twice, naming it and where, on creation and on amendment', () => {
    const twice = [condition('no-military-end-use'), condition('report-quarterly'), condition('no-military-end-use')];
    for (const result of [licenceCreate.safeParse({ ...created, conditions: twice }), licenceAmend.safeParse({ licenceId: 'L-1', reason: 'calibration', conditions: twice })]) {
      expect(result.success).toBe(false);
      const issue = result.error!.issues[0]!;
      expect(issue.path).toEqual(['conditions', 2, 'id']);
      expect(issue.message).toBe('condition id "no-military-end-use" is given twice; each condition needs an id of its own');
    }
  });

  it('takes conditions whose ids differ, and none', () => {
    expect(licenceCreate.safeParse({ ...created, conditions: [condition('a'), condition('b')] }).success).toBe(true);
    expect(licenceCreate.safeParse(created).success).toBe(true);
    expect(licenceAmend.safeParse({ licenceId: 'L-1', reason: 'calibration', conditions: [] }).success).toBe(true);
  });
});

describe('lists that are sets', () => {
  // The handlers keep each once; the event recorded the list as sent (the input review of session 24).
  it('refuses a product, a party or a role given twice, naming it and both places, on creation, amendment and registration', () => {
    const party = { organisationId: 'ORG-4', role: 'end_user' };
    const cases: Array<[string, { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }, PropertyKey[], string]> = [
      ['products on creation', licenceCreate.safeParse({ ...created, productIds: ['PRD-1', 'PRD-2', 'PRD-1'] }), ['productIds', 2], 'product PRD-1 is given twice (items 0 and 2); give it once'],
      ['products on amendment', licenceAmend.safeParse({ licenceId: 'L-1', reason: 'calibration', productIds: ['PRD-3', 'PRD-3'] }), ['productIds', 1], 'product PRD-3 is given twice (items 0 and 1); give it once'],
      ['parties on creation', licenceCreate.safeParse({ ...created, parties: [party, { ...party, role: 'consignee' }, party] }), ['parties', 2], 'party ORG-4 as end_user is given twice (items 0 and 2); give it once'],
      ['parties on amendment', licenceAmend.safeParse({ licenceId: 'L-1', reason: 'calibration', parties: [party, party] }), ['parties', 1], 'party ORG-4 as end_user is given twice (items 0 and 1); give it once'],
      ['roles', organisationRegister.safeParse({ name: 'Twice Ltd', country: 'GB', roles: ['exporter', 'recipient', 'exporter'] }), ['roles', 2], 'role exporter is given twice (items 0 and 2); give it once'],
    ];
    for (const [what, result, path, message] of cases) {
      expect(result.success, what).toBe(false);
      expect(result.error!.issues.map((issue) => ({ path: issue.path, message: issue.message })), what).toEqual([{ path, message }]);
    }
  });

  it('takes them with every item once: one organisation in two roles is two parties', () => {
    expect(licenceCreate.safeParse({ ...created, productIds: ['PRD-1', 'PRD-2'], parties: [{ organisationId: 'ORG-4', role: 'end_user' }, { organisationId: 'ORG-4', role: 'consignee' }] }).success).toBe(true);
    expect(organisationRegister.safeParse({ name: 'Once Ltd', country: 'GB', roles: ['exporter', 'recipient'] }).success).toBe(true);
  });
});

describe('countries', () => {
  it('are ISO 3166-1 codes of countries: a reserved or user-assigned code is refused, as origin, destination and organisation country', () => {
    for (const code of ['XX', 'UK', 'EU']) {
      const result = licenceCreate.safeParse({ ...created, origin: code });
      expect(result.success, code).toBe(false);
      expect(result.error!.issues[0]).toMatchObject({ path: ['origin'], message: expect.stringContaining('must be the ISO 3166-1 alpha-2 code of a country') });
      expect(organisationRegister.safeParse({ name: 'Somewhere Ltd', country: code, roles: ['recipient'] }).success, code).toBe(false);
    }
    expect(licenceCreate.safeParse({ ...created, destination: 'GB' }).success).toBe(true);
  });
});

describe('a licence’s value', () => {
  it('is in a current ISO 4217 currency: any three capitals are not enough, on creation and on amendment', () => {
    for (const currency of ['ZZZ', 'XXX', 'XTS', 'HRK', 'usd', 'US']) {
      for (const result of [licenceCreate.safeParse({ ...created, valueMinor: 100, currency }), licenceAmend.safeParse({ licenceId: 'L-1', reason: 'value', valueMinor: 100, currency })]) {
        expect(result.success, currency).toBe(false);
        expect(result.error!.issues[0], currency).toMatchObject({ path: ['currency'], message: expect.stringContaining('ISO 4217') });
      }
    }
    expect(licenceCreate.safeParse({ ...created, valueMinor: 100, currency: 'CNY' }).success).toBe(true);
    expect(licenceAmend.safeParse({ licenceId: 'L-1', reason: 'value', valueMinor: 100, currency: 'EUR' }).success).toBe(true);
  });

  it('is amended whole: valueMinor with its currency, or neither', () => {
    for (const value of [{ valueMinor: 100 }, { currency: 'USD' }]) {
      const result = licenceAmend.safeParse({ licenceId: 'L-1', reason: 'value', ...value });
      expect(result.success, JSON.stringify(value)).toBe(false);
      expect(result.error!.issues[0]).toMatchObject({ path: ['currency'], message: 'valueMinor and currency go together' });
    }
    expect(licenceAmend.safeParse({ licenceId: 'L-1', reason: 'units', authorisedUnits: 5 }).success).toBe(true);
  });
});
