/**
 * A clean stop that a slow client cannot hold up (closing.ts): an upload trickling in when the
 * server closes is answered 503 server-closing after the grace, nothing of it applied, and a
 * request whose answer is slow is cut at twice the grace; app.close() ends within that.
 */
import { connect, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { systemActor } from '../ledger/permissions.ts';
import type { Pool } from '../store/pool.ts';
import { buildServer } from './app.ts';
import { until } from '../../test/support/until.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => { world = made; database = madeDatabase; });

const graceMs = 300;
let recipientSecret: string;
let auditorSecret: string;

beforeAll(async () => {
  const token = async (orgId: string, role: 'recipient' | 'auditor') => String((await world.run('token.create', { organisationId: orgId, role, label: `closing ${role}` }, systemActor)).secret);
  recipientSecret = await token(world.actors.alpha.orgId, 'recipient');
  auditorSecret = await token(world.actors.auditor.orgId, 'auditor');
});

/** A raw connection: what the server sends back, and when it closed the connection. */
function openSocket(port: number) {
  const socket = connect({ host: '127.0.0.1', port });
  let text = '';
  socket.on('data', (chunk) => (text += String(chunk)));
  socket.on('error', () => {});
  const closed = new Promise<void>((done) => socket.on('close', () => done()));
  return { socket, text: () => text, closed };
}

const sitesCount = async () => (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sites')).rows[0]!.n;
const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe('closing the server', () => {
  let closeLater: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const close of closeLater) await close();
    closeLater = [];
  });

  it('answers an upload still arriving after the grace with 503 server-closing and applies nothing of it', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } }));
    const app = await buildServer({ ledger: world.ledger, pool: database.pool, logger, closingGraceMs: graceMs });
    closeLater.push(() => app.close());
    // Last of the onRequest hooks, after closing.ts's has taken the upload as under way.
    let underWay = 0;
    app.addHook('onRequest', (_request, _reply, done) => {
      underWay += 1;
      done();
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const client = openSocket((app.server.address() as AddressInfo).port);
    const body = JSON.stringify({ name: 'Trickled DC', province: 'Zhejiang', city: 'Hangzhou', latitude: 30.3, longitude: 120.2, capacityUnits: 10 });
    client.socket.write([
      'POST /v1/sites HTTP/1.1', 'Host: x', `Authorization: Bearer ${recipientSecret}`, 'Idempotency-Key: trickled-1',
      'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, '', body.slice(0, 10),
    ].join('\r\n'));
    // Until the server has the upload under way, not a fixed pause: a worker stalled past the
    // pause (a long GC, a loaded host) had close() find an idle connection, closed at once.
    await until('the server has the upload under way', () => underWay === 1, { withinMs: 10_000 });
    const sites = await sitesCount();
    const started = performance.now();
    // Without the cut-off, close() waits for the upload up to the request timeout (120 s).
    const closed = await Promise.race([app.close().then(() => true), pause(graceMs * 10).then(() => false)]);
    expect(closed, 'close() ended within the bound').toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(graceMs - 5);
    // The rest of the body, too late: the connection is gone, and nothing is applied.
    client.socket.write(body.slice(10));
    await client.closed;
    const answer = client.text();
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer).toMatch(/\r\nretry-after: \d+\r\n/i);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'unavailable', rule: 'server-closing' });
    await pause(100);
    expect(await sitesCount()).toBe(sites);
    // An answer of ours, not a fault: nothing logged (no "reply already sent", no 500).
    expect(lines).toEqual([]);
  });

  it('cuts a request whose answer is still slow at twice the grace', async () => {
    let release!: () => void;
    const gate = new Promise<void>((done) => (release = done));
    let atGate = false;
    const gated = new Proxy(database.pool, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver);
        return async (config: string | { text: string }, ...rest: unknown[]) => {
          if ((typeof config === 'string' ? config : config.text).includes('FROM products')) {
            atGate = true;
            await gate;
          }
          return (target.query as (...args: unknown[]) => unknown)(config, ...rest);
        };
      },
    }) as Pool;
    const app = await buildServer({ ledger: world.ledger, pool: gated, logger: false, closingGraceMs: graceMs });
    closeLater.push(async () => release());
    await app.listen({ host: '127.0.0.1', port: 0 });
    const client = openSocket((app.server.address() as AddressInfo).port);
    client.socket.write(`GET /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${auditorSecret}\r\n\r\n`);
    // Until its answer waits at the gate, not a fixed pause (see the test above).
    await until('the request waits for its answer at the gate', () => atGate, { withinMs: 10_000 });
    const started = performance.now();
    const closed = await Promise.race([app.close().then(() => true), pause(graceMs * 10).then(() => false)]);
    release();
    expect(closed, 'close() ended within the bound').toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * graceMs - 5);
    await client.closed;
    expect(client.text()).toBe('');
  });
});
