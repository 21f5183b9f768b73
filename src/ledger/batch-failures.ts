/**
 * How the sequencer words a batch that failed, for its log: which failures are the database
 * being away (one reason for an outage, said without a stack), which are bugs (refusalOrBug),
 * what reason a failure counts as (outage.ts says each once), and how a batch, or the command
 * it came down to, is named in a line; and which organisations a failed batch came down to,
 * whose commands then run alone for a while (Culprits).
 */
import { isDomainError, type DomainError } from '../core/errors.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import type { Pending } from './batch-apply.ts';
import { isTransientDatabaseError, toRefusal } from './refusals.ts';

/**
 * Whether a failure is the database not there, slow or refusing "not now" (a lost connection,
 * a bound run out, a lock not had, a server going away): one reason for an outage, and said
 * without a stack.
 */
export function isDatabaseFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof Error && !isDomainError(error) && (isDatabaseUnavailable(error) || (typeof code === 'string' && isTransientDatabaseError(code)));
}

/**
 * What an 'unavailable' failure is, for saying each once an outage: every way of the database
 * being slow or away is one (a freeze alternates bounds run out, lock timeouts and lost
 * connections); a refusal of ours by its rule (its message carries numbers that change from
 * batch to batch); anything else by its message.
 */
export function unavailableReason(error: unknown): string {
  if (isDatabaseFailure(error)) return 'the database is slow or away';
  if (isDomainError(error)) return error.rule === undefined ? error.message : `${error.rule}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** A database failure as it is logged: its message, name and code, without the frames. */
export function withoutStack(error: Error): Error {
  const said = new Error(error.message);
  said.name = error.name;
  said.stack = `${error.name}: ${error.message}`;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? Object.assign(said, { code }) : said;
}

/** The refusal a failure is answered with, or null for a bug (toRefusal rethrows those). */
export function refusalOrBug(error: unknown): DomainError | null {
  try {
    return toRefusal(error);
  } catch {
    return null;
  }
}

/** A batch as a log line names it: how many commands, of which kinds (the sweep among them). */
export function describeBatch(batch: Pending[]): string {
  const kinds = new Map<string, number>();
  for (const pending of batch) kinds.set(pending.kind, (kinds.get(pending.kind) ?? 0) + 1);
  const listed = [...kinds].slice(0, describedKindsMax).map(([kind, count]) => (count === 1 ? kind : `${count} ${kind}`));
  const more = kinds.size > describedKindsMax ? `, ${kinds.size - describedKindsMax} more kinds` : '';
  return `a batch of ${batch.length} ${batch.length === 1 ? 'command' : 'commands'} (${listed.join(', ')}${more})`;
}
const describedKindsMax = 4;

/**
 * The command a failing batch came down to, as its line names it: its kind, its organisation
 * and its Idempotency-Key, which the client that got the 500 knows (a token secret never
 * reaches here as a key: the API refuses one before the body is read, server/commands.ts).
 */
export function describeAlone(pending: Pending): string {
  const key = pending.idempotency === null ? '' : `, Idempotency-Key ${pending.idempotency.key}`;
  return `${pending.kind} (organisation ${pending.actor.orgId}${key})`;
}

/**
 * The line for a write the database refused in the command a failed batch came down to (a
 * constraint, a trigger's RAISE, a value it cannot hold: refusals.ts isRefusedWrite). The
 * ledger's checks let it through, a gap in them or a race with another writer, and the caller
 * is answered in fixed words: this line is the only trace, so it names the command, its
 * organisation, the rule and the database's own words (a trigger's text may name another
 * tenant's records: the operator's to read, never the caller's). The error goes with it
 * withoutStack, which also leaves out the fields that quote the rows written (detail, where).
 */
export function describeRefusedWrite(pending: Pending, refusal: DomainError, error: Error): string {
  return `${describeAlone(pending)} was refused by the database, rule ${refusal.rule ?? 'none'} (answered ${refusal.code}), which the ledger's checks let through: ${error.message}`;
}

/**
 * Organisations whose command a failed batch came down to: a write the database refused as
 * the command's own, or a failure nobody recognises, in a batch the sequencer then ran again in
 * halves (about two failed transactions per culprit, each one waited for by every command in
 * the batch, other organisations' among them). For limits.culpritAloneMs after its last such
 * failure, an organisation's commands run in batches of their own (batch-choice.ts chooseBatch): a
 * culprit that repeats fails alone, at the cost of its own transactions, not its neighbours'.
 *
 * Held in memory, per process: a restart forgets it, and the first failure after it costs its
 * batch one split again. Entries past their period are dropped as new ones come, so it holds at
 * most the organisations that failed a batch within the last period.
 */
export class Culprits {
  private readonly aloneUntilMs = new Map<string, number>();

  constructor(private readonly aloneMs: number) {}

  /** An organisation's command failed alone, as the culprit of its batch, at `nowMs` (a monotonic clock). */
  failed(organisationId: string, nowMs: number): void {
    for (const [organisation, untilMs] of this.aloneUntilMs) if (untilMs <= nowMs) this.aloneUntilMs.delete(organisation);
    this.aloneUntilMs.set(organisationId, nowMs + this.aloneMs);
  }

  /** Whether the organisation's commands run alone at `nowMs`. */
  runsAlone(organisationId: string, nowMs: number): boolean {
    const untilMs = this.aloneUntilMs.get(organisationId);
    return untilMs !== undefined && nowMs < untilMs;
  }
}
