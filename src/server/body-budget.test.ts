/**
 * The bound on request bodies held at once (limits.requestBodiesInFlightBytesMax), over a
 * real socket: a request whose body has not finished arriving holds its room, others that
 * do not fit get 503 + Retry-After without their bodies being read, and the room comes back
 * when the request is answered or its client goes away, but not before its command has left
 * the ledger's queue. One organisation holds at most its share of the room
 * (limits.requestBodiesInFlightPerOrganisationBytesMax).
 */
import { EventEmitter } from 'node:events';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { isDomainError } from '../core/errors.ts';
import { buildServer } from './app.ts';
import { BodyBudget } from './body-budget.ts';
import { buildApiWorld, type ApiWorld } from '../../test/support/server.ts';

const budgetBytes = 4_096;
const bodyBytes = 3_000;
/** The largest body the test server accepts: what a body sent in chunks reserves. */
const bodyLimitBytes = 3_500;

let database: TestDatabase;
let api: ApiWorld;
let server: FastifyInstance;
let port: number;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await buildApiWorld(database.pool);
  server = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false, bodiesInFlightBytesMax: budgetBytes, bodyLimitBytes });
  await server.listen({ host: '127.0.0.1', port: 0 });
  port = (server.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await server?.close();
  await api?.world.ledger.close();
  await database?.drop();
});

interface Answer {
  status: number;
  body: string;
  retryAfter: string | undefined;
}

/** Where an upload goes, and whose token it carries: the shared test server and recipient alpha unless said. */
interface Target {
  port?: number;
  token?: string;
}

/**
 * Starts a POST that declares a body of `bytes` (or none: sent in chunks) and sends only its
 * first byte.
 */
function startUpload(bytes: number | 'chunked', target: Target = {}): { request: ClientRequest; answer: Promise<Answer> } {
  const request = httpRequest({
    host: '127.0.0.1', port: target.port ?? port, method: 'POST', path: '/v1/sites',
    headers: {
      authorization: `Bearer ${target.token ?? api.tokens.recipient}`, 'content-type': 'application/json', 'idempotency-key': `budget-${Math.random()}`,
      ...(bytes === 'chunked' ? {} : { 'content-length': String(bytes) }),
    },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    request.on('response', (response: IncomingMessage) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body, retryAfter: response.headers['retry-after'] as string | undefined }));
    });
    request.on('error', reject);
  });
  request.write('{');
  return { request, answer };
}

/** A whole request with a body of `bytes` (padding in a JSON string: the route refuses it as input). */
async function upload(bytes: number, target: Target = {}): Promise<Answer> {
  const body = `{"name":"${'x'.repeat(bytes - 11)}"}`;
  const { request, answer } = startUpload(bytes, target);
  request.end(body.slice(1));
  return answer;
}

/** A body refused for want of room: the server's (503) or its organisation's share (429). */
const refusedStatuses: ReadonlySet<number> = new Set([503, 429]);

/**
 * Sends whole uploads until one is answered as wanted: the held upload's headers reach the
 * server a moment after it was started, and its room comes back a moment after it ended.
 */
async function uploadUntil(wanted: 'refused' | 'accepted', target: Target = {}): Promise<Answer> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const answer = await upload(bodyBytes, target);
    if (refusedStatuses.has(answer.status) === (wanted === 'refused')) return answer;
    await new Promise((resume) => setTimeout(resume, 10));
  }
  throw new Error(wanted === 'refused' ? 'no upload was refused while another held the room' : 'the room never came back');
}

/** The two gauges /metrics gives for the bound. */
async function inFlightGauges(): Promise<{ bytes: number; bytesMax: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  return { bytes: gauge('chipledger_http_request_bodies_in_flight_bytes'), bytesMax: gauge('chipledger_http_request_bodies_in_flight_bytes_max') };
}

describe('request bodies in flight', () => {
  it('refuses a body that does not fit beside one still arriving, reads bodies again once it is answered, and never refuses a GET', async () => {
    const first = await upload(bodyBytes);
    expect(first.status, first.body).toBe(400); // the room is there: the route itself answers
    const held = startUpload(bodyBytes);
    const refused = await uploadUntil('refused');
    expect(refused.retryAfter).toBeDefined();
    expect(JSON.parse(refused.body)).toMatchObject({ status: 503, code: 'overloaded', rule: 'request-bodies-in-flight' });
    const read = await fetch(`http://127.0.0.1:${port}/v1/shipments`, { headers: { authorization: `Bearer ${api.tokens.recipient}` } });
    expect(read.status).toBe(200);
    expect(await inFlightGauges()).toEqual({ bytes: bodyBytes, bytesMax: budgetBytes });
    held.request.end(`"name":"${'x'.repeat(bodyBytes - 11)}"}`);
    expect((await held.answer).status).toBe(400);
    expect((await uploadUntil('accepted')).status).toBe(400);
    // The room comes back as the server closes its response, a moment after the client read it.
    for (let attempt = 0; attempt < 100 && (await inFlightGauges()).bytes !== 0; attempt += 1) await new Promise((resume) => setTimeout(resume, 10));
    expect(await inFlightGauges()).toEqual({ bytes: 0, bytesMax: budgetBytes });
  });

  it('holds the largest body the server accepts for a body sent in chunks, and gives the room back when a client goes away in the middle of its body', async () => {
    const held = startUpload('chunked');
    held.answer.catch(() => {}); // the socket is destroyed on purpose
    await uploadUntil('refused');
    expect((await inFlightGauges()).bytes).toBe(bodyLimitBytes);
    held.request.destroy();
    expect((await uploadUntil('accepted')).status).toBe(400);
  });
});

describe('one organisation\'s share of the room', () => {
  let shared: FastifyInstance;
  let sharedPort: number;
  beforeAll(async () => {
    // Room for two bodies, one of them per organisation.
    shared = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false, bodiesInFlightBytesMax: 2 * budgetBytes, bodiesInFlightPerOrganisationBytesMax: budgetBytes, bodyLimitBytes });
    await shared.listen({ host: '127.0.0.1', port: 0 });
    sharedPort = (shared.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await shared?.close();
  });

  it('refuses an organisation\'s body past its share, naming the bound, while another organisation\'s body is read', async () => {
    const alpha = { port: sharedPort, token: api.tokens.recipient };
    const beta = { port: sharedPort, token: api.tokens.beta };
    const held = startUpload(bodyBytes, alpha);
    const refused = await uploadUntil('refused', alpha);
    expect(refused.retryAfter).toBe('5');
    // 429, not 503 (RFC 6585 §4): one organisation's bound, not the server overloaded.
    const problem = JSON.parse(refused.body);
    expect(problem).toMatchObject({ status: 429, code: 'too_many_requests', rule: 'request-bodies-in-flight-per-organisation' });
    expect(problem.detail).toContain(api.orgs.alpha);
    expect((await upload(bodyBytes, beta)).status).toBe(400); // read: the route itself answers
    held.request.end(`"name":"${'x'.repeat(bodyBytes - 11)}"}`);
    expect((await held.answer).status).toBe(400);
    expect((await uploadUntil('accepted', alpha)).status).toBe(400);
  });
});

describe('a command whose client went away', () => {
  it('holds its body\'s room until the ledger has answered it, not only until its client has gone', async () => {
    const ledger = api.world.ledger;
    const submit = ledger.submit.bind(ledger);
    let reached!: () => void;
    const submitted = new Promise<void>((done) => (reached = done));
    let settled: Promise<unknown> = Promise.resolve();
    ledger.submit = ((...args: Parameters<typeof submit>) => {
      settled = submit(...args);
      reached();
      return settled;
    }) as typeof ledger.submit;
    // The ledger's head lock held elsewhere: the command waits in the ledger.
    const holder = await database.pool.connect();
    await holder.query('BEGIN; SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE');
    try {
      const body = JSON.stringify({ name: 'Abandoned DC', province: 'Zhejiang', city: 'Hangzhou', latitude: 30.3, longitude: 120.2, capacityUnits: 10 });
      const client = connect({ host: '127.0.0.1', port });
      client.on('error', () => {});
      client.write([
        'POST /v1/sites HTTP/1.1', 'Host: x', `Authorization: Bearer ${api.tokens.recipient}`, 'Idempotency-Key: abandoned-1',
        'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, '', body,
      ].join('\r\n'));
      await submitted;
      client.destroy();
      await new Promise((resume) => setTimeout(resume, 200)); // the server has seen the close
      expect((await inFlightGauges()).bytes).toBe(Buffer.byteLength(body));
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      ledger.submit = submit;
    }
    await settled;
    for (let attempt = 0; attempt < 100 && (await inFlightGauges()).bytes !== 0; attempt += 1) await new Promise((resume) => setTimeout(resume, 10));
    expect((await inFlightGauges()).bytes).toBe(0);
    // The command ran: its client retries with the key and gets the answer.
    expect((await database.pool.query('SELECT 1 FROM sites WHERE name = $1', ['Abandoned DC'])).rowCount).toBe(1);
  });

  it('is not run when the client went away before it reached the ledger, and its room is not taken again', async () => {
    const budget = new BodyBudget(100, 50);
    const { request, reply } = fakeRequest(40);
    budget.reserve(request, reply, 'ORG-1', 100);
    expect(budget.reserved).toBe(40);
    reply.raw.emit('close');
    expect(budget.reserved).toBe(0);
    let ran = false;
    const refusal = await budget.holdWhile(request, async () => (ran = true)).catch((error: unknown) => error);
    expect(ran).toBe(false);
    expect(isDomainError(refusal) && { code: refusal.code, rule: refusal.rule }).toEqual({ code: 'unavailable', rule: 'client-gone' });
    expect(budget.reserved).toBe(0);
  });

  it('gives the room back at once when the client went away before the room was reserved (while its token was checked)', async () => {
    const budget = new BodyBudget(100, 50);
    const { request, reply } = fakeRequest(40);
    (reply.raw as EventEmitter & { closed: boolean }).closed = true; // 'close' fired already
    budget.reserve(request, reply, 'ORG-1', 100);
    expect(budget.reserved).toBe(0);
    const refusal = await budget.holdWhile(request, async () => 'ran').catch((error: unknown) => error);
    expect(isDomainError(refusal) && refusal.rule).toBe('client-gone');
    budget.reserve(fakeRequest(50).request, fakeRequest(50).reply, 'ORG-1', 100); // its share is whole
    expect(budget.reserved).toBe(50);
  });

  it('gives the room back once both the reply is done and the command settled, in either order, and counts each organisation apart', async () => {
    const budget = new BodyBudget(100, 50);
    const first = fakeRequest(40);
    budget.reserve(first.request, first.reply, 'ORG-1', 100);
    let finish!: () => void;
    const held = budget.holdWhile(first.request, () => new Promise<void>((done) => (finish = done)));
    first.reply.raw.emit('close');
    expect(budget.reserved).toBe(40);
    const second = fakeRequest(20);
    expect(() => budget.reserve(second.request, second.reply, 'ORG-1', 100)).toThrow(/ORG-1 holds .* one organisation may hold/);
    budget.reserve(second.request, second.reply, 'ORG-2', 100);
    expect(budget.reserved).toBe(60);
    finish();
    await held;
    expect(budget.reserved).toBe(20);
    await budget.holdWhile(second.request, async () => undefined);
    expect(budget.reserved).toBe(20); // the reply still holds it
    second.reply.raw.emit('close');
    expect(budget.reserved).toBe(0);
    budget.reserve(first.request, first.reply, 'ORG-1', 100); // ORG-1's share is free again
  });
});

/** A request declaring a body of `bytes`, as far as the budget reads one, and its reply. */
function fakeRequest(bytes: number): { request: FastifyRequest; reply: FastifyReply & { raw: EventEmitter } } {
  const request = { headers: { 'content-length': String(bytes) }, raw: {} } as unknown as FastifyRequest;
  const reply = { raw: Object.assign(new EventEmitter(), { closed: false }) } as unknown as FastifyReply & { raw: EventEmitter };
  return { request, reply };
}
