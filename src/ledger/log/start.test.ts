/**
 * The start-up check and the signing keys, against states a review reproduced: a rotation
 * signing an unproved head, a fork hidden behind a second checkpoint of one size, a retired
 * key still signing, a key that was never announced, stray hashes in upper tiles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { bookMany, buildWorld, type World } from '../../../test/world.ts';
import type { PoolClient } from '../../store/pool.ts';
import { listLogKeys, readHead } from '../../store/tlog-tables.ts';
import { formatCheckpoint, formatKeyId, generateSignerKey, parseSignerKey, signNote } from '../../tlog/index.ts';
import { Ledger } from '../ledger.ts';
import { checkLogOnStart, LogCheckError } from './check.ts';
import { TransparencyLog } from './transparency-log.ts';
import { openSigningLedger } from '../../../test/support/signing-ledger.ts';
import { withTriggerOff } from '../../../test/support/tamper.ts';

let database: TestDatabase;
let world: World;
const origin = 'log.chipledger.test';
const keyA = generateSignerKey(origin);
const keyB = generateSignerKey(origin);

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000 });
  await book(300); // a full level-0 tile, so tile 1/000 exists (width 1)
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

const book = (count: number): Promise<void> => bookMany(world, count);

const open = (signerKey: string, previous?: string): Promise<Ledger> => openSigningLedger(database.url, world.clock, signerKey, previous, 'log-start');

/** Changes the state in a transaction, runs the check on that view, rolls back; returns the refusal. */
async function checkTampered(tamper: (client: PoolClient) => Promise<void>): Promise<LogCheckError> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    await tamper(client);
    const error = await checkLogOnStart(client as never, new TransparencyLog(client as never)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LogCheckError);
    return error as LogCheckError;
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

describe('start-up check: tiles', () => {
  it('refuses stray hashes in an upper tile, naming the tile', async () => {
    const error = await checkTampered(async (client) => {
      const widened = await client.query(`UPDATE tlog_tiles SET width = 256, hashes = hashes || decode(repeat('ab', 32 * (256 - width)), 'hex') WHERE level = 1 AND index = 0 AND width < 256`);
      expect(widened.rowCount).toBe(1);
    });
    expect(error.check).toBe('tiles');
    expect(error.message).toMatch(/tile\/1\/000 holds hashes up to 256, but the tree of size \d+ has 1 at level 1/);
  });

  it('refuses a tile at a level above the tree', async () => {
    const error = await checkTampered(async (client) => {
      await client.query(`INSERT INTO tlog_tiles (level, index, width, hashes) VALUES (2, 0, 1, decode(repeat('ab', 32), 'hex'))`);
    });
    expect(error.check).toBe('tiles');
    expect(error.message).toMatch(/tile\/2\/000\.p\/1/);
  });
});

describe('key rotation and the key chain', () => {
  it('does not rotate (nor sign anything) when the start-up check refuses the state', async () => {
    const first = await open(keyA.signerKey);
    await first.checkpointer!.checkpointNow();
    await first.close();
    await book(3); // events past the newest checkpoint
    const { root } = await readHead(database.pool);
    const forged = Buffer.alloc(32, 0x11);
    await database.pool.query('UPDATE log_head SET root = $1', [forged]);
    try {
      await expect(open(keyB.signerKey, keyA.signerKey)).rejects.toBeInstanceOf(LogCheckError);
      expect((await listLogKeys(database.pool)).map((key) => key.verifier_key)).toEqual([keyA.verifierKey]);
      const signedForged = await database.pool.query('SELECT size FROM tlog_checkpoints WHERE root = $1 OR signed_note LIKE $2', [forged, '%key-rotation%']);
      expect(signedForged.rows).toEqual([]);
    } finally {
      await database.pool.query('UPDATE log_head SET root = $1', [root]);
    }
  });

  it('refuses to start on a key that was never announced (a rogue tlog_keys row)', async () => {
    const rogue = generateSignerKey(origin);
    const { size } = await readHead(database.pool);
    await database.pool.query('INSERT INTO tlog_keys (key_id, verifier_key, first_size, announced_size) VALUES ($1, $2, $3, NULL)', [formatKeyId(parseSignerKey(rogue.signerKey).keyId), rogue.verifierKey, size]);
    try {
      const error = await open(rogue.signerKey).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(LogCheckError);
      expect((error as LogCheckError).check).toBe('key-chain');
    } finally {
      await withTriggerOff(database.pool, 'tlog_keys', () => database.pool.query('DELETE FROM tlog_keys WHERE verifier_key = $1', [rogue.verifierKey]));
    }
    expect(await database.pool.query('SELECT 1 FROM tlog_checkpoints WHERE key_id = $1', [formatKeyId(parseSignerKey(rogue.signerKey).keyId)])).toMatchObject({ rowCount: 0 });
  });

  it('stops a process whose key another process retired: it signs nothing more', async () => {
    const retiring = await open(keyA.signerKey);
    try {
      await retiring.checkpointer!.checkpointNow(); // the old key's checkpoint at the rotation size
      const rotated = await open(keyB.signerKey, keyA.signerKey);
      try {
        await book(2);
        await expect(retiring.checkpointer!.checkpointNow()).rejects.toThrow(/no longer the log's key/);
        const signed = await rotated.checkpointer!.checkpointNow();
        expect(signed!.key_id).toBe(formatKeyId(parseSignerKey(keyB.signerKey).keyId));
        const rows = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tlog_checkpoints WHERE key_id = $1 AND size > (SELECT announced_size FROM tlog_keys WHERE verifier_key = $2)',
          [formatKeyId(parseSignerKey(keyA.signerKey).keyId), keyB.verifierKey]);
        expect(rows.rows[0]!.n).toBe(0);
      } finally {
        await rotated.close();
      }
    } finally {
      await retiring.close();
    }
    const result = await checkLogOnStart(database.pool, new TransparencyLog(database.pool));
    expect(result.checkpoints).toBeGreaterThanOrEqual(3);
  });

  it('refuses a checkpoint signed by a retired key after its successor took over', async () => {
    const error = await checkTampered(async (client) => {
      const head = await readHead(client);
      const note = signNote(formatCheckpoint({ origin, size: head.size, rootHash: head.root, extensions: [] }), parseSignerKey(keyA.signerKey));
      await client.query('INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES ($1, $2, $3, $4)', [head.size, head.root, formatKeyId(parseSignerKey(keyA.signerKey).keyId), note]);
    });
    expect(error.check).toBe('key-chain');
  });
});

describe('start-up check: two checkpoints of one size (a rotation makes them)', () => {
  /** The old key's row at the rotation size, which the announcement shares. */
  async function oldKeyRowAtRotation(client: PoolClient): Promise<{ size: number; key_id: string }> {
    const row = (await client.query(
      `SELECT c.size, c.key_id FROM tlog_checkpoints c JOIN tlog_keys k ON c.size = k.announced_size WHERE k.verifier_key = $1 AND c.key_id = $2`,
      [keyB.verifierKey, formatKeyId(parseSignerKey(keyA.signerKey).keyId)],
    )).rows[0];
    expect(row).toBeDefined();
    return row;
  }

  it('audits every row of a size: a validly signed fork in the first row is found', async () => {
    const error = await checkTampered(async (client) => {
      const row = await oldKeyRowAtRotation(client);
      const forked = signNote(formatCheckpoint({ origin, size: row.size, rootHash: Buffer.alloc(32, 7), extensions: [] }), parseSignerKey(keyA.signerKey));
      await withTriggerOff(client, 'tlog_checkpoints', () => client.query('UPDATE tlog_checkpoints SET signed_note = $1 WHERE size = $2 AND key_id = $3', [forked, row.size, row.key_id]));
    });
    expect(error.check).toBe('checkpoint-consistency');
  });

  it('refuses two rows of one size whose roots differ, even with each row matching its note', async () => {
    const error = await checkTampered(async (client) => {
      const row = await oldKeyRowAtRotation(client);
      const forkRoot = Buffer.alloc(32, 7);
      const forked = signNote(formatCheckpoint({ origin, size: row.size, rootHash: forkRoot, extensions: [] }), parseSignerKey(keyA.signerKey));
      // The no-fork trigger would refuse this; the check must not depend on it.
      await client.query('ALTER TABLE tlog_checkpoints DISABLE TRIGGER tlog_checkpoints_no_fork');
      await withTriggerOff(client, 'tlog_checkpoints', () => client.query('UPDATE tlog_checkpoints SET signed_note = $1, root = $2 WHERE size = $3 AND key_id = $4', [forked, forkRoot, row.size, row.key_id]));
    });
    expect(error.check).toBe('checkpoint-consistency');
    expect(error.message).toMatch(/two checkpoints of size \d+ sign different roots/);
  });

  it('passes on the honest state', async () => {
    expect((await checkLogOnStart(database.pool, new TransparencyLog(database.pool))).checkpoints).toBeGreaterThanOrEqual(3);
  });
});

describe('start-up check: a checkpoint row and its note', () => {
  it("refuses a row filed under a size other than the one its note signs, though note and root are genuine", async () => {
    await book(1); // a size past every checkpoint row, so the row below forks nothing
    const { size } = await readHead(database.pool);
    const signed = size - 1;
    const error = await checkTampered(async (client) => {
      // The current key's genuine note for size n, and the root of size n, filed as size n + 1.
      const root = await new TransparencyLog(client as never).rootAt(signed, client);
      const note = signNote(formatCheckpoint({ origin, size: signed, rootHash: root, extensions: [] }), parseSignerKey(keyB.signerKey));
      await client.query('INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES ($1, $2, $3, $4)', [size, root, formatKeyId(parseSignerKey(keyB.signerKey).keyId), note]);
    });
    expect(error.check).toBe('checkpoint-size');
    expect(error.message).toBe(`transparency log check "checkpoint-size" failed: checkpoint row ${size} signs size ${signed}; the log has ${size}`);
  });
});

describe('start-up check beside a writer', () => {
  it('proves one moment of the log while another ledger keeps committing, and starts', async () => {
    let stop = false;
    const writer = (async () => {
      while (!stop) await book(16);
    })();
    try {
      await new Promise((done) => setTimeout(done, 200));
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const before = (await readHead(database.pool)).size;
        const result = await checkLogOnStart(database.pool, new TransparencyLog(database.pool));
        expect(result.size).toBeGreaterThanOrEqual(before);
      }
    } finally {
      stop = true;
      await writer;
    }
    expect((await readHead(database.pool)).size).toBeGreaterThan(300);
  });
});
