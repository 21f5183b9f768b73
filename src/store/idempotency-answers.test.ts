/**
 * Invariant 6, to the byte: an answer replayed under its idempotency key is the first answer
 * as it was sent, keys in the same order (conc review, defect 3: the jsonb column gave them
 * back shortest first). Both ways an answer is stored: with its batch (batch-writes.ts) and
 * alone, for a refusal the database made (idempotency-answers.ts rememberAnswer).
 */
import { describe, expect, it } from 'vitest';
import { worldPerFile, expectOk, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { Ledger } from '../ledger/ledger.ts';
import { rememberAnswer } from './idempotency-answers.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, made2) => {
  world = made;
  database = made2;
});

describe('a stored idempotency answer', () => {
  it('is kept as text (json), not re-ordered (jsonb)', async () => {
    const column = await database.pool.query<{ data_type: string }>("SELECT data_type FROM information_schema.columns WHERE table_name = 'idempotency_keys' AND column_name = 'response'");
    expect(column.rows[0]!.data_type).toBe('json');
  });

  it('replays a booking, from another server process, byte for byte', async () => {
    const input = {
      exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    };
    const first = await world.ledger.submit('shipment.book', input, world.actors.exporter, 'answers-as-sent-1');
    const firstBody = expectOk(first);
    // Keys in an order jsonb does not keep (it sorts shorter keys first).
    expect(Object.keys(firstBody).indexOf('shipmentId')).toBeLessThan(Object.keys(firstBody).indexOf('units'));
    // Another process: nothing of the first answer in its memory, only the stored row.
    const other = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, clock: world.clock });
    try {
      const again = await other.submit('shipment.book', input, world.actors.exporter, 'answers-as-sent-1');
      expect(again.replayed).toBe(true);
      expect(JSON.stringify(expectOk(again))).toBe(JSON.stringify(firstBody));
    } finally {
      await other.close();
    }
  });

  it('stored alone (a refusal the database made) reads back byte for byte', async () => {
    const response = { ok: false, error: { code: 'conflict', message: 'refused', rule: 'unique', details: { zeta: 1, a: 2, middle: [{ long_key: 1, k: 2 }] } } };
    const row = { scope: 'ORG-answers', key: 'answers-as-sent-2', request_hash: Buffer.alloc(32, 7), status: 0, response, created_at: '2026-02-01T00:00:00.000Z' };
    expect(await rememberAnswer(database.pool, row)).toBeUndefined();
    const stored = await rememberAnswer(database.pool, { ...row, response: { other: true } });
    expect(JSON.stringify(stored!.response)).toBe(JSON.stringify(response));
  });
});
