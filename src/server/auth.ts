/**
 * Bearer tokens: `Authorization: Bearer clt_<tokenId>_<random>`.
 *
 * The database keeps only the SHA-256 of each secret (the ledger's token.create shows the
 * secret once). A request's secret is hashed, its token row found by the id the secret
 * carries, and the hashes compared in constant time. Unknown, malformed, revoked and
 * mismatched tokens all get the same answer, so a caller learns nothing about which.
 *
 * Verified tokens are cached in memory for tokenCacheTtlMs, keyed by the hash (never the
 * secret), so the hot path makes no database round trip. The price: a token revoked
 * through another server process keeps working here for reads for up to tokenCacheTtlMs (the
 * ledger refuses its commands as it commits them: ledger/batch-apply.ts); a revocation
 * through this process evicts it at once (forget()).
 */
import { limits } from '../core/limits.ts';
import { hash as oneShotHash, timingSafeEqual } from 'node:crypto';
import { DomainError } from '../core/errors.ts';
import { tokenNotValid, type Actor } from '../ledger/permissions.ts';
import { findTokenCredential } from '../store/read-queries.ts';
import type { Pool } from '../store/pool.ts';

export const tokenCacheTtlMs = limits.tokenCacheTtlMs;
export const tokenCacheEntriesMax = limits.tokenCacheEntriesMax;
export const bearerLengthMax = limits.bearerLengthMax;

const secretPattern = /^clt_([A-Za-z0-9-]{1,128})_[A-Za-z0-9_-]{16,}$/;

interface CacheEntry {
  actor: Actor;
  expiresAtMs: number;
}

export class TokenVerifier {
  private readonly cache = new Map<string, CacheEntry>();
  /**
   * Revocations through this process, counted: a lookup that read its row before a revocation
   * committed may finish after forget() ran, and must not put the token back in the cache.
   */
  private revocations = 0;
  private readonly nowMs: () => number;
  private readonly ttlMs: number;
  private readonly entriesMax: number;

  constructor(private readonly pool: Pool, options: { nowMs?: () => number; ttlMs?: number; entriesMax?: number } = {}) {
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.ttlMs = options.ttlMs ?? tokenCacheTtlMs;
    this.entriesMax = options.entriesMax ?? tokenCacheEntriesMax;
  }

  /** The actor behind an Authorization header; throws 'unauthenticated' otherwise. */
  async verify(authorization: string | undefined): Promise<Actor> {
    const secret = bearerSecret(authorization);
    const hash = oneShotHash('sha256', secret, 'buffer');
    const key = hash.toString('base64');
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.expiresAtMs > this.nowMs()) return cached.actor;
    if (cached !== undefined) this.cache.delete(key);
    const revocationsBefore = this.revocations;
    const actor = await this.lookup(secret, hash);
    // A revocation while the row was read: this answer may be stale. Read again, once, and
    // do not cache what that read finds (another revocation may be on its way).
    if (this.revocations !== revocationsBefore) return this.lookup(secret, hash);
    this.remember(key, actor);
    return actor;
  }

  /** Drops a token from the cache (after this process revoked it). */
  forget(tokenId: string): void {
    this.revocations += 1;
    for (const [key, entry] of this.cache) if (entry.actor.id === tokenId) this.cache.delete(key);
  }

  /** Tokens verified within the TTL: the gauge chipledger_token_cache_entries. */
  get size(): number {
    this.dropExpired(this.nowMs());
    return this.cache.size;
  }

  private async lookup(secret: string, hash: Buffer): Promise<Actor> {
    const tokenId = secretPattern.exec(secret)?.[1];
    if (tokenId === undefined) throw tokenNotValid();
    let row;
    try {
      row = await findTokenCredential(this.pool, tokenId);
    } catch (error) {
      throw new DomainError('unavailable', "couldn't check the bearer token: the database did not answer", { cause: error });
    }
    if (row === null || row.revoked_at !== null || row.secret_hash.length !== hash.length || !timingSafeEqual(row.secret_hash, hash)) throw tokenNotValid();
    return { id: row.id, orgId: row.org_id, role: row.role };
  }

  private remember(key: string, actor: Actor): void {
    const nowMs = this.nowMs();
    this.dropExpired(nowMs);
    if (this.cache.size >= this.entriesMax) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, { actor, expiresAtMs: nowMs + this.ttlMs });
  }

  /**
   * Drops the entries past their TTL. Entries are added in the order they expire (one TTL, a
   * clock that only goes forward, and an entry is set only once it is absent), so the expired
   * ones are at the front. Without this, a token used once stayed counted until the cache was
   * full or the token came back: a soak of 3,727 tokens used once showed 1,867 entries minutes
   * after the last had expired.
   */
  private dropExpired(nowMs: number): void {
    for (const [key, entry] of this.cache) {
      if (entry.expiresAtMs > nowMs) return;
      this.cache.delete(key);
    }
  }
}

function bearerSecret(authorization: string | undefined): string {
  if (authorization === undefined || authorization === '') {
    throw new DomainError('unauthenticated', 'this request needs a bearer token: send Authorization: Bearer <token>');
  }
  const match = /^Bearer +(\S+) *$/i.exec(authorization);
  if (match === null || match[1]!.length > bearerLengthMax) throw tokenNotValid();
  return match[1]!;
}

