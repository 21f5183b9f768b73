/**
 * Sealed heads (migration 060, head-seal.ts): a process that holds the log's key seals every
 * head it writes, and extends or signs only a head vouched for. s26's attack review appended a
 * whole forged batch with the writer's connection alone (event, leaf, tiles and head, all
 * consistent): the next batch extended it and the checkpointer signed it. Here the same batch,
 * written by a process without the key, is signed by nobody and extended by nobody.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatCheckpoint, formatKeyId, generateSignerKey, parseSignerKey, signNote, type Ed25519NoteSigner } from '../../tlog/index.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { Ledger } from '../ledger.ts';
import { systemActor, type Actor } from '../permissions.ts';
import { HeadNotVouched, HeadSealer, headSealRule } from './head-seal.ts';
import { appendWithoutKey } from '../../../test/support/keyless-append.ts';
import { currentLogKey, readHead } from '../../store/tlog-tables.ts';
import type { Pool } from '../../store/pool.ts';

const origin = 'seal.chipledger.test';
const keyA = generateSignerKey(origin);
const keyB = generateSignerKey(origin);
const root = (text: string) => Buffer.alloc(32, text);

describe('a head seal', () => {
  const sealer = new HeadSealer(keyA.signerKey);
  const head = { size: 7, root: root('r') };

  it('is the same for the same key and head, and another for another size, root or key', () => {
    const seal = sealer.seal(head);
    expect(seal).toHaveLength(32);
    expect(new HeadSealer(keyA.signerKey).seal(head)).toEqual(seal);
    for (const other of [sealer.seal({ size: 8, root: head.root }), sealer.seal({ size: 7, root: root('s') }), new HeadSealer(keyB.signerKey).seal(head)]) {
      expect(other).not.toEqual(seal);
    }
  });

  it("vouches for its own key's seals and, during a rotation, the previous key's; for nothing else", () => {
    const rotating = new HeadSealer(keyB.signerKey, keyA.signerKey);
    expect(rotating.sealedBy(head, sealer.seal(head))).toBe(true);
    expect(rotating.sealedBy(head, rotating.seal(head))).toBe(true);
    expect(sealer.sealedBy(head, rotating.seal(head))).toBe(false);
    expect(sealer.sealedBy({ size: 8, root: head.root }, sealer.seal(head))).toBe(false);
    expect(sealer.sealedBy(head, null)).toBe(false);
    expect(sealer.sealedBy(head, sealer.seal(head).subarray(0, 31))).toBe(false);
  });

  it('is no key the log signs with: another key is derived for it', () => {
    const signature = Buffer.from(keyA.signerKey.split('+').at(-1)!, 'base64').subarray(1);
    expect(sealer.seal(head).equals(signature)).toBe(false);
  });
});

describe('heads written without the log key', () => {
  let database: TestDatabase;
  let ledger: Ledger;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Written before the log has a key (a command run with none): the first key vouches for it.
    const keyless = await Ledger.open({ pool: database.writerPool });
    await register(keyless, 'Before Any Key');
    await keyless.close();
    expect((await readHead(database.pool)).seal).toBeNull();
    ledger = await Ledger.open({ pool: database.writerPool, logSignerKey: keyA.signerKey, checkpointIntervalMs: 3_600_000 });
  });
  afterAll(async () => {
    await ledger?.close();
    await database?.drop();
  });

  it("are sealed by the log's first key as it finds them, and every head the keyed ledger writes is sealed", async () => {
    const sealer = new HeadSealer(keyA.signerKey);
    const adopted = await readHead(database.pool);
    expect(sealer.sealedBy(adopted, adopted.seal)).toBe(true);
    await register(ledger, 'Sealed Org');
    const head = await readHead(database.pool);
    expect(head.size).toBe(adopted.size + 1);
    expect(sealer.sealedBy(head, head.seal)).toBe(true);
    expect((await ledger.checkpointer!.checkpointNow())?.size).toBe(head.size);
  });

  it('are neither signed nor extended once the log has a key, and a keyed ledger does not open on them', async () => {
    const before = await readHead(database.pool);
    const checkpointsBefore = await checkpointCount(database.pool);
    await appendWithoutKey(database.writerPool, 'forged.kind');
    const forged = await readHead(database.pool);
    expect(forged).toMatchObject({ size: before.size + 1, seal: null });

    const signing = await ledger.checkpointer!.checkpointNow().then(() => undefined, (error: unknown) => error);
    expect(signing).toBeInstanceOf(HeadNotVouched);
    expect((signing as Error).message).toBe(
      `the log's head (size ${forged.size}, root ${forged.root.toString('hex')}) is not sealed by the log's key ${keyA.verifierKey}, nor a checkpoint it signed: `
        + 'events were appended by something that does not hold the log key (written around the ledger, or by a chipledger command not given the key); '
        + 'nothing is appended to it or signed over it; run chipledger check and see the README ("The database\'s roles")',
    );
    expect(await checkpointCount(database.pool)).toBe(checkpointsBefore);

    // Not even a batch that appends nothing is applied at it: the head it commits at would be
    // the one the next batch is sent ahead at, outside the lock, where no head is checked.
    const nothing = await ledger.submit('token.revoke', { tokenId: 'TOK-999999' }, systemActor);
    expect(nothing).toMatchObject({ ok: false, error: { code: 'unavailable', rule: headSealRule } });
    const answer = await ledger.submit('organisation.register', { name: 'After The Forgery', country: 'US', roles: ['exporter'], identifiers: {} }, systemActor);
    expect(answer).toMatchObject({ ok: false, error: { code: 'unavailable', rule: headSealRule } });
    expect(await readHead(database.pool)).toEqual(forged);

    await expect(Ledger.open({ pool: database.writerPool, logSignerKey: keyA.signerKey, checkpointIntervalMs: 3_600_000 })).rejects.toThrow(HeadNotVouched);
    // Nor does a key the log never had make it one's own: it is refused as another log's key
    // before any seal is looked at, and seals nothing.
    await expect(Ledger.open({ pool: database.writerPool, logSignerKey: keyB.signerKey, checkpointIntervalMs: 3_600_000 })).rejects.toThrow(/not by the configured key/);
    expect((await readHead(database.pool)).seal).toBeNull();

    // The writer may not vouch for a head as migration 060 vouched for the head it found.
    await expect(database.writerPool.query('INSERT INTO log_head_unsealed (size, root) SELECT size, root FROM log_head')).rejects.toMatchObject({ code: '42501' });
    // The owner may: the head is then as good as one written before 060 (and the test's state usable again).
    await database.pool.query('INSERT INTO log_head_unsealed (size, root) SELECT size, root FROM log_head');
    expect((await ledger.checkpointer!.checkpointNow())?.size).toBe(forged.size);
    await register(ledger, 'After The Owner Vouched');
    const head = await readHead(database.pool);
    expect(new HeadSealer(keyA.signerKey).sealedBy(head, head.seal)).toBe(true);
  });

  it('are vouched for by a checkpoint the log key signed, not by a checkpoint row another key signed', async () => {
    await appendWithoutKey(database.writerPool, 'forged.again');
    const forged = await readHead(database.pool);
    // A checkpoint row over the forged head, signed by a key of the log's name that is not the log's.
    const impostor = parseSignerKey(keyB.signerKey);
    await insertCheckpointRow(database.writerPool, forged, impostor);
    const refused = await ledger.submit('organisation.register', { name: 'Over An Impostor', country: 'US', roles: ['exporter'], identifiers: {} }, systemActor);
    expect(refused).toMatchObject({ ok: false, error: { code: 'unavailable', rule: headSealRule } });
    expect(await readHead(database.pool)).toEqual(forged);
    // One signed by the log's key vouches (signed here by hand, as only a key holder could).
    await insertCheckpointRow(database.writerPool, forged, parseSignerKey(keyA.signerKey));
    await register(ledger, 'After A Signed Head');
    const head = await readHead(database.pool);
    expect(head.size).toBe(forged.size + 1);
    expect(new HeadSealer(keyA.signerKey).sealedBy(head, head.seal)).toBe(true);
  });
});

describe('heads across a key rotation', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("take the old key's seal for the announcement only, which seals the head anew; a process on the old key is believed no more", async () => {
    const old = await Ledger.open({ pool: database.writerPool, logSignerKey: keyA.signerKey, checkpointIntervalMs: 3_600_000 });
    try {
      await register(old, 'Under The Old Key');
      await register(old, 'Under The Old Key Again'); // its own head: the next batch finds itself alone
      const sealedByA = await readHead(database.pool);
      expect(new HeadSealer(keyA.signerKey).sealedBy(sealedByA, sealedByA.seal)).toBe(true);

      const rotated = await Ledger.open({ pool: database.writerPool, logSignerKey: keyB.signerKey, logPreviousSignerKey: keyA.signerKey, checkpointIntervalMs: 3_600_000 });
      await rotated.close();
      const announced = await readHead(database.pool);
      expect({ size: announced.size, root: announced.root }).toEqual({ size: sealedByA.size, root: sealedByA.root });
      expect(new HeadSealer(keyB.signerKey).sealedBy(announced, announced.seal)).toBe(true);
      // Still running on A, at the head it left, which B sealed: refused at its next batch.
      const stale = await old.submit('organisation.register', { name: 'Still Under The Old Key', country: 'US', roles: ['exporter'], identifiers: {} }, systemActor);
      expect(stale).toMatchObject({ ok: false, error: { code: 'unavailable', rule: headSealRule, message: expect.stringContaining(`this process was not given the log's key (${keyB.verifierKey})`) } });
      expect(await readHead(database.pool)).toEqual(announced);
    } finally {
      await old.close();
    }
    const later = await Ledger.open({ pool: database.writerPool, logSignerKey: keyB.signerKey, checkpointIntervalMs: 3_600_000 });
    try {
      await register(later, 'Under The New Key');
      const head = await readHead(database.pool);
      expect(new HeadSealer(keyB.signerKey).sealedBy(head, head.seal)).toBe(true);
    } finally {
      await later.close();
    }
    // A server left running on the old key: its seal is not the log's any more.
    await expect(Ledger.open({ pool: database.writerPool, logSealingKey: keyA.signerKey })).rejects.toThrow(`this process was not given the log's key (${keyB.verifierKey})`);
  });

  it('refuses a process without the key any write once the log has one, before it writes', async () => {
    const before = await readHead(database.pool);
    const keyless = await Ledger.open({ pool: database.writerPool });
    try {
      const answer = await keyless.submit('organisation.register', { name: 'Without The Key', country: 'US', roles: ['exporter'], identifiers: {} }, systemActor);
      expect(answer).toMatchObject({ ok: false, error: { code: 'unavailable', rule: headSealRule, message: expect.stringContaining(`this process was not given the log's key (${keyB.verifierKey})`) } });
    } finally {
      await keyless.close();
    }
    expect(await readHead(database.pool)).toEqual(before);
  });
});

describe('a log key adopted beside writers', () => {
  let database: TestDatabase;

  beforeEach(async () => {
    database = await createTestDatabase();
  });
  afterEach(async () => {
    await database?.drop();
  });

  it('is adopted between batches: the head a batch holding the lock leaves is the one sealed', async () => {
    const keyless = await Ledger.open({ pool: database.writerPool });
    await register(keyless, 'Before The Key');
    await keyless.close();
    const before = await readHead(database.pool);
    let adopting: Promise<Ledger> | undefined;
    await appendWithoutKey(database.writerPool, 'racing.kind', async (holder) => {
      adopting = Ledger.open({ pool: database.writerPool, logSignerKey: keyA.signerKey, checkpointIntervalMs: 3_600_000 });
      adopting.catch(() => {}); // awaited below
      // The adoption waits for this batch's lock on the head, its key not yet written.
      for (let waited = 0; !(await adoptionWaitsForTheHead(database.pool)); waited += 20) {
        if (waited > 60_000) throw new Error('the key adoption never waited for the head lock');
        await holder.query('SELECT 1'); // within the lock's idle bound
        await new Promise((resume) => setTimeout(resume, 20));
      }
      expect(await currentLogKey(database.pool)).toBeUndefined();
    });
    const server = await adopting!;
    try {
      const sealed = await readHead(database.pool);
      expect(sealed.size).toBe(before.size + 1);
      expect(new HeadSealer(keyA.signerKey).sealedBy(sealed, sealed.seal)).toBe(true);
      await register(server, 'After The Key');
      expect((await server.checkpointer!.checkpointNow())?.size).toBe(sealed.size + 1);
    } finally {
      await server.close();
    }
  });

  it('stops the processes that do not hold it at their next batch, the one that wrote the head it sealed too, and the server goes on', async () => {
    const keyless = await Ledger.open({ pool: database.writerPool });
    // Seals with A before the log has a key (an admin command given the key the server will adopt).
    const withA = await Ledger.open({ pool: database.writerPool, logSealingKey: keyA.signerKey });
    const withB = await Ledger.open({ pool: database.writerPool, logSealingKey: keyB.signerKey });
    const writers = [keyless, withA, withB];
    let server: Ledger | undefined;
    try {
      // Before the log has a key each writes at the others' heads, sealed or not, and seals its
      // own with its key (keyless leaves none); keyless writes last, twice: the second batch
      // finds the head its first left, and takes it for its own.
      for (const [round, writer] of [keyless, withA, withB, withA, withB, keyless, keyless].entries()) await register(writer, `Before The Key ${round}`);
      const found = await readHead(database.pool);
      expect(found.seal).toBeNull();

      server = await Ledger.open({ pool: database.writerPool, logSignerKey: keyA.signerKey, checkpointIntervalMs: 3_600_000 });
      const sealed = await readHead(database.pool);
      expect({ size: sealed.size, root: sealed.root }).toEqual({ size: found.size, root: found.root });
      expect(new HeadSealer(keyA.signerKey).sealedBy(sealed, sealed.seal)).toBe(true);
      // Nothing moved the head since keyless's last batch, but its seal is new: keyless may not
      // write there (nor may withB, whose key the log never had).
      for (const writer of [keyless, withB]) {
        const answer = await writer.submit('organisation.register', { name: 'Without The Log Key', country: 'US', roles: ['exporter'], identifiers: {} }, systemActor);
        expect(answer).toMatchObject({ ok: false, error: { code: 'unavailable', rule: headSealRule, message: expect.stringContaining(`this process was not given the log's key (${keyA.verifierKey})`) } });
      }
      expect(await readHead(database.pool)).toEqual(sealed);
      await register(withA, 'With The Log Key');
      await register(server, 'The Server');
      const head = await readHead(database.pool);
      expect(head.size).toBe(found.size + 2);
      expect((await server.checkpointer!.checkpointNow())?.size).toBe(head.size);
    } finally {
      await server?.close();
      for (const writer of writers) await writer.close();
    }
  });

  it('stops a process without it whose last batch appended nothing, at a head sealed by that key', async () => {
    const withA = await Ledger.open({ pool: database.writerPool, logSealingKey: keyA.signerKey });
    const keyless = await Ledger.open({ pool: database.writerPool });
    let server: Ledger | undefined;
    try {
      await register(withA, 'Sealed Before The Key');
      // Refused, so it appends nothing, and keeps the seal it found: A's, not one it writes.
      const refused = await keyless.submit('token.revoke', { tokenId: 'TOK-999999' }, systemActor);
      expect(refused).toMatchObject({ ok: false, error: { code: 'not_found' } });
      const found = await readHead(database.pool);
      server = await Ledger.open({ pool: database.writerPool, logSignerKey: keyA.signerKey, checkpointIntervalMs: 3_600_000 });
      expect(await readHead(database.pool)).toEqual(found); // sealed by A already: the adoption changes nothing
      const answer = await keyless.submit('organisation.register', { name: 'After An Empty Batch', country: 'US', roles: ['exporter'], identifiers: {} }, systemActor);
      expect(answer).toMatchObject({ ok: false, error: { code: 'unavailable', rule: headSealRule } });
      expect(await readHead(database.pool)).toEqual(found);
      await register(server, 'The Server');
    } finally {
      await server?.close();
      await withA.close();
      await keyless.close();
    }
  });

  it('stops a process without it whose next batch goes ahead at the head it left, which the adoption sealed', async () => {
    const keyless = await Ledger.open({ pool: database.writerPool });
    let server: Ledger | undefined;
    try {
      const recipient = await keyless.submit('organisation.register', { name: 'Site Owner', country: 'US', roles: ['recipient'], identifiers: {} }, systemActor);
      if (!recipient.ok) throw new Error(JSON.stringify(recipient));
      const orgId = String(recipient.body.organisationId);
      const token = await keyless.submit('token.create', { organisationId: orgId, role: 'recipient', label: 'site owner' }, systemActor);
      if (!token.ok) throw new Error(JSON.stringify(token));
      const owner: Actor = { id: String(token.body.tokenId), orgId, role: 'recipient' };
      const registerSite = (name: string) => keyless.submit('site.register', { name, province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10 }, owner);
      // The classic way (finding its own head, caching the rows), then sent ahead from them.
      const stats = keyless.sequencer.stats;
      for (let round = 1; stats.aheadBatches === 0; round += 1) {
        if (round > 5) throw new Error('no batch was sent ahead');
        const site = await registerSite(`DC-${round}`);
        expect(site, JSON.stringify(site)).toMatchObject({ ok: true });
      }
      const found = await readHead(database.pool);
      server = await Ledger.open({ pool: database.writerPool, logSignerKey: keyB.signerKey, checkpointIntervalMs: 3_600_000 });
      const sealed = await readHead(database.pool);
      expect({ size: sealed.size, root: sealed.root }).toEqual({ size: found.size, root: found.root });
      expect(new HeadSealer(keyB.signerKey).sealedBy(sealed, sealed.seal)).toBe(true);
      // Same size and root: the opening sent ahead finds the seal changed (migration 061) and the
      // batch goes the classic way, which sees the key and refuses.
      const misses = stats.aheadMisses;
      expect(await registerSite('DC-after-the-key')).toMatchObject({ ok: false, error: { code: 'unavailable', rule: headSealRule } });
      expect(stats.aheadMisses).toBe(misses + 1);
      expect(await readHead(database.pool)).toEqual(sealed);
      await register(server, 'The Server');
      expect((await server.checkpointer!.checkpointNow())?.size).toBe(sealed.size + 1);
    } finally {
      await server?.close();
      await keyless.close();
    }
  });
});

async function adoptionWaitsForTheHead(pool: Pool): Promise<boolean> {
  const found = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM log_head WHERE id = 1 FOR UPDATE%' AND pid <> pg_backend_pid()");
  return found.rows[0]!.n > 0;
}

async function register(ledger: Ledger, name: string): Promise<void> {
  const answer = await ledger.submit('organisation.register', { name, country: 'US', roles: ['exporter'], identifiers: {} }, systemActor);
  expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true });
}

async function insertCheckpointRow(pool: Pool, head: { size: number; root: Buffer }, signer: Ed25519NoteSigner): Promise<void> {
  const note = signNote(formatCheckpoint({ origin, size: head.size, rootHash: head.root, extensions: [] }), signer);
  await pool.query('INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES ($1, $2, $3, $4)', [head.size, head.root, formatKeyId(signer.keyId), note]);
}

async function checkpointCount(pool: Pool): Promise<number> {
  return (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tlog_checkpoints')).rows[0]!.n;
}
