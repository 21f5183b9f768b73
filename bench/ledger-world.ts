/**
 * The benchmark's world, built through the ledger itself: two authorities, one exporter,
 * eight recipients, the H200, an export and an import licence with room for every
 * booking, and one allocation per recipient on each side, so bookings spread over
 * sixteen allocation rows the way a real week of bookings would.
 */
import { makeUscc } from '../src/core/uscc.ts';
import type { Answer, Ledger } from '../src/ledger/ledger.ts';
import { systemActor, type Actor } from '../src/ledger/permissions.ts';
import type { Role } from '../src/ledger/rows.ts';
import type { CommandKind, CommandRequest } from '../src/ledger/schemas.ts';

export const recipientsCount = 8;
/** Far more than 100,000 bookings of up to 10 units plus the manifest runs need. */
export const allocationUnits = 2_000_000;
export const licenceUnits = allocationUnits * recipientsCount;

export interface BenchWorld {
  exporter: Actor;
  productId: string;
  exporterOrgId: string;
  /** One pair per recipient: its allocation on the export and on the import licence. */
  pairs: Array<{ recipientOrgId: string; exportAllocationId: string; importAllocationId: string }>;
}

export async function buildBenchWorld(ledger: Ledger): Promise<BenchWorld> {
  const run = async <K extends CommandKind>(kind: K, input: CommandRequest<K>, actor: Actor): Promise<Record<string, unknown>> => accepted(kind, await ledger.submit(kind, input, actor));
  const org = async (name: string, country: string, roles: Array<'authority' | 'exporter' | 'recipient'>, uscc?: string) =>
    String((await run('organisation.register', { name, country, roles, identifiers: uscc ? { uscc } : {} }, systemActor)).organisationId);
  // Each actor with a token of its own: the ledger refuses a command whose token it does not hold (ledger/batch-apply.ts).
  const token = async (orgId: string, role: Role): Promise<Actor> => ({ id: String((await run('token.create', { organisationId: orgId, role, label: `bench ${role}` }, systemActor)).tokenId), orgId, role });
  const bis = await token(await org('Bureau of Industry and Security', 'US', ['authority']), 'authority_officer');
  const mofcom = await token(await org('商务部', 'CN', ['authority'], makeUscc('11100000000019012')), 'authority_officer');
  const exporterOrgId = await org('Bench Accelerators Inc.', 'US', ['exporter']);
  const exporter = await token(exporterOrgId, 'exporter');
  const recipients: string[] = [];
  for (let index = 0; index < recipientsCount; index += 1) {
    recipients.push(await org(`基准云计算有限公司 ${index + 1}`, 'CN', ['recipient'], makeUscc(`91110000MA00000${index + 10}`)));
  }
  const productId = String((await run('product.register', {
    model: 'H200 SXM', vendor: 'NVIDIA',
    parameters: { denseTops: 1979, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4800, memoryGb: 141, designedForDatacenter: true },
  }, bis)).productId);
  const common = { productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: licenceUnits, validFrom: '2026-01-01T00:00:00Z', validTo: '2036-01-01T00:00:00Z' };
  const exportLicenceId = String((await run('licence.create', {
    ...common, reference: 'BIS-BENCH-0001', direction: 'export', holderId: exporterOrgId,
    parties: recipients.map((organisationId) => ({ organisationId, role: 'end_user' as const })),
  }, bis)).licenceId);
  const importLicenceId = String((await run('licence.create', {
    ...common, reference: 'MOFCOM-BENCH-0001', direction: 'import', holderId: recipients[0]!,
    parties: [...recipients.slice(1).map((organisationId) => ({ organisationId, role: 'consignee' as const })), { organisationId: exporterOrgId, role: 'supplier' as const }],
  }, mofcom)).licenceId);
  await run('licence.issue', { licenceId: exportLicenceId }, bis);
  await run('licence.issue', { licenceId: importLicenceId }, mofcom);
  const pairs: BenchWorld['pairs'] = [];
  for (const recipientOrgId of recipients) {
    const exportAllocationId = String((await run('allocation.create', { licenceId: exportLicenceId, recipientId: recipientOrgId, units: allocationUnits }, bis)).allocationId);
    const importAllocationId = String((await run('allocation.create', { licenceId: importLicenceId, recipientId: recipientOrgId, units: allocationUnits }, mofcom)).allocationId);
    pairs.push({ recipientOrgId, exportAllocationId, importAllocationId });
  }
  return { exporter, productId, exporterOrgId, pairs };
}

function accepted(kind: string, answer: Answer): Record<string, unknown> {
  if (!answer.ok) throw new Error(`couldn't build the benchmark world: ${kind} was refused: ${answer.error.code}: ${answer.error.message}`);
  return answer.body;
}

/** One booking of the workload: which recipient's pair of allocations, how many units. */
export interface Booking {
  pair: number;
  units: number;
}

/** The same seeded list every run: 1-10 units, spread over the recipients. */
export function workload(count: number, random: () => number): Booking[] {
  return Array.from({ length: count }, () => ({ pair: Math.floor(random() * recipientsCount), units: 1 + Math.floor(random() * 10) }));
}
