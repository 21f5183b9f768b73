/**
 * Events of any shape, and rows changed by hand, in a transaction of the owner with triggers
 * off (whoever holds the owner's credentials could): for the re-check's parts that read events
 * as earlier releases wrote them, or bytes that are not JSON at all. Rolled back at the end,
 * whatever `work` did.
 */
import { ledgerViolations, type Violation } from '../../src/store/violations.ts';
import type { Pool } from '../../src/store/pool.ts';

/** The members of an event's body a part reads; the rest of a body is its seq, kind and subject. */
export interface EventMembers {
  input?: unknown;
  effects?: unknown;
  actor?: unknown;
}

export interface ByHand {
  /** Adds an event after the newest, with these members, or these bytes as its canonical form. */
  insertEvent(kind: string, subject: string | null, members: EventMembers | Buffer): Promise<void>;
  query(text: string, values: unknown[]): Promise<void>;
  /** The subjects the re-check's part event-state names. */
  violated(): Promise<string[]>;
  /** What the re-check's part event-state says. */
  violations(): Promise<Violation[]>;
}

/** What the re-check's part event-state says of the database `on` reads (a pool, or a client inside a transaction). */
export async function eventStateViolations(on: Parameters<typeof ledgerViolations>[0]): Promise<Violation[]> {
  return (await ledgerViolations(on)).filter((violation) => violation.invariant === 'event-state');
}

export async function withEventsByHand(pool: Pool, work: (byHand: ByHand) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN; SET LOCAL session_replication_role = 'replica'");
    const violations = () => eventStateViolations(client);
    await work({
      async insertEvent(kind, subject, members) {
        const { rows: [next] } = await client.query<{ seq: string }>('SELECT max(seq) + 1 AS seq FROM events');
        const canonical = Buffer.isBuffer(members) ? members : Buffer.from(JSON.stringify({ seq: Number(next!.seq), kind, subject, ...members }), 'utf8');
        await client.query("INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical) VALUES ($1, now(), $2, 'system', $3, '{}', $4)", [next!.seq, kind, subject, canonical]);
      },
      async query(text, values) {
        await client.query(text, values);
      },
      violated: async () => (await violations()).map((violation) => violation.subject),
      violations,
    });
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}
