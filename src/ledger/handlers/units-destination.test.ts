/**
 * Sites have a country, and a unit is deployed only in the country its shipment was imported
 * into (migration 072, rule deployment-destination): a site abroad would take it out of its
 * import licence, a re-export. The ledger refuses it, naming both countries, and changes
 * nothing; the database refuses it written around the ledger, and the re-check names it.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { apiWorldPerFile, type ApiWorld } from '../../../test/support/server.ts';
import { firstRefusal, partOnChangedState } from '../../../test/support/rolled-back.ts';
import { expectOk, refusalOf } from '../../../test/world.ts';

let database: TestDatabase;
let api: ApiWorld;

apiWorldPerFile((made, madeDatabase) => {
  api = made;
  database = madeDatabase;
});

const site = { name: 'Johor DC 1', province: 'Johor', city: 'Kulai', latitude: 1.66, longitude: 103.6, capacityUnits: 1_000 };
const register = async (country?: string) => String(expectOk(await api.world.ledger.submit('site.register', { ...site, ...(country === undefined ? {} : { country }) }, api.world.actors.alpha)).siteId);

async function siteRow(siteId: string): Promise<{ country: string; deployed_units: number }> {
  return (await database.pool.query('SELECT country, deployed_units FROM sites WHERE id = $1', [siteId])).rows[0];
}

describe('a site abroad', () => {
  it('takes no unit imported elsewhere: refused, naming both countries, with nothing changed', async () => {
    const abroad = await register('MY');
    expect(await siteRow(abroad)).toEqual({ country: 'MY', deployed_units: 0 });
    const shipment = await api.shipment('own', 'delivered', 2);
    const [first, second] = shipment.serials as [string, string];
    expect(refusalOf(await api.world.ledger.submit('units.deploy', { siteId: abroad, serials: [first, second] }, api.world.actors.alpha))).toEqual({
      code: 'licence_not_valid', rule: 'deployment-destination',
      message: `unit ${first} was imported into CN (shipment ${shipment.id}); site ${abroad} is in MY: a unit is deployed only in the country it was imported into (taking it abroad is a re-export, which needs a licence of its own)`,
      details: { serial: first, shipmentId: shipment.id, destination: 'CN', siteId: abroad, siteCountry: 'MY' },
    });
    expect(await siteRow(abroad)).toEqual({ country: 'MY', deployed_units: 0 });
    expect((await database.pool.query('SELECT DISTINCT custody FROM units WHERE serial = ANY($1)', [shipment.serials])).rows).toEqual([{ custody: 'delivered' }]);

    // Deployed at home first, it is not moved abroad either.
    expectOk(await api.world.ledger.submit('units.deploy', { siteId: api.sites.alpha, serials: [first] }, api.world.actors.alpha));
    expect(refusalOf(await api.world.ledger.submit('units.deploy', { siteId: abroad, serials: [first] }, api.world.actors.alpha))).toMatchObject({ rule: 'deployment-destination' });
    expect((await database.pool.query('SELECT site_id FROM units WHERE serial = $1', [first])).rows).toEqual([{ site_id: api.sites.alpha }]);
  });

  it("is in the organisation's country when none is given, and a site of that country takes its units", async () => {
    const home = await register();
    expect(await siteRow(home)).toEqual({ country: 'CN', deployed_units: 0 });
    const named = await register('CN');
    const shipment = await api.shipment('own', 'delivered', 2);
    expectOk(await api.world.ledger.submit('units.deploy', { siteId: home, serials: [shipment.serials[0]!] }, api.world.actors.alpha));
    expectOk(await api.world.ledger.submit('units.deploy', { siteId: named, serials: [shipment.serials[1]!] }, api.world.actors.alpha));
    const read = await api.request({ method: 'GET', url: `/v1/sites/${home}`, token: api.tokens.recipient });
    expect([read.statusCode, read.json().country]).toEqual([200, 'CN']);
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('is refused a country that is not one, through the API, with nothing registered', async () => {
    const before = (await database.pool.query('SELECT count(*)::int AS n FROM sites')).rows[0].n;
    for (const country of ['XX', 'my', 'MYS', 'EU']) {
      const answer = await api.request({ method: 'POST', url: '/v1/sites', token: api.tokens.recipient, body: { ...site, country } });
      expect([answer.statusCode, answer.json().code], country).toEqual([400, 'invalid_input']);
    }
    expect((await database.pool.query('SELECT count(*)::int AS n FROM sites')).rows[0].n).toBe(before);
  });
});

describe('the database, written around the ledger', () => {
  it("refuses a unit put at a site abroad, and a site's country changed", async () => {
    const abroad = await register('MY');
    const shipment = await api.shipment('own', 'delivered', 1);
    const serial = shipment.serials[0]!;
    expect(await firstRefusal(database.pool,
      ["UPDATE units SET custody = 'deployed', site_id = $2 WHERE serial = $1", [serial, abroad]],
      ['UPDATE sites SET deployed_units = deployed_units + 1 WHERE id = $1', [abroad]])).toEqual({
      code: '23514', message: `unit ${serial} was imported into CN (shipment ${shipment.id}); site ${abroad} is in MY: a unit is deployed only in the country it was imported into`,
    });
    expect(await firstRefusal(database.pool, ["UPDATE sites SET country = 'CN' WHERE id = $1", [abroad]]))
      .toMatchObject({ message: `site ${abroad} keeps what site.register made it; only its count of deployed units changes, as units are deployed there and moved away` });
  });

  it('is re-checked: a unit deployed abroad is named', async () => {
    const abroad = await register('MY');
    const shipment = await api.shipment('own', 'delivered', 1);
    const serial = shipment.serials[0]!;
    const found = await partOnChangedState(database.pool, 'ledger_check_unit_owners', async (client) => {
      await client.query("UPDATE units SET custody = 'deployed', site_id = $2 WHERE serial = $1", [serial, abroad]);
      await client.query('UPDATE sites SET deployed_units = deployed_units + 1 WHERE id = $1', [abroad]);
    });
    expect(found).toEqual([{ invariant: 'invariant-3', subject: serial, detail: `deployed at site ${abroad} in MY, but it was imported into CN (shipment ${shipment.id})` }]);
  });
});
