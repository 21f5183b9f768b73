/**
 * Cosignatures across a key rotation: one size then holds two checkpoint texts (the old
 * key's and the announcement), and a cosignature is served only with the text it was made
 * over, so the served checkpoint and proof bundles always open with the witness keys.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { Ledger } from '../ledger/ledger.ts';
import { createPool, type Pool } from '../store/pool.ts';
import {
  cosignCheckpoint, formatKeyId, generateCosignerKey, generateSignerKey, leafHash, openCheckpoint, parseCosignatureVerifierKey, parseCosignerKey,
  parseNote, parseSignerKey, parseVerifierKey, verifyTlogProof,
} from '../tlog/index.ts';
import { buildServer } from './app.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';
import { withTriggerOff } from '../../test/support/tamper.ts';

let database: TestDatabase;
let world: World;
const pools: Pool[] = [];
const ledgers: Ledger[] = [];
const apps: FastifyInstance[] = [];
const oldKey = generateSignerKey('log.chipledger.test');
const newKey = generateSignerKey('log.chipledger.test');
const witness = generateCosignerKey('witness.example');
const witnesses = [parseCosignatureVerifierKey(witness.verifierKey)];

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  await Promise.all(Array.from({ length: 20 }, () => world.ledger.submit('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
  }, world.actors.exporter)));
});
afterAll(async () => {
  for (const app of apps) await app.close();
  for (const ledger of ledgers) await ledger.close();
  for (const pool of pools) await pool.end();
  await world?.ledger.close();
  await database?.drop();
});

async function serve(signerKey: string, previous?: string): Promise<{ ledger: Ledger; app: FastifyInstance }> {
  const pool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'log-rotation' });
  pools.push(pool);
  const ledger = await Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: signerKey, ...(previous ? { logPreviousSignerKey: previous } : {}), checkpointIntervalMs: 3_600_000 });
  ledgers.push(ledger);
  const app = await buildServer({ ledger, pool, logger: false, witnessKeys: [witness.verifierKey] });
  apps.push(app);
  return { ledger, app };
}

const post = (app: FastifyInstance, note: string) => app.inject({ method: 'POST', url: '/v1/log/cosignatures', payload: note, headers: { 'content-type': 'text/plain' } });

describe('cosignatures after a key rotation', () => {
  it('serves with each checkpoint only the cosignatures made over its own text', async () => {
    const before = await serve(oldKey.signerKey);
    await before.ledger.checkpointer!.checkpointNow();
    const oldText = (await before.app.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
    expect((await post(before.app, cosignCheckpoint(oldText, parseCosignerKey(witness.signerKey), 1_800_000_000))).statusCode).toBe(201);

    // Rotation at the same size: the announcement is a second text of that size.
    const after = await serve(newKey.signerKey, oldKey.signerKey);
    const announcement = (await after.app.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
    expect(parseNote(announcement).text).toMatch(/chipledger\.dev\/key-rotation/);
    expect(openCheckpoint(announcement, parseVerifierKey(oldKey.verifierKey)).checkpoint.size).toBe(openCheckpoint(oldText, parseVerifierKey(oldKey.verifierKey)).checkpoint.size);
    // The witness line over the old text is not served with the announcement: the note opens.
    const opened = openCheckpoint(announcement, parseVerifierKey(newKey.verifierKey), witnesses);
    expect(opened.note.verified.map((signature) => signature.name)).toEqual([newKey.verifierKey.split('+')[0]]);
    const bundle = (await after.app.inject({ method: 'GET', url: '/v1/log/events/3/proof' })).body;
    const leaf = leafHash((await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = 3')).rows[0]!.canonical);
    expect(verifyTlogProof(bundle, leaf, parseVerifierKey(newKey.verifierKey), { witnesses, witnessQuorum: 0 }).index).toBe(3);

    // The witness cosigns the announcement too: now it is served with it, and counts.
    expect((await post(after.app, cosignCheckpoint(announcement, parseCosignerKey(witness.signerKey), 1_800_000_100))).statusCode).toBe(201);
    const cosigned = (await after.app.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
    expect(openCheckpoint(cosigned, parseVerifierKey(newKey.verifierKey), witnesses).note.verified.map((signature) => signature.name)).toContain('witness.example');
    const quorum = (await after.app.inject({ method: 'GET', url: '/v1/log/events/3/proof' })).body;
    expect(verifyTlogProof(quorum, leaf, parseVerifierKey(newKey.verifierKey), { witnesses, witnessQuorum: 1 }).index).toBe(3);
  });

  it('serves the announcement as the newest at its size whatever the rows\' times say (the database clock stepped back between them)', async () => {
    const after = apps.at(-1)!;
    const served = (await after.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
    const size = openCheckpoint(served, parseVerifierKey(newKey.verifierKey)).checkpoint.size;
    const oldKeyId = formatKeyId(parseSignerKey(oldKey.signerKey).keyId);
    // The old key's checkpoint of that size dated an hour after the announcement, as a clock stepped back between them leaves it.
    const moved = `UPDATE tlog_checkpoints SET created_at = created_at + interval '1 hour' WHERE size = ${size} AND key_id = '${oldKeyId}'`;
    await withTriggerOff(database.pool, 'tlog_checkpoints', () => database.pool.query(moved));
    try {
      const newest = (await after.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
      expect(parseNote(newest).text).toMatch(/chipledger\.dev\/key-rotation/);
      expect(openCheckpoint(newest, parseVerifierKey(newKey.verifierKey)).checkpoint.size).toBe(size);
    } finally {
      await withTriggerOff(database.pool, 'tlog_checkpoints', () => database.pool.query(moved.replace("+ interval '1 hour'", "- interval '1 hour'")));
    }
  });

  it('leaves off a stored line that does not verify over the served text', async () => {
    const after = apps.at(-1)!;
    const served = (await after.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
    const size = openCheckpoint(served, parseVerifierKey(newKey.verifierKey)).checkpoint.size;
    // A line made over another text, stored against the served checkpoint row (as a row
    // carried over by the migration from a size with two texts could be).
    const otherText = `log.chipledger.test\n${size}\n${Buffer.alloc(32, 3).toString('base64')}\n`;
    const line = cosignCheckpoint(`${otherText}\n— x AAAAAAAA\n`, parseCosignerKey(witness.signerKey), 1_800_000_200).split('\n').at(-2)!;
    await database.pool.query(
      `UPDATE tlog_cosignatures SET signature_line = $1, timestamp_s = 1800000200 WHERE checkpoint_size = $2 AND checkpoint_key_id = $3`,
      [`${line}\n`, size, formatKeyId(parseSignerKey(newKey.signerKey).keyId)],
    );
    const guarded = (await after.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
    expect(guarded).not.toContain(line);
    expect(openCheckpoint(guarded, parseVerifierKey(newKey.verifierKey), witnesses).note.verified.map((signature) => signature.name)).not.toContain('witness.example');
  });

  it("answers /healthz 503 on a server whose key another process retired: it takes writes no checkpoint of its covers", async () => {
    // The first server still holds the old key; the rotation above retired it.
    const before = { ledger: ledgers[0]!, app: apps[0]! };
    const retiredDetail = `this server no longer signs checkpoints: the log key ${oldKey.verifierKey} is no longer the log's key (now ${newKey.verifierKey})`;
    // An idle server has not tried to sign since: the health check reads the log's key itself.
    const idle = await before.app.inject({ method: 'GET', url: '/healthz' });
    expect(idle.statusCode, 'before it tries to sign again').toBe(503);
    expect(idle.json()).toMatchObject({ code: 'unavailable', detail: expect.stringContaining(retiredDetail) });
    await expect(before.ledger.checkpointer!.checkpointNow()).rejects.toThrow(/no longer the log's key/);
    const retired = await before.app.inject({ method: 'GET', url: '/healthz' });
    expect(retired.statusCode).toBe(503);
    expect(retired.json()).toMatchObject({ code: 'unavailable', detail: expect.stringContaining(retiredDetail) });
    expect((await apps.at(-1)!.inject({ method: 'GET', url: '/healthz' })).statusCode, 'the server with the current key').toBe(200);
    // And it serves the log's key, not its own retired one.
    expect((await before.app.inject({ method: 'GET', url: '/v1/log/key' })).body).toBe(`${newKey.verifierKey}\n`);
  });

  it("takes a witness's cosignature over the old key's last checkpoint after the rotation, and a retired server takes the new key's", async () => {
    const [retired, current] = [apps[0]!, apps.at(-1)!];
    const oldRow = (await database.pool.query<{ signed_note: string }>('SELECT signed_note FROM tlog_checkpoints WHERE key_id = $1 ORDER BY size DESC LIMIT 1', [formatKeyId(parseSignerKey(oldKey.signerKey).keyId)])).rows[0]!;
    const late = await post(current, cosignCheckpoint(oldRow.signed_note, parseCosignerKey(witness.signerKey), 1_800_000_300));
    expect(late.statusCode, late.body).toBe(201);
    const newest = (await current.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
    const fromRetired = await post(retired, cosignCheckpoint(newest, parseCosignerKey(witness.signerKey), 1_800_000_400));
    expect(fromRetired.statusCode, fromRetired.body).toBe(201);
    // Its proof bundles with witness cosignatures are the current key's checkpoints too.
    const quorum = await retired.inject({ method: 'GET', url: '/v1/log/events/3/proof?cosignatures=1' });
    expect(quorum.statusCode, quorum.body).toBe(200);
    expect(quorum.body).toContain(newest.split('\n\n')[0]!);
    // A note no key of the log signed is still refused, with this server's key's words.
    const forged = await post(current, cosignCheckpoint(`log.chipledger.test\n1\n${Buffer.alloc(32, 9).toString('base64')}\n\n— log.chipledger.test AAAAAAAA\n`, parseCosignerKey(witness.signerKey), 1_800_000_500));
    expect(forged.statusCode).toBe(400);
    // With the rule of the format that refused it, as every 400 names one.
    expect(forged.json()).toMatchObject({ rule: 'c2sp-tlog-checkpoint', details: { reason: 'unverified_checkpoint' } });
  });
});
