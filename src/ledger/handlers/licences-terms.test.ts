/**
 * A licence's terms beyond its units (s17 terms review, findings 1, 3 and 5):
 * - its value: a current ISO 4217 currency, and amendable (both or neither, as on creation),
 *   recorded in the licence, its new version and the amendment's event; nothing consumes it;
 * - its reference: one licence of an authority per reference, compared trimmed and without
 *   regard to the case of ASCII letters (licence-reference), and the database's trigger
 *   behind it (store/constraints-043.test.ts);
 * - its validity: an amendment may not end it before a tranche under it begins
 *   (allocation-period), as allocation.create refuses such a tranche.
 */
import { describe, expect, it } from 'vitest';
import { expectOk } from '../../../test/world.ts';
import { apiWorldPerFile, type ApiWorld } from '../../../test/support/server.ts';
import type { Answer } from '../ledger.ts';
import { referenceSpelling } from './licences.ts';

let api: ApiWorld;

apiWorldPerFile((made) => {
  api = made;
});

let counter = 0;

function refusal(answer: Answer): { code: string; rule: string | undefined; message: string; details?: Record<string, unknown> } {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, ...(answer.error.details ? { details: answer.error.details } : {}) };
}

/** A licence body for BIS: an export licence to alpha's country, as the world's. */
function exportLicence(reference: string, extra: Record<string, unknown> = {}) {
  const { world, orgs } = api;
  return {
    reference, direction: 'export' as const, holderId: orgs.exporter, parties: [{ organisationId: orgs.alpha, role: 'end_user' as const }],
    productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z', ...extra,
  };
}

async function created(reference = `BIS-TERMS-${++counter}`, extra: Record<string, unknown> = {}): Promise<string> {
  return String((await api.world.run('licence.create', exportLicence(reference, extra), api.world.actors.bis)).licenceId);
}

async function licenceRow(licenceId: string): Promise<{ version: number; value_minor: number | null; currency: string | null; valid_to: string }> {
  return (await api.world.ledger.pool.query('SELECT version, value_minor, currency, valid_to FROM licences WHERE id = $1', [licenceId])).rows[0];
}

describe("a licence's value", () => {
  it('is refused in a currency that is not a current ISO 4217 code, with 400 naming ISO 4217, and nothing is made', async () => {
    const before = (await api.world.ledger.pool.query('SELECT count(*)::int AS n FROM licences')).rows[0].n;
    for (const currency of ['ZZZ', 'XXX', 'HRK', 'usd']) {
      const response = await api.request({ method: 'POST', url: '/v1/licences', token: api.tokens.authority_officer, body: exportLicence(`BIS-CUR-${currency}`, { valueMinor: 100, currency }) });
      expect(response.statusCode, currency).toBe(400);
      expect(response.json().detail, currency).toContain('ISO 4217');
    }
    expect((await api.world.ledger.pool.query('SELECT count(*)::int AS n FROM licences')).rows[0].n).toBe(before);
    const made = await api.request({ method: 'POST', url: '/v1/licences', token: api.tokens.authority_officer, body: exportLicence('BIS-CUR-CNY', { valueMinor: 100, currency: 'CNY' }) });
    expect(made.statusCode).toBe(201);
  });

  it('is amended whole, amount with currency: recorded in the licence, its new version and the amendment’s event', async () => {
    const licenceId = await created(undefined, { valueMinor: 12_000_000_000_00, currency: 'USD' });
    const amended = await api.request({
      method: 'POST', url: `/v1/licences/${licenceId}/amend`, token: api.tokens.authority_officer,
      body: { reason: 'Units doubled; value restated', authorisedUnits: 200, valueMinor: 24_000_000_000_00, currency: 'USD' },
    });
    expect(amended.statusCode, amended.body).toBe(200);
    expect(amended.json()).toMatchObject({ licenceId, version: 2, status: 'draft' });
    expect(await licenceRow(licenceId)).toMatchObject({ version: 2, value_minor: 24_000_000_000_00, currency: 'USD' });

    const read = (await api.request({ method: 'GET', url: `/v1/licences/${licenceId}`, token: api.tokens.authority_officer })).json();
    expect({ valueMinor: read.valueMinor, currency: read.currency, authorisedUnits: read.authorisedUnits }).toEqual({ valueMinor: 24_000_000_000_00, currency: 'USD', authorisedUnits: 200 });

    const versions = (await api.request({ method: 'GET', url: `/v1/licences/${licenceId}/versions`, token: api.tokens.authority_officer })).json().items as Array<{ version: number; terms: Record<string, unknown> }>;
    expect(versions.map((each) => ({ version: each.version, valueMinor: each.terms.valueMinor, currency: each.terms.currency }))).toEqual([
      { version: 1, valueMinor: 12_000_000_000_00, currency: 'USD' },
      { version: 2, valueMinor: 24_000_000_000_00, currency: 'USD' },
    ]);

    const history = (await api.request({ method: 'GET', url: `/v1/events?subjectId=${licenceId}`, token: api.tokens.authority_officer })).json().items as Array<{ kind: string; body: { input: Record<string, unknown> } }>;
    const amendment = history.find((event) => event.kind === 'licence.amend')!;
    expect(amendment.body.input).toMatchObject({ licenceId, valueMinor: 24_000_000_000_00, currency: 'USD', authorisedUnits: 200 });

    // A later amendment that states no value keeps it; one in another currency restates both.
    expectOk(await api.world.ledger.submit('licence.amend', { licenceId, reason: 'riders', riders: ['Report quarterly'] }, api.world.actors.bis));
    expect(await licenceRow(licenceId)).toMatchObject({ version: 3, value_minor: 24_000_000_000_00, currency: 'USD' });
    expectOk(await api.world.ledger.submit('licence.amend', { licenceId, reason: 'restated in yuan', valueMinor: 170_000_000_000_00, currency: 'CNY' }, api.world.actors.bis));
    expect(await licenceRow(licenceId)).toMatchObject({ version: 4, value_minor: 170_000_000_000_00, currency: 'CNY' });
  });

  it('gives a licence that stated none a value by amendment', async () => {
    const licenceId = await created();
    expectOk(await api.world.ledger.submit('licence.amend', { licenceId, reason: 'value stated', valueMinor: 5_000, currency: 'EUR' }, api.world.actors.bis));
    expect(await licenceRow(licenceId)).toMatchObject({ version: 2, value_minor: 5_000, currency: 'EUR' });
  });

  it('refuses an amendment of the amount without its currency, or the currency without its amount, and a bad currency, changing nothing', async () => {
    const licenceId = await created(undefined, { valueMinor: 100, currency: 'USD' });
    for (const body of [{ valueMinor: 200 }, { currency: 'EUR' }, { valueMinor: 200, currency: 'ZZZ' }]) {
      const response = await api.request({ method: 'POST', url: `/v1/licences/${licenceId}/amend`, token: api.tokens.authority_officer, body: { reason: 'value', ...body } });
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().detail, JSON.stringify(body)).toMatch(body.currency === 'ZZZ' ? /ISO 4217/ : /valueMinor and currency go together/);
    }
    expect(await licenceRow(licenceId)).toMatchObject({ version: 1, value_minor: 100, currency: 'USD' });
  });
});

describe("a licence's reference (licence-reference)", () => {
  it('spells a reference as the database does: NFKC, no white space, dashes as "-", ASCII letters in lower case, other letters as they are', () => {
    expect(referenceSpelling('  BIS-D-2026-H200-0417\u3000')).toBe('bis-d-2026-h200-0417');
    expect(referenceSpelling('\u00a0Bis-d-2026-h200-0417\t')).toBe('bis-d-2026-h200-0417');
    // NFKC makes Ǆ the two letters DŽ; É and Ž keep their case.
    expect(referenceSpelling('商务部-ÉTÉ-Ǆ-2026')).toBe('商务部-ÉtÉ-dŽ-2026');
    expect(referenceSpelling('BIS\u2013D\u2011２０２６ -H200')).toBe('bis-d-2026-h200');
  });

  it('refuses a reference its authority already gave, in any case and with spaces, naming that licence; changes nothing', async () => {
    const first = await created('BIS-D-2026-H200-0417-T');
    const before = (await api.world.ledger.pool.query('SELECT count(*)::int AS n FROM licences')).rows[0].n;
    expect(refusal(await api.world.ledger.submit('licence.create', exportLicence('BIS-D-2026-H200-0417-T'), api.world.actors.bis))).toEqual({
      code: 'conflict', rule: 'licence-reference',
      message: `couldn't create export licence BIS-D-2026-H200-0417-T: ${api.orgs.bis} gave that reference to licence ${first} already; an authority's reference names one licence`,
      details: { reference: 'BIS-D-2026-H200-0417-T', licenceId: first, heldAs: 'BIS-D-2026-H200-0417-T' },
    });
    expect(refusal(await api.world.ledger.submit('licence.create', exportLicence(' bis-d-2026-h200-0417-t '), api.world.actors.bis))).toMatchObject({
      rule: 'licence-reference',
      message: `couldn't create export licence bis-d-2026-h200-0417-t: ${api.orgs.bis} gave that reference to licence ${first} already (as "BIS-D-2026-H200-0417-T": references are compared in NFKC, every dash as "-", without white space and without regard to the case of ASCII letters); an authority's reference names one licence`,
    });
    const response = await api.request({ method: 'POST', url: '/v1/licences', token: api.tokens.authority_officer, body: exportLicence('Bis-D-2026-H200-0417-T') });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ code: 'conflict', rule: 'licence-reference' });
    expect((await api.world.ledger.pool.query('SELECT count(*)::int AS n FROM licences')).rows[0].n).toBe(before);
  });

  it('lets another authority use the same reference, and one authority references that differ in more than case', async () => {
    await created('SHARED-REF-1');
    const { world, orgs } = api;
    expectOk(await world.ledger.submit('licence.create', {
      reference: 'SHARED-REF-1', direction: 'import', holderId: orgs.alpha, parties: [{ organisationId: orgs.exporter, role: 'supplier' }],
      productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, world.actors.mofcom));
    expectOk(await world.ledger.submit('licence.create', exportLicence('SHARED-REF-2'), world.actors.bis));
    expectOk(await world.ledger.submit('licence.create', exportLicence('SHARED REF 1'), world.actors.bis));
  });

  it('refuses the second of two creations under one reference in one batch', async () => {
    const reference = `BIS-BATCH-${++counter}`;
    const answers = await Promise.all([api.world.ledger.submit('licence.create', exportLicence(reference), api.world.actors.bis), api.world.ledger.submit('licence.create', exportLicence(reference.toLowerCase()), api.world.actors.bis)]);
    expect(answers.map((answer) => (answer.ok ? 'accepted' : answer.error.rule))).toEqual(['accepted', 'licence-reference']);
    const { rows } = await api.world.ledger.pool.query('SELECT count(*)::int AS n FROM licences WHERE lower(reference) = lower($1)', [reference]);
    expect(rows[0].n).toBe(1);
  });

  it('has no amendment that could change a reference', async () => {
    const licenceId = await created();
    const answer = await api.world.ledger.submit('licence.amend', { licenceId, reason: 'rename', reference: 'BIS-OTHER' } as never, api.world.actors.bis);
    expect(refusal(answer).code).toBe('invalid_input');
  });
});

describe('an amendment’s validity and the tranches under the licence (allocation-period)', () => {
  async function issuedWithTranche(period: { periodStart: string; periodEnd: string }, units = 50): Promise<{ licenceId: string; allocationId: string }> {
    const licenceId = await created();
    await api.world.run('licence.issue', { licenceId }, api.world.actors.bis);
    const allocationId = String((await api.world.run('allocation.create', { licenceId, recipientId: api.orgs.alpha, units, ...period }, api.world.actors.bis)).allocationId);
    return { licenceId, allocationId };
  }

  it('refuses a validTo at or before the first instant of a tranche’s period, naming the allocation and its period; changes nothing', async () => {
    const { licenceId, allocationId } = await issuedWithTranche({ periodStart: '2026-05-11', periodEnd: '2026-08-18' });
    expect(refusal(await api.world.ledger.submit('licence.amend', { licenceId, reason: 'cut short', validTo: '2026-03-23T00:00:00Z' }, api.world.actors.bis))).toEqual({
      code: 'conflict', rule: 'allocation-period',
      message: `couldn't amend licence ${licenceId} to validTo 2026-03-23T00:00:00.000Z: allocation ${allocationId} (50 units) is for the period 2026-05-11 to 2026-08-18, which begins after the last day of the new validity, 2026-03-22; no booking could reserve its units (a validTo after 2026-05-11T00:00:00.000Z keeps it a day)`,
      details: { licenceId, validTo: '2026-03-23T00:00:00.000Z', allocationId, periodStart: '2026-05-11', periodEnd: '2026-08-18', lastDay: '2026-03-22' },
    });
    // valid_to excluded: validity ending at the period's first instant leaves it no instant.
    expect(refusal(await api.world.ledger.submit('licence.amend', { licenceId, reason: 'cut short', validTo: '2026-05-11T00:00:00Z' }, api.world.actors.bis)).rule).toBe('allocation-period');
    expect(await licenceRow(licenceId)).toMatchObject({ version: 1, valid_to: '2027-01-01T00:00:00.000Z' });
    // One instant more, and a booking could be made on the period's first day.
    expect(expectOk(await api.world.ledger.submit('licence.amend', { licenceId, reason: 'cut short', validTo: '2026-05-11T00:00:00.001Z' }, api.world.actors.bis))).toMatchObject({ version: 2 });
  });

  it('lets a validity end within a tranche’s period (its earlier days stay bookable), and ignores allocations without a period', async () => {
    const { licenceId } = await issuedWithTranche({ periodStart: '2026-03-01', periodEnd: '2026-12-31' });
    await api.world.run('allocation.create', { licenceId, recipientId: api.orgs.alpha, units: 10 }, api.world.actors.bis);
    expect(expectOk(await api.world.ledger.submit('licence.amend', { licenceId, reason: 'cut short', validTo: '2026-06-01T00:00:00Z' }, api.world.actors.bis))).toMatchObject({ version: 2 });
  });

  it('names the earliest of several tranches beyond the new validity, and counts the others', async () => {
    const { licenceId } = await issuedWithTranche({ periodStart: '2026-10-01', periodEnd: '2026-12-31' }, 10);
    const july = String((await api.world.run('allocation.create', { licenceId, recipientId: api.orgs.alpha, units: 10, periodStart: '2026-07-01', periodEnd: '2026-09-30' }, api.world.actors.bis)).allocationId);
    await api.world.run('allocation.create', { licenceId, recipientId: api.orgs.alpha, units: 10, periodStart: '2026-04-01', periodEnd: '2026-06-30' }, api.world.actors.bis);
    const refused = refusal(await api.world.ledger.submit('licence.amend', { licenceId, reason: 'cut short', validTo: '2026-06-15T00:00:00Z' }, api.world.actors.bis));
    expect(refused.message).toContain(`allocation ${july} (10 units) is for the period 2026-07-01 to 2026-09-30`);
    expect(refused.message).toContain('(and 1 more allocation after it)');
  });

  it('holds for a draft too, and sees a tranche an earlier command of the same batch made', async () => {
    const licenceId = await created();
    const [allocated, amended] = await Promise.all([
      api.world.ledger.submit('allocation.create', { licenceId, recipientId: api.orgs.alpha, units: 5, periodStart: '2026-11-01', periodEnd: '2026-11-30' }, api.world.actors.bis),
      api.world.ledger.submit('licence.amend', { licenceId, reason: 'cut short', validTo: '2026-10-01T00:00:00Z' }, api.world.actors.bis),
    ]);
    expect(expectOk(allocated)).toMatchObject({ units: 5 });
    expect(refusal(amended)).toMatchObject({ code: 'conflict', rule: 'allocation-period' });
  });
});
