/**
 * The serials the sequencer's queue holds, and each organisation's share of them: counted in
 * as a command is queued, out of the queue as its batch takes it, out of its organisation's
 * share as it is answered; and the refusals of a command that would pass either bound
 * (limits.sequencerQueueSerialsMax, limits.sequencerQueueSerialsPerOrganisationMax).
 */
import { DomainError, assert } from '../core/errors.ts';
import type { CommandKind } from './schemas.ts';

/** The rule of a refusal past one organisation's share of the queue's serials (answered 429, with a Retry-After of its own: server/problem.ts). */
export const organisationSerialsRule = 'sequencer-queue-serials-organisation';

export class QueueShares {
  /** Serials in the commands queued now: each holds its parsed input until its batch takes it. */
  private queuedSerials = 0;
  /**
   * Serials of each organisation's commands queued or in the batch being committed, counted
   * until they are answered: an organisation's next batch of them waits behind this one.
   */
  private readonly organisationSerials = new Map<string, number>();

  constructor(private readonly queueSerialsMax: number, private readonly organisationSerialsMax: number) {}

  /** The refusal of a command whose serials pass its organisation's share, else the queue's bound; none: undefined. */
  refusal(kind: CommandKind, organisationId: string, serials: number, queueDepth: number): DomainError | undefined {
    return this.organisationSerialsRefusal(kind, organisationId, serials) ?? this.queueSerialsRefusal(kind, serials, queueDepth);
  }

  /** A command queued: its serials count in the queue and in its organisation's share. */
  countIn(organisationId: string, serials: number): void {
    this.queuedSerials += serials;
    if (serials > 0) this.organisationSerials.set(organisationId, (this.organisationSerials.get(organisationId) ?? 0) + serials);
  }

  /** Commands a batch took out of the queue: their serials leave the queue, not their organisations' shares. */
  taken(serials: number): void {
    this.queuedSerials -= serials;
  }

  /** The queue emptied at once (answered 'unavailable' on shutdown): it holds no serials. */
  emptied(): void {
    this.queuedSerials = 0;
  }

  /** A command answered, however (accepted, refused, failed, 'unavailable'): its serials leave its organisation's share. */
  countOut(organisationId: string, serials: number): void {
    if (serials === 0) return;
    const left = (this.organisationSerials.get(organisationId) ?? 0) - serials;
    assert(left >= 0, 'an organisation\'s serials are counted out once, as they were counted in');
    if (left === 0) this.organisationSerials.delete(organisationId);
    else this.organisationSerials.set(organisationId, left);
  }

  /**
   * Bounded by serials too (limits.sequencerQueueSerialsMax): the count alone let thousands of
   * 100,000-serial inputs wait in memory. A command without serials is bounded by the count
   * only, and one with serials always fits a queue that holds none: otherwise a bound under its
   * size would refuse it for ever.
   */
  private queueSerialsRefusal(kind: CommandKind, serials: number, queueDepth: number): DomainError | undefined {
    if (serials === 0 || this.queuedSerials === 0 || this.queuedSerials + serials <= this.queueSerialsMax) return undefined;
    return new DomainError('overloaded', `the ledger has ${this.queuedSerials} serials waiting in ${queueDepth} commands, its bound is ${this.queueSerialsMax}; this ${kind} carries ${serials}; retry shortly`, {
      rule: 'sequencer-queue-serials', details: { queuedSerials: this.queuedSerials, queueSerialsMax: this.queueSerialsMax, serials },
    });
  }

  /**
   * One organisation's share of the queue's serials (limits.sequencerQueueSerialsPerOrganisationMax),
   * counted until its commands are answered: its eight 100,000-serial uploads, within the global
   * bound, held four full batches, and every other organisation's booking waited 52–60 s behind
   * them. Refused 'too_many_requests' (429: this client's share, not the server's bound;
   * nothing of it queued; a retry once its commands before are answered fits). As for the
   * global bound, a command fits when its organisation holds no serials, whatever its size.
   */
  private organisationSerialsRefusal(kind: CommandKind, organisationId: string, serials: number): DomainError | undefined {
    const held = this.organisationSerials.get(organisationId) ?? 0;
    if (serials === 0 || held === 0 || held + serials <= this.organisationSerialsMax) return undefined;
    const message = `organisation ${organisationId} has ${held} serials waiting or being committed, and one organisation may have ${this.organisationSerialsMax}; this ${kind} carries ${serials}; retry once its commands before are answered`;
    return new DomainError('too_many_requests', message, {
      rule: organisationSerialsRule, details: { organisationSerials: held, organisationSerialsMax: this.organisationSerialsMax, serials },
    });
  }
}

/** The serials an input lists, parsed or not (anything but a list counts none: its parse refuses it). */
export function countSerials(input: unknown): number {
  const serials = typeof input === 'object' && input !== null ? (input as { serials?: unknown }).serials : undefined;
  return Array.isArray(serials) ? serials.length : 0;
}
