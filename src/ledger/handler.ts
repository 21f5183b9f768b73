/**
 * The shape every command handler has, and the refusals they share.
 *
 * A handler first names the rows it needs (keys), so that the sequencer can load a whole
 * batch in a few statements; then run() checks the command against the batch's state and
 * changes it. run() may throw a DomainError at any point: the state is rolled back to
 * where the command started.
 */
import { DomainError, formatUnits } from '../core/errors.ts';
import type { BatchKeys } from '../store/batch-keys.ts';
import type { Actor } from './permissions.ts';
import type { CommandInput, CommandKind } from './schemas.ts';
import type { BatchState } from './state.ts';

export interface CommandContext {
  state: BatchState;
  actor: Actor;
  /** The batch's time: every command in a batch happens at the same instant. */
  at: string;
  /** The sequence number this command's (first) event gets if it is accepted. */
  seq: number;
}

/** One event of a command: what it is about, who may read it, and what it records. */
export interface EventPart {
  /** The main thing the command made or changed (L-7, S-12, ...). */
  subjectId: string | null;
  /**
   * The further records the event is about, besides its subject, none twice and never the
   * subject itself: the sites units left, each shipment of an ending across several, the
   * licence an allocation is created or resized under. Each one's history (GET
   * /v1/events?subjectId=) lists the event too (event_subjects, migrations 038 and 040). Only
   * records that every reader of the event may be told it concerns: a history is filtered by
   * who reads the event, not by whose record it is (an event the exporter reads names no site).
   *
   * A history does not hold every event that changed its record's counts. A licence's holds
   * its own commands, the events whose subject it is (used up by shipping, expired by the
   * sweep) and the creation and resizes of the allocations under it; an allocation's holds its
   * creation and resizes. The bookings, ships, cancels and expiries that move an allocation's
   * reservedUnits and shippedUnits, and a licence's shippedUnits, are their shipments' events,
   * each in its shipment's history alone: naming the licences and allocations on them would
   * add event_subjects rows to every booking, the hot write path, and put every booking under
   * a licence in its history. So a licence's updatedSeq, the event that last changed it, may
   * name a shipment's event that its history does not list.
   */
  moreSubjectIds?: string[];
  /** Organisations that may read the event besides authorities and auditors. */
  orgIds: string[];
  /** What the event records beyond the command's input: made ids, numbers, transitions. */
  effects: Record<string, unknown>;
  /**
   * The event records no input (null), only its effects: for a further event read by
   * organisations the command's input is not theirs to read (a licence used up by another
   * recipient's shipment must not tell its holder that shipment's id).
   */
  withoutInput?: true;
}

/** A command's first event (the outcome's own part), its answer, and any further events. */
export interface Outcome extends EventPart {
  /** What the caller gets back. */
  answer: Record<string, unknown>;
  /** The events record the input without these fields (secrets). */
  redact?: string[];
  /**
   * Further events of the same command, at the seqs right after the first (context.seq + 1,
   * + 2, ...), in this order. For a command that changes records of several tenants at
   * once (the sweep): one event per record, each read only by that record's parties.
   */
  moreEvents?: EventPart[];
}

export interface Handler<K extends CommandKind> {
  kind: K;
  keys(input: CommandInput<K>, keys: BatchKeys, actor: Actor): void;
  run(context: CommandContext, input: CommandInput<K>): Outcome;
}

/** Ids made by a command carry its event's sequence number: unique, never reused. */
export function newId(prefix: string, context: CommandContext): string {
  return `${prefix}-${context.seq}`;
}

export const refuse = {
  notFound(what: string, id: string): DomainError {
    return new DomainError('not_found', `${what} ${id} was not found`, { details: { [what]: id } });
  },
  conflict(rule: string, message: string, details?: Record<string, unknown>): DomainError {
    return new DomainError('conflict', message, { rule, ...(details ? { details } : {}) });
  },
  /** `rule`: where a rule of the domain, not the caller's role, forbids it (licence-authority). */
  forbidden(message: string, rule?: string): DomainError {
    return new DomainError('forbidden', message, rule === undefined ? undefined : { rule });
  },
  invalid(rule: string, message: string, details?: Record<string, unknown>): DomainError {
    return new DomainError('invalid_input', message, { rule, ...(details ? { details } : {}) });
  },
  licence(rule: string, message: string, details?: Record<string, unknown>): DomainError {
    return new DomainError('licence_not_valid', message, { rule, ...(details ? { details } : {}) });
  },
  units(rule: string, message: string, details: Record<string, unknown>): DomainError {
    return new DomainError('insufficient_units', message, { rule, details });
  },
};

export { formatUnits };

/** Authorities and auditors see everything; everyone else only what names their org. */
export function seesAll(actor: Actor): boolean {
  return actor.role === 'authority_admin' || actor.role === 'authority_officer' || actor.role === 'auditor';
}
