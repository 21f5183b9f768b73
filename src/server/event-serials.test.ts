/**
 * The serial lists events record by digest: stored with the event, served as the bytes
 * the digest covers, to the event's readers only, and held to the digest by the re-check.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { systemActor } from '../ledger/permissions.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let database: TestDatabase;
let api: ApiWorld;

apiWorldPerFile((made, madeDatabase) => {
  api = made;
  database = madeDatabase;
});

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

interface EventView { seq: number; kind: string; body: { input: { serialsSha256?: string; serialCount?: number } } }

async function eventsOf(subjectId: string, token: string): Promise<EventView[]> {
  const response = await api.request({ method: 'GET', url: `/v1/events?subjectId=${subjectId}`, token });
  expect(response.statusCode).toBe(200);
  return response.json().items as EventView[];
}

const serials = (seq: number, token: string) => api.request({ method: 'GET', url: `/v1/events/${seq}/serials`, token });

describe('serial lists of events', () => {
  it('serves a manifest as the sorted lines its digest covers, GPU UUIDs included', async () => {
    const booked = await api.request({
      method: 'POST', url: '/v1/shipments', token: api.tokens.exporter,
      body: { exportAllocationId: api.allocations.alphaExport, importAllocationId: api.allocations.alphaImport, productId: api.world.productId, units: 3, deadline: '2026-06-01T00:00:00Z' },
    });
    expect(booked.statusCode).toBe(201);
    const shipmentId = String(booked.json().shipmentId);
    const attached = await api.request({
      method: 'POST', url: `/v1/shipments/${shipmentId}/manifest`, token: api.tokens.exporter,
      body: { serials: ['LIST-C', { serial: 'LIST-A', gpuUuid: 'GPU-0a1b2c3d-0000-0000-0000-000000000000' }, 'LIST-B'] },
    });
    expect(attached.statusCode).toBe(200);
    const event = (await eventsOf(shipmentId, api.tokens.exporter)).find((row) => row.kind === 'manifest.attach')!;
    const response = await serials(event.seq, api.tokens.exporter);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toBe('LIST-A GPU-0a1b2c3d-0000-0000-0000-000000000000\nLIST-B\nLIST-C\n');
    expect(sha256(response.body)).toBe(event.body.input.serialsSha256);
    // The recipient reads the event, so it reads the list; an auditor reads everything.
    expect((await serials(event.seq, api.tokens.recipient)).body).toBe(response.body);
    expect((await serials(event.seq, api.tokens.auditor)).statusCode).toBe(200);
    // Another recipient and another exporter do not read the event: the list is not there for them.
    const otherExporter = String((await api.world.run('token.create', { organisationId: api.exporter2.orgId, role: 'exporter', label: 'other exporter' }, systemActor)).secret);
    for (const token of [api.tokens.beta, otherExporter]) {
      const hidden = await serials(event.seq, token);
      expect(hidden.statusCode).toBe(404);
      expect(hidden.body).not.toContain('LIST-');
    }
  });

  it('keeps which units a report named: the serials of a loss can be recomputed', async () => {
    const { serials: shipped } = await api.shipment('own', 'delivered', 2);
    const reported = await api.request({ method: 'POST', url: '/v1/units/report-lost', token: api.tokens.recipient, body: { serials: [shipped[1]!], reason: 'Missing at the loading dock.' } });
    expect(reported.statusCode).toBe(200);
    const seq = Number(reported.json().seq);
    const response = await serials(seq, api.tokens.recipient);
    expect(response.body).toBe(`${shipped[1]}\n`);
    expect(sha256(response.body)).toBe(await eventDigest(seq));
  });

  it('answers 404 for an event without serials and 400 for a number that is not one', async () => {
    const plain = (await eventsOf(api.shipments.own, api.tokens.auditor)).find((row) => row.kind === 'shipment.ship')!;
    expect((await serials(plain.seq, api.tokens.auditor)).statusCode).toBe(404);
    for (const bad of ['01', '-1', '1e3', 'x', '99999999999999999999']) {
      const response = await api.request({ method: 'GET', url: `/v1/events/${bad}/serials`, token: api.tokens.auditor });
      expect(response.statusCode, bad).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    expect((await api.request({ method: 'GET', url: `/v1/events/${plain.seq}/serials` })).statusCode).toBe(401);
  });

  it('is held to the digest by the full re-check: a changed or missing list is named', async () => {
    expect(await api.world.ledger.violations()).toEqual([]);
    const { rows } = await database.pool.query<{ seq: number | string; lines: string[] }>('SELECT seq, lines FROM event_serials ORDER BY seq LIMIT 1');
    const { seq, lines } = rows[0]!;
    await database.pool.query('UPDATE event_serials SET lines = $2 WHERE seq = $1', [seq, [...lines, 'FORGED-1']]);
    expect(await api.world.ledger.violations()).toEqual([expect.objectContaining({ invariant: 'event-serials', subject: String(seq), detail: expect.stringMatching(/stored lines hash to/) })]);
    await database.pool.query('DELETE FROM event_serials WHERE seq = $1', [seq]);
    expect(await api.world.ledger.violations()).toEqual([expect.objectContaining({ invariant: 'event-serials', subject: String(seq), detail: expect.stringMatching(/lines are not stored/) })]);
    await database.pool.query('INSERT INTO event_serials (seq, lines) VALUES ($1, $2)', [seq, lines]);
    expect(await api.world.ledger.violations()).toEqual([]);
  });
});

async function eventDigest(seq: number): Promise<string> {
  const { rows } = await database.pool.query<{ digest: string }>(`SELECT convert_from(canonical, 'UTF8')::jsonb -> 'input' ->> 'serialsSha256' AS digest FROM events WHERE seq = $1`, [seq]);
  return rows[0]!.digest;
}

describe('one event by its seq (GET /v1/events/:seq)', () => {
  it('answers the event to its readers, as the list does, and 404 to others', async () => {
    const auditorsFirst = (await api.request({ method: 'GET', url: '/v1/events?limit=500', token: api.tokens.auditor })).json().items as Array<{ seq: number }>;
    const recipients = new Set(((await api.request({ method: 'GET', url: '/v1/events?limit=500', token: api.tokens.recipient })).json().items as Array<{ seq: number }>).map((event) => event.seq));
    expect(recipients.size).toBeGreaterThan(0);
    expect(auditorsFirst.length).toBeGreaterThan(recipients.size);
    for (const { seq } of auditorsFirst.slice(0, 60)) {
      const mine = await api.request({ method: 'GET', url: `/v1/events/${seq}`, token: api.tokens.recipient });
      expect(mine.statusCode, `event ${seq}`).toBe(recipients.has(seq) ? 200 : 404);
      const all = await api.request({ method: 'GET', url: `/v1/events/${seq}`, token: api.tokens.auditor });
      expect(all.json()).toEqual(auditorsFirst.find((event) => event.seq === seq));
    }
    for (const bad of ['01', '-1', '1e3', 'x', '99999999999999999']) {
      expect((await api.request({ method: 'GET', url: `/v1/events/${bad}`, token: api.tokens.auditor })).statusCode, bad).toBe(400);
    }
    expect((await api.request({ method: 'GET', url: '/v1/events/999999', token: api.tokens.auditor })).statusCode).toBe(404);
  });
});
