/**
 * The start-up check: a log refuses to run on a state it cannot prove. Before a server
 * takes writes it checks that
 * - the events are exactly 0..size-1 (no gap, nothing beyond the head),
 * - the level-0 tiles cover exactly `size` leaves,
 * - every event hashes to its stored leaf and every stored tile hash to the tiles below
 *   (one full pass: a changed event, tile hash or order is found here),
 * - every checkpoint is signed by a known log key and its root is the root of the
 *   entries at its size (so each is consistent with every earlier one: no fork),
 * - the head's root is the root of the tiles.
 * Each failure says which of these broke (LogCheckError.check) and where.
 */
import { openCheckpoint, parseNote, parseVerifierKey, type Ed25519NoteVerifier } from '../tlog/index.ts';
import { auditStoredLog } from './log-audit.ts';
import type { Pool } from '../store/pool.ts';
import { listCheckpoints, readHead } from '../store/tlog-tables.ts';
import type { TransparencyLog } from './transparency-log.ts';

export class LogCheckError extends Error {
  constructor(readonly check: string, message: string) {
    super(`transparency log check "${check}" failed: ${message}`);
    this.name = 'LogCheckError';
  }
}

export async function checkLogOnStart(pool: Pool, log: TransparencyLog, verifierKeys: readonly string[]): Promise<{ size: number; checkpoints: number }> {
  const head = await readHead(pool);
  const events = (await pool.query<{ n: number; max: number | null; min: number | null }>('SELECT count(*)::bigint AS n, max(seq) AS max, min(seq) AS min FROM events')).rows[0]!;
  if (events.n !== head.size || (head.size > 0 && (events.min !== 0 || events.max !== head.size - 1))) {
    throw new LogCheckError('events', `the head says ${head.size} events, the table holds ${events.n} (seq ${events.min ?? '-'}..${events.max ?? '-'})`);
  }
  const leaves = (await pool.query<{ leaves: number | null }>('SELECT max(index * 256 + width) AS leaves FROM tlog_tiles WHERE level = 0')).rows[0]!.leaves ?? 0;
  if (leaves !== head.size) throw new LogCheckError('tiles', `level-0 tiles hold ${leaves} leaf hashes but the log has ${head.size} events`);
  const verifiers = [...new Set(verifierKeys)].map((key) => parseVerifierKey(key));
  const roots = new Map<number, Buffer>();
  const checkpoints = await listCheckpoints(pool);
  for (const row of checkpoints) {
    const { size, rootHash } = openWithKnownKeys(row.signed_note, row.size, verifiers);
    if (size !== row.size || size > head.size) throw new LogCheckError('checkpoint-size', `checkpoint row ${row.size} signs size ${size}; the log has ${head.size}`);
    roots.set(size, rootHash);
  }
  // One pass over every entry and stored hash: a changed event, tile hash, reordering or
  // a checkpoint that disagrees with the log (a fork) stops the start here.
  // The tiles it proves are kept for proofs (as many as the tile cache holds): a proof then
  // needs no tile read from PostgreSQL, which is most of a cold proof's time.
  const audit = await auditStoredLog(pool, head.size, roots, { keepTilesMax: log.tiles.entriesMax });
  if (audit.failure) {
    throw new LogCheckError(audit.failure.kind === 'checkpoint' ? 'checkpoint-consistency' : audit.failure.kind, audit.failure.message);
  }
  // The audit proved the tiles; the head must name their root.
  const root = await log.rootAt(head.size);
  if (!root.equals(head.root)) throw new LogCheckError('root', `tiles give root ${root.toString('hex')} at size ${head.size}, the head records ${head.root.toString('hex')}`);
  log.tiles.adopt(audit.verifiedTiles);
  return { size: head.size, checkpoints: checkpoints.length };
}

/**
 * Opens a checkpoint with every log key ever used: one must have signed it, and a
 * signature line of any known key that does not verify refuses the whole note.
 */
function openWithKnownKeys(note: string, size: number, verifiers: readonly Ed25519NoteVerifier[]): { size: number; rootHash: Buffer } {
  try {
    const lines = parseNote(note).signatures;
    const signer = verifiers.find((candidate) => lines.some((line) => line.name === candidate.name && line.keyId === candidate.keyId));
    if (!signer) throw new Error('it carries no signature of a known log key');
    return openCheckpoint(note, signer, verifiers.filter((other) => other !== signer)).checkpoint;
  } catch (error) {
    throw new LogCheckError('checkpoint-signature', `checkpoint ${size}: ${(error as Error).message}`);
  }
}
