/**
 * What a migration's unit triggers cost a deployment: 100,000 delivered units deployed
 * at one site in one units.deploy, end to end, with the triggers as written and with them
 * dropped, in turn on fresh databases of one durable embedded PostgreSQL (medians). (The
 * first version of 020 checked each row in a row trigger: 4,723 against 3,571 ms.)
 * Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/deploy-trigger.ts [runs per side] [020|022]
 */
import { Ledger } from '../../src/ledger/ledger.ts';
import { systemActor, type Actor } from '../../src/ledger/permissions.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';
import { bookManifestShipment } from './manifest-shipment.ts';

const runs = Number(process.argv[2] ?? 3);
/** The triggers dropped on the 'without' side, by migration. */
const dropped: Record<string, string> = {
  '020': 'DROP TRIGGER units_sites_update ON units; DROP TRIGGER units_sites_insert ON units; DROP TRIGGER units_keep_recipient ON units',
  '022': 'DROP TRIGGER units_keep_end_state ON units',
};
const migration = process.argv[3] ?? '020';
if (!(migration in dropped)) throw new Error(`which migration's triggers: one of ${Object.keys(dropped).join(', ')}, not "${migration}"`);
const units = 100_000;
const server = await startBenchServer('deploy-trigger');
const timings: Record<'with' | 'without', number[]> = { with: [], without: [] };
/** Listing and shipping the same units: 100,000 rows inserted, then updated, which the statement triggers scan. */
const shipTimings: Record<'with' | 'without', number[]> = { with: [], without: [] };
const manifestTimings: Record<'with' | 'without', number[]> = { with: [], without: [] };
try {
  for (let run = 0; run < runs; run += 1) {
    for (const side of ['with', 'without'] as const) {
      const shipment = await bookManifestShipment(server, `deploy-${side}-${run}`, units);
      if (side === 'without') await shipment.pool.query(dropped[migration]!);
      const ledger = await Ledger.open({ pool: shipment.pool });
      // Each with a token of its own: the ledger refuses a command whose token it does not hold.
      const token = async (orgId: string, role: 'recipient' | 'exporter'): Promise<Actor> => {
        const made = await ledger.submit('token.create', { organisationId: orgId, role, label: `bench ${role}` }, systemActor);
        if (!made.ok) throw new Error(`token.create: ${made.error.message}`);
        return { id: String(made.body.tokenId), orgId, role };
      };
      const recipient = await token(shipment.recipientOrgId, 'recipient');
      const exporter = await token((await shipment.pool.query<{ exporter_org_id: string }>('SELECT exporter_org_id FROM shipments WHERE id = $1', [shipment.shipmentId])).rows[0]!.exporter_org_id, 'exporter');
      const step = async (kind: Parameters<Ledger['submit']>[0], input: Record<string, unknown>, actor: Actor) => {
        const answer = await ledger.submit(kind, input as never, actor);
        if (!answer.ok) throw new Error(`${kind}: ${answer.error.message}`);
        return answer.body;
      };
      const manifestStarted = performance.now();
      await step('manifest.attach', { shipmentId: shipment.shipmentId, serials: shipment.serials }, exporter);
      manifestTimings[side].push(performance.now() - manifestStarted);
      const shipStarted = performance.now();
      await step('shipment.ship', { shipmentId: shipment.shipmentId }, exporter);
      shipTimings[side].push(performance.now() - shipStarted);
      await step('shipment.clear', { shipmentId: shipment.shipmentId }, recipient);
      await step('shipment.deliver', { shipmentId: shipment.shipmentId }, recipient);
      const site = await step('site.register', { name: 'Bench DC', province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: units }, recipient);
      const started = performance.now();
      await step('units.deploy', { siteId: String(site.siteId), serials: shipment.serials }, recipient);
      timings[side].push(performance.now() - started);
      console.log(`run ${run + 1}, triggers ${side === 'with' ? 'as written' : 'dropped'}: manifest ${Math.round(manifestTimings[side].at(-1)!)} ms, deploy ${Math.round(timings[side].at(-1)!)} ms, ship ${Math.round(shipTimings[side].at(-1)!)} ms`);
      await ledger.close();
      await shipment.pool.end();
    }
  }
  console.log(`100,000 units, median of ${runs}: deployed with the triggers ${Math.round(median(timings.with))} ms, without ${Math.round(median(timings.without))} ms; shipped with ${Math.round(median(shipTimings.with))} ms, without ${Math.round(median(shipTimings.without))} ms; listed with ${Math.round(median(manifestTimings.with))} ms, without ${Math.round(median(manifestTimings.without))} ms`);
} finally {
  await server.stop();
}
