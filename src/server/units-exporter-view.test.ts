/**
 * Where a unit runs is its recipient's to see: sites answer every other tenant 404, so the
 * exporter of a unit reads it, and its shipment's serials, without the site, and cannot
 * filter units by another's site. Authorities and auditors see it all.
 */
import { describe, expect, it } from 'vitest';
import { apiWorldPerFile, type ApiWorld } from './testing.ts';

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
