/**
 * An event's leaf hash is public: the log's level-0 tiles serve it to anyone, with no token
 * (C2SP tlog-tiles). Every other field of an event can be guessed from the guesser's own
 * events (seq is the leaf index, `at` lies between its neighbours' to the millisecond,
 * token and licence ids appear in its own events), so without a secret part the hash would
 * confirm a guess at an event its guesser may not read: a recipient found another's
 * allocation that way in seconds. Each event's nonce is that secret part.
 */
import { describe, expect, it } from 'vitest';
import { leafHash } from '../tlog/index.ts';
import { createHash } from 'node:crypto';
import { canonicalBytes, eventBody, eventNonceBytes, linesDigest, serialLines, serialsDigest } from './events.ts';
import type { Actor } from './permissions.ts';

const actor: Actor = { id: 'TOK-8', orgId: 'ORG-0', role: 'authority_admin' };
const allocation = () => eventBody(35, '2026-02-01T00:00:00.123Z', 'allocation.create', actor, 'A-35', { licenceId: 'L-31', recipientId: 'ORG-4', units: 1200 }, { allocationId: 'A-35' });

/** The nonce's bytes, when it is 16 of them in unpadded base64url (22 characters); otherwise undefined. */
function nonceBytes(nonce: unknown): Buffer | undefined {
  if (typeof nonce !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(nonce)) return undefined;
  const bytes = Buffer.from(nonce, 'base64url');
  return bytes.length === eventNonceBytes && bytes.toString('base64url') === nonce ? bytes : undefined;
}

describe("an event's nonce", () => {
  it('makes two events with the same seq, time, kind, actor, subject, input and effects differ in their bytes and leaf hashes', () => {
    const [first, second] = [allocation(), allocation()];
    const [firstBytes, secondBytes] = [canonicalBytes(first), canonicalBytes(second)];
    expect(firstBytes.equals(secondBytes)).toBe(false);
    expect(leafHash(firstBytes).equals(leafHash(secondBytes))).toBe(false);
  });

  it('leaves a guess at every other field unconfirmed by the leaf hash, while whoever holds the event still verifies it', () => {
    const made = allocation();
    const leaf = leafHash(canonicalBytes(made));
    // The guess the review made: every field right, no nonce.
    const { nonce: _nonce, ...guessed } = made as unknown as Record<string, unknown>;
    expect(leafHash(canonicalBytes(guessed)).equals(leaf)).toBe(false);
    // A reader of the event has its bytes (and so its nonce): parsed and canonicalised again, they are the leaf.
    const served = JSON.parse(canonicalBytes(made).toString('utf8'));
    expect(served.nonce).toBe((made as unknown as Record<string, unknown>).nonce);
    expect(leafHash(canonicalBytes(served)).equals(leaf)).toBe(true);
  });

  it('is 16 random bytes in unpadded base64url, different for every event, past many refills of its pool', () => {
    const nonces = Array.from({ length: 5_000 }, () => (allocation() as unknown as Record<string, unknown>).nonce);
    for (const nonce of nonces) expect(nonceBytes(nonce), String(nonce)).toBeDefined();
    expect(new Set(nonces).size).toBe(nonces.length);
    // Random bytes, not a counter or a pattern: across all of them every byte value turns up.
    const seen = new Set(nonces.flatMap((nonce) => [...nonceBytes(nonce)!]));
    expect(seen.size).toBe(256);
  });
});

describe("a serial list's lines and digest", () => {
  const served = (lines: string[]) => createHash('sha256').update(Buffer.from(lines.map((line) => `${line}\n`).join(''), 'utf8')).digest('hex');

  it('hashes the bytes GET /v1/events/:seq/serials serves: each line and its newline', () => {
    expect(linesDigest(['SN-1', 'SN-2 GPU-0a1b2c3d-0000-0000-0000-000000000001'])).toBe(served(['SN-1', 'SN-2 GPU-0a1b2c3d-0000-0000-0000-000000000001']));
    expect(linesDigest(['A'])).toBe('06f961b802bc46ee168555f066d28f4f0e9afdf3f88174c1ee6f9de004fc30a0'); // printf 'A\n' | sha256sum
    expect(linesDigest([])).toBe(createHash('sha256').digest('hex'));
  });

  it('sorts the lines in code-unit order, whether the list came sorted, reversed or shuffled', () => {
    const sorted = ['A-1', 'A-10', 'A-2', 'B-1 GPU-0a1b2c3d-0000-0000-0000-000000000001', 'B.1', 'b-1'];
    expect(serialLines(['A-1', 'A-10', 'A-2', { serial: 'B-1', gpuUuid: 'GPU-0a1b2c3d-0000-0000-0000-000000000001' }, { serial: 'B.1' }, 'b-1'])).toEqual(sorted);
    expect(serialLines(['b-1', 'B.1', { serial: 'B-1', gpuUuid: 'GPU-0a1b2c3d-0000-0000-0000-000000000001' }, 'A-2', 'A-10', 'A-1'])).toEqual(sorted);
    expect(serialLines(['A-2', 'b-1', 'A-1', 'B.1', 'A-10', { serial: 'B-1', gpuUuid: 'GPU-0a1b2c3d-0000-0000-0000-000000000001' }])).toEqual(sorted);
    expect(serialsDigest(['A-2', 'A-1'])).toBe(served(['A-1', 'A-2']));
  });
});
