/**
 * /metrics counts every answer, those given outside fastify's hooks too (the router's
 * refusals, the HTTP parser's), and says "never" about a checkpoint by leaving its gauges out.
 */
import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import { generateSignerKey } from '../tlog/index.ts';
import { buildServer } from './app.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => { world = made; database = madeDatabase; });

/** The log's key: the tests that sign sign the one log of this file's database. */
const logKey = generateSignerKey('log.chipledger.test').signerKey;

let server: FastifyInstance;
let port: number;

beforeAll(async () => {
  server = await buildServer({ ledger: world.ledger, pool: database.pool, logger: false });
  await server.listen({ host: '127.0.0.1', port: 0 });
  port = (server.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await server?.close();
});

/** Sends raw bytes and reads what comes back until the server closes the connection. */
function talk(request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(request));
    let text = '';
    const timer = setTimeout(() => socket.destroy(), 5_000);
    socket.on('data', (chunk) => (text += String(chunk)));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', () => {});
  });
}

/** The request counter for one status, summed over methods and routes. */
async function answered(status: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^chipledger_http_requests_total\\{[^}]*status="${status}"\\} (\\d+)$`, 'gm'))].reduce((sum, match) => sum + Number(match[1]), 0);
}

describe('the request counter', () => {
  it('counts the router\'s refusals: a malformed percent-escape, an over-long id', async () => {
    const before = await answered(400);
    expect((await fetch(`http://127.0.0.1:${port}/v1/licences/%E0%A4%A`)).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${port}/v1/licences/${'L'.repeat(300)}`)).status).toBe(400);
    expect(await answered(400)).toBe(before + 2);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toMatch(/^chipledger_http_requests_total\{method="GET",route="unmatched",status="400"\} 2$/m);
  });

  it('counts the HTTP parser\'s refusals: a header section too large (431), a request line that does not parse (400)', async () => {
    const [tooLarge, badLine] = [await answered(431), await answered(400)];
    expect(await talk(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await talk('NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await answered(431)).toBe(tooLarge + 1);
    expect(await answered(400)).toBe(badLine + 1);
  });

  it('counts the protocol answers: an Expect not met (417), CONNECT (405)', async () => {
    const [unmet, connectMethod] = [await answered(417), await answered(405)];
    expect(await talk('GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n')).toMatch(/^HTTP\/1\.1 417 /);
    expect(await talk('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')).toMatch(/^HTTP\/1\.1 405 /);
    expect(await answered(417)).toBe(unmet + 1);
    expect(await answered(405)).toBe(connectMethod + 1);
  });
});

describe('the checkpoint gauges', () => {
  it('are absent until this process signs, then say when it did and how long ago', async () => {
    const signing = await Ledger.open({ pool: database.pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey, checkpointIntervalMs: 3_600_000 });
    const app = await buildServer({ ledger: signing, pool: database.pool, logger: false });
    try {
      const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;
      // Its start may have signed (adopting the key signs the head); a fresh process that
      // has not is what the gauges must not call "just signed".
      signing.checkpointer!.stats.lastSignedAtMs = 0;
      const never = await metrics();
      expect(never).toMatch(/^chipledger_checkpoints_signed_total \d+$/m);
      expect(never).not.toMatch(/chipledger_checkpoint_age_seconds/);
      expect(never).not.toMatch(/chipledger_checkpoint_last_signed_timestamp_seconds/);

      await world.run('organisation.register', { name: 'Gauge Test Ltd.', country: 'GB', roles: ['auditor'] }, systemActor);
      const before = Date.now();
      await signing.checkpointer!.checkpointNow();
      const signed = await metrics();
      const timestamp = Number(/^chipledger_checkpoint_last_signed_timestamp_seconds (\S+)$/m.exec(signed)?.[1]);
      expect(timestamp * 1000).toBeGreaterThanOrEqual(before - 1);
      expect(timestamp * 1000).toBeLessThanOrEqual(Date.now());
      const age = Number(/^chipledger_checkpoint_age_seconds (\S+)$/m.exec(signed)?.[1]);
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThan(5);
      expect(signed).toMatch(/^# TYPE chipledger_checkpoint_last_signed_timestamp_seconds gauge$/m);
    } finally {
      await app.close();
      await signing.close();
    }
  });
});

describe('the log\'s checkpoint gauges', () => {
  it('give the newest checkpoint whoever signed it, its age and the events it does not cover, once the signer has read the log', async () => {
    const signing = await Ledger.open({ pool: database.pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey, checkpointIntervalMs: 3_600_000 });
    const app = await buildServer({ ledger: signing, pool: database.pool, logger: false });
    try {
      const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;
      signing.checkpointer!.stats.logSeen = undefined;
      expect(await metrics()).not.toMatch(/chipledger_log_(checkpoint_newest|uncovered)/);
      // As a tick reads it: the head two events past a checkpoint signed 3 s ago by another process.
      signing.checkpointer!.stats.logSeen = { headSize: 42, newest: { size: 40, ageMs: 3_000 }, readAtMs: performance.now(), signingHeld: false };
      const text = await metrics();
      expect(text).toMatch(/^chipledger_log_checkpoint_newest_size 40$/m);
      expect(text).toMatch(/^chipledger_log_uncovered_events 2$/m);
      expect(text).toMatch(/^chipledger_checkpoint_signing_held 0$/m);
      const age = Number(/^chipledger_log_checkpoint_newest_age_seconds (\S+)$/m.exec(text)?.[1]);
      expect(age).toBeGreaterThanOrEqual(3);
      expect(age).toBeLessThan(8);
      for (const name of ['chipledger_log_checkpoint_newest_size', 'chipledger_log_checkpoint_newest_age_seconds', 'chipledger_log_uncovered_events', 'chipledger_checkpoint_signing_held']) {
        expect(text).toMatch(new RegExp(`^# HELP ${name} \\S.*$`, 'm'));
        expect(text).toMatch(new RegExp(`^# TYPE ${name} gauge$`, 'm'));
      }
      // Before the log's first checkpoint, every committed event is uncovered.
      signing.checkpointer!.stats.logSeen = { headSize: 5, newest: undefined, readAtMs: performance.now(), signingHeld: false };
      const none = await metrics();
      expect(none).toMatch(/^chipledger_log_uncovered_events 5$/m);
      expect(none).not.toMatch(/chipledger_log_checkpoint_newest/);
      // Held (its published-checkpoint not written): the reason the uncovered events grow.
      signing.checkpointer!.stats.logSeen = { headSize: 45, newest: { size: 40, ageMs: 30_000 }, readAtMs: performance.now(), signingHeld: true };
      const held = await metrics();
      expect(held).toMatch(/^chipledger_checkpoint_signing_held 1$/m);
      expect(held).toMatch(/^chipledger_log_uncovered_events 5$/m);
    } finally {
      await app.close();
      await signing.close();
    }
  });
});

describe('the pool gauges', () => {
  it('give the pool\'s bound beside its connections', async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toMatch(/^# TYPE chipledger_pool_connections_max gauge$/m);
    expect(text).toMatch(/^chipledger_pool_connections_max 20$/m);
  });
});

describe('the connection gauges', () => {
  it('count the connections open now, with their bound and refusals, each with HELP and TYPE', async () => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    await new Promise<void>((done) => socket.once('connect', () => done()));
    try {
      // The server sees the connection a moment after its client; /metrics over a connection of its own counts that one too.
      let text = '';
      for (let attempt = 0; attempt < 100; attempt += 1) {
        text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        if (Number(/^chipledger_http_connections_open (\d+)$/m.exec(text)?.[1]) >= 2) break;
        await new Promise((resume) => setTimeout(resume, 10));
      }
      expect(Number(/^chipledger_http_connections_open (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
      expect(text).toMatch(/^# HELP chipledger_http_connections_open \S.*$/m);
      expect(text).toMatch(/^# TYPE chipledger_http_connections_open gauge$/m);
      expect(text).toMatch(/^# TYPE chipledger_http_connections_max gauge$/m);
      expect(text).toMatch(/^chipledger_http_connections_max 4096$/m);
      expect(text).toMatch(/^# TYPE chipledger_http_connections_refused_total counter$/m);
      expect(text).toMatch(/^# TYPE chipledger_http_connections_refused_per_address_total counter$/m);
      expect(text).toMatch(/^chipledger_http_request_bodies_in_flight_per_organisation_bytes_max 67108864$/m);
    } finally {
      socket.destroy();
    }
  });
});
