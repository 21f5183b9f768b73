/**
 * The demo (`chipledger demo`) is what a client of the API meets first: every event it loads,
 * read back by its auditor through the API, matches the event bodies the OpenAPI document
 * publishes (src/server/wire-events.ts), its `demo: true` inputs included, and each carries a
 * nonce of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { createDemoTokens, loadDemo } from '../demo/load.ts';
import { Ledger } from '../ledger/ledger.ts';
import { buildServer } from './app.ts';
import { checkedAgainstDocument } from '../../test/support/server.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

describe("the demo's events", () => {
  let database: TestDatabase;
  let ledger: Ledger;
  let app: FastifyInstance;

  beforeAll(async () => {
    database = await createTestDatabase();
    ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool });
    await loadDemo(ledger);
    app = await buildServer({ ledger, pool: database.pool, logger: false, demo: true });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await ledger?.close();
    await database?.drop();
  });

  it('match the document, every page of them', async () => {
    const auditor = (await createDemoTokens(ledger, 'all')).find((token) => token.role === 'auditor');
    if (auditor === undefined) expect.fail('the demo has an auditor');
    const request = checkedAgainstDocument(app); // throws on an answer the document does not describe
    const kinds = new Set<string>();
    let cursor: string | null = null;
    let read = 0;
    const nonces = new Set<unknown>();
    do {
      const response = await request({ method: 'GET', url: `/v1/events?limit=500${cursor === null ? '' : `&cursor=${cursor}`}`, token: auditor.secret });
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json() as { items: Array<{ seq: number; kind: string; body: { nonce?: unknown } }>; nextCursor: string | null };
      for (const item of page.items) {
        kinds.add(item.kind);
        // Each has a nonce of its own (16 bytes, base64url): its leaf hash, public, confirms no guess at it.
        expect(item.body.nonce, `event ${item.seq}`).toMatch(/^[A-Za-z0-9_-]{21}[AQgw]$/);
        nonces.add(item.body.nonce);
      }
      read += page.items.length;
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(read).toBeGreaterThan(0);
    expect(nonces.size).toBe(read);
    // The demo's kinds: shipments in every state, manifests, deployments, a decommission and a loss.
    for (const kind of ['licence.issue', 'allocation.create', 'shipment.book', 'shipment.ship', 'manifest.attach', 'units.deploy', 'units.decommission', 'units.report_lost']) expect(kinds, kind).toContain(kind);
  });
});
