import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSignerKey } from '../../src/tlog/index.ts';
import { createTestDatabase, type TestDatabase } from '../database.ts';
import { killAllServers, startServe } from './http-serve.ts';

let database: TestDatabase;
let holder: Server;
let dataDir = '';

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = mkdtempSync(join(tmpdir(), 'chipledger-http-serve-'));
  holder = createServer();
  await new Promise<void>((done) => holder.listen(0, '127.0.0.1', done));
});

afterAll(async () => {
  await killAllServers();
  await new Promise((done) => holder?.close(done));
  await database?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('startServe', () => {
  it('starts serve on a fresh port when the one it was given is taken before serve listens', async () => {
    const taken = (holder.address() as { port: number }).port;
    const server = await startServe({
      DATABASE_URL: database.url,
      CHIPLEDGER_HOST: '127.0.0.1',
      CHIPLEDGER_PORT: String(taken),
      CHIPLEDGER_DATA_DIR: dataDir,
      CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('log.http-serve.test').signerKey,
      CHIPLEDGER_SWEEP_INTERVAL_MS: '3600000',
    }, 60_000);
    expect(new URL(server.url).port).not.toBe(String(taken));
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
