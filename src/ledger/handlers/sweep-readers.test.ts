/**
 * The sweep expires records of several tenants in one command: each expired record gets
 * an event of its own, read only by that record's parties, and the log stays gapless.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { apiWorldPerFile, type ApiWorld } from '../../../test/support/server.ts';

let database: TestDatabase;
let api: ApiWorld;

apiWorldPerFile((made, madeDatabase) => {
  api = made;
  database = madeDatabase;
});

interface EventItem {
  seq: number;
  kind: string;
  subjectId: string | null;
  organisationIds: string[];
  body: { seq: number; subject: string | null; effects: Record<string, unknown> };
}

/** Every event the token may read, page by page. */
async function events(token: string): Promise<EventItem[]> {
  const items: EventItem[] = [];
  let cursor: string | null = null;
  for (;;) {
    const response = await api.request({ method: 'GET', url: `/v1/events?limit=500${cursor === null ? '' : `&cursor=${cursor}`}`, token });
    expect(response.statusCode).toBe(200);
    const page = response.json() as { items: EventItem[]; nextCursor: string | null };
    items.push(...page.items);
    if (page.nextCursor === null) return items;
    cursor = page.nextCursor;
  }
}

const sweeps = async (token: string) => (await events(token)).filter((event) => event.kind === 'ledger.sweep');

describe('ledger.sweep events', () => {
  it('gives each expired shipment and licence its own event, read by its own parties only', async () => {
    const { world, orgs, tokens, allocations, exporter2 } = api;
    const { run, actors, productId, clock } = world;
    const deadline = '2026-02-01T01:00:00Z';
    const alphaShipment = String((await run('shipment.book', { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 2, deadline }, actors.exporter)).shipmentId);
    const betaShipment = String((await run('shipment.book', { exportAllocationId: allocations.exporter2Beta, importAllocationId: allocations.betaImport2, productId, units: 3, deadline }, exporter2)).shipmentId);
    // A licence of exporter2 naming beta, valid for an hour and a half only.
    const shortLicence = String((await run('licence.create', {
      reference: 'BIS-2026-0099', direction: 'export', holderId: orgs.exporter2, parties: [{ organisationId: orgs.beta, role: 'end_user' }],
      productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2026-02-01T01:30:00Z',
    }, actors.bis)).licenceId);
    await run('licence.issue', { licenceId: shortLicence }, actors.bis);
    const sizeBefore = Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size);
    clock.set('2026-02-01T02:00:00Z');

    const swept = await api.request({ method: 'POST', url: '/v1/ledger/sweep', token: tokens.authority_admin });
    expect(swept.statusCode).toBeLessThan(300);
    const answer = swept.json();
    // The caller (an authority admin) still gets the whole lists, and the seq of the first event.
    expect([...answer.expiredShipments].sort()).toEqual([alphaShipment, betaShipment].sort());
    expect(answer.expiredLicences).toEqual([shortLicence]);
    expect(answer.seq).toBe(sizeBefore);

    // One event per record, at consecutive seqs, and the log's head counts them all.
    const logged = (await database.pool.query('SELECT seq, subject_id FROM events WHERE seq >= $1 ORDER BY seq', [sizeBefore])).rows;
    expect(logged.map((row) => Number(row.seq))).toEqual([sizeBefore, sizeBefore + 1, sizeBefore + 2]);
    expect(logged.map((row) => row.subject_id).sort()).toEqual([alphaShipment, betaShipment, shortLicence].sort());
    expect(Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size)).toBe(sizeBefore + 3);
    expect((await database.pool.query('SELECT * FROM ledger_violations()')).rows).toEqual([]);

    // Beta reads the events of its shipment and its licence, and nothing of alpha's.
    const forBeta = await sweeps(tokens.beta);
    expect(forBeta.map((event) => event.subjectId).sort()).toEqual([betaShipment, shortLicence].sort());
    const betaText = JSON.stringify(forBeta);
    expect(betaText).not.toContain(`"${alphaShipment}"`);
    expect(betaText).not.toContain(`"${orgs.alpha}"`);
    expect(betaText).not.toContain(`"${orgs.exporter}"`);
    const betaShipmentEvent = forBeta.find((event) => event.subjectId === betaShipment)!;
    // Read by its exporter and its recipient (the stored readers); beta is shown only itself among them.
    expect((await database.pool.query('SELECT org_ids FROM events WHERE seq = $1', [betaShipmentEvent.seq])).rows[0].org_ids.sort()).toEqual([orgs.exporter2, orgs.beta].sort());
    expect(betaShipmentEvent.organisationIds).toEqual([orgs.beta]);
    // Each says when it fell due (its deadline, the licence's validTo), not only when the sweep ran.
    expect(betaShipmentEvent.body.effects).toEqual({ shipmentId: betaShipment, from: 'booked', to: 'expired', units: 3, dueAt: '2026-02-01T01:00:00.000Z' });
    expect(forBeta.find((event) => event.subjectId === shortLicence)!.body.effects).toEqual({ licenceId: shortLicence, from: 'issued', to: 'expired', dueAt: '2026-02-01T01:30:00.000Z' });
    const bySubject = await api.request({ method: 'GET', url: `/v1/events?subjectId=${alphaShipment}`, token: tokens.beta });
    expect(bySubject.json().items).toEqual([]);

    // Alpha and its exporter read alpha's shipment only.
    for (const token of [tokens.recipient, tokens.exporter]) {
      const seen = await sweeps(token);
      expect(seen.map((event) => event.subjectId)).toEqual([alphaShipment]);
      expect(JSON.stringify(seen)).not.toContain(`"${betaShipment}"`);
      expect(JSON.stringify(seen)).not.toContain(orgs.beta);
    }

    // Authorities and auditors read all three.
    for (const token of [tokens.authority_officer, tokens.auditor]) {
      expect((await sweeps(token)).map((event) => event.subjectId).sort()).toEqual([alphaShipment, betaShipment, shortLicence].sort());
    }

    // Each record's updatedSeq names the event that expired it.
    const seqOf = new Map(logged.map((row) => [row.subject_id as string, Number(row.seq)]));
    const alphaRow = (await api.request({ method: 'GET', url: `/v1/shipments/${alphaShipment}`, token: tokens.recipient })).json();
    expect(alphaRow).toMatchObject({ status: 'expired', updatedSeq: seqOf.get(alphaShipment) });
    const betaRow = (await api.request({ method: 'GET', url: `/v1/shipments/${betaShipment}`, token: tokens.beta })).json();
    expect(betaRow).toMatchObject({ status: 'expired', updatedSeq: seqOf.get(betaShipment) });
    expect((await api.request({ method: 'GET', url: `/v1/shipments/${betaShipment}`, token: tokens.recipient })).statusCode).toBe(404);
  });

  it('writes nothing when nothing is due', async () => {
    const sizeBefore = (await database.pool.query('SELECT size FROM log_head')).rows[0].size;
    const swept = await api.request({ method: 'POST', url: '/v1/ledger/sweep', token: api.tokens.authority_admin });
    expect(swept.statusCode).toBe(409);
    expect((await database.pool.query('SELECT size FROM log_head')).rows[0].size).toBe(sizeBefore);
  });
});
