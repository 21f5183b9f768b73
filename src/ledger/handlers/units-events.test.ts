/**
 * What the unit events record and who reads them (s13 review, units #3 and #4): a move names
 * the sites units left; an ending names the shipments the units came in and the sites they
 * left; a return or a loss is read by the exporter of the units' shipment too, and belongs to
 * that shipment's history; where units were deployed stays the recipient's to read, and a
 * recipient deploys units only to a site of its own.
 * Two exporters (test/support/server.ts): the exporter ships to alpha and beta, exporter2 to beta.
 */
import { describe, expect, it } from 'vitest';
import { expectOk } from '../../../test/world.ts';
import { apiWorldPerFile, type ApiWorld } from '../../../test/support/server.ts';
import type { Answer } from '../batch-apply.ts';

let api: ApiWorld;

apiWorldPerFile((made) => {
  api = made;
});

interface EventView { seq: number; kind: string; subjectId: string | null; organisationIds: string[]; body: { effects: Record<string, unknown> } }

async function event(seq: number, token: string): Promise<{ status: number; event?: EventView }> {
  const response = await api.request({ method: 'GET', url: `/v1/events/${seq}`, token });
  return response.statusCode === 200 ? { status: 200, event: response.json() as EventView } : { status: response.statusCode };
}

async function historyOf(subjectId: string, token: string): Promise<Array<{ seq: number; kind: string }>> {
  const response = await api.request({ method: 'GET', url: `/v1/events?subjectId=${subjectId}&limit=500`, token });
  expect(response.statusCode).toBe(200);
  return (response.json() as { items: EventView[] }).items.map((item) => ({ seq: item.seq, kind: item.kind }));
}

const seqOf = (answer: Answer): number => Number(expectOk(answer).seq);

async function newSite(name: string): Promise<string> {
  return String((await api.world.run('site.register', { name, province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 100 }, api.world.actors.alpha)).siteId);
}

describe('units.deploy', () => {
  it('records how many units left each site they moved from', async () => {
    const { world } = api;
    const { serials } = await api.shipment('own', 'delivered', 4);
    const [first, second, third] = [await newSite('Move A'), await newSite('Move B'), await newSite('Move C')];
    await world.run('units.deploy', { siteId: first, serials: serials.slice(0, 2) }, world.actors.alpha);
    await world.run('units.deploy', { siteId: second, serials: [serials[2]!] }, world.actors.alpha);
    // Two from the first site, one from the second, one delivered and never deployed.
    const seq = seqOf(await world.ledger.submit('units.deploy', { siteId: third, serials }, world.actors.alpha));
    const { event: moved } = await event(seq, api.tokens.recipient);
    expect(moved).toMatchObject({ subjectId: third, organisationIds: [api.orgs.alpha] });
    expect(moved!.body.effects).toEqual({ deployed: 4, moved: 3, movedFrom: { [first]: 2, [second]: 1 } });
    // A first deployment moved nothing: an empty map.
    const fresh = await api.shipment('own', 'delivered', 1);
    const firstSeq = seqOf(await world.ledger.submit('units.deploy', { siteId: first, serials: fresh.serials }, world.actors.alpha));
    expect((await event(firstSeq, api.tokens.recipient)).event!.body.effects).toEqual({ deployed: 1, moved: 0, movedFrom: {} });
    // Where the units run is alpha's to know: the exporter reads neither event.
    expect((await event(seq, api.tokens.exporter)).status).toBe(404);
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('units.deploy to another organisation\'s site', () => {
  it('is refused as if the site did not exist, and moves nothing', async () => {
    const { world } = api;
    const { serials } = await api.shipment('own', 'delivered', 2);
    const before = await world.ledger.pool.query('SELECT serial, custody, site_id FROM units WHERE serial = ANY($1) ORDER BY serial', [serials]);
    const answer = await world.ledger.submit('units.deploy', { siteId: api.sites.beta, serials }, world.actors.alpha);
    if (answer.ok) expect.fail(`deployed alpha's units at beta's site: ${JSON.stringify(answer.body)}`);
    expect(answer.error).toMatchObject({ code: 'not_found', message: `site ${api.sites.beta} was not found` });
    expect((await world.ledger.pool.query('SELECT serial, custody, site_id FROM units WHERE serial = ANY($1) ORDER BY serial', [serials])).rows).toEqual(before.rows);
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('units.return and units.report_lost', () => {
  it('are read by the exporter, belong to the shipment\'s history, and name the sites left in an event of the recipient\'s own', async () => {
    const { world } = api;
    const { id, serials } = await api.shipment('own', 'delivered', 3);
    const site = await newSite('Return A');
    await world.run('units.deploy', { siteId: site, serials: serials.slice(0, 2) }, world.actors.alpha);
    const seq = seqOf(await world.ledger.submit('units.return', { serials, reason: 'RMA' }, world.actors.alpha));

    const { event: shared } = await event(seq, api.tokens.exporter);
    expect(shared).toMatchObject({ kind: 'units.return', subjectId: id });
    // Read by both (the stored readers); a tenant is shown only itself among them.
    expect((await world.ledger.pool.query('SELECT org_ids FROM events WHERE seq = $1', [seq])).rows[0].org_ids.sort()).toEqual([api.orgs.alpha, api.orgs.exporter].sort());
    expect(shared!.organisationIds).toEqual([api.orgs.exporter]);
    expect(shared!.body.effects).toEqual({ count: 3, shipments: { [id]: 3 } });
    expect(JSON.stringify(shared)).not.toContain(site);

    const sites = await event(seq + 1, api.tokens.recipient);
    expect(sites.event).toMatchObject({ kind: 'units.return', subjectId: site, organisationIds: [api.orgs.alpha] });
    expect(sites.event!.body.effects).toEqual({ fromSites: { [site]: 2 } });
    expect((sites.event!.body as { input?: unknown }).input).toBeNull(); // the serial list is the first event's, stored once
    expect((await world.ledger.pool.query('SELECT count(*)::int AS n FROM event_serials WHERE seq = ANY($1)', [[seq, seq + 1]])).rows[0].n).toBe(1);
    expect((await event(seq + 1, api.tokens.exporter)).status).toBe(404);

    expect(await historyOf(id, api.tokens.exporter)).toContainEqual({ seq, kind: 'units.return' });
    expect(await historyOf(id, api.tokens.recipient)).toContainEqual({ seq, kind: 'units.return' });
    expect(await historyOf(site, api.tokens.recipient)).toContainEqual({ seq: seq + 1, kind: 'units.return' });
    // The exporter may read the serial list of the event it reads (its own units).
    expect((await api.request({ method: 'GET', url: `/v1/events/${seq}/serials`, token: api.tokens.exporter })).statusCode).toBe(200);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('a loss in transit is the shipment\'s and its exporter\'s to read, with no site event; units of several shipments name each and no subject', async () => {
    const { world } = api;
    const shipped = await api.shipment('own', 'shipped', 2);
    const seq = seqOf(await world.ledger.submit('units.report_lost', { serials: [shipped.serials[0]!], reason: 'missing at customs' }, world.actors.alpha));
    const { event: lost } = await event(seq, api.tokens.exporter);
    expect(lost).toMatchObject({ kind: 'units.report_lost', subjectId: shipped.id });
    expect(lost!.body.effects).toEqual({ count: 1, shipments: { [shipped.id]: 1 } });
    // No unit was at a site: one event only (the next seq, if any, is not this command's).
    expect((await event(seq + 1, api.tokens.recipient)).event?.kind).not.toBe('units.report_lost');
    expect(await historyOf(shipped.id, api.tokens.exporter)).toContainEqual({ seq, kind: 'units.report_lost' });

    const one = await api.shipment('own', 'delivered', 1);
    const other = await api.shipment('own', 'delivered', 2);
    const both = seqOf(await world.ledger.submit('units.report_lost', { serials: [...one.serials, ...other.serials], reason: 'audit' }, world.actors.alpha));
    const { event: many } = await event(both, api.tokens.exporter);
    expect(many).toMatchObject({ subjectId: null });
    expect(many!.body.effects).toEqual({ count: 3, shipments: { [one.id]: 1, [other.id]: 2 } });
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('refuses units of two exporters in one report, naming both, and changes nothing', async () => {
    const { world } = api;
    const fromExporter = String((await world.run('shipment.book', {
      exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport, productId: world.productId,
      units: 1, deadline: '2026-06-01T00:00:00Z', serials: ['MIX-1'],
    }, world.actors.exporter)).shipmentId);
    await world.run('shipment.ship', { shipmentId: fromExporter }, world.actors.exporter);
    await world.run('shipment.clear', { shipmentId: fromExporter }, world.actors.beta);
    await world.run('shipment.deliver', { shipmentId: fromExporter }, world.actors.beta);
    const fromExporter2 = await api.shipment('other', 'delivered', 1);
    const serials = ['MIX-1', fromExporter2.serials[0]!];
    const before = await world.ledger.pool.query('SELECT serial, custody FROM units WHERE serial = ANY($1) ORDER BY serial', [serials]);
    for (const kind of ['units.return', 'units.report_lost'] as const) {
      const answer = await world.ledger.submit(kind, { serials, reason: 'RMA' }, world.actors.beta);
      if (answer.ok) expect.fail(`${kind} was accepted`);
      expect(answer.error).toMatchObject({ code: 'conflict', rule: 'unit-exporter', details: { exporters: [api.orgs.exporter, api.orgs.exporter2] } });
      expect(answer.error.message).toContain(`serial MIX-1 came in shipment ${fromExporter} from ${api.orgs.exporter}`);
      expect(answer.error.message).toContain(`from ${api.orgs.exporter2}`);
    }
    expect((await world.ledger.pool.query('SELECT serial, custody FROM units WHERE serial = ANY($1) ORDER BY serial', [serials])).rows).toEqual(before.rows);
    // Each exporter's units apart: accepted.
    expectOk(await world.ledger.submit('units.return', { serials: ['MIX-1'], reason: 'RMA' }, world.actors.beta));
    expectOk(await world.ledger.submit('units.return', { serials: [fromExporter2.serials[0]!], reason: 'RMA' }, world.actors.beta));
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('units.decommission', () => {
  it('stays the recipient\'s alone, naming the shipments and the sites left in one event', async () => {
    const { world } = api;
    const { id, serials } = await api.shipment('own', 'delivered', 2);
    const site = await newSite('End A');
    await world.run('units.deploy', { siteId: site, serials: [serials[0]!] }, world.actors.alpha);
    const seq = seqOf(await world.ledger.submit('units.decommission', { serials, reason: 'end of life' }, world.actors.alpha));
    const { event: ended } = await event(seq, api.tokens.recipient);
    expect(ended).toMatchObject({ kind: 'units.decommission', subjectId: id, organisationIds: [api.orgs.alpha] });
    expect(ended!.body.effects).toEqual({ count: 2, shipments: { [id]: 2 }, fromSites: { [site]: 1 } });
    expect((await event(seq, api.tokens.exporter)).status).toBe(404);
    expect(await world.ledger.violations()).toEqual([]);
  });
});
