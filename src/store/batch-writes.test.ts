import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { syntheticEntries } from '../../test/tlog/memory-log.ts';
import { auditStoredLog } from '../ledger/log/audit.ts';
import { TransparencyLog } from '../ledger/log/transparency-log.ts';
import { leafHash, nodeGetterFromLeaves, rootOf, tileData } from '../tlog/index.ts';
import { writeBatchAndCommit, type BatchWrites } from './batch-writes.ts';
import { bulkRowsMin } from './batch-steps.ts';
import { beginBatch } from './head-lock.ts';
import { readerSetsOf } from './reader-sets.ts';
import { readHead, readTileRange } from './tlog-tables.ts';

let database: TestDatabase;

const noWrites: BatchWrites = { inserted: {}, updated: {}, unitsChanges: [], unitStages: [], replacedPartiesOf: [], events: [], idempotency: [] };

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

/**
 * Appends entries as one batch the way the sequencer does: written with the events and
 * committed, the leaves hashed into tiles while the events travel (a big batch) or first.
 */
async function appendBatch(log: TransparencyLog, entries: Buffer[], readers: (offset: number) => string[] = () => []): Promise<void> {
  const client = await database.pool.connect();
  try {
    const { head } = await beginBatch(client);
    const events = entries.map((canonical, offset) => ({
      seq: head.size + offset, at: '2026-02-01T00:00:00.000Z', kind: 'test.entry', actor: 'TOK-test', subject_id: null, org_ids: readers(offset), canonical,
    }));
    const appendLeaves = async () => {
      const appended = await log.append(client, head, events.map((event) => ({ seq: event.seq, canonical: event.canonical })));
      return { tiles: appended.tiles, head: { size: head.size + entries.length, root: appended.root }, seal: null };
    };
    if (entries.length < bulkRowsMin) {
      await writeBatchAndCommit(client, { ...noWrites, events }, await appendLeaves());
    } else {
      await log.prepare(client, head); // a reload reads tiles on this client: not while the events are being sent
      await writeBatchAndCommit(client, { ...noWrites, events }, appendLeaves);
    }
  } finally {
    client.release();
  }
}

describe('tile writes', () => {
  it('stores the same tiles whether a batch sends them as hex in its text or as one binary parameter', async () => {
    // 600 leaves in one batch: two full level-0 tiles and a partial one (over 16 KiB of
    // hashes: binary); then batches of 7 (hex) that grow the partial tiles and fill one.
    const entries = syntheticEntries(900, 60, 'w');
    const log = new TransparencyLog(database.pool);
    await appendBatch(log, entries.slice(0, 600));
    for (let from = 600; from < entries.length; from += 7) await appendBatch(log, entries.slice(from, from + 7));

    const leaves = entries.map((entry) => leafHash(entry));
    const getNode = nodeGetterFromLeaves(leaves);
    const head = await readHead(database.pool);
    expect(head.size).toBe(900);
    expect(head.root.equals(rootOf(leaves))).toBe(true);
    const stored = [...(await readTileRange(database.pool, 0, 0, 10)), ...(await readTileRange(database.pool, 1, 0, 10))];
    expect(stored.map((tile) => `${tile.level}/${tile.index}/${tile.width}`)).toEqual(['0/0/256', '0/1/256', '0/2/256', '0/3/132', '1/0/3']);
    for (const tile of stored) expect(tile.hashes.equals(tileData(tile, getNode)), `tile ${tile.level}/${tile.index}`).toBe(true);
    expect((await auditStoredLog(database.pool, head.size, new Map([[head.size, head.root]]))).failure).toBeUndefined();
  });
});

describe('event writes', () => {
  it('stores every event byte for byte, whether a batch sends them by COPY or inline', async () => {
    // Lengths from 1 to over 1,000 bytes and every byte value, so a wrong length in the
    // COPY encoding shows; 300 events go by COPY, then 9 inline.
    const entries = Array.from({ length: 309 }, (_, index) => Buffer.from(Array.from({ length: 1 + ((index * 37) % 1100) }, (_, at) => (index + at * 7) % 256)));
    const before = (await readHead(database.pool)).size;
    const log = new TransparencyLog(database.pool);
    await appendBatch(log, entries.slice(0, 300));
    await appendBatch(log, entries.slice(300));
    const stored = (await database.pool.query<{ seq: number; canonical: Buffer }>('SELECT seq, canonical FROM events WHERE seq >= $1 ORDER BY seq', [before])).rows;
    expect(stored.map((row) => row.seq)).toEqual(entries.map((_, offset) => before + offset));
    for (const [offset, row] of stored.entries()) expect(row.canonical.equals(entries[offset]!), `event ${row.seq}`).toBe(true);
  });

  it('writes who may read each event, whether its events go by COPY or inline', async () => {
    const readers = (offset: number) => (offset % 3 === 0 ? ['ORG-A', 'ORG-B'] : offset % 3 === 1 ? ['ORG-B'] : []);
    const before = (await readHead(database.pool)).size;
    const log = new TransparencyLog(database.pool);
    await appendBatch(log, syntheticEntries(300, 40, 'r'), readers);
    await appendBatch(log, syntheticEntries(9, 40, 's'), readers);
    const stored = (await database.pool.query<{ org_id: string; first_seq: number; last_seq: number; offsets: number[] }>(
      'SELECT org_id, first_seq, last_seq, offsets FROM event_reader_sets WHERE first_seq >= $1 ORDER BY first_seq, org_id', [before],
    )).rows;
    const expected = [...readerSetsOf(Array.from({ length: 300 }, (_, offset) => ({ seq: before + offset, org_ids: readers(offset) }))),
      ...readerSetsOf(Array.from({ length: 9 }, (_, offset) => ({ seq: before + 300 + offset, org_ids: readers(offset) })))];
    expect(stored).toEqual(expected.sort((a, b) => a.first_seq - b.first_seq || a.org_id.localeCompare(b.org_id)));
    expect(stored.map((row) => `${row.org_id} ${row.first_seq}-${row.last_seq} ${row.offsets.length}`)).toEqual([
      `ORG-A ${before}-${before + 297} 100`, `ORG-B ${before}-${before + 298} 200`, `ORG-A ${before + 300}-${before + 306} 3`, `ORG-B ${before + 300}-${before + 307} 6`,
    ]);
  });
});

describe('unit writes', () => {
  it('checks what new units name whether they go by COPY (a manifest) or inline, and writes none of a refused batch', async () => {
    const head = await readHead(database.pool);
    for (const count of [300, 3]) {
      const newUnits = Array.from({ length: count }, (_, index) => ({
        serial: `NOREF-${count}-${index}`, gpu_uuid: null, product_id: 'PRD-none', recipient_org_id: 'ORG-none', custody: 'licensed' as const, shipment_id: 'S-none', site_id: null, updated_seq: 1, ever_shipped: false, gpu_uuid_shipped: false,
      }));
      const client = await database.pool.connect();
      try {
        await client.query('BEGIN');
        const writes = { ...noWrites, inserted: { units: newUnits } };
        // The head and COMMIT are queued behind the refused COPY; the refusal is what comes back.
        await expect(writeBatchAndCommit(client, writes, async () => ({ tiles: [], head, seal: null })), `${count} units`).rejects.toMatchObject({ code: '23503', message: expect.stringMatching(/unit NOREF-.* names a product, organisation, shipment or site that does not exist/) });
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    }
    expect((await database.pool.query('SELECT count(*)::int AS n FROM units')).rows[0].n).toBe(0);
  });
});

describe('a log that fails while the events travel', () => {
  // The caller rolls back as soon as writeBatchAndCommit throws: a step still queued to be
  // sent after that would run outside the transaction and stay written.
  it.each([
    ['at once', 0],
    ['while the first COPY is under way', 1],
    ['after the COPYs', 40],
  ])('commits nothing of the batch when it fails %s, and the connection goes on after ROLLBACK', async (_when, afterMs) => {
    const before = await readHead(database.pool);
    const events = syntheticEntries(400, 80, `f${afterMs}`).map((canonical, offset) => ({
      seq: before.size + offset, at: '2026-02-01T00:00:00.000Z', kind: 'test.entry', actor: 'TOK-test', subject_id: `SUBJ-${afterMs}`, org_ids: ['ORG-1', 'ORG-2'], canonical,
    }));
    const client = await database.pool.connect();
    try {
      await beginBatch(client);
      const failing = async (): Promise<never> => {
        if (afterMs > 0) await new Promise((resume) => setTimeout(resume, afterMs));
        throw new Error('the log could not append');
      };
      await expect(writeBatchAndCommit(client, { ...noWrites, events }, failing)).rejects.toThrow('the log could not append');
      await client.query('ROLLBACK');
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      client.release();
    }
    const after = await readHead(database.pool);
    expect(after.size).toBe(before.size);
    const stored = await database.pool.query('SELECT (SELECT count(*)::int FROM events WHERE seq >= $1) AS events, (SELECT count(*)::int FROM event_reader_sets WHERE last_seq >= $1) AS readers', [before.size]);
    expect(stored.rows[0]).toEqual({ events: 0, readers: 0 });
  });

  it('commits nothing when the batch fails after its log (its tiles queued behind the COPY), and the connection goes on after ROLLBACK', async () => {
    const before = await readHead(database.pool);
    // The last two events out of order: the reader sets, made after the log, refuse them.
    const events = syntheticEntries(400, 80, 'late').map((canonical, offset) => ({
      seq: before.size + (offset === 398 ? 399 : offset === 399 ? 398 : offset), at: '2026-02-01T00:00:00.000Z', kind: 'test.entry', actor: 'TOK-test', subject_id: null, org_ids: ['ORG-1'], canonical,
    }));
    // Tiles no log here reaches (level 7), so that one written by mistake shows and harms
    // nothing; two full ones, so that they go as a statement of their own (batch-tile-writes.ts).
    const tiles = [7_777, 7_778].map((index) => ({ level: 7, index, width: 256, hashes: Buffer.alloc(32 * 256, 9) }));
    const client = await database.pool.connect();
    try {
      await beginBatch(client);
      const log = async () => ({ tiles, head: { size: before.size + events.length, root: Buffer.alloc(32, 1) }, seal: null });
      await expect(writeBatchAndCommit(client, { ...noWrites, events }, log)).rejects.toThrow(/reader sets need events in ascending seq order/);
      await client.query('ROLLBACK');
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      client.release();
    }
    // Give a tile step that was wrongly still queued its time to run, then look.
    await new Promise((resume) => setTimeout(resume, 200));
    const stored = await database.pool.query('SELECT (SELECT count(*)::int FROM events WHERE seq >= $1) AS events, (SELECT count(*)::int FROM tlog_tiles WHERE level = 7) AS tiles', [before.size]);
    expect(stored.rows[0]).toEqual({ events: 0, tiles: 0 });
  });
});
