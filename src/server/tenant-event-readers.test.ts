/**
 * Who else reads an event is not a tenant's to know. An event's organisationIds are its
 * readers (events.org_ids), and a licence's events are read by the recipients of its
 * allocations too, also one an amendment dropped from the parties: served as they are, they
 * told the remaining parties that the dropped recipient still holds an allocation, which the
 * licence itself hides from them. Authorities and auditors read the full list; a tenant
 * reads only its own id, on every route that serves an event.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { makeUscc } from '../core/uscc.ts';
import { systemActor } from '../ledger/permissions.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let api: ApiWorld;
apiWorldPerFile((made) => { api = made; });

type Item = Record<string, unknown>;
const get = async (url: string, token: string) => {
  const response = await api.request({ method: 'GET', url, token });
  return { status: response.statusCode, body: response.json() as Item };
};
/** Every item of a list, page after page. */
async function all(url: string, token: string): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: string | null = null;
  const separator = url.includes('?') ? '&' : '?';
  for (;;) {
    const page = await get(`${url}${separator}limit=7${cursor === null ? '' : `&cursor=${cursor}`}`, token);
    expect(page.status).toBe(200);
    items.push(...(page.body.items as Item[]));
    cursor = page.body.nextCursor as string | null;
    if (cursor === null) return items;
  }
}

let licenceId: string;
let gamma: string;
let gammaToken: string;
let suspendSeq: number;

beforeAll(async () => {
  const { world, orgs } = api;
  const { run, actors } = world;
  gamma = String((await run('organisation.register', { name: '丙数据有限公司', country: 'CN', roles: ['recipient'], identifiers: { uscc: makeUscc('91310000MA0000003') } }, systemActor)).organisationId);
  gammaToken = String((await run('token.create', { organisationId: gamma, role: 'recipient', label: 'gamma' }, systemActor)).secret);
  licenceId = String((await run('licence.create', {
    productIds: [world.productId], origin: 'US', destination: 'CN', authorisedUnits: 1000, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    reference: 'BIS-DROPPED', direction: 'export', holderId: orgs.exporter,
    parties: [{ organisationId: orgs.alpha, role: 'end_user' }, { organisationId: gamma, role: 'end_user' }],
  }, actors.bis)).licenceId);
  await run('licence.issue', { licenceId }, actors.bis);
  await run('allocation.create', { licenceId, recipientId: gamma, units: 300 }, actors.bis);
  // Gamma leaves the parties and keeps its allocation: alpha is not to learn of it.
  await run('licence.amend', { licenceId, parties: [{ organisationId: orgs.alpha, role: 'end_user' }], reason: 'gamma dropped' }, actors.bis);
  suspendSeq = Number((await run('licence.suspend', { licenceId, reason: 'review' }, actors.bis)).seq);
});

describe('an event\'s organisationIds', () => {
  it('hide from the remaining party that a dropped recipient still reads the licence, as the licence itself does', async () => {
    const { tokens, orgs } = api;
    const licence = await get(`/v1/licences/${licenceId}`, tokens.recipient);
    expect(licence.body).toMatchObject({ parties: [{ organisationId: orgs.alpha, role: 'end_user' }], allocations: [], totalsScope: 'own_allocations' });
    const suspend = await get(`/v1/events/${suspendSeq}`, tokens.recipient);
    expect(suspend.status).toBe(200);
    expect(suspend.body).toMatchObject({ kind: 'licence.suspend', subjectId: licenceId, organisationIds: [orgs.alpha] });
  });

  it('are the full list for authorities and the auditor, on every route that serves an event', async () => {
    const { tokens, orgs } = api;
    const readers = [orgs.exporter, orgs.alpha, gamma].sort();
    for (const token of [tokens.authority_admin, tokens.authority_officer, tokens.auditor]) {
      expect(((await get(`/v1/events/${suspendSeq}`, token)).body.organisationIds as string[]).sort()).toEqual(readers);
      const history = await all(`/v1/events?subjectId=${licenceId}`, token);
      expect((history.find((event) => event.seq === suspendSeq)!.organisationIds as string[]).sort()).toEqual(readers);
      const stream = await all('/v1/events', token);
      expect((stream.find((event) => event.seq === suspendSeq)!.organisationIds as string[]).sort()).toEqual(readers);
      // Events read by several organisations keep them all.
      expect(stream.some((event) => (event.organisationIds as string[]).length > 1)).toBe(true);
    }
  });

  it('are the reader\'s own id alone for every tenant, exporter and recipient, on every route that serves an event', async () => {
    const { tokens, orgs } = api;
    const tenants = [[tokens.exporter, orgs.exporter], [tokens.recipient, orgs.alpha], [tokens.beta, orgs.beta], [gammaToken, gamma]] as const;
    for (const [token, self] of tenants) {
      const stream = await all('/v1/events', token);
      expect(stream.length, self).toBeGreaterThan(0);
      expect(stream.filter((event) => JSON.stringify(event.organisationIds) !== JSON.stringify([self])), self).toEqual([]);
      const history = await all(`/v1/events?subjectId=${licenceId}`, token);
      expect(history.filter((event) => JSON.stringify(event.organisationIds) !== JSON.stringify([self])), self).toEqual([]);
      const one = await get(`/v1/events/${stream[stream.length - 1]!.seq as number}`, token);
      expect(one.body.organisationIds, self).toEqual([self]);
    }
    // Beta reads none of this licence's events: the event answers it 404 as before.
    expect((await get(`/v1/events/${suspendSeq}`, tokens.beta)).status).toBe(404);
    expect((await get(`/v1/events/${suspendSeq}`, gammaToken)).body.organisationIds).toEqual([gamma]);
  });
});

describe('organisations a tenant may look up', () => {
  it('include the recipient of every allocation it reads, also one an amendment dropped from the licence\'s parties', async () => {
    const { tokens } = api;
    const allocations = await all(`/v1/allocations?licenceId=${licenceId}`, tokens.exporter);
    expect(allocations.map((allocation) => allocation.recipientId)).toEqual([gamma]);
    const organisations = (await all('/v1/organisations', tokens.exporter)).map((organisation) => organisation.id);
    expect(organisations).toContain(gamma);
    // Alpha's one tie to gamma was the parties it no longer shares.
    expect((await all('/v1/organisations', tokens.recipient)).map((organisation) => organisation.id)).not.toContain(gamma);
    expect((await get(`/v1/reports/utilisation?limit=500`, tokens.exporter)).body.items).toContainEqual(
      expect.objectContaining({ licenceId, allocations: [expect.objectContaining({ recipientId: gamma })] }),
    );
  });
});
