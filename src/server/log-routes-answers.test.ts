/**
 * What the log routes tell a client that asked for something they cannot give: a proof of an
 * event that does not exist (not "try again"), and a cosignature a server keeps no witness for
 * (what the operator would configure).
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { Ledger } from '../ledger/ledger.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { readHead } from '../store/tlog-tables.ts';
import { cosignCheckpoint, formatKeyId, generateCosignerKey, generateSignerKey, parseCosignatureVerifierKey, parseCosignerKey } from '../tlog/index.ts';
import { buildServer } from './app.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let database: TestDatabase;
let world: World;
const opened: Array<{ app: FastifyInstance; ledger: Ledger; pool: Pool }> = [];
const logKey = generateSignerKey('log.answers.test');
const witness = generateCosignerKey('witness.answers.test');
const stranger = generateCosignerKey('stranger.answers.test');
let plain: FastifyInstance;
let witnessed: FastifyInstance;
let ledger: Ledger;

async function serve(witnessKeys: string[]): Promise<{ app: FastifyInstance; ledger: Ledger }> {
  const pool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'log-answers' });
  const opening = await Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey.signerKey, checkpointIntervalMs: 3_600_000 });
  const app = await buildServer({ ledger: opening, pool, logger: false, witnessKeys });
  opened.push({ app, ledger: opening, pool });
  return { app, ledger: opening };
}

const book = () => world.ledger.submit('shipment.book', {
  exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
}, world.actors.exporter);

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  for (let count = 0; count < 5; count += 1) await book();
  ({ app: plain, ledger } = await serve([]));
  ({ app: witnessed } = await serve([witness.verifierKey]));
  await ledger.checkpointer!.checkpointNow();
});
afterAll(async () => {
  for (const { app, ledger: one, pool } of opened.reverse()) {
    await app.close();
    await one.close();
    await pool.end();
  }
  await world?.ledger.close();
  await database?.drop();
});

const proof = (app: FastifyInstance, url: string) => app.inject({ method: 'GET', url });
const postNote = (app: FastifyInstance, note: string) => app.inject({ method: 'POST', url: '/v1/log/cosignatures', payload: note, headers: { 'content-type': 'text/plain' } });

describe('a proof of an event past the log', () => {
  it('is a 404 saying there is no such event and how many the log holds, not "try again"', async () => {
    const size = (await readHead(database.pool)).size;
    for (const [app, url] of [[plain, '/v1/log/events/100000/proof'], [witnessed, '/v1/log/events/100000/proof?cosignatures=1'], [plain, `/v1/log/events/${size}/proof`]] as const) {
      const answer = await proof(app, url);
      expect(answer.statusCode, url).toBe(404);
      expect(answer.json().detail, url).toBe(`there is no event ${url.split('/')[4]}: the log holds ${size} events, numbered 0 to ${size - 1}`);
    }
  });

  it('of an event that exists but awaits a checkpoint still says to try again', async () => {
    await book();
    const size = (await readHead(database.pool)).size;
    const answer = await proof(plain, `/v1/log/events/${size - 1}/proof`);
    expect(answer.statusCode).toBe(404);
    expect(answer.body).toContain(`event ${size - 1} is not yet covered by a checkpoint (size ${size - 1}); try again in a second`);
    await ledger.checkpointer!.checkpointNow();
    expect((await proof(plain, `/v1/log/events/${size - 1}/proof`)).statusCode).toBe(200);
  });
});

describe('a cosignature the server keeps no witness for', () => {
  it('on a server without witnesses: says none is configured, naming CHIPLEDGER_LOG_WITNESSES and the line sent', async () => {
    const note = (await proof(plain, '/v1/log/checkpoint')).body;
    const answer = await postNote(plain, cosignCheckpoint(note, parseCosignerKey(witness.signerKey), 1_800_000_000));
    expect(answer.statusCode).toBe(403);
    const keyId = formatKeyId(parseCosignatureVerifierKey(witness.verifierKey).keyId);
    expect(answer.body).toContain(`this log has no witnesses configured (CHIPLEDGER_LOG_WITNESSES is empty), so it stores no cosignatures; the note carries signatures by witness.answers.test+${keyId}; its operator adds a witness by putting the witness's verifier key`);
  });

  it('on a server with other witnesses: names the ones it knows', async () => {
    const note = (await proof(witnessed, '/v1/log/checkpoint')).body;
    const answer = await postNote(witnessed, cosignCheckpoint(note, parseCosignerKey(stranger.signerKey), 1_800_000_000));
    expect(answer.statusCode).toBe(403);
    const [known, sent] = [witness, stranger].map((key) => `${key.verifierKey.split('+')[0]}+${formatKeyId(parseCosignatureVerifierKey(key.verifierKey).keyId)}`);
    expect(answer.body).toContain(`the note carries no cosignature of a witness this log knows: it carries signatures by ${sent}, and the witnesses configured are ${known}`);
    expect(answer.body).toContain('CHIPLEDGER_LOG_WITNESSES');
  });
});
