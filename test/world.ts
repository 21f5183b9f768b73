/**
 * A small world for ledger tests: two authorities, an exporter, two recipients, an
 * auditor, the H200, and an export and an import licence with allocations.
 */
import { expect } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import type { ErrorCode } from '../src/core/errors.ts';
import { makeUscc } from '../src/core/uscc.ts';
import { Ledger, type Answer } from '../src/ledger/ledger.ts';
import { systemActor, type Actor } from '../src/ledger/permissions.ts';
import type { Role } from '../src/ledger/rows.ts';
import type { CommandKind, CommandRequest } from '../src/ledger/schemas.ts';
import type { Pool } from '../src/store/pool.ts';
import { databasePerFile, type TestDatabase } from './database.ts';
import { testSealingKey } from './support/sealing-key.ts';

export interface World {
  ledger: Ledger;
  clock: ManualClock;
  actors: { bis: Actor; mofcom: Actor; exporter: Actor; alpha: Actor; beta: Actor; auditor: Actor };
  productId: string;
  exportLicenceId: string;
  importLicenceId: string;
  allocations: { alphaExport: string; alphaImport: string; betaExport: string; betaImport: string };
  run<K extends CommandKind>(kind: K, input: CommandRequest<K>, actor: Actor, key?: string): Promise<Record<string, unknown>>;
}

export function expectOk(answer: Answer): Record<string, unknown> {
  if (!answer.ok) expect.fail(`expected the command to be accepted, got ${answer.error.code}: ${answer.error.message}`);
  return answer.body;
}

/** What a refusal says (code, rule, message, details), to compare whole; an accepted command fails the test. */
export function refusalOf(answer: Answer): { code: ErrorCode; rule: string | undefined; message: string; details: Record<string, unknown> | undefined } {
  if (answer.ok) expect.fail(`expected a refusal, got ${JSON.stringify(answer.body)}`);
  return { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, details: answer.error.details };
}

/**
 * An actor with a token of its own, made by the operator as `chipledger token create` makes
 * one: the ledger refuses a command whose actor has no valid token (ledger/batch-apply.ts).
 */
export async function tokenActor(run: World['run'], orgId: string, role: Role): Promise<Actor> {
  const made = await run('token.create', { organisationId: orgId, role, label: `${role} test actor` }, systemActor);
  return { id: String(made.tokenId), orgId, role };
}

export async function buildWorld(pool: Pool, options: { licenceUnits?: number; allocationUnits?: number } = {}): Promise<World> {
  const clock = new ManualClock('2026-02-01T00:00:00Z');
  const ledger = await Ledger.open({ pool, clock, logSealingKey: testSealingKey });
  const run = async <K extends CommandKind>(kind: K, input: CommandRequest<K>, actor: Actor, key?: string) => expectOk(await ledger.submit(kind, input, actor, key));
  const org = async (name: string, country: string, roles: Array<'authority' | 'exporter' | 'recipient' | 'auditor'>, uscc?: string) =>
    String((await run('organisation.register', { name, country, roles, identifiers: uscc ? { uscc } : {} }, systemActor)).organisationId);
  const bisOrg = await org('Bureau of Industry and Security', 'US', ['authority']);
  const mofcomOrg = await org('商务部', 'CN', ['authority'], makeUscc('11100000000019012'));
  const exporterOrg = await org('Example Accelerators Inc.', 'US', ['exporter']);
  const alphaOrg = await org('甲云计算有限公司', 'CN', ['recipient'], makeUscc('91110000MA0000001'));
  const betaOrg = await org('乙智能科技有限公司', 'CN', ['recipient'], makeUscc('91330100MA0000002'));
  const auditorOrg = await org('Independent Audit LLP', 'GB', ['auditor']);
  const actors = {
    bis: await tokenActor(run, bisOrg, 'authority_officer'),
    mofcom: await tokenActor(run, mofcomOrg, 'authority_officer'),
    exporter: await tokenActor(run, exporterOrg, 'exporter'),
    alpha: await tokenActor(run, alphaOrg, 'recipient'),
    beta: await tokenActor(run, betaOrg, 'recipient'),
    auditor: await tokenActor(run, auditorOrg, 'auditor'),
  };
  const productId = String((await run('product.register', {
    model: 'H200 SXM', vendor: 'NVIDIA',
    parameters: { denseTops: 1979, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4800, memoryGb: 141, designedForDatacenter: true },
  }, actors.bis)).productId);
  const units = options.licenceUnits ?? 1_000;
  const common = { productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: units, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z' };
  const exportLicenceId = String((await run('licence.create', {
    ...common, reference: 'BIS-2026-0001', direction: 'export', holderId: exporterOrg,
    parties: [{ organisationId: alphaOrg, role: 'end_user' }, { organisationId: betaOrg, role: 'end_user' }],
  }, actors.bis)).licenceId);
  const importLicenceId = String((await run('licence.create', {
    ...common, reference: 'MOFCOM-2026-0001', direction: 'import', holderId: alphaOrg,
    parties: [{ organisationId: betaOrg, role: 'consignee' }, { organisationId: exporterOrg, role: 'supplier' }],
  }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId: exportLicenceId }, actors.bis);
  await run('licence.issue', { licenceId: importLicenceId }, actors.mofcom);
  const share = options.allocationUnits ?? Math.floor(units / 2);
  const allocate = async (licenceId: string, recipientId: string, actor: Actor) => String((await run('allocation.create', { licenceId, recipientId, units: share }, actor)).allocationId);
  const allocations = {
    alphaExport: await allocate(exportLicenceId, alphaOrg, actors.bis),
    alphaImport: await allocate(importLicenceId, alphaOrg, actors.mofcom),
    betaExport: await allocate(exportLicenceId, betaOrg, actors.bis),
    betaImport: await allocate(importLicenceId, betaOrg, actors.mofcom),
  };
  return { ledger, clock, actors, productId, exportLicenceId, importLicenceId, allocations, run };
}

/** A fresh database and world for one test file (databasePerFile). */
export function worldPerFile(ready: (world: World, database: TestDatabase) => void, options: Parameters<typeof buildWorld>[1] = {}): void {
  databasePerFile((pool) => buildWorld(pool, options), (world) => world.ledger.close(), ready);
}

/** Books a shipment for alpha by the exporter, one unit a manifest entry, with those entries as its manifest; its id. */
export async function bookListed(world: World, serials: Array<string | { serial: string; gpuUuid: string }>): Promise<string> {
  const { run, actors, productId, allocations } = world;
  return String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId,
    units: serials.length, deadline: '2026-03-01T00:00:00Z', serials,
  }, actors.exporter)).shipmentId);
}

/** Books `count` one-unit shipments for alpha at once (one batch when the queue is empty), each one accepted. */
export async function bookMany(world: World, count: number): Promise<void> {
  const { ledger, actors, allocations, productId } = world;
  const answers = await Promise.all(Array.from({ length: count }, () => ledger.submit('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 1, deadline: '2026-06-01T00:00:00Z',
  }, actors.exporter)));
  expect(answers.filter((answer) => !answer.ok)).toEqual([]);
}
