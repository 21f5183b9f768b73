/**
 * The bounds on connections, over real sockets: one client cannot hold every connection (a
 * cap per remote address), nor can all clients together hold more than the process's cap, and
 * a connection that sends no request is closed after the headers' short timeout instead of
 * Node's 60 s. /metrics says how many connections are open and how many were refused. Small
 * caps here; the loopback's other addresses (127.0.0.2) stand for a second client.
 */
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { limits } from '../core/limits.ts';
import { buildServer, type ServerOptions } from './app.ts';
import { addressGroup } from './connections.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => { world = made; database = madeDatabase; });

const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

let server: FastifyInstance | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await server?.close();
  server = undefined;
});

async function start(options: Partial<ServerOptions>): Promise<number> {
  server = await buildServer({ ledger: world.ledger, pool: database.pool, logger: false, ...options });
  await server.listen({ host: '127.0.0.1', port: 0 });
  return (server.server.address() as AddressInfo).port;
}

interface Held {
  socket: Socket;
  /** Resolves once the client's side is connected. */
  connected: Promise<void>;
  /** Resolves with what the server sent once it closed the connection. */
  closed: Promise<string>;
}

/** A connection from `from` that sends nothing. */
function hold(port: number, from = '127.0.0.1'): Held {
  const socket = connect({ host: '127.0.0.1', port, localAddress: from });
  sockets.push(socket);
  let text = '';
  socket.on('data', (chunk) => (text += String(chunk)));
  socket.on('error', () => {});
  return {
    socket,
    connected: new Promise((done) => socket.once('connect', () => done())),
    closed: new Promise((done) => socket.once('close', () => done(text))),
  };
}

/** Whether the connection is closed within `ms`. */
async function closedWithin(held: Held, ms: number): Promise<boolean> {
  return Promise.race([held.closed.then(() => true), pause(ms).then(() => false)]);
}

/** GET `path` from `from` on a connection of its own; the status, or 'closed' when the server closed the connection first. */
function get(port: number, path: string, from = '127.0.0.1'): Promise<{ status: number | 'closed'; body: string }> {
  return new Promise((resolve) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, localAddress: from, agent: false, headers: { connection: 'close' } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    request.on('error', () => resolve({ status: 'closed', body: '' }));
    request.end();
  });
}

/** A metric's value in /metrics, read without a connection (inject), so that reading it changes none. */
async function metric(name: string): Promise<number> {
  const { body } = await server!.inject({ method: 'GET', url: '/metrics' });
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1]);
}

/** Waits until /metrics counts `open` connections: the server sees a connection a moment after its client. */
async function untilOpen(open: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if ((await metric('chipledger_http_connections_open')) === open) return;
    await pause(10);
  }
  throw new Error(`the server never counted ${open} open connections`);
}

describe('the bounds on connections', () => {
  it('has them by default: limits.connectionsMax, and the headers\' limits.requestHeadersTimeoutMs', async () => {
    await start({});
    expect(server!.server.maxConnections).toBe(limits.connectionsMax);
    expect(server!.server.headersTimeout).toBe(limits.requestHeadersTimeoutMs);
    expect(limits.connectionsPerAddressMax).toBeLessThan(limits.connectionsMax);
  });

  it('closes a connection that sends nothing once the headers\' timeout has passed, answered 408', async () => {
    const headersTimeoutMs = 300;
    const port = await start({ headersTimeoutMs });
    const started = Date.now();
    const silent = hold(port);
    await silent.connected;
    expect(await closedWithin(silent, 5_000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(headersTimeoutMs - 50);
    expect(await silent.closed).toMatch(/^HTTP\/1\.1 408 /);
    // A request on time is answered as ever.
    expect((await get(port, '/healthz')).status).toBe(200);
  });

  it('closes, as it is accepted, a connection from an address that holds its bound, and serves other addresses', async () => {
    const port = await start({ connectionsPerAddressMax: 3, connectionsMax: 10 });
    const held = [hold(port), hold(port), hold(port)];
    await Promise.all(held.map((each) => each.connected));
    await untilOpen(3);
    const over = hold(port);
    expect(await closedWithin(over, 2_000)).toBe(true);
    expect(await over.closed).toBe(''); // nothing read, nothing answered
    expect((await get(port, '/healthz', '127.0.0.2')).status).toBe(200);
    expect(await metric('chipledger_http_connections_refused_per_address_total')).toBe(1);
    expect(await metric('chipledger_http_connections_refused_total')).toBe(0);
    await untilOpen(3);
    expect(held.some((each) => each.socket.destroyed)).toBe(false);
    // One of the three closes: the address may connect again.
    held[0]!.socket.destroy();
    let again = await get(port, '/healthz');
    for (let attempt = 0; attempt < 100 && again.status !== 200; attempt += 1) {
      await pause(10);
      again = await get(port, '/healthz');
    }
    expect(again.status).toBe(200);
  });

  it('closes, as it is accepted, any connection past the process\'s bound, and counts it', async () => {
    const port = await start({ connectionsPerAddressMax: 3, connectionsMax: 3 });
    const held = [hold(port), hold(port), hold(port, '127.0.0.2')];
    await Promise.all(held.map((each) => each.connected));
    await untilOpen(3);
    const over = hold(port, '127.0.0.3');
    expect(await closedWithin(over, 2_000)).toBe(true);
    expect(await over.closed).toBe('');
    expect(await metric('chipledger_http_connections_refused_total')).toBe(1);
    expect(await metric('chipledger_http_connections_max')).toBe(3);
    expect(held.some((each) => each.socket.destroyed)).toBe(false);
  });
});

describe('addressGroup: the client an address stands for', () => {
  it('counts an IPv4 address alone, written plain or IPv4-mapped', () => {
    expect(addressGroup('192.0.2.1')).toBe('192.0.2.1');
    expect(addressGroup('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressGroup('::FFFF:192.0.2.1')).toBe('192.0.2.1');
    expect(addressGroup('192.0.2.2')).not.toBe(addressGroup('192.0.2.1'));
  });

  it('counts an IPv6 address by its /64, however it is written', () => {
    const group = addressGroup('2001:db8:1:2::1');
    expect(group).toBe('2001:db8:1:2::/64');
    for (const same of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0DB8:0001:0002:0:0:0:7', '2001:db8:1:2:a::b', '2001:db8:1:2::1%eth0']) expect(addressGroup(same), same).toBe(group);
    for (const other of ['2001:db8:1:3::1', '2001:db8::2:0:0:1', '2001:db9:1:2::1']) expect(addressGroup(other), other).not.toBe(group);
    expect(addressGroup('::1')).toBe('0:0:0:0::/64');
    expect(addressGroup('fe80::1')).toBe('fe80:0:0:0::/64');
    expect(addressGroup('::')).toBe('0:0:0:0::/64');
  });
});
