/**
 * Seals on the log's head: which heads a server extends with its batches and signs in its
 * checkpoints (migration 060).
 *
 * The server's database role may update log_head and write events, tiles and checkpoint rows,
 * so whoever held its connection could append a whole forged batch (events, leaves, tiles and a
 * head, all consistent). The checks that compare the head with the tiles cannot tell that from
 * the server's own: the next batch extended it and the checkpointer signed it, and once signed it
 * is the log's for good. So every head a keyed process writes carries a seal, an HMAC-SHA256 of
 * its size and root under a key derived from the log's signing key, which the database never
 * holds; and a head is extended or signed only if it is vouched for:
 * - its seal is this log key's, or the previous key's during a rotation;
 * - or it is a checkpoint those keys signed (its signed note verified here, since the writer may
 *   insert checkpoint rows too);
 * - or it is the head as it stood when migration 060 ran (heads were not sealed before), kept
 *   in a table the writer may only read; or the empty log;
 * - or the log has no key yet: nothing could seal its heads, and the first key to sign seals
 *   the head as it finds it (log/keys.ts). The writer may add key rows but never take one away.
 *
 * What it does not close: a forger who holds the log's key, and changes to the state tables
 * that come with no event at all (the README's "The database's roles").
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { DomainError } from '../../core/errors.ts';
import { emptyRoot, openCheckpoint, parseSignerKey, parseVerifierKey, type NoteVerifier } from '../../tlog/index.ts';
import { decodeSignerKey } from '../../tlog/note-key.ts';
import { assertLogHead, type LogHead, type StoredHead } from '../../store/head-lock.ts';
import { currentLogKey } from '../../store/tlog-tables.ts';
import type { Pool, PoolClient } from '../../store/pool.ts';

/** The HKDF label of the seal key: a key of its own, never the signing key itself. */
const sealKeyInfo = 'chipledger log head seal v1';
const sealBytes = 32;
/** Checkpoint rows of one head whose notes are verified when its seal does not vouch for it. */
const checkpointRowsLookedAtMax = 8;

/** The rule a refusal to extend or sign an unvouched head names (callers get 'unavailable', the operator the whole story). */
export const headSealRule = 'log-head-sealed';

/** One key's seal maker: its HMAC key and the verifier of the checkpoints it signs. */
interface SealKey {
  hmacKey: Buffer;
  verifier: NoteVerifier;
  verifierKey: string;
}

function sealKeyOf(signerKey: string): SealKey {
  const signer = parseSignerKey(signerKey); // checks the key id against the key
  const seed = decodeSignerKey(signerKey).key;
  const hmacKey = Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), sealKeyInfo, sealBytes));
  return { hmacKey, verifier: parseVerifierKey(signer.verifierKey), verifierKey: signer.verifierKey };
}

function mac(key: Buffer, head: LogHead): Buffer {
  assertLogHead(head);
  return createHmac('sha256', key).update(`chipledger log head\n${head.size}\n`).update(head.root).digest();
}

/**
 * Seals heads with the log's key, and vouches for heads sealed with it; given the previous key,
 * for its seals too: only the rotation's announcement needs that (Ledger.open), since the head it
 * announces over was sealed by the old key, and a checkpoint both keys signed vouches for that
 * head from then on. A process still running on the old key is not believed after that, as a
 * retired key signs nothing again.
 */
export class HeadSealer {
  private readonly own: SealKey;
  private readonly previous: SealKey | undefined;

  constructor(signerKey: string, previousSignerKey?: string) {
    this.own = sealKeyOf(signerKey);
    this.previous = previousSignerKey === undefined ? undefined : sealKeyOf(previousSignerKey);
  }

  /** The verifier key of the key that seals (the log's current key, once adopted). */
  get verifierKey(): string {
    return this.own.verifierKey;
  }

  seal(head: LogHead): Buffer {
    return mac(this.own.hmacKey, head);
  }

  /** Whether `seal` is this key's, or the previous key's, over the head (compared in constant time). */
  sealedBy(head: LogHead, seal: Buffer | null): boolean {
    if (seal === null || seal.length !== sealBytes) return false;
    return [this.own, this.previous].some((key) => key !== undefined && timingSafeEqual(mac(key.hmacKey, head), seal));
  }

  /**
   * Throws HeadNotVouched unless the head is vouched for (see the file's comment). The seal
   * costs an HMAC; the other ways are looked up only when it fails, which is rare: a head of
   * 060's migration, or just announced by a rotation.
   */
  async assertVouched(db: Pool | PoolClient, head: StoredHead): Promise<void> {
    if ((head.size === 0 && head.root.equals(emptyRoot)) || this.sealedBy(head, head.seal)) return;
    const logKey = (await currentLogKey(db))?.verifier_key;
    if (logKey === undefined) return;
    // A key the log never had, or one it retired: this process does not hold the log's key, and
    // the refusal says that, not that the head is the odd one.
    if (logKey !== this.own.verifierKey && logKey !== this.previous?.verifierKey) throw new WriterWithoutLogKey(logKey);
    // A few rows at most are genuine (one per key of a size, two at a rotation); the writer may
    // insert any number, each a signature to verify, so only the first few are looked at.
    const found = await db.query<{ migrated: boolean; signed_note: string | null }>(
      `SELECT EXISTS (SELECT 1 FROM log_head_unsealed WHERE size = $1 AND root = $2) AS migrated, c.signed_note
       FROM (SELECT 1) one LEFT JOIN (SELECT signed_note FROM tlog_checkpoints WHERE size = $1 AND root = $2 ORDER BY key_id LIMIT ${checkpointRowsLookedAtMax}) c ON true`,
      [head.size, head.root],
    );
    if (found.rows[0]?.migrated === true) return;
    for (const { signed_note: note } of found.rows) {
      if (note !== null && this.signedByUs(note, head)) return;
    }
    throw new HeadNotVouched(head, this.own.verifierKey);
  }

  private signedByUs(note: string, head: LogHead): boolean {
    for (const key of [this.own, this.previous]) {
      if (key === undefined) continue;
      try {
        const { checkpoint } = openCheckpoint(note, key.verifier);
        if (checkpoint.size === head.size && Buffer.from(checkpoint.rootHash).equals(head.root)) return true;
      } catch {
        // not this key's signature: the next key, or not vouched for
      }
    }
    return false;
  }
}

/**
 * A head that no holder of the log's key wrote: events appended around the ledger (with the
 * database's writer role, say), or by a process that was not given the key. Extended or signed,
 * its events would be the log's for good; so the batch is answered 'unavailable' and nothing is
 * signed, until an operator has looked (chipledger check) and acted.
 */
export class HeadNotVouched extends DomainError {
  constructor(head: LogHead, verifierKey: string) {
    super(
      'unavailable',
      `the log's head (size ${head.size}, root ${head.root.toString('hex')}) is not sealed by the log's key ${verifierKey}, nor a checkpoint it signed: `
        + 'events were appended by something that does not hold the log key (written around the ledger, or by a chipledger command not given the key); '
        + 'nothing is appended to it or signed over it; run chipledger check and see the README ("The database\'s roles")',
      { rule: headSealRule, details: { size: head.size } },
    );
    this.name = 'HeadNotVouched';
  }
}

/**
 * A process without the log's key about to append to a log that has one: its heads would carry
 * no seal, and every keyed server would then refuse to extend or sign the log. Refused before
 * anything is written ('unavailable' to the batch's callers, the same rule).
 */
export class WriterWithoutLogKey extends DomainError {
  constructor(verifierKey: string) {
    super(
      'unavailable',
      `this process was not given the log's key (${verifierKey}), and a head written without it would be extended and signed by no server; nothing was written: give it the key the server signs with`,
      { rule: headSealRule },
    );
    this.name = 'WriterWithoutLogKey';
  }
}
