/**
 * The units list's site filter (store/read-queries.ts listUnits): read by units_site, (site_id,
 * serial) over the deployed units (044), from the cursor on; and a tenant's filter on a site
 * that is not its own answered empty without reading any unit (a unit is deployed only at a
 * site of its recipient, 020).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';
import type { TestDatabase } from '../../test/database.ts';
import { listUnits } from './read-queries.ts';
import type { Pool } from './pool.ts';
import type { Viewer } from './visibility.ts';

let api: ApiWorld;
let database: TestDatabase;

apiWorldPerFile((made, db) => {
  api = made;
  database = db;
});

/** Alpha's small site: a few of the many units, most of them alpha's too. */
let smallSite: string;

beforeAll(async () => {
  const { world } = api;
  const site = async (name: string, actor: typeof world.actors.alpha) => String((await world.run('site.register', { name, province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 100_000 }, actor)).siteId);
  smallSite = await site('Small', world.actors.alpha);
  const bigSite = await site('Big', world.actors.alpha);
  const own = await api.shipment('own', 'delivered', 6_000);
  const other = await api.shipment('other', 'delivered', 2_000);
  await world.run('units.deploy', { siteId: smallSite, serials: own.serials.filter((_, index) => index % 100 === 7) }, world.actors.alpha);
  await world.run('units.deploy', { siteId: bigSite, serials: own.serials.slice(0, 3_000).filter((_, index) => index % 100 !== 7) }, world.actors.alpha);
  await world.run('units.deploy', { siteId: api.sites.beta, serials: other.serials.slice(0, 1_500) }, world.actors.beta);
  await database.pool.query('VACUUM ANALYZE units, sites, shipments');
}, 120_000);

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** Every page of the units at `siteId` as `viewer` lists them, and each statement sent. */
async function pages(viewer: Viewer, siteId: string, limit: number): Promise<{ serials: string[]; sent: Array<{ text: string; values: unknown[] }> }> {
  const sent: Array<{ text: string; values: unknown[] }> = [];
  const spy = { query: (text: string, values: unknown[]) => (sent.push({ text, values }), database.pool.query(text, values)) } as unknown as Pool;
  const serials: string[] = [];
  let after: string | null = null;
  do {
    const page = await listUnits(spy, viewer, { after, limit }, { siteId });
    serials.push(...page.rows.map((row) => row.serial));
    after = page.nextAfter;
    expect(sent.length, 'pages end').toBeLessThan(50);
  } while (after !== null);
  return { serials, sent };
}

async function planOf({ text, values }: { text: string; values: unknown[] }): Promise<PlanNode[]> {
  return nodes((await database.pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values)).rows[0]['QUERY PLAN'][0].Plan as PlanNode);
}

const describePlan = (plan: PlanNode[]) => JSON.stringify(plan.map((node) => [node['Node Type'], node['Index Name'] ?? node['Relation Name'], node['Index Cond'], node['Actual Rows'], node['Actual Loops']]));

describe('the units site filter', () => {
  it('answers a tenant empty on a site that is not its own, reading no unit', async () => {
    const alphaUnits = await listUnits(database.pool, { orgId: api.orgs.alpha, allocations: 'received' }, { after: null, limit: 10 }, { siteId: smallSite });
    expect(alphaUnits.rows).toHaveLength(10);
    for (const orgId of [api.orgs.beta, api.orgs.exporter]) {
      const { serials, sent } = await pages({ orgId, allocations: orgId === api.orgs.beta ? 'received' : 'related' }, smallSite, 100);
      expect(serials).toEqual([]);
      const plan = await planOf(sent[0]!);
      const unitScans = plan.filter((node) => node['Relation Name'] === 'units');
      expect(unitScans.length, describePlan(plan)).toBeGreaterThan(0);
      for (const scan of unitScans) expect(scan['Actual Loops'], describePlan(plan)).toBe(0);
    }
  });

  it('pages through a site\'s units by units_site, from the cursor on, for its owner and for an authority', async () => {
    const truth = (await database.pool.query<{ serial: string }>('SELECT serial FROM units WHERE site_id = $1 ORDER BY serial', [smallSite])).rows.map((row) => row.serial);
    expect(truth).toHaveLength(60);
    for (const viewer of [{ orgId: api.orgs.alpha, allocations: 'received' }, { orgId: null, allocations: 'related' }] as const) {
      const { serials, sent } = await pages(viewer, smallSite, 25);
      expect(serials, viewer.orgId ?? 'an authority').toEqual(truth);
      expect(sent).toHaveLength(3);
      // The second page: the site's units after the cursor, by index (in order, or a bitmap
      // of them sorted, as PostgreSQL finds cheaper), and none of the site's before it.
      const plan = await planOf(sent[1]!);
      const scans = plan.filter((node) => node['Index Name'] !== undefined && node['Index Name'] !== 'shipments_pkey' && node['Index Name'] !== 'sites_pkey');
      expect(scans.map((node) => node['Index Name']), describePlan(plan)).toEqual(['units_site']);
      expect(String(scans[0]!['Index Cond']), describePlan(plan)).toMatch(/site_id = .*serial >/);
      expect(scans[0]!['Actual Rows'], describePlan(plan)).toBeLessThanOrEqual(truth.length - 25);
    }
  });
});
