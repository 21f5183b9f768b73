import type { FastifyInstance } from 'fastify';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import { createPool, type Pool } from '../store/pool.ts';
import {
  cosignCheckpoint, generateCosignerKey, generateSignerKey, leafHash, openCheckpoint, parseCosignatureVerifierKey, parseCosignerKey,
  parseVerifierKey, rootOf, verifyConsistency, verifyInclusion, verifyTlogProof,
} from '../tlog/index.ts';
import { limits } from '../core/limits.ts';
import { insertCosignature } from '../store/tlog-tables.ts';
import { decodeBase64Strict } from '../tlog/base64.ts';
import { buildServer } from './app.ts';
import { checkedAgainstDocument } from '../../test/support/server.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let database: TestDatabase;
let world: World;
let pool: Pool;
let ledger: Ledger;
let app: FastifyInstance;
const logKey = generateSignerKey('log.chipledger.test');
const witness = generateCosignerKey('witness.example');
const stranger = generateCosignerKey('witness.example');
const tokens: Record<string, string> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  pool = createPool({ url: database.url, connectionsMax: 8, applicationName: 'log-routes' });
  ledger = await Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey.signerKey, checkpointIntervalMs: 3_600_000 });
  for (const [name, actor] of [['auditor', world.actors.auditor], ['recipient', world.actors.alpha]] as const) {
    const answer = await ledger.submit('token.create', { organisationId: actor.orgId, role: actor.role, label: name }, systemActor);
    tokens[name] = String(answer.ok && answer.body.secret);
  }
  await Promise.all(Array.from({ length: 260 }, () => ledger.submit('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
  }, world.actors.exporter)));
  await ledger.checkpointer!.checkpointNow();
  app = await buildServer({ ledger, pool, logger: false, witnessKeys: [witness.verifierKey] });
});
afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await pool?.end();
  await world?.ledger.close();
  await database?.drop();
});

const base64Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** A signature line ending in `X==` with a padding bit of X set: the same bytes, spelt another way. */
function respell(line: string): string {
  const last = line.length - 3;
  expect(line.slice(last + 1)).toBe('==');
  return `${line.slice(0, last)}${base64Alphabet[base64Alphabet.indexOf(line[last]!) ^ 1]}==`;
}

async function leaves(): Promise<Buffer[]> {
  return (await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events ORDER BY seq')).rows.map((row) => leafHash(row.canonical));
}

/** A GET whose answer is checked against the OpenAPI document (a status or body it does not describe fails). */
let checked: ReturnType<typeof checkedAgainstDocument> | undefined;
const get = (url: string, token?: string) => (checked ??= checkedAgainstDocument(app))({ method: 'GET', url, ...(token ? { token } : {}) });
const post = (note: string) => (checked ??= checkedAgainstDocument(app))({ method: 'POST', url: '/v1/log/cosignatures', payload: note, key: null, headers: { 'content-type': 'text/plain' } });

describe('log HTTP API', () => {
  it('publishes the verifier key and a checkpoint that opens with it', async () => {
    const key = await get('/v1/log/key');
    expect(key.body).toBe(`${logKey.verifierKey}\n`);
    expect((await get('/v1/log/keys')).json()).toEqual({ keys: [{ verifierKey: logKey.verifierKey, firstSize: expect.any(Number), announcement: null }] });
    const checkpoint = await get('/v1/log/checkpoint');
    expect(checkpoint.statusCode).toBe(200);
    const opened = openCheckpoint(checkpoint.body, parseVerifierKey(key.body.trim()));
    const all = await leaves();
    expect(opened.checkpoint.size).toBe(all.length);
    expect(opened.checkpoint.rootHash.equals(rootOf(all))).toBe(true);
  });

  it('serves C2SP hash tiles: full ones immutable, partial ones at their exact width', async () => {
    const all = await leaves();
    const full = await get('/v1/log/tile/0/000');
    expect(full.statusCode).toBe(200);
    expect(full.headers['cache-control']).toContain('immutable');
    expect(full.rawPayload.equals(Buffer.concat(all.slice(0, 256)))).toBe(true);
    const width = all.length - 256;
    const partial = await get(`/v1/log/tile/0/001.p/${width}`);
    expect(partial.rawPayload.equals(Buffer.concat(all.slice(256)))).toBe(true);
    expect((await get('/v1/log/tile/0/001')).statusCode).toBe(404); // not full yet
    expect((await get(`/v1/log/tile/0/001.p/${width + 1}`)).statusCode).toBe(404);
    expect((await get('/v1/log/tile/1/000.p/1')).rawPayload.equals(rootOf(all.slice(0, 256)))).toBe(true);
    expect((await get('/v1/log/tile/0/01')).statusCode).toBe(404); // not the canonical spelling
  });

  it('serves partial tiles as immutable too, and each tile under its one raw spelling only', async () => {
    const width = (await leaves()).length - 256;
    expect((await get(`/v1/log/tile/0/001.p/${width}`)).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await get('/v1/log/tile/1/000.p/1')).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await get('/v1/log/tile/entries/001.p/1', tokens.auditor)).headers['cache-control']).toBe('private, max-age=31536000, immutable');
    for (const url of ['/v1/log/tile/0/%30%30%30', `/v1/log/tile/0/%30%30%31.p/${width}`, `/v1/log/tile/0/001.p/${String(width).slice(0, -1)}%3${width % 10}`, '/v1/log/tile/%30/000', '/v1/log/tile/entries/%30%30%30']) {
      const response = await get(url, tokens.auditor);
      expect(response.statusCode, url).toBe(404);
      expect(response.headers['cache-control'], url).toBe('no-store');
    }
    // A tile not there yet is a 404 no cache may keep: it will be there.
    const notYet = await get('/v1/log/tile/0/999');
    expect([notYet.statusCode, notYet.headers['cache-control']]).toEqual([404, 'no-store']);
    // Nor under a query string: every route that takes none refuses one.
    for (const url of ['/v1/log/tile/0/000?cache=bust', '/v1/log/tile/entries/000?x=1', '/v1/log/key?x=1', '/v1/log/keys?x=1', '/v1/log/checkpoint?x=1']) {
      const response = await get(url, tokens.auditor);
      expect(response.statusCode, url).toBe(400);
      expect(response.json().detail, url).toMatch(/couldn't read the query/);
      expect(response.headers['cache-control'], url).toBe('no-store');
    }
  });

  it('serves entry bundles to authorities and auditors only', async () => {
    expect((await get('/v1/log/tile/entries/000')).statusCode).toBe(401);
    expect((await get('/v1/log/tile/entries/000', tokens.recipient)).statusCode).toBe(403);
    const bundle = await get('/v1/log/tile/entries/000', tokens.auditor);
    expect(bundle.statusCode).toBe(200);
    const entries: Buffer[] = [];
    for (let offset = 0; offset < bundle.rawPayload.length;) {
      const length = bundle.rawPayload.readUInt16BE(offset);
      entries.push(bundle.rawPayload.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
    const all = await leaves();
    expect(entries.map((entry) => leafHash(entry))).toEqual(all.slice(0, 256));
    // Compressed for a client that asks (tlog-tiles: bundles SHOULD be compressed), the same bytes inside.
    const compressed = await app.inject({ method: 'GET', url: '/v1/log/tile/entries/000', headers: { authorization: `Bearer ${tokens.auditor}`, 'accept-encoding': 'br, gzip;q=0.5' } });
    expect(compressed.headers['content-encoding']).toBe('gzip');
    expect(compressed.headers.vary).toBe('Accept-Encoding');
    expect(gunzipSync(compressed.rawPayload)).toEqual(bundle.rawPayload);
    expect(compressed.rawPayload.length).toBeLessThan(bundle.rawPayload.length);
    // gzip;q=0 refuses gzip, and * does not bring it back: * stands for the codings not listed.
    for (const acceptEncoding of ['gzip;q=0, identity', 'gzip;q=0, *']) {
      const refused = await app.inject({ method: 'GET', url: '/v1/log/tile/entries/000', headers: { authorization: `Bearer ${tokens.auditor}`, 'accept-encoding': acceptEncoding } });
      expect(refused.headers['content-encoding'], acceptEncoding).toBeUndefined();
      expect(refused.rawPayload).toEqual(bundle.rawPayload);
    }
  });

  it('answers inclusion and consistency proofs that verify', async () => {
    const all = await leaves();
    const size = all.length;
    const inclusion = (await get(`/v1/log/proof/inclusion?index=3&size=${size}`)).json();
    expect(verifyInclusion(all[3]!, 3, size, inclusion.hashes.map((hash: string) => Buffer.from(hash, 'base64')), rootOf(all))).toBe(true);
    const consistency = (await get(`/v1/log/proof/consistency?from=10&to=${size}`)).json();
    expect(verifyConsistency(10, size, consistency.hashes.map((hash: string) => Buffer.from(hash, 'base64')), rootOf(all.slice(0, 10)), rootOf(all))).toBe(true);
  });

  it.each([
    ['/v1/log/proof/inclusion?index=5&size=5', 400],
    ['/v1/log/proof/inclusion?index=1&size=999999', 400],
    ['/v1/log/proof/inclusion?index=-1&size=5', 400],
    ['/v1/log/proof/inclusion?index=x&size=5', 400],
    ['/v1/log/proof/consistency?from=9&to=5', 400],
    ['/v1/log/proof/consistency?from=1', 400],
    ['/v1/log/events/999999/proof', 404],
    // Only the canonical decimal spelling: Number() would read each of these as a number.
    ['/v1/log/events//proof', 400],
    ['/v1/log/events/%20/proof', 400],
    ['/v1/log/events/01/proof', 400],
    ['/v1/log/events/0x2/proof', 400],
    ['/v1/log/events/1e0/proof', 400],
    ['/v1/log/events/99999999999999999999/proof', 400],
    ['/v1/log/proof/inclusion?index=&size=5', 400],
    ['/v1/log/proof/inclusion?index=%20&size=5', 400],
    ['/v1/log/proof/inclusion?index=0x2&size=5', 400],
    ['/v1/log/proof/inclusion?index=1e0&size=5', 400],
    ['/v1/log/proof/inclusion?index=1&size=05', 400],
    ['/v1/log/proof/inclusion?index=1.0&size=5', 400],
    ['/v1/log/proof/inclusion?index=1&index=2&size=5', 400],
    ['/v1/log/proof/consistency?from=&to=5', 400],
    ['/v1/log/proof/consistency?from=+1&to=5', 400],
  ])('refuses %s with a problem', async (url, status) => {
    const response = await get(url);
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toContain('application/problem+json');
    // Every 400 names its rule (the README review: the query's refusals named none).
    if (status === 400) expect(response.json().rule, response.json().detail).toBe('schema');
  });

  it('reports the log in /metrics', async () => {
    const text = (await get('/metrics')).body;
    const { size } = (await database.pool.query<{ size: number }>('SELECT size FROM log_head')).rows[0]!;
    expect(text).toMatch(new RegExp(`^chipledger_log_size ${size}$`, 'm'));
    // A server that has not written yet reports the size its start-up check proved.
    const fresh = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: world.clock, checkpointIntervalMs: 3_600_000 });
    const freshApp = await buildServer({ ledger: fresh, pool, logger: false });
    try {
      expect((await freshApp.inject({ method: 'GET', url: '/metrics' })).body).toMatch(new RegExp(`^chipledger_log_size ${size}$`, 'm'));
    } finally {
      await freshApp.close();
      await fresh.close();
    }
    expect(text).toMatch(/^chipledger_checkpoints_signed_total [1-9]\d*$/m);
    expect(text).toMatch(/^chipledger_checkpoint_ticks_skipped_total \d+$/m);
    // Every family says what it counts in a sentence, and counters end in _total.
    const helps = [...text.matchAll(/^# HELP (\w+) (.*)$/gm)];
    expect(helps.length).toBeGreaterThan(20);
    for (const [, name, help] of helps) expect(help, name).toMatch(/^[A-Z].*\.$/);
    for (const [, name] of text.matchAll(/^# TYPE (\w+) counter$/gm)) expect(name).toMatch(/_total$/);
  });

  it('documents every log route in the OpenAPI document, as public (entry bundles: with a token)', async () => {
    const paths = (await get('/v1/openapi.json')).json().paths as Record<string, Record<string, { security?: unknown[] }>>;
    for (const path of ['/v1/log/key', '/v1/log/keys', '/v1/log/checkpoint', '/v1/log/proof/inclusion', '/v1/log/proof/consistency', '/v1/log/events/{seq}/proof']) {
      expect(paths[path]?.get?.security, path).toEqual([]);
    }
    expect(paths['/v1/log/tile/{path}']?.get?.security).toEqual([{}, { bearer: [] }]);
    expect(paths['/v1/log/cosignatures']?.post).toBeDefined();
  });

  it('gives a C2SP tlog-proof bundle per event that verifies offline', async () => {
    const response = await get('/v1/log/events/42/proof');
    expect(response.statusCode).toBe(200);
    const all = await leaves();
    const verified = verifyTlogProof(response.body, all[42]!, parseVerifierKey(logKey.verifierKey));
    expect(verified.index).toBe(42);
    expect(() => verifyTlogProof(response.body, all[41]!, parseVerifierKey(logKey.verifierKey))).toThrow();
  });

  it('refuses a cosignature body over its limit with 413, as the document says', async () => {
    const refused = await post(`${'x'.repeat(limits.cosignatureBodyBytesMax)}\n`);
    expect(refused.statusCode).toBe(413);
    expect(refused.json().code).toBe('payload_too_large');
  });

  it('stores a configured witness cosignature, refuses a forged one, and serves it with the checkpoint', async () => {
    const checkpoint = (await get('/v1/log/checkpoint')).body;
    const forged = cosignCheckpoint(checkpoint, parseCosignerKey(stranger.signerKey), 1_800_000_000);
    const refused = await post(forged);
    expect(refused.statusCode).toBe(403);
    const cosigned = cosignCheckpoint(checkpoint, parseCosignerKey(witness.signerKey), 1_800_000_000);
    const stored = await post(cosigned);
    expect(stored.statusCode).toBe(201);
    // It says whose lines it took: the stranger's, carried along, is not among them.
    expect(stored.json()).toEqual({ stored: 1, witnesses: [`witness.example+${parseCosignerKey(witness.signerKey).keyId.toString(16).padStart(8, '0')}`] });
    expect((await post(`${cosigned}${forged.slice(forged.lastIndexOf('\n— ') + 1)}`)).json().witnesses).toHaveLength(1);
    const served = (await get('/v1/log/checkpoint')).body;
    const opened = openCheckpoint(served, parseVerifierKey(logKey.verifierKey), [parseCosignatureVerifierKey(witness.verifierKey)]);
    expect(opened.note.verified.map((signature) => signature.name)).toContain('witness.example');
    const tampered = cosigned.replace(/\n\d+\n/, '\n1\n');
    const bad = await post(tampered);
    expect(bad.statusCode).toBeGreaterThanOrEqual(400);
    expect(bad.statusCode).toBeLessThan(500);
  });

  it('stores and serves a cosignature sent in another base64 spelling in its one canonical spelling', async () => {
    // The log's own note, without the line the test above had the witness add.
    const checkpoint = (await get('/v1/log/checkpoint')).body.split('\n').filter((line) => !line.startsWith('— witness.example ')).join('\n');
    const text = checkpoint.slice(0, checkpoint.lastIndexOf('\n\n') + 2);
    const canonical = cosignCheckpoint(checkpoint, parseCosignerKey(witness.signerKey), 1_800_000_100).split('\n').find((line) => line.startsWith('— witness.example '))!;
    // 76 bytes end in one base64 symbol holding 2 bits and 4 padding bits, then ==: setting a
    // padding bit spells the same signature another way, which a lenient reader accepts.
    const respelt = respell(canonical);
    expect(respelt).not.toBe(canonical);
    const posted = await post(`${checkpoint}${respelt}\n`);
    expect(posted.statusCode, posted.body).toBe(201);
    const stored = await database.pool.query<{ signature_line: string }>('SELECT signature_line FROM tlog_cosignatures WHERE witness = $1 AND timestamp_s = $2', ['witness.example', 1_800_000_100]);
    expect(stored.rows.map((row) => row.signature_line)).toEqual([`${canonical}\n`]);
    const served = (await get('/v1/log/checkpoint')).body;
    expect(served.startsWith(text)).toBe(true);
    const lines = served.slice(text.length).split('\n').slice(0, -1);
    expect(lines).toContain(canonical);
    for (const line of lines) expect(decodeBase64Strict(line.split(' ')[2]!), line).toBeDefined();
    openCheckpoint(served, parseVerifierKey(logKey.verifierKey), [parseCosignatureVerifierKey(witness.verifierKey)]);

    // A row stored as sent before lines were made canonical is served canonical too, in
    // checkpoints and in proof bundles.
    const size = openCheckpoint(checkpoint, parseVerifierKey(logKey.verifierKey)).checkpoint.size;
    const keyId = (await database.pool.query<{ key_id: string }>('SELECT key_id FROM tlog_checkpoints WHERE size = $1', [size])).rows[0]!.key_id;
    const older = cosignCheckpoint(checkpoint, parseCosignerKey(witness.signerKey), 1_800_000_200).split('\n').find((line) => line.startsWith('— witness.example '))!;
    const witnessKeyId = (await database.pool.query<{ key_id: string }>('SELECT key_id FROM tlog_cosignatures WHERE witness = $1', ['witness.example'])).rows[0]!.key_id;
    await insertCosignature(database.pool, { checkpoint_size: size, checkpoint_key_id: keyId, witness: 'witness.example', key_id: witnessKeyId, timestamp_s: 1_800_000_200, signature_line: `${respell(older)}\n` });
    for (const url of ['/v1/log/checkpoint', '/v1/log/events/42/proof?cosignatures=1']) {
      const body = (await get(url)).body;
      expect(body, url).toContain(`\n${older}\n`);
      expect(body, url).not.toContain(respell(older));
    }
  });

  it('gives a proof bundle over the newest checkpoint a witness quorum cosigned, when asked (?cosignatures=N)', async () => {
    // Runs after the test above: the newest checkpoint then carries the witness's line. A newer one does not.
    const cosignedSize = openCheckpoint((await get('/v1/log/checkpoint')).body, parseVerifierKey(logKey.verifierKey)).checkpoint.size;
    await ledger.submit('shipment.book', {
      exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    }, world.actors.exporter);
    await ledger.checkpointer!.checkpointNow();
    const all = await leaves();
    const logVerifier = parseVerifierKey(logKey.verifierKey);
    const quorum = { witnesses: [parseCosignatureVerifierKey(witness.verifierKey)], witnessQuorum: 1 };

    const newest = await get('/v1/log/events/42/proof');
    expect(verifyTlogProof(newest.body, all[42]!, logVerifier).checkpoint.size).toBe(all.length);
    expect(() => verifyTlogProof(newest.body, all[42]!, logVerifier, quorum)).toThrow();

    const cosigned = await get('/v1/log/events/42/proof?cosignatures=1');
    expect(cosigned.statusCode).toBe(200);
    const verified = verifyTlogProof(cosigned.body, all[42]!, logVerifier, quorum);
    expect(verified.checkpoint.size).toBe(cosignedSize);
    expect(cosignedSize).toBeLessThan(all.length);

    expect((await get(`/v1/log/events/${cosignedSize}/proof?cosignatures=1`)).statusCode).toBe(404); // not covered by a cosigned one
    expect((await get('/v1/log/events/42/proof?cosignatures=2')).statusCode).toBe(404); // one witness configured
    for (const bad of ['-1', '1.5', 'x', '01', '1000']) expect((await get(`/v1/log/events/42/proof?cosignatures=${bad}`)).statusCode, bad).toBe(400);
    expect((await get('/v1/log/events/42/proof?cosignature=1')).statusCode).toBe(400);
  });
});
