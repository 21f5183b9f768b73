import { hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Pool } from '../store/pool.ts';
import { TokenVerifier } from './auth.ts';

const secret = 'clt_TOK-7_abcdefghijklmnopqrstuvwxyz';
const row = (revoked: boolean) => ({ id: 'TOK-7', org_id: 'ORG-2', role: 'exporter', secret_hash: hash('sha256', secret, 'buffer'), revoked_at: revoked ? new Date() : null });

/** A pool whose token rows are read from `revoked`, each answer held until the test lets it go. */
function heldPool(state: { revoked: boolean }) {
  const held: Array<() => void> = [];
  const pool = {
    query: async () => {
      const answer = { rows: [row(state.revoked)] }; // read now, answered later
      await new Promise<void>((release) => held.push(release));
      return answer;
    },
  } as unknown as Pool;
  return { pool, held };
}

describe('the token cache', () => {
  it('does not keep a token whose row was read before this process revoked it', async () => {
    const state = { revoked: false };
    const { pool, held } = heldPool(state);
    const verifier = new TokenVerifier(pool);
    const inFlight = verifier.verify(`Bearer ${secret}`);
    await new Promise((next) => setImmediate(next));
    // The revocation commits and this process forgets the token while the read is on its way back.
    state.revoked = true;
    verifier.forget('TOK-7');
    held.shift()!();
    // The stale read is not trusted: the verifier reads again and finds the token revoked.
    await new Promise((next) => setImmediate(next));
    held.shift()!();
    await expect(inFlight).rejects.toThrow(/not valid/);
    expect(verifier.size).toBe(0);
  });

  it('caches a token read with no revocation meanwhile', async () => {
    const { pool, held } = heldPool({ revoked: false });
    const verifier = new TokenVerifier(pool);
    const first = verifier.verify(`Bearer ${secret}`);
    await new Promise((next) => setImmediate(next));
    held.shift()!();
    expect(await first).toEqual({ id: 'TOK-7', orgId: 'ORG-2', role: 'exporter' });
    expect(await verifier.verify(`Bearer ${secret}`)).toEqual({ id: 'TOK-7', orgId: 'ORG-2', role: 'exporter' });
    expect(held).toHaveLength(0); // the second came from the cache
  });

  it('counts only the tokens verified within the TTL', async () => {
    let nowMs = 0;
    const pool = { query: async () => ({ rows: [row(false)] }) } as unknown as Pool;
    const verifier = new TokenVerifier(pool, { nowMs: () => nowMs, ttlMs: 5_000 });
    await verifier.verify(`Bearer ${secret}`);
    expect(verifier.size).toBe(1);
    nowMs = 4_999;
    expect(verifier.size).toBe(1);
    nowMs = 5_000;
    expect(verifier.size).toBe(0);
  });
});
