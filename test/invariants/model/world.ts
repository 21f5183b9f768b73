/**
 * The world every run starts from, made once as a database template: the shared test world,
 * and beside it the licences a run can use up or outlive, sites that fill up, and shipments
 * already under way.
 */
import { systemActor, type Actor } from '../../../src/ledger/permissions.ts';
import type { CommandRequest } from '../../../src/ledger/schemas.ts';
import { tokenActor, type World } from '../../world.ts';
import { createWorldTemplate, type WorldTemplate } from '../../support/world-template.ts';
import { templateSerials } from './commands.ts';

let template: WorldTemplate | undefined;

/**
 * The second exporter (as test/support/server.ts makes "exporter2"): its own export licence,
 * and an import licence of beta's that names it as supplier (the first exporter is not), each
 * large and naming both recipients, with 20 units allocated to beta on each. Ids are the same
 * in every copy of the template.
 */
export interface SecondExporter {
  actor: Actor;
  licenceIds: { export: string; import: string };
}
let second: SecondExporter | undefined;

/** The second exporter, once the template is made (runScenario makes it first). */
export function secondExporter(): SecondExporter {
  if (second === undefined) throw new Error('the model world\u2019s template is not made yet: call worldTemplate() first');
  return second;
}

/**
 * The licences a run can use up or outlive. The large licences (60 units, a year) never
 * end in a run: 24 serials, and days of clock. Besides them: an export licence of 2 units,
 * both allocated to alpha and booked by a shipment ready to ship, used up when it ships;
 * and an import licence (5 units each for alpha and beta) whose validity ends 5 days after
 * the world's start, which one advance of the clock outlives. Each is issued by the
 * authority of its side's country (BIS the export from the US, MOFCOM the import into China).
 * A shipment to beta is on its way from the start, and two of alpha's units are deployed.
 * A second exporter ships to beta under licences of its own (SecondExporter).
 */
const smallExportUnits = 2;
const shortImportValidTo = '2026-02-06T00:00:00Z';

/**
 * The world of every run: small allocations (20 of 60 units), the licences above, three sites
 * that fill up (2, 1 and 1 units), and before them a site of alpha's abroad, which takes none
 * of its units (deployment-destination).
 */
export async function worldTemplate(): Promise<WorldTemplate> {
  template ??= await createWorldTemplate({
    licenceUnits: 60,
    allocationUnits: 20,
    async prepare(world) {
      const { actors, productId, run } = world;
      const site = (actor: Actor, name: string, capacityUnits: number) =>
        run('site.register', { name, province: 'Guizhou', city: 'Gui\u2019an', latitude: 26.4, longitude: 106.4, capacityUnits }, actor);
      // The oldest site, so that the others keep their picks (counted from the newest).
      await run('site.register', { name: 'Johor DC 1', province: 'Johor', city: 'Kulai', country: 'MY', latitude: 1.66, longitude: 103.6, capacityUnits: 5 }, actors.alpha);
      const alphaFirstSite = String((await site(actors.alpha, 'Gui\u2019an DC 1', 2)).siteId);
      await site(actors.alpha, 'Gui\u2019an DC 2', 1);
      await site(actors.beta, 'Zhongwei DC 1', 1);
      second = await secondExporterOf(world);
      const licence = async (input: Omit<CommandRequest<'licence.create'>, 'productIds' | 'origin' | 'destination' | 'validFrom'>, authority: Actor) => {
        const licenceId = String((await run('licence.create', { ...input, productIds: [productId], origin: 'US', destination: 'CN', validFrom: '2026-01-01T00:00:00Z' }, authority)).licenceId);
        await run('licence.issue', { licenceId }, authority);
        return licenceId;
      };
      const smallExport = await licence({
        reference: 'BIS-2026-SMALL', direction: 'export', holderId: actors.exporter.orgId, authorisedUnits: smallExportUnits, validTo: '2027-01-01T00:00:00Z',
        parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }, { organisationId: actors.beta.orgId, role: 'end_user' }],
      }, actors.bis);
      const smallAllocation = String((await run('allocation.create', { licenceId: smallExport, recipientId: actors.alpha.orgId, units: smallExportUnits }, actors.bis)).allocationId);
      const shortImport = await licence({
        reference: 'MOFCOM-2026-SHORT', direction: 'import', holderId: actors.beta.orgId, authorisedUnits: 10, validTo: shortImportValidTo,
        parties: [{ organisationId: actors.alpha.orgId, role: 'consignee' }, { organisationId: actors.exporter.orgId, role: 'supplier' }],
      }, actors.mofcom);
      for (const recipient of [actors.alpha, actors.beta]) await run('allocation.create', { licenceId: shortImport, recipientId: recipient.orgId, units: 5 }, actors.mofcom);
      // A booking of every unit of the small licence, ready to ship: whichever ship reaches
      // it uses the licence up (unless a run cancels it, or suspends the licence first).
      await run('shipment.book', {
        exportAllocationId: smallAllocation, importAllocationId: world.allocations.alphaImport, productId, units: smallExportUnits,
        deadline: '2026-11-01T00:00:00Z', serials: templateSerials.booked,
      }, actors.exporter);
      // A shipment on its way to beta from the start: what cancel and attach must refuse.
      const inTransit = String((await run('shipment.book', {
        exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport, productId, units: 1,
        deadline: '2026-03-01T00:00:00Z', serials: templateSerials.inTransit,
      }, actors.exporter)).shipmentId);
      await run('shipment.ship', { shipmentId: inTransit }, actors.exporter);
      // Two units delivered to alpha and deployed at its first site, which they fill: moves,
      // and deployments refused for want of room, from a run's first steps.
      const delivered = String((await run('shipment.book', {
        exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId, units: 2,
        deadline: '2026-03-01T00:00:00Z', serials: templateSerials.deployed,
      }, actors.exporter)).shipmentId);
      await run('shipment.ship', { shipmentId: delivered }, actors.exporter);
      for (const kind of ['shipment.clear', 'shipment.deliver'] as const) await run(kind, { shipmentId: delivered }, actors.alpha);
      await run('units.deploy', { siteId: alphaFirstSite, serials: templateSerials.deployed }, actors.alpha);
    },
  });
  return template;
}

/**
 * Made before the small and short licences, so that those stay the newest of their
 * direction (the tour's and the generators' pick 0).
 */
async function secondExporterOf(world: World): Promise<SecondExporter> {
  const { actors, productId, run } = world;
  const orgId = String((await run('organisation.register', { name: 'Second Silicon Corp.', country: 'US', roles: ['exporter'] }, systemActor)).organisationId);
  const actor: Actor = await tokenActor(run, orgId, 'exporter');
  const common = { productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 60, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z' };
  const recipients = [{ organisationId: actors.alpha.orgId, role: 'end_user' as const }, { organisationId: actors.beta.orgId, role: 'end_user' as const }];
  const exportId = String((await run('licence.create', { ...common, reference: 'BIS-2026-0002', direction: 'export', holderId: orgId, parties: recipients }, actors.bis)).licenceId);
  const importId = String((await run('licence.create', {
    ...common, reference: 'MOFCOM-2026-0002', direction: 'import', holderId: actors.beta.orgId,
    parties: [{ organisationId: actors.alpha.orgId, role: 'consignee' }, { organisationId: orgId, role: 'supplier' }],
  }, actors.mofcom)).licenceId);
  for (const [licenceId, authority] of [[exportId, actors.bis], [importId, actors.mofcom]] as const) {
    await run('licence.issue', { licenceId }, authority);
    await run('allocation.create', { licenceId, recipientId: actors.beta.orgId, units: 20 }, authority);
  }
  return { actor, licenceIds: { export: exportId, import: importId } };
}

/**
 * Drops the template database once every run is done, and forgets it and its second
 * exporter: a later file in this worker that asks for the world makes it again.
 */
export async function dropWorldTemplate(): Promise<void> {
  const dropped = template;
  template = undefined;
  second = undefined;
  await dropped?.drop();
}
