/**
 * The bound on request bodies held at once (limits.requestBodiesInFlightBytesMax), over a
 * real socket: a request whose body has not finished arriving holds its room, others that
 * do not fit get 503 + Retry-After without their bodies being read, and the room comes back
 * when the request is answered or its client goes away.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildServer } from './app.ts';
import { buildApiWorld, type ApiWorld } from './testing.ts';

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

/**
 * Starts a POST that declares a body of `bytes` (or none: sent in chunks) and sends only its
 * first byte.
 */
function startUpload(bytes: number | 'chunked'): { request: ClientRequest; answer: Promise<Answer> } {
  const request = httpRequest({
    host: '127.0.0.1', port, method: 'POST', path: '/v1/sites',
    headers: {
      authorization: `Bearer ${api.tokens.recipient}`, 'content-type': 'application/json', 'idempotency-key': `budget-${Math.random()}`,
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
async function upload(bytes: number): Promise<Answer> {
  const body = `{"name":"${'x'.repeat(bytes - 11)}"}`;
  const { request, answer } = startUpload(bytes);
  request.end(body.slice(1));
  return answer;
}

/**
 * Sends whole uploads until one is answered as wanted: the held upload's headers reach the
 * server a moment after it was started, and its room comes back a moment after it ended.
 */
async function uploadUntil(wanted: 'refused' | 'accepted'): Promise<Answer> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const answer = await upload(bodyBytes);
    if ((answer.status === 503) === (wanted === 'refused')) return answer;
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
