import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { bookMany, buildWorld, type World } from '../../../test/world.ts';
import { untriggered, withTriggerOff } from '../../../test/support/tamper.ts';
import {
  formatCheckpoint, generateSignerKey, leafHash, parseSignerKey, signNote, openCheckpoint, parseVerifierKey, rootOf, tileWidth, verifyConsistency, verifyInclusion,
} from '../../tlog/index.ts';
import { createPool, type Pool } from '../../store/pool.ts';
import { listLogKeys, readHead, type TileRow } from '../../store/tlog-tables.ts';
import { Ledger } from '../ledger.ts';
import { checkLogOnStart, LogCheckError } from './check.ts';
import { TransparencyLog } from './transparency-log.ts';
import { tileLevelsOf, tilesGained } from '../../tlog/test-support.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let database: TestDatabase;
let world: World;
const key = generateSignerKey('log.chipledger.test');

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000 }); // room for every booking below
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

async function leafHashes(): Promise<Buffer[]> {
  const rows = await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events ORDER BY seq');
  return rows.rows.map((row) => leafHash(row.canonical));
}

const book = (count: number): Promise<void> => bookMany(world, count);

describe('transparency log over the ledger', () => {
  it('makes every event a leaf, in commit order, with the root stored beside the head', async () => {
    await book(300); // crosses a full level-0 tile (256 leaves)
    const leaves = await leafHashes();
    const head = (await database.pool.query('SELECT size, root FROM log_head')).rows[0];
    expect(head.size).toBe(leaves.length);
    expect(Buffer.from(head.root).equals(rootOf(leaves))).toBe(true);
    for (const size of [1, 2, 255, 256, 257, leaves.length]) {
      expect((await world.ledger.log.rootAt(size)).equals(rootOf(leaves.slice(0, size)))).toBe(true);
    }
  });

  it('serves inclusion and consistency proofs that verify against independent roots', async () => {
    const leaves = await leafHashes();
    const size = leaves.length;
    for (const index of [0, 1, 100, 255, 256, size - 1]) {
      const proof = await world.ledger.log.inclusionProof(index, size);
      expect(verifyInclusion(leaves[index]!, index, size, proof, rootOf(leaves))).toBe(true);
    }
    for (const [from, to] of [[1, size], [256, size], [100, 257], [size - 1, size]] as const) {
      const proof = await world.ledger.log.consistencyProof(from, to);
      expect(verifyConsistency(from, to, proof, rootOf(leaves.slice(0, from)), rootOf(leaves.slice(0, to)))).toBe(true);
    }
  });

  it('answers every proof over a full tile from its inner nodes, each node right', async () => {
    // Every inner node of the first (full) tile is used by some proof here, both through a
    // log that computes them now and through one that has them cached from the first pass.
    const leaves = await leafHashes();
    for (const size of [256, 257, leaves.length]) {
      const root = rootOf(leaves.slice(0, size));
      for (let index = 0; index < size; index += 1) {
        expect(verifyInclusion(leaves[index]!, index, size, await world.ledger.log.inclusionProof(index, size), root)).toBe(true);
      }
      for (let from = 1; from < size; from += 1) {
        expect(verifyConsistency(from, size, await world.ledger.log.consistencyProof(from, size), rootOf(leaves.slice(0, from)), root)).toBe(true);
      }
    }
  });

  it('keeps one log when two ledgers (processes) append to the same database in turn', async () => {
    const pool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'second' });
    const second = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: world.clock });
    const reloadsBefore = world.ledger.log.stats.reloads;
    try {
      for (let round = 0; round < 4; round += 1) {
        // Small batches, and big ones (300 events: sent by COPY, hashed while they travel),
        // each after the other ledger wrote: the log must reload its edge first.
        await book(round % 2 === 0 ? 5 : 300);
        await second.submit('shipment.book', {
          exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
        }, world.actors.exporter);
      }
      const leaves = await leafHashes();
      const head = (await database.pool.query('SELECT root FROM log_head')).rows[0];
      expect(Buffer.from(head.root).equals(rootOf(leaves))).toBe(true);
      expect(world.ledger.log.stats.reloads - reloadsBefore).toBeGreaterThanOrEqual(3);
    } finally {
      await second.close();
      await pool.end();
    }
  });

  it('signs checkpoints as C2SP signed notes that open with the published verifier key', async () => {
    const pool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'signer' });
    const signing = await Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: key.signerKey, checkpointIntervalMs: 60_000 });
    try {
      const checkpoint = await signing.checkpointer!.checkpointNow();
      const opened = openCheckpoint(checkpoint!.signed_note, parseVerifierKey(key.verifierKey));
      const leaves = await leafHashes();
      expect(opened.checkpoint.origin).toBe('log.chipledger.test');
      expect(opened.checkpoint.size).toBe(leaves.length);
      expect(opened.checkpoint.rootHash.equals(rootOf(leaves))).toBe(true);
    } finally {
      await signing.close();
      await pool.end();
    }
  });

  it('passes its start-up check on an honest state', async () => {
    const result = await checkLogOnStart(database.pool, new TransparencyLog(database.pool), [key.verifierKey]);
    expect(result.checkpoints).toBeGreaterThan(0);
  });
});

describe('log key rotation', () => {
  it('refuses a new key without the old one, announces it with both, and never lets the old one sign again', async () => {
    const next = generateSignerKey('log.chipledger.test');
    const open = (signerKey: string, previous?: string) => {
      const pool = createPool({ url: database.url, connectionsMax: 2, applicationName: 'rotation' });
      return Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: signerKey, ...(previous ? { logPreviousSignerKey: previous } : {}), checkpointIntervalMs: 3_600_000 })
        .finally(() => undefined)
        .then(async (ledger) => ({ ledger, pool }), async (error: unknown) => {
          await pool.end();
          throw error;
        });
    };
    await expect(open(next.signerKey)).rejects.toThrow(/to rotate to the new key, also configure the current one/);
    const rotated = await open(next.signerKey, key.signerKey);
    await rotated.ledger.close();
    await rotated.pool.end();
    const announcement = (await database.pool.query(`SELECT signed_note FROM tlog_checkpoints WHERE signed_note LIKE '%key-rotation%'`)).rows[0].signed_note as string;
    const byOld = openCheckpoint(announcement, parseVerifierKey(key.verifierKey));
    const byNew = openCheckpoint(announcement, parseVerifierKey(next.verifierKey));
    expect(byOld.checkpoint.extensions).toEqual([`chipledger.dev/key-rotation ${next.verifierKey}`]);
    expect(byNew.checkpoint.rootHash.equals(byOld.checkpoint.rootHash)).toBe(true);
    await expect(open(key.signerKey)).rejects.toThrow(/retired key cannot sign again/);
    const result = await checkLogOnStart(database.pool, new TransparencyLog(database.pool), [key.verifierKey, next.verifierKey]);
    expect(result.checkpoints).toBeGreaterThan(1);
  });
});

describe('start-up check against tampering', () => {
  // Each case changes the stored state inside a transaction, runs the check on that
  // connection's view, and rolls back, so the cases do not leak into each other.
  const cases: Array<{ name: string; tamper: string; check: string }> = [
    { name: 'one stored event', tamper: `UPDATE events SET canonical = canonical || '\\x20'::bytea WHERE seq = (SELECT size - 1 FROM log_head)`, check: 'leaf' },
    { name: 'one tile hash', tamper: untriggered(`UPDATE tlog_tiles SET hashes = set_byte(hashes, 99, get_byte(hashes, 99) # 255) WHERE level = 0 AND index = 0`), check: 'leaf' },
    { name: 'one upper tile hash', tamper: untriggered(`UPDATE tlog_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 255) WHERE level = 1 AND index = 0`), check: 'tile' },
    { name: 'two leaves reordered', tamper: `UPDATE events e SET canonical = o.canonical FROM events o WHERE (e.seq, o.seq) IN ((5, 6), (6, 5))`, check: 'leaf' },
    { name: 'a truncated log', tamper: untriggered(`DELETE FROM events WHERE seq = (SELECT size - 1 FROM log_head)`, 'events'), check: 'events' },
    { name: 'a head whose root is not the tiles\' root', tamper: `UPDATE log_head SET root = '\\x${'00'.repeat(32)}'::bytea`, check: 'root' },
    { name: 'a forked checkpoint (same size, other root, validly signed)', tamper: 'FORK', check: 'checkpoint-consistency' },
    { name: 'one signature byte', tamper: 'SIGNATURE', check: 'checkpoint-signature' },
  ];
  for (const { name, tamper, check } of cases) {
    it(`catches ${name}`, async () => {
      const client = await database.pool.connect();
      try {
        await client.query('BEGIN');
        if (tamper === 'SIGNATURE') {
          // Past the key id (the first 4 bytes, about 6 base64 characters): always a different character.
          const latest = (await client.query('SELECT size, key_id, signed_note FROM tlog_checkpoints ORDER BY size DESC, created_at DESC LIMIT 1')).rows[0];
          const line = latest.signed_note.indexOf('\n— ');
          const at = latest.signed_note.indexOf(' ', line + 4) + 1 + 12;
          const changed = latest.signed_note[at] === 'A' ? 'B' : 'A';
          const note = latest.signed_note.slice(0, at) + changed + latest.signed_note.slice(at + 1);
          await withTriggerOff(client, 'tlog_checkpoints', () => client.query('UPDATE tlog_checkpoints SET signed_note = $1 WHERE size = $2 AND key_id = $3', [note, latest.size, latest.key_id]));
        } else if (tamper === 'FORK') {
          const latest = (await client.query('SELECT size FROM tlog_checkpoints ORDER BY size DESC LIMIT 1')).rows[0];
          const forked = signNote(formatCheckpoint({ origin: 'log.chipledger.test', size: latest.size, rootHash: Buffer.alloc(32, 7), extensions: [] }), parseSignerKey(key.signerKey));
          await withTriggerOff(client, 'tlog_checkpoints', () => client.query('UPDATE tlog_checkpoints SET signed_note = $1 WHERE size = $2', [forked, latest.size]));
        } else {
          await client.query(tamper);
        }
        const error = await checkLogOnStart(client as never, new TransparencyLog(client as never), [key.verifierKey, ...(await listLogKeys(client as never)).map((row) => row.verifier_key)]).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(LogCheckError);
        expect((error as LogCheckError).check).toBe(check);
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
    });
  }
});

/**
 * A log's edge reloaded at a head on a tile boundary: a level whose hash count is a multiple
 * of 256 has no partial tile there, and the next append starts a new one. A second process
 * (a fresh TransparencyLog) reloads at whatever size the other left, so every width counts,
 * 0 among them.
 */
describe('reloading the right edge at and around a tile boundary', () => {
  /**
   * A fresh log (another process's) appends `count` leaves at `head`: what it would write must
   * be what the leaves give. From a tile boundary, 256 or more go through the whole-tile path.
   */
  async function appendAfterReload(pool: Pool, head: { size: number; root: Buffer }, leaves: readonly Buffer[], count = 1): Promise<void> {
    const fresh = new TransparencyLog(pool);
    const next = Array.from({ length: count }, (_, at) => ({ seq: head.size + at, canonical: Buffer.from(`leaf ${head.size + at}`) }));
    const client = await pool.connect();
    try {
      const appended = await fresh.append(client, head, next);
      const after = [...leaves, ...next.map((leaf) => leafHash(leaf.canonical))];
      expect(fresh.stats.reloads).toBe(1);
      expect(fresh.stats.wholeTiles).toBe(head.size % tileWidth === 0 ? Math.floor(count / tileWidth) : 0);
      expect(appended.root.toString('hex'), `root after a reload at ${head.size}`).toBe(rootOf(after).toString('hex'));
      const hex = (tiles: TileRow[]) => tiles.map((tile) => ({ ...tile, hashes: tile.hashes.toString('hex') })).sort((a, b) => a.level - b.level || a.index - b.index);
      expect(hex(appended.tiles), `tiles after a reload at ${head.size}`).toEqual(hex(tilesGained(tileLevelsOf(after), head.size, after.length)));
    } finally {
      client.release();
    }
  }

  it('appends after a reload at 255, 256, 257 and 512 leaves as a log that never stopped would', async () => {
    const fresh = await createTestDatabase();
    const made = await buildWorld(fresh.pool, { licenceUnits: 10_000 });
    try {
      for (const size of [255, 256, 257, 512]) {
        // The world's own ledger (log A) writes up to `size`; the fresh log reloads there.
        const before = await readHead(fresh.pool);
        if (before.size < size) await bookMany(made, size - before.size);
        const head = await readHead(fresh.pool);
        expect(head.size).toBe(size);
        const leaves = (await fresh.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events ORDER BY seq')).rows.map((row) => leafHash(row.canonical));
        await appendAfterReload(fresh.pool, head, leaves);
        if (size % tileWidth === 0) await appendAfterReload(fresh.pool, head, leaves, tileWidth + 44);
      }
    } finally {
      await made.ledger.close();
      await fresh.drop();
    }
  });

  it('appends after a reload at 65,536 and 65,537 leaves, where level 1 is on its boundary too', async () => {
    // 65,537 bookings would take minutes: the tiles are written here as the log writes them
    // (at 65,536: 256 full tiles at level 0, one at level 1, and level 2's first hash, the
    // root), from leaves that are not events. The reload reads only tiles, never events.
    // At 65,537 level 1 alone is on its boundary, level 0 one hash past it.
    const fresh = await createTestDatabase();
    try {
      const size = tileWidth * tileWidth;
      const leaves = Array.from({ length: size + 1 }, (_, index) => leafHash(Buffer.from(`synthetic leaf ${index}`)));
      const levels = tileLevelsOf(leaves);
      const writeTiles = async (from: number, to: number) => {
        for (const { level, index, width, hashes } of tilesGained(levels, from, to)) {
          await fresh.pool.query('INSERT INTO tlog_tiles (level, index, width, hashes) VALUES ($1, $2, $3, $4) ON CONFLICT (level, index) DO UPDATE SET width = EXCLUDED.width, hashes = EXCLUDED.hashes', [level, index, width, hashes]);
        }
      };
      await writeTiles(0, size);
      await appendAfterReload(fresh.pool, { size, root: rootOf(leaves.slice(0, size)) }, leaves.slice(0, size));
      await appendAfterReload(fresh.pool, { size, root: rootOf(leaves.slice(0, size)) }, leaves.slice(0, size), 2 * tileWidth + 1);
      await writeTiles(size, size + 1);
      await appendAfterReload(fresh.pool, { size: size + 1, root: rootOf(leaves) }, leaves);
    } finally {
      await fresh.drop();
    }
  });
});
