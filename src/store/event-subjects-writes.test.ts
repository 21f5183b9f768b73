/**
 * How a batch writes its events' further subjects (event_subjects, migration 038): in the
 * batch's round trip when they are few, by COPY when many, and not at all, not even an empty
 * statement, for events that have none (bookings: the hot path is unchanged). The rows only
 * grow, as the other ledger tables' do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { TransparencyLog } from '../ledger/log/transparency-log.ts';
import { writeBatchAndCommit, type BatchWrites, type EventWrite } from './batch-writes.ts';
import { beginBatch } from './head-lock.ts';

let database: TestDatabase;
let log: TransparencyLog;

const noWrites: BatchWrites = { inserted: {}, updated: {}, unitsChanges: [], unitStages: [], replacedPartiesOf: [], events: [], idempotency: [] };

beforeAll(async () => {
  database = await createTestDatabase();
  log = new TransparencyLog(database.pool);
});
afterAll(async () => {
  await database?.drop();
});

/**
 * Writes one batch of events (each given its further subjects, if any) as the sequencer
 * does, and returns the texts of the statements the batch sent after opening: one entry
 * per round trip.
 */
async function writeEvents(moreSubjects: Array<string[] | undefined>): Promise<{ seqs: number[]; sent: string[] }> {
  const client = await database.pool.connect();
  try {
    const { head } = await beginBatch(client);
    const events: EventWrite[] = moreSubjects.map((ids, offset) => ({
      seq: head.size + offset, at: '2026-02-01T00:00:00.000Z', kind: 'test.entry', actor: 'TOK-test', subject_id: `SUBJECT-${head.size + offset}`, org_ids: ['ORG-1'],
      canonical: Buffer.from(`{"entry":${head.size + offset}}`), ...(ids === undefined ? {} : { more_subject_ids: ids }),
    }));
    const appended = await log.append(client, head, events.map((event) => ({ seq: event.seq, canonical: event.canonical })));
    const sent: string[] = [];
    const query = client.query.bind(client);
    client.query = ((...args: Parameters<typeof client.query>) => {
      const [first] = args as unknown[];
      sent.push(typeof first === 'string' ? first : String((first as { text?: string }).text ?? 'COPY'));
      return (query as (...all: unknown[]) => unknown)(...args);
    }) as typeof client.query;
    try {
      await writeBatchAndCommit(client, { ...noWrites, events }, { tiles: appended.tiles, head: { size: head.size + events.length, root: appended.root }, seal: null });
    } finally {
      client.query = query;
    }
    return { seqs: events.map((event) => event.seq), sent };
  } finally {
    client.release();
  }
}

async function rowsOf(seqs: number[]): Promise<Array<{ subject_id: string; seq: number }>> {
  return (await database.pool.query('SELECT subject_id, seq::int FROM event_subjects WHERE seq = ANY($1) ORDER BY seq, subject_id', [seqs])).rows;
}

describe('event_subjects writes', () => {
  it('sends nothing more for events without further subjects, and rides in the same round trip when there are some', async () => {
    const plain = await writeEvents([undefined, undefined, undefined]);
    expect(plain.sent).toHaveLength(1);
    expect(plain.sent.join('\n')).not.toContain('event_subjects');
    expect(await rowsOf(plain.seqs)).toEqual([]);

    const some = await writeEvents([undefined, ['SITE-1', 'SITE-2'], ['S-9']]);
    expect(some.sent).toHaveLength(1);
    expect(some.sent[0]).toContain('INSERT INTO event_subjects');
    expect(await rowsOf(some.seqs)).toEqual([
      { subject_id: 'SITE-1', seq: some.seqs[1] }, { subject_id: 'SITE-2', seq: some.seqs[1] }, { subject_id: 'S-9', seq: some.seqs[2] },
    ]);
  });

  it('copies many further subjects in a statement of their own', async () => {
    const sites = Array.from({ length: 300 }, (_, index) => `SITE-${1000 + index}`);
    const many = await writeEvents([sites]);
    expect(many.sent.filter((text) => text.includes('event_subjects'))).toEqual(['COPY event_subjects (subject_id, seq) FROM STDIN (FORMAT binary)']);
    expect((await rowsOf(many.seqs)).map((row) => row.subject_id).sort()).toEqual([...sites].sort());
  });

  it('refuses an UPDATE, a DELETE and a TRUNCATE of the rows', async () => {
    const { seqs } = await writeEvents([['SITE-7']]);
    for (const statement of [
      `UPDATE event_subjects SET subject_id = 'SITE-8' WHERE seq = ${seqs[0]}`,
      `DELETE FROM event_subjects WHERE seq = ${seqs[0]}`,
      'TRUNCATE event_subjects',
    ]) {
      const refusal = await database.pool.query(statement).then(() => expect.fail(`${statement} went through`), (error: { code?: string; message: string }) => error);
      expect(refusal, statement).toMatchObject({ code: '23001', message: expect.stringMatching(/^the ledger only grows: event_subjects rows are never (changed|deleted)$/) });
    }
    expect(await rowsOf(seqs)).toEqual([{ subject_id: 'SITE-7', seq: seqs[0] }]);
  });
});
