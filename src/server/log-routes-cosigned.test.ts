/**
 * Proof bundles over a cosigned checkpoint (?cosignatures=N): over one signed with the log's
 * current key (the one a verifier holds), counting only witnesses configured now, each once.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { Ledger } from '../ledger/ledger.ts';
import { createPool, type Pool } from '../store/pool.ts';
import {
  cosignCheckpoint, generateCosignerKey, generateSignerKey, leafHash, openCheckpoint, parseCosignatureVerifierKey, parseCosignerKey, parseTlogProof, parseVerifierKey, verifyTlogProof,
} from '../tlog/index.ts';
import { buildServer } from './app.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let database: TestDatabase;
let world: World;
const opened: Array<{ app: FastifyInstance; ledger: Ledger; pool: Pool }> = [];

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
});
afterAll(async () => {
  for (const { app, ledger, pool } of opened.reverse()) {
    await app.close();
    await ledger.close();
    await pool.end();
  }
  await world?.ledger.close();
  await database?.drop();
});

type Cosigner = ReturnType<typeof generateCosignerKey>;

async function serve(signerKey: string, witnesses: Cosigner[], previous?: string): Promise<{ app: FastifyInstance; ledger: Ledger }> {
  const pool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'cosigned-bundles' });
  const ledger = await Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: signerKey, ...(previous ? { logPreviousSignerKey: previous } : {}), checkpointIntervalMs: 3_600_000 });
  const app = await buildServer({ ledger, pool, logger: false, witnessKeys: witnesses.map((witness) => witness.verifierKey) });
  opened.push({ app, ledger, pool });
  return { app, ledger };
}

const book = () => world.ledger.submit('shipment.book', {
  exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
}, world.actors.exporter);

/** Signs a new checkpoint over one more event and has these witnesses cosign it; its size. */
async function cosignedRound(server: { app: FastifyInstance; ledger: Ledger }, logVerifierKey: string, ...witnesses: Cosigner[]): Promise<number> {
  await book();
  await server.ledger.checkpointer!.checkpointNow();
  const note = (await server.app.inject({ method: 'GET', url: '/v1/log/checkpoint' })).body;
  const cosigned = witnesses.reduce((text, witness, index) => cosignCheckpoint(text, parseCosignerKey(witness.signerKey), 1_800_000_000 + index), note);
  if (witnesses.length > 0) expect((await server.app.inject({ method: 'POST', url: '/v1/log/cosignatures', payload: cosigned, headers: { 'content-type': 'text/plain' } })).statusCode).toBe(201);
  return openCheckpoint(note, parseVerifierKey(logVerifierKey)).checkpoint.size;
}

const leafOf = async (seq: number) => leafHash((await database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = $1', [seq])).rows[0]!.canonical);

/** The log's key, for both cases (they share one database, in order): the second rotates from it. */
const key = generateSignerKey('log.chipledger.test');

describe('proof bundles over a cosigned checkpoint', () => {
  it('count only the witnesses configured now, so lines of one dropped do not hide an older quorum', async () => {
    const [a, b, c] = [generateCosignerKey('a.example'), generateCosignerKey('b.example'), generateCosignerKey('c.example')];
    const first = await serve(key.signerKey, [a, b, c]);
    const quorumSize = await cosignedRound(first, key.verifierKey, a, c);
    for (let round = 0; round < 20; round += 1) await cosignedRound(first, key.verifierKey, a, b);

    // b leaves the configuration: only the first checkpoint has two configured cosigners.
    const later = await serve(key.signerKey, [a, c]);
    const seq = quorumSize - 1;
    const answer = await later.app.inject({ method: 'GET', url: `/v1/log/events/${seq}/proof?cosignatures=2` });
    expect(answer.statusCode, answer.body).toBe(200);
    const verified = verifyTlogProof(answer.body, await leafOf(seq), parseVerifierKey(key.verifierKey), { witnesses: [a, c].map((w) => parseCosignatureVerifierKey(w.verifierKey)), witnessQuorum: 2 });
    expect(verified.checkpoint.size).toBe(quorumSize);
    // Two keys of one witness are one witness.
    const aAgain = generateCosignerKey('a.example');
    const twoKeys = await serve(key.signerKey, [a, aAgain]);
    await cosignedRound(twoKeys, key.verifierKey, a, aAgain);
    expect((await twoKeys.app.inject({ method: 'GET', url: `/v1/log/events/${seq}/proof?cosignatures=2` })).statusCode).toBe(404);
  });

  it('are over a checkpoint signed with the current key after a rotation, or 404 until witnesses cosign one', async () => {
    const oldKey = key;
    const newKey = generateSignerKey('log.chipledger.test');
    const witness = generateCosignerKey('w.example');
    const before = await serve(oldKey.signerKey, [witness]);
    await cosignedRound(before, oldKey.verifierKey, witness);
    await before.app.close();
    await before.ledger.close();

    const after = await serve(newKey.signerKey, [witness], oldKey.signerKey);
    const newestSize = await cosignedRound(after, newKey.verifierKey);
    expect((await after.app.inject({ method: 'GET', url: '/v1/log/key' })).body.trim()).toBe(newKey.verifierKey);
    expect((await after.app.inject({ method: 'GET', url: '/v1/log/events/1/proof?cosignatures=1' })).statusCode).toBe(404);

    const cosignedSize = await cosignedRound(after, newKey.verifierKey, witness);
    expect(cosignedSize).toBeGreaterThan(newestSize);
    const answer = await after.app.inject({ method: 'GET', url: '/v1/log/events/1/proof?cosignatures=1' });
    expect(answer.statusCode).toBe(200);
    const note = parseTlogProof(answer.body).checkpointNote;
    expect(openCheckpoint(note, parseVerifierKey(newKey.verifierKey)).checkpoint.size).toBe(cosignedSize);
    expect(verifyTlogProof(answer.body, await leafOf(1), parseVerifierKey(newKey.verifierKey), { witnesses: [parseCosignatureVerifierKey(witness.verifierKey)], witnessQuorum: 1 }).index).toBe(1);
  });
});
