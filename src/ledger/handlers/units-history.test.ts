/**
 * A record's history (GET /v1/events?subjectId=) holds the events about it, not only those
 * whose subject it is (s16 review, units b2): a site's history shows the units that left it
 * (moved, decommissioned, returned, lost), and each shipment's history an ending across
 * several shipments. The further records an event is about are its event_subjects rows
 * (migration 038), read through the same visibility rule as every event list.
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

interface EventView { seq: number; kind: string; subjectId: string | null; body: { effects: Record<string, unknown> } }

async function historyOf(subjectId: string, token: string): Promise<EventView[]> {
  const items: EventView[] = [];
  let cursor: string | null = null;
  // Pages of two: an event listed through either arm is on exactly one page.
  do {
    const response = await api.request({ method: 'GET', url: `/v1/events?subjectId=${subjectId}&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`, token });
    expect(response.statusCode).toBe(200);
    const page = response.json() as { items: EventView[]; nextCursor: string | null };
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return items;
}

const seqOf = (answer: Answer): number => Number(expectOk(answer).seq);

async function newSite(name: string): Promise<string> {
  return String((await api.world.run('site.register', { name, province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 100 }, api.world.actors.alpha)).siteId);
}

/** What one event of a site's history did to its deployed count, from the effects alone. */
function deployedChange(siteId: string, event: EventView): number {
  const { effects } = event.body;
  const left = (field: string) => (effects[field] as Record<string, number> | undefined)?.[siteId] ?? 0;
  const arrived = event.kind === 'units.deploy' && event.subjectId === siteId ? Number(effects.deployed) : 0;
  return arrived - left('movedFrom') - left('fromSites');
}

async function deployedUnits(siteId: string): Promise<number> {
  return (await api.request({ method: 'GET', url: `/v1/sites/${siteId}`, token: api.tokens.recipient })).json().deployedUnits as number;
}

describe('a site\'s history', () => {
  it('sums to its deployed units: units moved away, decommissioned and returned from two sites are in it', async () => {
    const { world } = api;
    const [a, b, c] = [await newSite('History A'), await newSite('History B'), await newSite('History C')];
    const { id: shipment, serials } = await api.shipment('own', 'delivered', 6);
    await world.run('units.deploy', { siteId: a, serials: serials.slice(0, 3) }, world.actors.alpha);
    await world.run('units.deploy', { siteId: b, serials: serials.slice(3, 6) }, world.actors.alpha);
    const move = seqOf(await world.ledger.submit('units.deploy', { siteId: c, serials: [serials[0]!] }, world.actors.alpha));
    const decommission = seqOf(await world.ledger.submit('units.decommission', { serials: [serials[1]!], reason: 'end of life' }, world.actors.alpha));
    // From A and B: the sites' event has no subject.
    const returned = seqOf(await world.ledger.submit('units.return', { serials: [serials[2]!, serials[3]!], reason: 'RMA' }, world.actors.alpha));

    const histories = { [a]: await historyOf(a, api.tokens.recipient), [b]: await historyOf(b, api.tokens.recipient), [c]: await historyOf(c, api.tokens.recipient) };
    expect(histories[a]!.map((event) => event.seq)).toEqual(expect.arrayContaining([move, decommission, returned + 1]));
    expect(histories[b]!.map((event) => event.seq)).toContain(returned + 1);
    for (const [siteId, history] of Object.entries(histories)) {
      const seqs = history.map((event) => event.seq);
      expect(seqs, `${siteId}'s history in log order, each event once`).toEqual([...new Set(seqs)].sort((x, y) => x - y));
      expect(history.reduce((sum, event) => sum + deployedChange(siteId, event), 0), `${siteId}'s history`).toBe(await deployedUnits(siteId));
    }
    expect(await deployedUnits(a)).toBe(0);
    // The subjects served are as they were: the move's is its destination, the sites' event has none.
    expect(histories[a]!.find((event) => event.seq === move)!.subjectId).toBe(c);
    expect(histories[a]!.find((event) => event.seq === decommission)!.subjectId).toBe(shipment);
    expect(histories[a]!.find((event) => event.seq === returned + 1)!.subjectId).toBeNull();
    // The shipment's history holds the decommission and the return, as before.
    expect((await historyOf(shipment, api.tokens.recipient)).map((event) => event.seq)).toEqual(expect.arrayContaining([decommission, returned]));

    // Where units ran is the recipient's to know: the exporter reads the return's first
    // event, and no site's history shows it that event, nor any other.
    for (const siteId of [a, b, c]) expect(await historyOf(siteId, api.tokens.exporter)).toEqual([]);
    // Another recipient reads none of alpha's events, whatever record it names.
    for (const record of [a, b, c, shipment]) expect(await historyOf(record, api.tokens.beta)).toEqual([]);
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('an ending across two shipments', () => {
  it('is in each shipment\'s history, for the recipient and for the exporter that reads it', async () => {
    const { world } = api;
    const one = await api.shipment('own', 'delivered', 1);
    const other = await api.shipment('own', 'delivered', 2);
    const site = await newSite('History D');
    await world.run('units.deploy', { siteId: site, serials: [one.serials[0]!, other.serials[0]!] }, world.actors.alpha);
    const lost = seqOf(await world.ledger.submit('units.report_lost', { serials: [one.serials[0]!, other.serials[0]!], reason: 'audit' }, world.actors.alpha));
    const decommission = seqOf(await world.ledger.submit('units.decommission', { serials: [other.serials[1]!, ...(await api.shipment('own', 'delivered', 1)).serials], reason: 'end of life' }, world.actors.alpha));

    for (const shipment of [one.id, other.id]) {
      const seqs = (await historyOf(shipment, api.tokens.recipient)).map((event) => event.seq);
      expect(seqs, `${shipment} read by the recipient`).toContain(lost);
      expect((await historyOf(shipment, api.tokens.exporter)).map((event) => event.seq), `${shipment} read by the exporter`).toContain(lost);
      // The sites' event of the loss is not the shipments' (it counts sites only).
      expect(seqs).not.toContain(lost + 1);
    }
    expect((await historyOf(other.id, api.tokens.recipient)).map((event) => event.seq)).toContain(decommission);
    expect((await historyOf(other.id, api.tokens.exporter)).map((event) => event.seq)).not.toContain(decommission);
    // The site's history: deployed, then lost (the recipient's own event of the loss).
    expect((await historyOf(site, api.tokens.recipient)).map((event) => [event.kind, deployedChange(site, event)])).toEqual([
      ['site.register', 0], ['units.deploy', 2], ['units.report_lost', -2],
    ]);
    for (const record of [one.id, other.id, site]) expect(await historyOf(record, api.tokens.beta)).toEqual([]);
    expect(await world.ledger.violations()).toEqual([]);
  });
});
