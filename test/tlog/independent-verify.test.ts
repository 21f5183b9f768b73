/**
 * Verifies a live chipledger transparency log the way an outside party would: with a verifier
 * written here from the public specifications alone (RFC 6962 / RFC 9162 Merkle trees, C2SP
 * signed-note, tlog-checkpoint, tlog-cosignature, tlog-tiles and tlog-proof), on node:crypto
 * and Buffer only.
 *
 * Why its own implementation: src/tlog's tests check src/tlog against itself, so if our code
 * and our tests agreed on a wrong format (a key id over the wrong bytes, a tile path spelled
 * differently, a cosignature laid out in another order), every test would pass and every
 * standard tool would still reject the log. Nothing here imports src/tlog or any other project
 * code that hashes, parses notes or spells tile paths; project code only sets up the server.
 * The verifier is first proven on the published vectors (/shared/data/tlog-vectors.md and the
 * examples in the C2SP texts), then run over everything the server publishes, then shown to
 * fail on one changed byte of a signature, a tile, an entry bundle and a proof.
 */
import { sign } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../database.ts';
import { buildWorld, type World } from '../world.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import { systemActor } from '../../src/ledger/permissions.ts';
import { createPool, type Pool } from '../../src/store/pool.ts';
import { buildServer } from '../../src/server/app.ts';
import {
  auditPath, base64Strict, consistencyPath, cosignatureMessage, deterministicSeed, ed25519Verifies, flipByte, hex, keyPairFromSeed, leafHash, mth, nodeHash, openCheckpoint, parseNote, parseTlogProof, parseVerifierKey, Published, signatureType, signedBy, splitEntries, tileIndexPath, tilePath, tilesFor, verifyConsistency, verifyInclusion, verifyTlogProof, verifyTree,
} from './independent-verifier.ts';
import { testSealingKey } from '../support/sealing-key.ts';

// ---------------------------------------------------------------------------------------------
// The verifier on the published vectors first.

const vectorLeaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((data) => leafHash(hex(data)));
const vectorRoots = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', 'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4', '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c', '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hex);
const vectorInclusion: Array<[number, number, string[]]> = [
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [0, 1, []],
];
const vectorConsistency: Array<[number, number, string[]]> = [
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];
const peterKey = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const peterSignerKey = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const enochKey = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const vectorText = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const peterLine = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const enochLine = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

describe('the independent verifier on published vectors', () => {
  it('hashes as RFC 6962 section 2.1', () => {
    expect(mth([]).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(leafHash(Buffer.alloc(0)).toString('hex')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(leafHash(Buffer.from('L123456')).toString('hex')).toBe('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56');
    expect(nodeHash(Buffer.from('N123'), Buffer.from('N456')).toString('hex')).toBe('aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb');
    expect(vectorLeaves[7]!.toString('hex')).toBe('46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1');
    vectorRoots.forEach((root, at) => expect(mth(vectorLeaves.slice(0, at + 1)).equals(root), `root of ${at + 1}`).toBe(true));
    expect(vectorRoots[7]!.toString('base64')).toBe('XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=');
  });

  it('builds and verifies the vector inclusion and consistency proofs, and refuses them altered', () => {
    for (const [index, size, path] of vectorInclusion) {
      const tree = vectorLeaves.slice(0, size);
      expect(auditPath(index, tree).map((hash) => hash.toString('hex'))).toEqual(path);
      expect(verifyInclusion(vectorLeaves[index]!, index, size, path.map(hex), vectorRoots[size - 1]!)).toBe(true);
      expect(verifyInclusion(vectorLeaves[index]!, index, size, [...path.map(hex), vectorRoots[0]!], vectorRoots[size - 1]!)).toBe(false);
      if (size > 1) expect(verifyInclusion(vectorLeaves[index]!, (index + 1) % size, size, path.map(hex), vectorRoots[size - 1]!)).toBe(false);
    }
    for (const [first, second, path] of vectorConsistency) {
      expect(consistencyPath(first, vectorLeaves.slice(0, second)).map((hash) => hash.toString('hex'))).toEqual(path);
      expect(verifyConsistency(first, second, path.map(hex), vectorRoots[first - 1]!, vectorRoots[second - 1]!), `${first} -> ${second}`).toBe(true);
      expect(verifyConsistency(first, second, path.slice(1).map(hex), vectorRoots[first - 1]!, vectorRoots[second - 1]!)).toBe(false);
      expect(verifyConsistency(first, second, path.map(hex), vectorRoots[second - 1]!, vectorRoots[second - 1]!)).toBe(false);
    }
  });

  it('reads verifier keys, makes the vector key from its signer key, and verifies the vector note', () => {
    const peter = parseVerifierKey(peterKey, signatureType.ed25519);
    const enoch = parseVerifierKey(enochKey, signatureType.ed25519);
    expect(peter.keyId.toString('hex')).toBe('c74f20a3');
    expect(keyPairFromSeed('PeterNeumann', signatureType.ed25519, base64Strict(peterSignerKey.split('+').slice(4).join('+'))!.subarray(1)).verifierKey).toBe(peterKey);
    expect(() => parseVerifierKey(peterKey, signatureType.cosignatureV1)).toThrow(/signature type/);
    expect(() => parseVerifierKey(peterKey.replace('PeterNeumann', 'PeterNeumanm'), signatureType.ed25519)).toThrow(/key id/);
    const both = parseNote(Buffer.from(`${vectorText}\n${peterLine}${enochLine}`));
    expect(both.text).toBe(vectorText);
    const [byPeter, byEnoch] = both.signatures;
    expect(signedBy(byPeter!, peter) && ed25519Verifies(Buffer.from(vectorText), peter.publicKey, byPeter!.signature)).toBe(true);
    expect(signedBy(byEnoch!, enoch) && ed25519Verifies(Buffer.from(vectorText), enoch.publicKey, byEnoch!.signature)).toBe(true);
    expect(ed25519Verifies(Buffer.from(vectorText.replace('problem,', 'problem;')), peter.publicKey, byPeter!.signature)).toBe(false);
    // Signatures by other keys are ignored, so a note that only Enoch signed is not signed for Peter's key.
    expect(() => openCheckpoint(Buffer.from(`${vectorText}\n${enochLine}`), peter)).toThrow(/no signature by the log key/);
  });

  it('spells tile paths and counts tiles as C2SP tlog-tiles does', () => {
    expect(tileIndexPath(1234067)).toBe('x001/x234/067');
    expect([0, 5, 999, 1000, 1001].map(tileIndexPath)).toEqual(['000', '005', '999', 'x001/000', 'x001/001']);
    // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0 tile of width 112,
    // one full level 1 tile, one partial level 1 tile of width 17, and one partial level 2 tile of width 1"
    const tiles = tilesFor(70_000);
    expect(tiles.filter((tile) => tile.level === 0 && tile.width === 256)).toHaveLength(273);
    expect(tiles.filter((tile) => tile.width < 256)).toEqual([{ level: 0, index: 273, width: 112 }, { level: 1, index: 1, width: 17 }, { level: 2, index: 0, width: 1 }]);
    expect(tiles.filter((tile) => tile.level === 1 && tile.width === 256)).toHaveLength(1);
    // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of width 1"
    expect(tilesFor(256).map((tile) => tilePath(tile))).toEqual(['tile/0/000', 'tile/1/000.p/1']);
  });

  it('reads the timestamp of the tlog-cosignature example the way the spec lays it out', () => {
    // From C2SP tlog-cosignature: "— witness.example.com/w1 jWbPPw…", whose signed message example reads "time 1679315147".
    const bytes = base64Strict('jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==')!;
    expect(bytes.length).toBe(4 + 8 + 64);
    expect(bytes.readBigUInt64BE(4)).toBe(1679315147n);
  });
});

// ---------------------------------------------------------------------------------------------
// A live server.

const origin = 'log.chipledger.test';
const logKeys = keyPairFromSeed(origin, signatureType.ed25519, deterministicSeed('independent-verify log key'));
const witnessKeys = keyPairFromSeed('witness.example/independent', signatureType.cosignatureV1, deterministicSeed('independent-verify witness key'));
const cosignedAt = 1_800_000_000n;

let database: TestDatabase;
let world: World;
let pool: Pool;
let ledger: Ledger;
let app: FastifyInstance;
let auditorToken: string;

async function get(path: string, token?: string): Promise<{ status: number; type: string | undefined; body: Buffer }> {
  const response = await app.inject({ method: 'GET', url: `/v1/log/${path}`, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
  return { status: response.statusCode, type: response.headers['content-type']?.toString(), body: response.rawPayload };
}

async function fetchOk(path: string, type: string, token?: string): Promise<Buffer> {
  const response = await get(path, token);
  expect(response.status, path).toBe(200);
  expect(response.type, path).toBe(type);
  return response.body;
}

/** Every tile and entry bundle a tree of `size` needs, as an outside client would fetch them. */
async function fetchPublished(size: number): Promise<Published> {
  const published: Published = { tiles: new Map(), bundles: new Map() };
  for (const tile of tilesFor(size)) {
    published.tiles.set(tilePath(tile), await fetchOk(tilePath(tile), 'application/octet-stream'));
    if (tile.level === 0) published.bundles.set(tilePath(tile, 'entries'), await fetchOk(tilePath(tile, 'entries'), 'application/octet-stream', auditorToken));
  }
  return published;
}

async function book(count: number): Promise<void> {
  const answers = await Promise.all(Array.from({ length: count }, () => ledger.submit('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
  }, world.actors.exporter)));
  expect(answers.filter((answer) => !answer.ok)).toEqual([]);
}

let earlierCheckpoint: Buffer;

/** Runs `make` once, on first use: each stage below is shared by the tests that need it, so a test run alone still works. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

const jsonHashes = async (path: string): Promise<Buffer[]> => {
  const body = JSON.parse((await fetchOk(path, 'application/json; charset=utf-8')).toString('utf8')) as { hashes: string[] };
  return body.hashes.map((hash) => {
    const bytes = base64Strict(hash);
    if (bytes?.length !== 32) throw new Error(`${path}: a proof hash is not base64 of 32 bytes`);
    return bytes;
  });
};

describe('a live chipledger log, verified from the specifications', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    world = await buildWorld(database.pool, { licenceUnits: 2_000 });
    pool = createPool({ url: database.url, connectionsMax: 8, applicationName: 'independent-verify' });
    ledger = await Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKeys.signerKey, checkpointIntervalMs: 3_600_000 });
    const token = await ledger.submit('token.create', { organisationId: world.actors.auditor.orgId, role: 'auditor', label: 'independent verifier' }, systemActor);
    if (!token.ok) throw new Error(`couldn't make an auditor token: ${token.error.message}`);
    auditorToken = String(token.body.secret);
    app = await buildServer({ ledger, pool, logger: false, witnessKeys: [witnessKeys.verifierKey] });
    // Two signed checkpoints: one past the first full tile, one past the second, each with a partial tile.
    await book(290);
    await ledger.checkpointer!.checkpointNow();
    earlierCheckpoint = await fetchOk('checkpoint', 'text/plain; charset=utf-8');
    await book(300);
    await ledger.checkpointer!.checkpointNow();
  });
  afterAll(async () => {
    await app?.close();
    await ledger?.close();
    await pool?.end();
    await world?.ledger.close();
    await database?.drop();
  });

  const witnessKey = parseVerifierKey(witnessKeys.verifierKey, signatureType.cosignatureV1);
  const logKey = once(async () => {
    const text = (await fetchOk('key', 'text/plain; charset=utf-8')).toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    return parseVerifierKey(text.slice(0, -1), signatureType.ed25519);
  });
  const earlier = once(async () => openCheckpoint(earlierCheckpoint, await logKey()));
  const latest = once(async () => openCheckpoint(await fetchOk('checkpoint', 'text/plain; charset=utf-8'), await logKey()));
  /** Every tile and entry bundle of the newest checkpoint, verified; the leaf hashes and entries. */
  const tree = once(async () => {
    const { size, root } = await latest();
    const published = await fetchPublished(size);
    const leaves = verifyTree(size, root, published);
    const entries = tilesFor(size).filter((tile) => tile.level === 0).flatMap((tile) => splitEntries(published.bundles.get(tilePath(tile, 'entries'))!, tile));
    return { published, leaves, entries };
  });
  /** The newest checkpoint, cosigned by a witness that follows the tlog-cosignature spec, as the server then serves it. */
  const cosigned = once(async () => {
    const unsigned = await fetchOk('checkpoint', 'text/plain; charset=utf-8');
    const opened = openCheckpoint(unsigned, await logKey());
    const timestamp = Buffer.alloc(8);
    timestamp.writeBigUInt64BE(cosignedAt);
    const ed25519 = sign(null, cosignatureMessage(opened.text, cosignedAt), witnessKeys.privateKey);
    const line = `\u2014 ${witnessKey.name} ${Buffer.concat([witnessKeys.keyId, timestamp, ed25519]).toString('base64')}\n`;
    const posted = await app.inject({ method: 'POST', url: '/v1/log/cosignatures', payload: unsigned.toString('utf8') + line, headers: { 'content-type': 'text/plain' } });
    expect(posted.statusCode, posted.body).toBe(201);
    const served = await fetchOk('checkpoint', 'text/plain; charset=utf-8');
    expect(served.toString('utf8')).toBe(unsigned.toString('utf8') + line);
    return served;
  });

  it('publishes a C2SP verifier key whose key id is SHA-256(name || 0x0A || 0x01 || key)[:4]', async () => {
    const key = await logKey();
    expect(`${key.name}+${key.keyId.toString('hex')}`).toBe(logKeys.verifierKey.split('+').slice(0, 2).join('+'));
    expect(key.name).toBe(origin);
  });

  it('signs C2SP checkpoints (origin, size, root; no extensions) as signed notes over the body', async () => {
    for (const checkpoint of [await earlier(), await latest()]) {
      expect(checkpoint.origin).toBe((await logKey()).name);
      expect(checkpoint.extensions).toEqual([]);
      expect(checkpoint.size % 256).toBeGreaterThan(0);
    }
    expect((await earlier()).size).toBeGreaterThan(256);
    expect((await latest()).size).toBeGreaterThan(512);
  });

  it('accepts a witness cosignature made from the tlog-cosignature spec and serves it with the checkpoint', async () => {
    const opened = openCheckpoint(await cosigned(), await logKey(), [witnessKey]);
    expect(opened.cosigned.get(witnessKey.name)).toBe(cosignedAt);
    expect(opened.text).toBe((await latest()).text);
  });

  it('serves every tile and entry bundle, and they rebuild exactly the checkpoint root', async () => {
    const { size } = await latest();
    const { published, leaves, entries } = await tree();
    expect([...published.tiles.keys()]).toEqual(['tile/0/000', 'tile/0/001', `tile/0/002.p/${size - 512}`, 'tile/1/000.p/2']);
    expect(leaves).toHaveLength(size);
    expect(entries.map(leafHash)).toEqual(leaves);
  });

  it("still serves the earlier checkpoint's partial tiles, which rebuild its root", async () => {
    const { size, root } = await earlier();
    expect(verifyTree(size, root, await fetchPublished(size))).toEqual((await tree()).leaves.slice(0, size));
  });

  it('answers RFC 9162 inclusion proofs that are exactly the RFC 6962 audit paths and verify', async () => {
    const size = (await latest()).size;
    const { leaves } = await tree();
    const earlierSize = (await earlier()).size;
    const pairs: Array<[number, number]> = [[0, size], [size - 1, size], [300, size], [0, 1], [255, 256], [511, 512], [256, 512], [earlierSize - 1, earlierSize], [7, 8]];
    for (const [index, treeSize] of pairs) {
      const path = await jsonHashes(`proof/inclusion?index=${index}&size=${treeSize}`);
      const leavesThen = leaves.slice(0, treeSize);
      expect(path, `${index} in ${treeSize}`).toEqual(auditPath(index, leavesThen));
      expect(verifyInclusion(leaves[index]!, index, treeSize, path, mth(leavesThen)), `${index} in ${treeSize}`).toBe(true);
    }
  });

  it('answers RFC 9162 consistency proofs that are exactly the RFC 6962 proofs and verify, also between signed checkpoints', async () => {
    const newest = await latest();
    const older = await earlier();
    const { leaves } = await tree();
    const size = newest.size;
    const pairs: Array<[number, number]> = [[older.size, size], [1, size], [256, size], [512, size], [size - 1, size], [size, size], [3, 300], [256, older.size]];
    for (const [from, to] of pairs) {
      const path = await jsonHashes(`proof/consistency?from=${from}&to=${to}`);
      expect(path, `${from} -> ${to}`).toEqual(consistencyPath(from, leaves.slice(0, to)));
      expect(verifyConsistency(from, to, path, mth(leaves.slice(0, from)), mth(leaves.slice(0, to))), `${from} -> ${to}`).toBe(true);
    }
    // Between the two signed checkpoints, with their signed roots.
    expect(verifyConsistency(older.size, size, await jsonHashes(`proof/consistency?from=${older.size}&to=${size}`), older.root, newest.root)).toBe(true);
  });

  it('gives C2SP tlog-proof bundles that verify offline against the entry and embed the served checkpoint', async () => {
    const note = await cosigned();
    const { leaves, entries } = await tree();
    const key = await logKey();
    for (const seq of [0, 42, 256, leaves.length - 1]) {
      const bundle = await fetchOk(`events/${seq}/proof`, 'text/plain; charset=utf-8');
      const proof = parseTlogProof(bundle);
      expect(proof.index).toBe(seq);
      expect(proof.extra).toBeUndefined();
      expect(proof.checkpoint.equals(note)).toBe(true);
      expect(proof.path).toEqual(auditPath(seq, leaves));
      const verified = verifyTlogProof(bundle, entries[seq]!, key, [witnessKey]);
      expect(verified.checkpoint.cosigned.get(witnessKey.name)).toBe(cosignedAt);
      expect(() => verifyTlogProof(bundle, entries[(seq + 1) % leaves.length]!, key)).toThrow(/not at index/);
    }
  });

  describe('negative controls: the same verifier rejects one changed byte', () => {
    /** The note with one byte of one signer's signature (after the 4-byte key id) changed, re-encoded. */
    const withSignatureByteChanged = (note: Buffer, name: string, at: number): Buffer => {
      const lines = note.toString('utf8').split('\n');
      const line = lines.findIndex((one) => one.startsWith(`\u2014 ${name} `));
      expect(line, name).toBeGreaterThan(0);
      const prefix = `\u2014 ${name} `;
      lines[line] = prefix + flipByte(base64Strict(lines[line]!.slice(prefix.length))!, 4 + at).toString('base64');
      return Buffer.from(lines.join('\n'), 'utf8');
    };

    it('in the log signature or the cosignature of the checkpoint', async () => {
      const note = await cosigned();
      const key = await logKey();
      const { size } = await latest();
      for (const at of [0, 31, 63]) {
        expect(() => openCheckpoint(withSignatureByteChanged(note, origin, at), key), `log byte ${at}`).toThrow(/log signature does not verify/);
        expect(() => openCheckpoint(withSignatureByteChanged(note, witnessKey.name, 8 + at), key, [witnessKey]), `witness byte ${at}`).toThrow(/cosignature .* does not verify/);
      }
      // The timestamp is signed too: a cosignature moved to another second no longer verifies.
      expect(() => openCheckpoint(withSignatureByteChanged(note, witnessKey.name, 7), key, [witnessKey])).toThrow(/cosignature .* does not verify/);
      expect(() => openCheckpoint(Buffer.from(note.toString('utf8').replace(`\n${size}\n`, `\n${size + 1}\n`)), key)).toThrow(/log signature does not verify/);
      // Unchanged, it opens: the failures above are the changed byte's doing.
      expect(openCheckpoint(note, key, [witnessKey]).size).toBe(size);
    });

    it('in a hash tile, at level 0 or above', async () => {
      const { size, root } = await latest();
      const { published, leaves } = await tree();
      const cases: Array<[string, RegExp]> = [
        ['tile/0/000', /entry 1: its leaf hash differs/],
        ['tile/0/001', /entry 257: its leaf hash differs/],
        [`tile/0/002.p/${size - 512}`, /entry 513: its leaf hash differs/],
        ['tile/1/000.p/2', /tile\/1\/000\.p\/2: hash 1 is not the MTH/],
      ];
      for (const [path, failure] of cases) {
        const tiles = new Map(published.tiles);
        tiles.set(path, flipByte(published.tiles.get(path)!, 32 + 7)); // a byte of the tile's second hash
        expect(() => verifyTree(size, root, { ...published, tiles }), path).toThrow(failure);
      }
      expect(verifyTree(size, root, published)).toEqual(leaves);
    });

    it('in an entry of an entry bundle', async () => {
      const { size, root } = await latest();
      const { published } = await tree();
      for (const [path, first] of [['tile/entries/000', 0], ['tile/entries/001', 256], [`tile/entries/002.p/${size - 512}`, 512]] as const) {
        const bundles = new Map(published.bundles);
        bundles.set(path, flipByte(published.bundles.get(path)!, 2 + 10)); // inside the bundle's first entry, past its length prefix
        expect(() => verifyTree(size, root, { ...published, bundles }), path).toThrow(new RegExp(`entry ${first}: its leaf hash differs`));
      }
    });

    it('in a tlog-proof hash or its index', async () => {
      await cosigned();
      const { entries } = await tree();
      const key = await logKey();
      const bundle = (await fetchOk('events/42/proof', 'text/plain; charset=utf-8')).toString('utf8');
      const proof = parseTlogProof(Buffer.from(bundle));
      for (const at of proof.path.keys()) {
        const changed = flipByte(proof.path[at]!, 17).toString('base64');
        expect(() => verifyTlogProof(Buffer.from(bundle.replace(proof.path[at]!.toString('base64'), changed)), entries[42]!, key), `hash ${at}`).toThrow(/not at index/);
      }
      expect(() => verifyTlogProof(Buffer.from(bundle.replace('index 42\n', 'index 43\n')), entries[42]!, key)).toThrow(/not at index/);
      expect(verifyTlogProof(Buffer.from(bundle), entries[42]!, key).index).toBe(42);
    });
  });
});
