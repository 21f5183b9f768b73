/**
 * Which checkpoints the start-up check re-verifies: every one for `chipledger check`; for a
 * server's start the newest in signing order and every key's announcement (every checkpoint
 * is kept, one a second while events come, and re-verifying them all at each start grew
 * without bound: session 18's storage review).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { bookMany, buildWorld, type World } from '../../../test/world.ts';
import type { PoolClient } from '../../store/pool.ts';
import { generateSignerKey } from '../../tlog/index.ts';
import { Ledger } from '../ledger.ts';
import { checkLogOnStart, LogCheckError, type CheckpointScope } from './check.ts';
import { TransparencyLog } from './transparency-log.ts';
import { openSigningLedger } from '../../../test/support/signing-ledger.ts';
import { withTriggerOff } from '../../../test/support/tamper.ts';

let database: TestDatabase;
let world: World;
const origin = 'log.scope.test';
const keyA = generateSignerKey(origin);
const keyB = generateSignerKey(origin);
const newestTwo: CheckpointScope = { newest: 2 };

const open = (signerKey: string, previous?: string): Promise<Ledger> => openSigningLedger(database.url, world.clock, signerKey, previous, 'log-check-scope');

/** `count` checkpoints, each over one more booking. */
async function signEach(ledger: Ledger, count: number): Promise<void> {
  for (let made = 0; made < count; made += 1) {
    await bookMany(world, 1);
    expect(await ledger.checkpointer!.checkpointNow()).toBeDefined();
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000 });
  const first = await open(keyA.signerKey);
  await signEach(first, 4);
  await first.close();
  // The rotation: the announcement (signed by both keys), then newer checkpoints by the new key.
  const second = await open(keyB.signerKey, keyA.signerKey);
  await signEach(second, 4);
  await second.close();
}, 60_000);
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

/** The check over `scope` on a view of the state changed by `tamper` (rolled back after). */
async function checkTampered(scope: CheckpointScope, tamper: (client: PoolClient) => Promise<void>): Promise<LogCheckError | { size: number; checkpoints: number }> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    await tamper(client);
    return await checkLogOnStart(client as never, new TransparencyLog(client as never), [], scope).catch((caught: unknown) => {
      if (caught instanceof LogCheckError) return caught;
      throw caught;
    });
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/** One checkpoint row's signature made wrong (its last base64 character changed), root and text kept. */
async function spoilSignature(client: PoolClient, which: 'oldest' | 'newest' | 'announcement'): Promise<void> {
  const where = {
    oldest: 'ORDER BY created_at LIMIT 1',
    newest: 'ORDER BY created_at DESC LIMIT 1',
    announcement: '',
  }[which];
  const row = which === 'announcement'
    ? (await client.query('SELECT c.size, c.key_id, c.signed_note FROM tlog_checkpoints c JOIN tlog_keys k ON k.key_id = c.key_id AND k.announced_size = c.size')).rows[0]
    : (await client.query(`SELECT size, key_id, signed_note FROM tlog_checkpoints ${where}`)).rows[0];
  expect(row).toBeDefined();
  const note = row.signed_note as string;
  const at = note.length - 2; // the note ends with the last signature line's base64 and a newline
  const spoilt = `${note.slice(0, at)}${note[at] === 'A' ? 'B' : 'A'}${note.slice(at + 1)}`;
  await withTriggerOff(client, 'tlog_checkpoints', () => client.query('UPDATE tlog_checkpoints SET signed_note = $1 WHERE size = $2 AND key_id = $3', [spoilt, row.size, row.key_id]));
}

describe('the checkpoints the start-up check re-verifies', () => {
  it('all of them for check; the newest and the announcement for a start, on the honest state', async () => {
    const total = Number((await database.pool.query('SELECT count(*) AS n FROM tlog_checkpoints')).rows[0].n);
    expect(total).toBeGreaterThanOrEqual(9);
    expect(await checkLogOnStart(database.pool, new TransparencyLog(database.pool))).toMatchObject({ checkpoints: total });
    expect(await checkLogOnStart(database.pool, new TransparencyLog(database.pool), [], newestTwo)).toMatchObject({ checkpoints: 3 });
  });

  it('a spoilt signature on an old checkpoint is found by check, and left to it by a start', async () => {
    expect(await checkTampered('all', (client) => spoilSignature(client, 'oldest'))).toMatchObject({ check: 'checkpoint-signature' });
    expect(await checkTampered(newestTwo, (client) => spoilSignature(client, 'oldest'))).toMatchObject({ checkpoints: 3 });
  });

  it('a spoilt signature on the newest checkpoint, or on an announcement however old, stops a start', async () => {
    expect(await checkTampered(newestTwo, (client) => spoilSignature(client, 'newest'))).toMatchObject({ check: 'checkpoint-signature' });
    expect(await checkTampered(newestTwo, (client) => spoilSignature(client, 'announcement'))).toBeInstanceOf(LogCheckError);
  });

  it('the newest by size are re-verified whatever their signing times say (a row back-dated, a clock stepped back)', async () => {
    const spoiltAndBackDated = await checkTampered(newestTwo, async (client) => {
      await spoilSignature(client, 'newest');
      await withTriggerOff(client, 'tlog_checkpoints', () => client.query("UPDATE tlog_checkpoints SET created_at = '2000-01-01' WHERE size = (SELECT max(size) FROM tlog_checkpoints)"));
    });
    expect(spoiltAndBackDated).toMatchObject({ check: 'checkpoint-signature' });
    const afterClockStep = await checkTampered(newestTwo, async (client) => {
      await spoilSignature(client, 'newest');
      // Every other row signed while the database's clock ran an hour ahead.
      await withTriggerOff(client, 'tlog_checkpoints', () => client.query("UPDATE tlog_checkpoints SET created_at = created_at + interval '1 hour' WHERE size < (SELECT max(size) FROM tlog_checkpoints)"));
    });
    expect(afterClockStep).toMatchObject({ check: 'checkpoint-signature' });
  });

  it('a rogue row added at an old size is re-verified (the newest in signing order)', async () => {
    const rogue = await checkTampered(newestTwo, async (client) => {
      const oldest = (await client.query('SELECT size, root, signed_note FROM tlog_checkpoints ORDER BY created_at LIMIT 1')).rows[0];
      await client.query("INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES ($1, $2, 'deadbeef', $3)", [oldest.size, oldest.root, oldest.signed_note]);
    });
    expect(rogue).toMatchObject({ check: 'checkpoint-signature' });
  });

  it('a checkpoint witnesses cosigned is re-verified however old (?cosignatures=N serves it)', async () => {
    const cosigned = await checkTampered(newestTwo, async (client) => {
      const oldest = (await client.query('SELECT size, key_id FROM tlog_checkpoints ORDER BY created_at LIMIT 1')).rows[0];
      await client.query("INSERT INTO tlog_cosignatures (checkpoint_size, checkpoint_key_id, witness, key_id, timestamp_s, signature_line) VALUES ($1, $2, 'witness.scope.test', '01020304', 1, 'x')", [oldest.size, oldest.key_id]);
      await spoilSignature(client, 'oldest');
    });
    expect(cosigned).toMatchObject({ check: 'checkpoint-signature' });
  });

  it('a server refuses to start on a spoilt newest checkpoint (Ledger.open checks the newest)', async () => {
    const newest = (await database.pool.query('SELECT size, key_id, signed_note FROM tlog_checkpoints ORDER BY created_at DESC LIMIT 1')).rows[0];
    const client = await database.pool.connect();
    try {
      await spoilSignature(client, 'newest');
      await expect(open(keyB.signerKey)).rejects.toThrow(/checkpoint/);
    } finally {
      await withTriggerOff(client, 'tlog_checkpoints', () => client.query('UPDATE tlog_checkpoints SET signed_note = $1 WHERE size = $2 AND key_id = $3', [newest.signed_note, newest.size, newest.key_id]));
      client.release();
    }
    const again = await open(keyB.signerKey);
    await again.close();
  });
});
