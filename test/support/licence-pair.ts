/**
 * A fresh pair of licences for one test, so that what it does to them (revoke, amend, use
 * up, let lapse) touches no other test in its file: an export licence (BIS, held by the
 * exporter, naming alpha as end user) and an import licence (MOFCOM, held by alpha, naming
 * the exporter as supplier), both issued, each with an allocation to alpha.
 */
import type { World } from '../world.ts';

export interface LicencePair {
  exportLicenceId: string;
  importLicenceId: string;
  exportAllocationId: string;
  importAllocationId: string;
}

export interface LicencePairOptions {
  /** Each licence's authorised units (default 100). */
  authorisedUnits?: number;
  /** Units allocated to alpha on each side (default: all the licence's). */
  exportUnits?: number;
  importUnits?: number;
  /** Both licences' end of validity (default 2027-01-01); they start 2026-01-01. */
  validTo?: string;
  importConditions?: Array<{ id: string; text: string; kind: 'max_units_per_shipment'; value: number }>;
  /** The import licence names beta as consignee too (a party that reads its events). */
  betaConsignee?: boolean;
  /** The allocations' period. */
  period?: { periodStart: string; periodEnd: string };
}

/** Unique references across the pairs of a test file. */
let made = 0;

export async function licencePair(world: World, options: LicencePairOptions = {}): Promise<LicencePair> {
  const { run, actors, productId } = world;
  const reference = ++made;
  const authorisedUnits = options.authorisedUnits ?? 100;
  const common = { productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits, validFrom: '2026-01-01T00:00:00Z', validTo: options.validTo ?? '2027-01-01T00:00:00Z' };
  const exportLicenceId = String((await run('licence.create', {
    ...common, reference: `BIS-PAIR-${reference}`, direction: 'export', holderId: actors.exporter.orgId, parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
  }, actors.bis)).licenceId);
  const importLicenceId = String((await run('licence.create', {
    ...common, reference: `MOFCOM-PAIR-${reference}`, direction: 'import', holderId: actors.alpha.orgId,
    parties: [...(options.betaConsignee ? [{ organisationId: actors.beta.orgId, role: 'consignee' as const }] : []), { organisationId: actors.exporter.orgId, role: 'supplier' as const }],
    conditions: options.importConditions ?? [],
  }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId: exportLicenceId }, actors.bis);
  await run('licence.issue', { licenceId: importLicenceId }, actors.mofcom);
  const allocate = async (licenceId: string, units: number, actor: typeof actors.bis) =>
    String((await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units, ...options.period }, actor)).allocationId);
  return {
    exportLicenceId,
    importLicenceId,
    exportAllocationId: await allocate(exportLicenceId, options.exportUnits ?? authorisedUnits, actors.bis),
    importAllocationId: await allocate(importLicenceId, options.importUnits ?? authorisedUnits, actors.mofcom),
  };
}
