/**
 * A licence's history (GET /v1/events?subjectId=L-…) holds the creation and resizes of the
 * allocations under it, which change its allocatedUnits (s17 review of events as the public
 * record, finding 1): they name the licence as a further subject (event_subjects). Each
 * reader sees those of the allocations it reads. The shipment events that move the counts
 * stay in their shipments' histories (ledger/handler.ts EventPart.moreSubjectIds says why),
 * so a licence's updatedSeq may name a ship its history does not list.
 */
import { describe, expect, it } from 'vitest';
import { expectOk } from '../../../test/world.ts';
import { apiWorldPerFile, type ApiWorld } from '../../../test/support/server.ts';
import type { Answer } from '../batch-apply.ts';

let api: ApiWorld;

apiWorldPerFile((made) => {
  api = made;
});

interface EventView { seq: number; kind: string; subjectId: string | null }

async function historyOf(subjectId: string, token: string): Promise<EventView[]> {
  const response = await api.request({ method: 'GET', url: `/v1/events?subjectId=${subjectId}&limit=500`, token });
  expect(response.statusCode).toBe(200);
  const page = response.json() as { items: EventView[]; nextCursor: string | null };
  expect(page.nextCursor).toBeNull();
  return page.items;
}

const seqOf = (answer: Answer): number => Number(expectOk(answer).seq);

describe("a licence's history", () => {
  it('lists the allocations made and resized under it, each to the readers of that allocation', async () => {
    const { world, orgs, tokens } = api;
    const { actors, ledger } = world;
    const licenceId = String((await world.run('licence.create', {
      reference: 'BIS-HISTORY-1', direction: 'export', holderId: orgs.exporter, productIds: [world.productId], origin: 'US', destination: 'CN',
      authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
      parties: [{ organisationId: orgs.alpha, role: 'end_user' }, { organisationId: orgs.beta, role: 'end_user' }],
    }, actors.bis)).licenceId);
    const created = Number(licenceId.slice('L-'.length));
    const issued = seqOf(await ledger.submit('licence.issue', { licenceId }, actors.bis));
    const alphaCreated = seqOf(await ledger.submit('allocation.create', { licenceId, recipientId: orgs.alpha, units: 10 }, actors.bis));
    const alphaAllocation = `A-${alphaCreated}`;
    const betaCreated = seqOf(await ledger.submit('allocation.create', { licenceId, recipientId: orgs.beta, units: 20 }, actors.bis));
    const alphaResized = seqOf(await ledger.submit('allocation.resize', { allocationId: alphaAllocation, units: 15 }, actors.bis));

    const seqs = async (subjectId: string, token: string) => (await historyOf(subjectId, token)).map((event) => event.seq);
    // The authority and the holder, which ships under every allocation of it, read them all.
    expect(await seqs(licenceId, tokens.authority_admin)).toEqual([created, issued, alphaCreated, betaCreated, alphaResized]);
    expect(await seqs(licenceId, tokens.exporter)).toEqual([created, issued, alphaCreated, betaCreated, alphaResized]);
    // A recipient reads its own allocation's events, never another recipient's.
    expect(await seqs(licenceId, tokens.recipient)).toEqual([created, issued, alphaCreated, alphaResized]);
    expect(await seqs(licenceId, tokens.beta)).toEqual([created, issued, betaCreated]);
    // The events keep the allocation as their subject; its own history is as before.
    const history = await historyOf(licenceId, tokens.authority_admin);
    expect(history.find((event) => event.seq === alphaResized)).toMatchObject({ kind: 'allocation.resize', subjectId: alphaAllocation });
    expect(await seqs(alphaAllocation, tokens.recipient)).toEqual([alphaCreated, alphaResized]);
    // The licence's last change is the resize, which its history lists.
    const licence = (await api.request({ method: 'GET', url: `/v1/licences/${licenceId}`, token: tokens.authority_admin })).json() as { updatedSeq: number; allocatedUnits: number };
    expect(licence).toMatchObject({ updatedSeq: alphaResized, allocatedUnits: 35 });

    // A ship posts units to the licence, and its updatedSeq names the ship, but the ship is
    // its shipment's event: the licence's history does not list it, nor the booking.
    const shipmentId = String(expectOk(await ledger.submit('shipment.book', {
      exportAllocationId: alphaAllocation, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1,
      deadline: '2026-06-01T00:00:00Z', serials: [api.serial('HIST')],
    }, actors.exporter)).shipmentId);
    const shipped = seqOf(await ledger.submit('shipment.ship', { shipmentId }, actors.exporter));
    const after = (await api.request({ method: 'GET', url: `/v1/licences/${licenceId}`, token: tokens.authority_admin })).json() as { updatedSeq: number; shippedUnits: number };
    expect(after).toMatchObject({ updatedSeq: shipped, shippedUnits: 1 });
    expect(await seqs(licenceId, tokens.authority_admin)).toEqual([created, issued, alphaCreated, betaCreated, alphaResized]);
    expect(await seqs(alphaAllocation, tokens.authority_admin)).toEqual([alphaCreated, alphaResized]);
    expect(await seqs(shipmentId, tokens.authority_admin)).toEqual([Number(shipmentId.slice("S-".length)), shipped]);
    expect(await world.ledger.violations()).toEqual([]);
  });
});
