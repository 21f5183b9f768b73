/**
 * The demo's organisations as people act as them: the parties loaded, fresh tokens for them,
 * and how a command the demo needs is said when the ledger refuses it (DemoLoadError).
 */
import type { DomainError } from '../core/errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { systemActor, type Actor } from '../ledger/permissions.ts';
import type { Role } from '../ledger/rows.ts';
import type { CommandKind, CommandRequest } from '../ledger/schemas.ts';
import { listDemoOrganisations } from '../store/demo-queries.ts';
import type { Pool } from '../store/pool.ts';
import { unconfirmedChangeMessage } from '../ledger/refusals.ts';
import * as scenario from './scenario.ts';
import type { OrgKey } from './scenario.ts';

/** A demo organisation as loaded, with the role its demo tokens get. */
export interface DemoParty {
  key: OrgKey;
  organisationId: string;
  organisation: string;
  /** Its part in the demo, for people (scenario.ts). */
  part: string;
  role: Role;
}

export interface DemoToken extends DemoParty {
  tokenId: string;
  /** Shown once: printed to stdout, never logged. */
  secret: string;
}

/** A command the demo needs refused: the scenario and the rules disagree, a bug here. */
export class DemoLoadError extends Error {
  override name = 'DemoLoadError';
}

/** The demo organisations that are loaded, in the scenario's order (a partial demo may lack some). */
export async function demoParties(pool: Pool): Promise<DemoParty[]> {
  const rows = await listDemoOrganisations(pool);
  return scenario.organisations.flatMap((org) => {
    const row = rows.find((candidate) => candidate.name === org.name);
    return row ? [partyOf(org, row.id)] : [];
  });
}

/**
 * Fresh tokens for demo organisations that are already loaded (their first secrets were shown
 * once and are gone). `which` picks the administrator (scenario.administrator) only, or one
 * token per organisation.
 */
export async function createDemoTokens(ledger: Ledger, which: 'admin' | 'all'): Promise<DemoToken[]> {
  const parties = await demoParties(ledger.pool);
  const wanted = scenario.organisations.filter((org) => which === 'all' || org.key === scenario.administrator);
  const tokens: DemoToken[] = [];
  for (const org of wanted) {
    const party = parties.find((candidate) => candidate.key === org.key);
    if (!party) throw new DemoLoadError(`demo organisation ${org.name} is missing; the demo data is incomplete`);
    tokens.push(await createToken(ledger, party));
  }
  return tokens;
}

/** A scenario organisation as loaded under `organisationId`. */
export function partyOf(org: scenario.DemoOrganisation, organisationId: string): DemoParty {
  return { key: org.key, organisationId, organisation: org.name, part: org.part, role: org.tokenRole };
}

/** A fresh token for a loaded demo party, made as the system actor, dated today. */
export async function createToken(ledger: Ledger, party: DemoParty): Promise<DemoToken> {
  const body = await submitOk(ledger, 'token.create', { organisationId: party.organisationId, role: party.role, label: `demo ${party.role} (${new Date().toISOString().slice(0, 10)})` }, systemActor);
  return { ...party, tokenId: String(body.tokenId), secret: String(body.secret) };
}

async function submitOk<K extends CommandKind>(ledger: Ledger, kind: K, input: CommandRequest<K>, actor: Actor): Promise<Record<string, unknown>> {
  const answer = await ledger.submit(kind, input, actor);
  if (!answer.ok) throw refusedError(kind, answer.error);
  return answer.body;
}

/** A command the demo needs, refused by the ledger: said with its code and rule. */
export function refusedError(kind: CommandKind, error: DomainError): DemoLoadError {
  // The load sends no Idempotency-Key, and a load stopped part-way is not taken up again.
  const message = error.message === unconfirmedChangeMessage
    ? 'the database did not confirm it, so the load stopped part-way; a demo loads only into an empty database: start again with an empty CHIPLEDGER_DATA_DIR (or DATABASE_URL naming an empty database)'
    : error.message;
  return new DemoLoadError(`couldn't load the demo: ${kind} was refused (${error.code}${error.rule ? `, ${error.rule}` : ''}): ${message}`);
}
