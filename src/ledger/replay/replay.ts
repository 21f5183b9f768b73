/**
 * Replays the log: every command its events record is sent again, in commit order and at its
 * recorded time, through this release's ledger on an empty database, and each event the
 * replay makes must be the one the log holds (every field but its random nonce). What the
 * rules make of the log's commands is then the state to hold the database's to
 * (store/state-diff.ts): a row changed around the ledger, consistently or not, differs.
 *
 * The replay stops at the first event it cannot make again: a command refused, or one that
 * makes other events than the log's. Ids carry the seq of the event that made them
 * (handler.ts newId), so past that point every id would differ and nothing after it could be
 * compared; the report names that event. Events an earlier release accepted under rules this
 * one no longer has stop it there too: the report says which rule.
 */
import { ManualClock } from '../../core/clock.ts';
import type { Pool, PoolClient } from '../../store/pool.ts';
import type { Violation } from '../../store/violations.ts';
import { Ledger } from '../ledger.ts';
import { comparableText, eventDifference, recordedBody, recordedCommand, recordsSerials, type RecordedBody, type RecordedCommand, type RecordedEvent } from './recorded.ts';

/** The invariant name of what a replay finds. */
export const replayInvariant = 'replay';

/** Events read from the log per query: a page of bodies (a serial list is read on its own, only where one is recorded). */
const recordedPageEvents = 500;

export interface ReplayReport {
  /** Events the replay made as the log records them, from the first on. */
  replayed: number;
  /** The first event the replay could not make as the log records it; the states were not compared past it. */
  divergence?: Violation;
}

/**
 * Replays the log's first `size` events, read through `source` (one snapshot: the caller's
 * transaction), into `target`, a migrated database holding no event. `onProgress` is told
 * how many events are done after each group of commands.
 */
export async function replayLog(source: PoolClient, target: Pool, size: number, onProgress?: (done: number) => void): Promise<ReplayReport> {
  const clock = new ManualClock(new Date(0));
  const ledger = await Ledger.open({ pool: target, clock, rowCacheRows: 0 });
  try {
    const log = new RecordedEvents(source, size);
    let seq = 0;
    while (seq < size) {
      const group = await nextGroup(log, seq);
      if (!Array.isArray(group)) return diverged(group.seq, group.problem);
      clock.set(group[0]!.command.at);
      // Submitted in order without waiting: the sequencer keeps their order (batch-choice.ts),
      // as no command of a group lists serials (the only commands another may pass), and a
      // sweep, which starts a batch of its own, is a group alone.
      const answers = await Promise.all(group.map(({ command }) => ledger.submit(command.kind, command.input as never, command.actor)));
      for (const [index, answer] of answers.entries()) {
        const { seq: expected, command, kind } = group[index]!;
        if (!answer.ok) {
          const rule = answer.error.rule === undefined ? '' : ` (rule ${answer.error.rule})`;
          return diverged(expected, `this release's rules refuse the ${kind} command event ${expected} records, sent again at ${command.at} as ${command.actor.id}: ${answer.error.message}${rule}`);
        }
        if (answer.seq !== expected) return diverged(expected, `the replay made event ${expected}'s ${kind} command as event ${String(answer.seq)}: the commands before it made ${answer.seq > expected ? 'more' : 'fewer'} events than the log holds`);
      }
      const made = await replayedEvents(target, seq);
      if (seq + made.length > size) return diverged(size, `the commands of events ${seq} to ${size - 1} made ${made.length} events when replayed, past the log's ${size}`);
      for (const event of made) {
        const recorded = await log.at(event.seq);
        if (typeof recorded === 'string') return diverged(event.seq, recorded);
        if (comparableText(recorded.body) !== comparableText(event.body)) {
          const maker = commandOf(group, event.seq);
          return diverged(event.seq, `the ${maker.kind} command of event ${maker.seq}, replayed, made event ${event.seq} otherwise: ${eventDifference(recorded.body, event.body)}`);
        }
      }
      seq += made.length;
      onProgress?.(seq);
    }
    return { replayed: seq };
  } finally {
    await ledger.close();
  }
}

/** Commands a replay sends at once: a batch or so (limits.batchCommandsMax is 2,048), well inside the sequencer's queue. */
const groupCommandsMax = 512;

interface Grouped {
  /** The seq of the command's first event, where the replay must make it. */
  seq: number;
  kind: string;
  command: Extract<RecordedCommand, { ok: true }>;
}

/** The group's command that made event `seq`: the last that starts at or before it. */
function commandOf(group: Grouped[], seq: number): Grouped {
  return group.filter((grouped) => grouped.seq <= seq).at(-1)!;
}

/**
 * The commands to send at once from event `seq` on: those whose events follow it at the same
 * time, at most groupCommandsMax. A command's first event is one that records input: a
 * further part records none (withoutInput). Two kinds go alone: a command that lists serials
 * (others may pass it in the sequencer, batch-choice.ts), and a sweep, whose further events
 * each record its empty input: the next group starts where the sweep's events, as the replay
 * made them, end. Where this reading of the log is wrong (it was changed), the answers' seqs
 * or the events made say so.
 */
async function nextGroup(log: RecordedEvents, seq: number): Promise<Grouped[] | { seq: number; problem: string }> {
  const group: Grouped[] = [];
  let previous: RecordedBody | undefined;
  for (let next = seq; next < log.size; next += 1) {
    const event = await log.at(next);
    if (typeof event === 'string') {
      if (group.length > 0) break; // said when the group's events are compared, or at the next group
      return { seq: next, problem: event };
    }
    const { body } = event;
    if (previous !== undefined && body.at !== previous.at) break;
    const further = previous !== undefined && body.input === null;
    previous = body;
    if (further) continue;
    const lists = recordsSerials(body);
    const alone = lists || body.kind === 'ledger.sweep';
    if (group.length > 0 && (alone || group.length === groupCommandsMax)) break;
    const command = recordedCommand(body, lists ? await log.linesOf(next) : null);
    if (!command.ok) {
      if (group.length > 0) break;
      return { seq: next, problem: command.problem };
    }
    group.push({ seq: next, kind: body.kind, command });
    if (alone) break;
  }
  return group;
}

function diverged(seq: number, detail: string): ReplayReport {
  return { replayed: seq, divergence: { invariant: replayInvariant, subject: `event ${seq}`, detail } };
}

/** The events the replay's last command made, from `seq` on (the replay's database holds nothing newer). */
async function replayedEvents(target: Pool, seq: number): Promise<RecordedEvent[]> {
  const rows = (await target.query<{ seq: string; canonical: Buffer }>('SELECT e.seq::text AS seq, e.canonical FROM events e WHERE e.seq >= $1 ORDER BY e.seq', [seq])).rows;
  return rows.map((row) => {
    const body = recordedBody(Number(row.seq), row.canonical);
    if (typeof body === 'string') throw new Error(`the replay wrote an event it cannot read back: ${body}`);
    return { seq: Number(row.seq), body };
  });
}

/** The log's events, read forward a page at a time through one snapshot. */
class RecordedEvents {
  private page: Array<RecordedEvent | string> = [];
  private pageFrom = 0;

  constructor(private readonly source: PoolClient, readonly size: number) {}

  /** The event at `seq` (< size), or why its bytes are not an event's. */
  async at(seq: number): Promise<RecordedEvent | string> {
    if (seq < this.pageFrom || seq >= this.pageFrom + this.page.length) await this.read(seq);
    const event = this.page[seq - this.pageFrom];
    return event ?? `event ${seq} is missing from the events table, below the log's size ${this.size}`;
  }

  /** The serial lines stored for event `seq`, or null where none are. */
  async linesOf(seq: number): Promise<string[] | null> {
    const rows = (await this.source.query<{ lines: string[] }>('SELECT lines FROM event_serials WHERE seq = $1', [seq])).rows;
    return rows[0]?.lines ?? null;
  }

  private async read(from: number): Promise<void> {
    const rows = (await this.source.query<{ seq: string; canonical: Buffer }>(
      'SELECT e.seq::text AS seq, e.canonical FROM events e WHERE e.seq >= $1 AND e.seq < $2 ORDER BY e.seq LIMIT $3',
      [from, this.size, recordedPageEvents],
    )).rows;
    this.pageFrom = from;
    this.page = [];
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== from + this.page.length) break; // a gap: the missing event is said by at()
      const body: RecordedBody | string = recordedBody(seq, row.canonical);
      this.page.push(typeof body === 'string' ? body : { seq, body });
    }
  }
}
