/**
 * `chipledger check` over a log that spans several chunks of the audit: the checkpoints are
 * read and opened as the audit reaches their sizes (every checkpoint is kept, one a second,
 * and all of them at once outgrow the heap), and each check still finds what it found when
 * they were read at once, in whichever chunk it lies. One level-0 tile a chunk here, so 650
 * entries are three chunks: sizes 0-256, 257-512, 513-650.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { bookMany, buildWorld, type World } from '../../../test/world.ts';
import { openSigningLedger } from '../../../test/support/signing-ledger.ts';
import type { PoolClient } from '../../store/pool.ts';
import { listCheckpointsToCheck, readHead } from '../../store/tlog-tables.ts';
import { formatCheckpoint, formatKeyId, generateSignerKey, parseSignerKey, signNote, tileWidth } from '../../tlog/index.ts';
import { auditStoredLog, type RootSource } from './audit.ts';
import { checkLogOnStart, LogCheckError, type CheckAuditOptions, type CheckpointScope } from './check.ts';
import { TransparencyLog } from './transparency-log.ts';
import { withTriggerOff } from '../../../test/support/tamper.ts';

let database: TestDatabase;
let world: World;
const origin = 'log.chunks.test';
const keyA = generateSignerKey(origin);
const keyB = generateSignerKey(origin);
const signerA = parseSignerKey(keyA.signerKey);
const signerB = parseSignerKey(keyB.signerKey);
const chunked: CheckAuditOptions = { tilesPerChunk: 1, workerFromEntries: Number.MAX_SAFE_INTEGER };
const chunkSizes = tileWidth; // sizes one chunk reaches (the first also has size 0)

/** Books until the log has `size` entries, then `signer`'s ledger signs that head. */
async function signAt(size: number, signerKey: string, previous?: string): Promise<void> {
  const { size: now } = await readHead(database.pool);
  await bookMany(world, size - now);
  const ledger = await openSigningLedger(database.url, world.clock, signerKey, previous, 'log-check-chunks');
  try {
    expect((await ledger.checkpointer!.checkpointNow())?.size).toBe(size);
  } finally {
    await ledger.close();
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000 });
  await signAt(100, keyA.signerKey);
  await signAt(300, keyA.signerKey);
  await signAt(600, keyA.signerKey);
  // The rotation at 600 (the old key signed 600 too): two rows of one size in the last chunk.
  const rotated = await openSigningLedger(database.url, world.clock, keyB.signerKey, keyA.signerKey, 'log-check-chunks');
  await rotated.close();
  await signAt(650, keyB.signerKey);
}, 120_000);
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

/** The check on a view of the state changed by `tamper` (rolled back after); a refusal is returned. */
async function checkTampered(tamper: (client: PoolClient) => Promise<void>, options: CheckAuditOptions = chunked, scope: CheckpointScope = 'all'): Promise<LogCheckError | { size: number; checkpoints: number }> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    await tamper(client);
    return await checkLogOnStart(client as never, new TransparencyLog(client as never), [], scope, options).catch((caught: unknown) => {
      if (caught instanceof LogCheckError) return caught;
      throw caught;
    });
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/** A checkpoint of `size` over `root` signed by `signer`, as a row; the fork trigger and the one that keeps rows unchanged off for the statement. */
async function insertSigned(client: PoolClient, size: number, root: Buffer, signer: typeof signerA): Promise<void> {
  const note = signNote(formatCheckpoint({ origin, size, rootHash: root, extensions: [] }), signer);
  await client.query('ALTER TABLE tlog_checkpoints DISABLE TRIGGER tlog_checkpoints_no_fork');
  await withTriggerOff(client, 'tlog_checkpoints', () => client.query('INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES ($1, $2, $3, $4) ON CONFLICT (size, key_id) DO UPDATE SET root = EXCLUDED.root, signed_note = EXCLUDED.signed_note', [size, root, formatKeyId(signer.keyId), note]));
  await client.query('ALTER TABLE tlog_checkpoints ENABLE TRIGGER tlog_checkpoints_no_fork');
}

const forged = Buffer.alloc(32, 0x5a);
const total = async () => Number((await database.pool.query('SELECT count(*) AS n FROM tlog_checkpoints')).rows[0].n);

describe('chipledger check over several chunks of the audit', () => {
  it('counts every checkpoint, in one chunk or three, hashed here or in the worker', async () => {
    const rows = await total();
    expect(rows).toBe(5); // 100, 300, 600 by A; the announcement at 600 and 650 by B
    for (const options of [{}, chunked, { ...chunked, workerFromEntries: 0 }]) {
      expect(await checkLogOnStart(database.pool, new TransparencyLog(database.pool), [], 'all', options)).toEqual({ size: 650, checkpoints: rows });
    }
    const newest = await listCheckpointsToCheck(database.pool, 1);
    expect(await checkLogOnStart(database.pool, new TransparencyLog(database.pool), [], { newest: 1 }, chunked)).toEqual({ size: 650, checkpoints: newest.length });
  });

  it('finds a spoilt signature on a checkpoint in a later chunk', async () => {
    const error = await checkTampered(async (client) => {
      const row = (await client.query('SELECT signed_note FROM tlog_checkpoints WHERE size = 300')).rows[0];
      const note = row.signed_note as string;
      const at = note.length - 2; // the last signature's base64, before the final newline
      await withTriggerOff(client, 'tlog_checkpoints', () => client.query('UPDATE tlog_checkpoints SET signed_note = $1 WHERE size = 300', [`${note.slice(0, at)}${note[at] === 'A' ? 'B' : 'A'}${note.slice(at + 1)}`]));
    });
    expect(error).toMatchObject({ check: 'checkpoint-signature' });
    expect((error as Error).message).toMatch(/checkpoint 300:/);
  });

  it('finds two rows of one size with different roots in a later chunk (a fork)', async () => {
    const error = await checkTampered((client) => insertSigned(client, 600, forged, signerA));
    expect(error).toMatchObject({ check: 'checkpoint-consistency' });
    expect((error as Error).message).toMatch(/two checkpoints of size 600 sign different roots/);
  });

  it('finds a checkpoint beyond the head', async () => {
    const error = await checkTampered((client) => insertSigned(client, 660, forged, signerB));
    expect(error).toMatchObject({ check: 'checkpoint-size' });
    expect((error as Error).message).toMatch(/checkpoint row 660 signs size 660; the log has 650/);
  });

  it('finds a root that disagrees with the entries at a size in a later chunk, here and in the worker alike', async () => {
    const here = await checkTampered((client) => insertSigned(client, 400, forged, signerA));
    expect(here).toMatchObject({ check: 'checkpoint-consistency' });
    expect((here as Error).message).toMatch(new RegExp(`the entries give root [0-9a-f]{64} at size 400, but ${forged.toString('hex')} was signed`));
    const worker = await checkTampered((client) => insertSigned(client, 400, forged, signerA), { ...chunked, workerFromEntries: 0 });
    expect(worker).toEqual(here);
    expect((worker as Error).message).toBe((here as Error).message);
  });

  it('holds one chunk of checkpoint rows at a time, never every row', async () => {
    const client = await database.pool.connect();
    const query = vi.spyOn(client, 'query');
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      expect(await checkLogOnStart(client as never, new TransparencyLog(client as never), [], 'all', chunked)).toMatchObject({ checkpoints: await total() });
      const reads = query.mock.calls.flatMap((call, at) => {
        const text = typeof call[0] === 'string' ? call[0] : (call[0] as { text?: string }).text ?? '';
        return /FROM tlog_checkpoints/.test(text) ? [query.mock.results[at]!.value as Promise<{ rows: Array<{ size: number }> }>] : [];
      });
      const sizes = (await Promise.all(reads)).map((result) => result.rows.map((row) => Number(row.size)));
      // Each read's rows lie within one chunk's sizes.
      for (const read of sizes) {
        if (read.length > 0) expect(Math.max(...read) - Math.min(...read)).toBeLessThanOrEqual(chunkSizes);
      }
      expect(sizes.filter((read) => read.length > 0).length).toBeGreaterThanOrEqual(3);
    } finally {
      query.mockRestore();
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('auditStoredLog asks its source chunk by chunk', () => {
  /** A source over `roots` that records each ask and how many were in flight at once. */
  function recording(roots: ReadonlyMap<number, Buffer>) {
    const asks: Array<[number, number | 'above']> = [];
    let inFlight = 0;
    let inFlightMax = 0;
    const answer = async (keep: (size: number) => boolean) => {
      inFlight += 1;
      inFlightMax = Math.max(inFlightMax, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 1));
      inFlight -= 1;
      return new Map([...roots].filter(([size]) => keep(size)));
    };
    const source: RootSource = {
      between: (from, to) => {
        asks.push([from, to]);
        return answer((size) => size >= from && size <= to);
      },
      above: (size) => {
        asks.push([size, 'above']);
        return answer((at) => at > size);
      },
    };
    return { source, asks, inFlightMax: () => inFlightMax };
  }

  for (const [where, workerFromEntries] of [['here', Number.MAX_SAFE_INTEGER], ['in the worker', 0]] as const) {
    it(`asks one chunk's sizes at a time, adjacent from 0, then above the log (${where}, on a pool that reads ahead)`, async () => {
      const head = await readHead(database.pool);
      const recorded = recording(new Map([[head.size, head.root]]));
      const audit = await auditStoredLog(database.pool, head.size, recorded.source, { tilesPerChunk: 1, workerFromEntries });
      expect(audit.failure).toBeUndefined();
      expect(recorded.asks).toEqual([[0, 256], [257, 512], [513, 650], [650, 'above']]);
      expect(recorded.inFlightMax()).toBe(1);
    });
  }

  it('fails a root beyond the log as before, and one at size 0 of an empty log is checked', async () => {
    const head = await readHead(database.pool);
    const beyond = await auditStoredLog(database.pool, head.size, new Map([[head.size, head.root], [head.size + 3, head.root]]), { tilesPerChunk: 1 });
    expect(beyond.failure?.message).toBe(`a root was signed at size ${head.size + 3}, but the log has only ${head.size} entries`);
    const empty = recording(new Map([[0, forged]]));
    const audit = await auditStoredLog(database.pool, 0, empty.source);
    expect(empty.asks).toEqual([[0, 0], [0, 'above']]);
    expect(audit.failure?.message).toMatch(/the entries give root [0-9a-f]{64} at size 0, but 5a5a/);
  });
});
