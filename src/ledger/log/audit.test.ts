import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { buildWorld, type World } from '../../../test/world.ts';
import { untriggered } from '../../../test/support/tamper.ts';
import { readEntries, readHead } from '../../store/tlog-tables.ts';
import { innerNodesOf, leafHash, rootOf, tileWidth } from '../../tlog/index.ts';
import { systemActor } from '../permissions.ts';
import { auditStoredLog, type AuditResult } from './audit.ts';
import { checkLogOnStart } from './check.ts';
import { TransparencyLog } from './transparency-log.ts';

let database: TestDatabase;
let world: World;
/** rootsToHold's, made once the log is written. */
let honestRoots: Map<number, Buffer>;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 100_000, allocationUnits: 50_000 });
  const { ledger, actors, allocations, productId } = world;
  // Past two chunks of the audit (64 tiles each would be 16,384 entries: too slow here), so
  // a few full tiles, a partial one, and an upper tile.
  await Promise.all(Array.from({ length: 700 }, () => ledger.submit('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 1, deadline: '2026-06-01T00:00:00Z',
  }, actors.exporter)));
  honestRoots = await rootsToHold();
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

/**
 * The roots the audits are held to: at every tile boundary (so that a chunk per tile checks
 * each chunk's start, which only the next chunk's roots depend on), at one size inside a
 * tile, and the head's. Computed from the events before any tamper (in beforeAll).
 */
async function rootsToHold(): Promise<Map<number, Buffer>> {
  const head = await readHead(database.pool);
  const leaves = (await readEntries(database.pool, 0, head.size)).map((entry) => leafHash(entry));
  const sizes = [...Array.from({ length: Math.floor(head.size / tileWidth) + 1 }, (_, tile) => tile * tileWidth), 300, head.size];
  const roots = new Map(sizes.map((size) => [size, rootOf(leaves.slice(0, size))]));
  expect(roots.get(head.size)).toEqual(head.root);
  return roots;
}

/**
 * The audit every way: hashed here and in a worker, in one chunk; then a chunk per tile (each
 * from the frontier the stored upper tiles give at its start), hashed here and by three
 * workers taking the chunks in turn.
 */
async function everyWay(): Promise<AuditResult[]> {
  const head = await readHead(database.pool);
  const roots = honestRoots;
  return [
    await auditStoredLog(database.pool, head.size, roots, { workerFromEntries: Number.MAX_SAFE_INTEGER }),
    await auditStoredLog(database.pool, head.size, roots, { workerFromEntries: 0 }),
    await auditStoredLog(database.pool, head.size, roots, { workerFromEntries: Number.MAX_SAFE_INTEGER, tilesPerChunk: 1 }),
    await auditStoredLog(database.pool, head.size, roots, { workerFromEntries: 0, workers: 3, tilesPerChunk: 1 }),
  ];
}

/** The audit both ways: hashed here, and hashed in the worker thread. */
async function bothWays(): Promise<[AuditResult, AuditResult]> {
  const [here, worker] = await everyWay();
  return [here!, worker!];
}

describe('auditStoredLog in a worker thread', () => {
  it('finds an honest log honest, with the same count of hashes as in this thread, in one chunk or a chunk per tile on three workers', async () => {
    const [here, ...others] = await everyWay();
    expect(here!.failure).toBeUndefined();
    for (const other of others) expect(other).toEqual(here);
    expect(here!.hashes).toBeGreaterThan(700);
  });

  for (const [name, change] of [
    ['a changed event', 'UPDATE events SET canonical = set_byte(canonical, 30, get_byte(canonical, 30) # 1) WHERE seq = 600'],
    ['a changed level-0 tile hash', untriggered('UPDATE tlog_tiles SET hashes = set_byte(hashes, 64, get_byte(hashes, 64) # 1) WHERE level = 0 AND index = 1')],
    ['a changed level-1 tile hash', untriggered('UPDATE tlog_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) WHERE level = 1 AND index = 0')],
  ] as const) {
    it(`names ${name} exactly as the audit in this thread does, however chunked and hashed`, async () => {
      await database.pool.query(change);
      try {
        const [here, ...others] = await everyWay();
        expect(here!.failure).toBeDefined();
        for (const other of others) expect(other).toEqual(here);
      } finally {
        await database.pool.query(change); // the same flip again undoes it
      }
    });
  }

  for (const [name, missing] of [['the last event of a chunk (a tile, here) in the middle of the log', 511], ['the log\'s last event', 'last']] as const) {
    it(`finds ${name} missing, however chunked: the next chunk starts from the stored tiles, not from where the entries ended`, async () => {
      const head = await readHead(database.pool);
      const seq = missing === 'last' ? head.size - 1 : missing;
      await database.pool.query(untriggered(`CREATE TABLE tamper_saved_event AS SELECT * FROM events WHERE seq = ${seq}; DELETE FROM events WHERE seq = ${seq}`, 'events'));
      try {
        for (const result of await everyWay()) {
          // In one chunk the next event lands on this leaf; a chunk that ends early says so.
          expect(result.failure).toMatchObject({ kind: 'leaf', message: expect.stringMatching(new RegExp(`(entry ${seq} hashes to|the log stores no entry ${seq} )`)) });
        }
      } finally {
        await database.pool.query('INSERT INTO events SELECT * FROM tamper_saved_event; DROP TABLE tamper_saved_event');
      }
      expect((await everyWay())[3]!.failure).toBeUndefined();
    });
  }

  it('reports the chunk that finds an upper tile missing, not the later chunk whose start needs it', async () => {
    // Moved out of the way (the trigger that keeps tiles whole off): the tile is gone from where the audit reads it.
    const moved = 1_000_000;
    await database.pool.query(untriggered(`UPDATE tlog_tiles SET index = ${moved} WHERE level = 1 AND index = 0`));
    try {
      const results = await everyWay();
      expect(results[0]!.failure).toEqual({ kind: 'tile', message: 'the log stores no hash for tile level 1 hash 0 (tile 0)' });
      for (const other of results.slice(1)) expect(other).toEqual(results[0]);
    } finally {
      await database.pool.query(untriggered(`UPDATE tlog_tiles SET index = 0 WHERE level = 1 AND index = ${moved}`));
    }
    expect((await everyWay())[3]!.failure).toBeUndefined();
  });

  it('refuses chunks that are not a power of two of tiles: they would not be whole subtrees', async () => {
    const head = await readHead(database.pool);
    await expect(auditStoredLog(database.pool, head.size, new Map(), { tilesPerChunk: 3 })).rejects.toThrow(/an audit chunk of 3 tiles is not a power of two/);
  });

  it('reads stored bytes exactly: a byte that is not UTF-8 where the event had U+FFFD is caught', async () => {
    // Decoding stored bytes as UTF-8 (what node-postgres does with binary results) would
    // turn the lone 0xFF back into EF BF BD, the original: that audit would pass.
    const registered = await world.ledger.submit('organisation.register', { name: 'Replacement \uFFFD Holdings', country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
    expect(registered.ok).toBe(true);
    const seq = Number(registered.ok && registered.body.seq);
    const change = `UPDATE events SET canonical = overlay(canonical PLACING '\\xff'::bytea FROM position('\\xefbfbd'::bytea IN canonical) FOR 3) WHERE seq = ${seq}`;
    const original = (await readEntries(database.pool, seq, seq + 1))[0]!;
    await database.pool.query(change);
    try {
      const stored = (await readEntries(database.pool, seq, seq + 1))[0]!;
      expect(stored.length).toBe(original.length - 2);
      const [here, worker] = await bothWays();
      expect(here.failure?.message).toMatch(new RegExp(`entry ${seq} hashes to`));
      expect(worker).toEqual(here);
    } finally {
      await database.pool.query(`UPDATE events SET canonical = '\\x${original.toString('hex')}'::bytea WHERE seq = ${seq}`);
    }
  });
});

describe('tiles the audit proved, kept for proofs', () => {
  const names = (result: AuditResult) => result.verifiedTiles.map((tile) => `${tile.level}/${tile.index}`);

  it('keeps the newest level-0 tiles and then every upper tile, within keepTilesMax, both ways', async () => {
    const head = await readHead(database.pool);
    const roots = new Map([[head.size, head.root]]);
    for (const workerFromEntries of [Number.MAX_SAFE_INTEGER, 0]) {
      const audit = (keepTilesMax?: number) => auditStoredLog(database.pool, head.size, roots, { workerFromEntries, ...(keepTilesMax === undefined ? {} : { keepTilesMax }) });
      const all = await audit(100);
      expect(names(all)).toEqual(['0/0', '0/1', '0/2', '1/0']);
      // The full level-0 tiles come with the inner nodes the audit computed, exactly.
      for (const tile of all.verifiedTiles) {
        expect(tile.inner?.equals(innerNodesOf(tile.hashes)) ?? 'none', `${tile.level}/${tile.index}`).toBe(tile.level === 0 && tile.width === 256 ? true : 'none');
      }
      expect(names(await audit(2))).toEqual(['0/2', '1/0']);
      expect(names(await audit())).toEqual([]);
    }
  });

  it('keeps nothing when the audit fails', async () => {
    const change = untriggered('UPDATE tlog_tiles SET hashes = set_byte(hashes, 64, get_byte(hashes, 64) # 1) WHERE level = 0 AND index = 1');
    const head = await readHead(database.pool);
    await database.pool.query(change);
    try {
      const result = await auditStoredLog(database.pool, head.size, new Map([[head.size, head.root]]), { keepTilesMax: 100 });
      expect(result.failure).toBeDefined();
      expect(result.verifiedTiles).toEqual([]);
    } finally {
      await database.pool.query(change);
    }
  });

  it('lets proofs after the start-up check read no tile from PostgreSQL', async () => {
    const { size } = await readHead(database.pool);
    const checked = new TransparencyLog(database.pool);
    await checkLogOnStart(database.pool, checked, []);
    const query = vi.spyOn(database.pool, 'query');
    try {
      await checked.inclusionProof(300, size);
      await checked.consistencyProof(10, size);
      expect(query).not.toHaveBeenCalled();
      // A log that skipped the check reads its tiles: the spy sees queries when there are any.
      await new TransparencyLog(database.pool).inclusionProof(300, size);
      expect(query).toHaveBeenCalled();
    } finally {
      query.mockRestore();
    }
  });

  it('keeps only as many tiles as its cache holds: the newest level-0 ones and the upper ones', async () => {
    const { size } = await readHead(database.pool);
    const small = new TransparencyLog(database.pool, 2); // tile 0/2 (the partial, newest) and 1/0
    await checkLogOnStart(database.pool, small, []);
    const query = vi.spyOn(database.pool, 'query');
    try {
      await small.inclusionProof(600, size);
      expect(query).not.toHaveBeenCalled();
      await small.inclusionProof(300, size); // tile 0/1 was not kept
      expect(query).toHaveBeenCalledTimes(1);
    } finally {
      query.mockRestore();
    }
  });
});
