/**
 * Where a unit runs is its recipient's to see: sites answer every other tenant 404, so the
 * exporter of a unit reads it, and its shipment's serials, without the site, and cannot
 * filter units by another's site. Authorities and auditors see it all.
 */
import { describe, expect, it } from 'vitest';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let api: ApiWorld;
apiWorldPerFile((made) => { api = made; });

type Item = Record<string, unknown>;
const items = async (url: string, token: string): Promise<Item[]> => {
  const response = await api.request({ method: 'GET', url, token });
  expect(response.statusCode, url).toBe(200);
  return (response.json() as { items: Item[] }).items;
};

describe('a deployed unit as its exporter reads it', () => {
  it('has no site, in the unit list, the unit itself and its shipment\'s serials', async () => {
    const { tokens, sites } = api;
    const atSite = await items(`/v1/units?siteId=${sites.alpha}`, tokens.recipient);
    expect(atSite.length).toBeGreaterThan(0);
    const unit = atSite[0]!;
    expect(unit.siteId).toBe(sites.alpha);

    expect((await api.request({ method: 'GET', url: `/v1/sites/${sites.alpha}`, token: tokens.exporter })).statusCode).toBe(404);
    expect(await items(`/v1/units?siteId=${sites.alpha}`, tokens.exporter)).toEqual([]);
    const listed = (await items('/v1/units?custody=deployed&limit=500', tokens.exporter)).find((row) => row.serial === unit.serial);
    expect(listed).toMatchObject({ serial: unit.serial, custody: 'deployed', siteId: null });
    const one = await api.request({ method: 'GET', url: `/v1/units/${String(unit.serial)}`, token: tokens.exporter });
    expect(one.json()).toMatchObject({ serial: unit.serial, siteId: null });
    const serials = await items(`/v1/shipments/${String(unit.shipmentId)}/serials?limit=500`, tokens.exporter);
    expect(serials.find((row) => row.serial === unit.serial)).toMatchObject({ custody: 'deployed', siteId: null });

    // The recipient and the auditor see the site everywhere.
    for (const token of [tokens.recipient, tokens.auditor]) {
      const theirs = await items(`/v1/shipments/${String(unit.shipmentId)}/serials?limit=500`, token);
      expect(theirs.find((row) => row.serial === unit.serial)).toMatchObject({ siteId: sites.alpha });
      expect((await api.request({ method: 'GET', url: `/v1/units/${String(unit.serial)}`, token })).json()).toMatchObject({ siteId: sites.alpha });
    }
  });
});

describe('a unit its recipient moves between its sites', () => {
  it('reads the same to its exporter before and after: no site, and no seq of the change to group units by', async () => {
    const { tokens, sites } = api;
    const unit = (await items(`/v1/units?siteId=${sites.alpha}`, tokens.recipient))[0]!;
    const asExporter = async () => (await api.request({ method: 'GET', url: `/v1/units/${String(unit.serial)}`, token: tokens.exporter })).json() as Item;
    const before = await asExporter();
    expect(before).toMatchObject({ siteId: null, updatedSeq: null });

    const registered = await api.request({ method: 'POST', url: '/v1/sites', token: tokens.recipient, body: {
      name: 'Second hall', province: 'Inner Mongolia', city: 'Ulanqab', latitude: 41.0, longitude: 113.1, capacityUnits: 10,
    } });
    expect(registered.statusCode).toBe(201);
    const siteId = String((registered.json() as Item).siteId);
    const moved = await api.request({ method: 'POST', url: '/v1/units/deploy', token: tokens.recipient, body: { siteId, serials: [unit.serial] } });
    expect(moved.statusCode).toBe(200);

    expect((await api.request({ method: 'GET', url: `/v1/units/${String(unit.serial)}`, token: tokens.recipient })).json()).toMatchObject({ siteId, updatedSeq: (moved.json() as Item).seq });
    expect(await asExporter()).toEqual(before);
    const listed = (await items('/v1/units?custody=deployed&limit=500', tokens.exporter)).filter((row) => row.recipientId === unit.recipientId);
    expect(listed.every((row) => row.updatedSeq === null)).toBe(true);
  });
});
