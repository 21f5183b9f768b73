/**
 * The transparency log over HTTP, in the public formats so that any standard verifier
 * works: the verifier key, the signed checkpoint (with witness cosignatures), C2SP
 * tlog-tiles hash tiles and entry bundles, RFC 9162 proofs, and C2SP tlog-proof bundles.
 *
 * The tree's hashes are public. A leaf hash is SHA-256 over an event's canonical bytes, and
 * every event written since the nonce was added carries 16 random bytes of its own
 * (ledger/events.ts), so its hash confirms no guess at it to someone who may not read it. The
 * log's earlier events have no nonce, and their leaf hashes can confirm a guess at their
 * contents. Entry bundles carry the events themselves, so they follow the usual read rules:
 * only roles that see every event (authorities, auditors) may fetch them.
 */
import { limits } from '../core/limits.ts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { z } from 'zod';
import { DomainError } from '../core/errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
import {
  canonicalSignatureLine, cosignaturesOf, formatKeyId, formatTlogProof, openCheckpoint, parseCosignatureVerifierKey, parseNote, parseTilePath, parseVerifierKey,
  tileHeight, tileWidth, type CosignatureVerifier, type NoteVerifier,
} from '../tlog/index.ts';
import type { Pool } from '../store/pool.ts';
import { cosignaturesFor, currentLogKey, insertCosignature, latestCheckpoint, listLogKeys, readEntries, readHead, type CheckpointRow } from '../store/tlog-tables.ts';
import type { TokenVerifier } from './auth.ts';
import { contentTypeRefusal } from './problem.ts';
import { seqInPath } from './queries.ts';
import type * as wire from './wire.ts';

export interface LogRouteOptions {
  ledger: Ledger;
  pool: Pool;
  verifier: TokenVerifier;
  /** Witness verifier keys (C2SP cosignature/v1) whose cosignatures this log stores. */
  witnessKeys: readonly string[];
}

export const cosignatureBodyBytesMax = limits.cosignatureBodyBytesMax;
/**
 * A tile path names fixed content, partial ones too (the log only grows, and a partial tile
 * of width W always holds the same W hashes): C2SP tlog-tiles says caching SHOULD be long-lived.
 */
const immutable = 'public, max-age=31536000, immutable';

const textPlain = 'text/plain; charset=utf-8';
const tilePrefix = '/v1/log/tile/';
/**
 * A tree index or size in its one canonical spelling: decimal digits, no sign, no leading
 * zero, no space, not empty (Number() would read '', ' ', '0x2' and '1e0' as numbers).
 */
const index = z.string()
  .regex(/^(0|[1-9][0-9]*)$/, 'must be a decimal number without sign or leading zeros')
  .max(16, 'must be at most 2^53 - 1')
  .transform(Number)
  .refine((value) => Number.isSafeInteger(value), 'must be at most 2^53 - 1');
// Built once: building this schema costs about 40 µs, parsing with it under 1 µs, and
// proofs are the hottest public reads.
const inclusionQuery = z.strictObject({ index, size: index });
const consistencyQuery = z.strictObject({ from: index, to: index });

function logSigner(ledger: Ledger) {
  const signer = ledger.checkpointer?.signer;
  if (!signer) throw new DomainError('not_found', 'this server has no log signing key configured, so it publishes no checkpoints');
  return signer;
}

/**
 * The log's key now: this server's own, unless another process retired it by a rotation;
 * then the log's current key, read only then (the usual answer needs no database).
 */
async function logKeyNow(ledger: Ledger, pool: Pool): Promise<string> {
  const own = logSigner(ledger).verifierKey;
  return ledger.checkpointer?.retired === undefined ? own : ((await currentLogKey(pool))?.verifier_key ?? own);
}

/**
 * The routes that take no query refuse one, as every other GET does: a tile is served under
 * one URL only (`?x=1` would be a second, cached as immutable beside it).
 */
const noQuery = z.strictObject({});

function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.output<T> {
  const parsed = schema.safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DomainError('invalid_input', `couldn't read the query: ${issue.path.join('.') || '(query)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * The newest checkpoint with the cosignatures made over its own text (one size may hold two
 * texts after a key rotation). Each stored line is verified again over the served text, by a
 * configured witness: a line that does not verify is left off, so the served note always opens.
 * Each is served in its canonical spelling, whatever a row stored before lines were made
 * canonical on the way in holds.
 * The note served last is kept: every proof bundle carries the checkpoint, and until a new
 * checkpoint is signed or a witness adds a line, the same rows give the same note, so the
 * signatures are not verified again per request.
 */
function checkpointServer(pool: Pool, witnesses: readonly CosignatureVerifier[]): () => Promise<{ row: CheckpointRow; note: string }> {
  let last: { rows: string; row: CheckpointRow; note: string } | undefined;
  return async () => {
    const row = await latestCheckpoint(pool);
    if (!row) throw new DomainError('not_found', 'no checkpoint has been signed yet; try again in a second');
    const stored = (await cosignaturesFor(pool, row)).map((cosignature) => cosignature.signature_line);
    const rows = [row.size, row.key_id, row.signed_note, ...stored].join('\n');
    if (last?.rows !== rows) {
      const text = Buffer.from(parseNote(row.signed_note).text, 'utf8');
      const lines = stored.map((line) => cosignatureOf(text, line, witnesses)).filter((cosignature) => cosignature !== undefined);
      last = { rows, row, note: row.signed_note + lines.map((cosignature) => cosignature.line).join('') };
    }
    return { row: last.row, note: last.note };
  };
}

const proofBundleQuery = z.strictObject({
  cosignatures: z.string().regex(/^(0|[1-9][0-9]{0,2})$/, 'must be a whole number of witnesses, at most 999').transform(Number).default(0),
});
/** Checkpoints looked at for a cosigned one, newest first: a quorum not met in these is not met. */
const cosignedCandidatesMax = 16;

/**
 * The newest checkpoint covering `seq`, signed with the log's current key (what a verifier
 * holds: /v1/log/key), that at least `wanted` configured witnesses cosigned, each counted
 * once by name (one witness with two keys is one witness), their lines verified again over
 * its text as checkpointServer does; with those lines.
 */
async function cosignedCheckpoint(pool: Pool, witnesses: readonly CosignatureVerifier[], logKeyId: number, seq: number, wanted: number): Promise<{ row: CheckpointRow; note: string }> {
  const names = new Set(witnesses.map((witness) => witness.name));
  if (wanted > names.size) {
    throw new DomainError('not_found', `this log keeps cosignatures of ${names.size} witness(es); no checkpoint can carry ${wanted}`);
  }
  // From the cosignatures, not the checkpoints: a log signs a checkpoint a second, and a
  // scan of them all for a quorum no witness met would read them all (seconds at a million).
  // Only configured witnesses count, in SQL too: lines of one no longer configured must not
  // fill the candidates and hide an older checkpoint that has the quorum.
  const candidates = await pool.query<CheckpointRow>(
    `SELECT c.* FROM (
       SELECT checkpoint_size, checkpoint_key_id FROM tlog_cosignatures
       WHERE checkpoint_size > $1 AND checkpoint_key_id = $3 AND (witness, key_id) IN (SELECT * FROM unnest($4::text[], $5::text[]))
       GROUP BY checkpoint_size, checkpoint_key_id HAVING count(DISTINCT witness) >= $2
       ORDER BY checkpoint_size DESC LIMIT ${cosignedCandidatesMax}) w
     JOIN tlog_checkpoints c ON c.size = w.checkpoint_size AND c.key_id = w.checkpoint_key_id
     ORDER BY c.size DESC`,
    [seq, wanted, formatKeyId(logKeyId), witnesses.map((witness) => witness.name), witnesses.map((witness) => formatKeyId(witness.keyId))],
  );
  for (const row of candidates.rows) {
    const text = Buffer.from(parseNote(row.signed_note).text, 'utf8');
    const lines = (await cosignaturesFor(pool, row)).map((stored) => cosignatureOf(text, stored.signature_line, witnesses)).filter((cosignature) => cosignature !== undefined);
    if (new Set(lines.map((cosignature) => cosignature.witness)).size >= wanted) return { row, note: row.signed_note + lines.map((cosignature) => cosignature.line).join('') };
  }
  await assertEventExists(pool, seq);
  throw new DomainError('not_found', `no checkpoint covering event ${seq} signed with the log's current key carries ${wanted} witness cosignature(s) yet; try again after the witnesses' next round`);
}

/**
 * An event past the log's head is not late, it does not exist: "try again" would send a
 * client polling for an event that may never come. Read only when no checkpoint covers the
 * event (the head is one more query), so the usual proof needs none.
 */
async function assertEventExists(pool: Pool, seq: number): Promise<void> {
  const { size } = await readHead(pool);
  if (seq >= size) throw new DomainError('not_found', `there is no event ${seq}: the log holds ${size} event${size === 1 ? '' : 's'}${size === 0 ? '' : `, numbered 0 to ${size - 1}`}`, { details: { event: seq, logSize: size } });
}

/**
 * A stored cosignature line (`— name base64\n`) that is a configured witness's valid signature
 * over `text`: the witness's name and the line in its canonical spelling, with its newline;
 * undefined when it is not one.
 */
function cosignatureOf(text: Buffer, line: string, witnesses: readonly CosignatureVerifier[]): { witness: string; line: string } | undefined {
  let signature;
  try {
    [signature] = parseNote(`x\n\n${line}`).signatures;
  } catch {
    return undefined;
  }
  const witness = witnesses.find((candidate) => candidate.name === signature!.name && candidate.keyId === signature!.keyId);
  if (witness === undefined || !witness.verify(text, signature!.signature)) return undefined;
  return { witness: witness.name, line: `${canonicalSignatureLine(signature!)}\n` };
}

/**
 * Registers the routes in their own scope, which reads text/plain (cosigned notes) and
 * nothing else: the one body it takes is a note, and a JSON string holding one is not the
 * media type the document names (it is refused like any other, rule content-type).
 */
export async function registerLogRoutes(app: FastifyInstance, options: LogRouteOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: cosignatureBodyBytesMax }, (_request, body, done) => done(null, body));
    logRoutes(scope, options);
  });
}

function logRoutes(app: FastifyInstance, options: LogRouteOptions): void {
  const { ledger, pool } = options;
  const checkTreeSize = treeSizeChecker(pool);
  const witnesses: CosignatureVerifier[] = options.witnessKeys.map((key) => parseCosignatureVerifierKey(key));
  const checkpointWithCosignatures = checkpointServer(pool, witnesses);

  app.get('/v1/log/key', async (request, reply) => {
    parseQuery(noQuery, request.query);
    return reply.type(textPlain).send(`${await logKeyNow(ledger, pool)}\n`);
  });

  // Every key the log was signed with, oldest first, each new one with the checkpoint that
  // announced it (signed by the key before it): how a verifier follows a rotation.
  app.get('/v1/log/keys', async (request, reply) => {
    parseQuery(noQuery, request.query);
    const keys = await listLogKeys(pool);
    const announcements = await pool.query<{ size: number; key_id: string; signed_note: string }>(
      'SELECT size, key_id, signed_note FROM tlog_checkpoints WHERE (size, key_id) IN (SELECT announced_size, key_id FROM tlog_keys WHERE announced_size IS NOT NULL)',
    );
    return reply.send({
      keys: keys.map((key) => ({
        verifierKey: key.verifier_key,
        firstSize: key.first_size,
        announcement: announcements.rows.find((row) => row.key_id === key.key_id && row.size === key.announced_size)?.signed_note ?? null,
      })),
    } satisfies z.output<typeof wire.logKeys>);
  });

  app.get('/v1/log/checkpoint', async (request, reply) => {
    parseQuery(noQuery, request.query);
    const { note } = await checkpointWithCosignatures();
    return reply.type(textPlain).header('cache-control', 'no-cache').send(note);
  });

  app.get('/v1/log/tile/*', async (request: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) => {
    // The path as sent, not as decoded: '%30%30%30' decodes to '000', and a second URL for one
    // tile would split caches. Only the canonical spelling is served.
    const rawPath = request.url.split('?', 1)[0]!;
    parseQuery(noQuery, request.query);
    const parsed = rawPath.startsWith(tilePrefix) ? parseTilePath(`tile/${rawPath.slice(tilePrefix.length)}`) : undefined;
    if (!parsed) throw new DomainError('not_found', `tile/${request.params['*']} is not a C2SP tlog-tiles path`);
    const { level, index: tileIndex, width } = parsed.tile;
    const size = (await readHead(pool)).size;
    if (parsed.kind === 'entries') return sendEntries(request, reply, options, tileIndex, width, size);
    // Serve only what the tree has: a partial tile of exactly the width it has now or had.
    const hashesAtLevel = Math.floor(size / 2 ** (tileHeight * level));
    if (tileIndex * tileWidth + width > hashesAtLevel) throw new DomainError('not_found', `the log (size ${size}) has no tile ${request.params['*']} yet`);
    const data = await ledger.log.tiles.storedTile(level, tileIndex, width, pool);
    if (!data) throw new DomainError('not_found', `tile ${request.params['*']} is not stored`);
    reply.header('cache-control', immutable);
    return reply.type('application/octet-stream').send(data);
  });

  app.get('/v1/log/proof/inclusion', async (request, reply) => {
    const query = parseQuery(inclusionQuery, request.query);
    await checkTreeSize(query.size, 'size');
    if (query.index >= query.size) throw new DomainError('invalid_input', `index ${query.index} is not in a tree of size ${query.size}`);
    const hashes = await ledger.log.inclusionProof(query.index, query.size, pool);
    return reply.send({ index: query.index, size: query.size, hashes: hashes.map((hash) => hash.toString('base64')) } satisfies z.output<typeof wire.inclusionProof>);
  });

  app.get('/v1/log/proof/consistency', async (request, reply) => {
    const query = parseQuery(consistencyQuery, request.query);
    await checkTreeSize(query.to, 'to');
    if (query.from > query.to) throw new DomainError('invalid_input', `from ${query.from} is after to ${query.to}`);
    const hashes = await ledger.log.consistencyProof(query.from, query.to, pool);
    return reply.send({ from: query.from, to: query.to, hashes: hashes.map((hash) => hash.toString('base64')) } satisfies z.output<typeof wire.consistencyProof>);
  });

  // A C2SP tlog-proof bundle for one event: verifiable offline with the log's key alone.
  // ?cosignatures=N asks for a checkpoint that N witnesses cosigned: checkpoints are signed
  // every second and witnesses cosign later, so the newest one seldom carries their lines,
  // and a verifier that needs a quorum needs an older, cosigned one.
  app.get('/v1/log/events/:seq/proof', async (request: FastifyRequest<{ Params: { seq: string }; Querystring: Record<string, unknown> }>, reply) => {
    const seq = seqInPath(request.params.seq);
    const { cosignatures } = parseQuery(proofBundleQuery, request.query ?? {});
    const { row, note } = cosignatures === 0
      ? await checkpointWithCosignatures()
      : await cosignedCheckpoint(pool, witnesses, parseVerifierKey(await logKeyNow(ledger, pool)).keyId, seq, cosignatures);
    if (seq >= row.size) {
      await assertEventExists(pool, seq);
      throw new DomainError('not_found', `event ${seq} is not yet covered by a checkpoint (size ${row.size}); try again in a second`, { details: { event: seq, checkpointSize: row.size } });
    }
    const proof = await ledger.log.inclusionProof(seq, row.size, pool);
    return reply.type(textPlain).send(formatTlogProof({ index: seq, inclusionProof: proof, checkpointNote: note }));
  });

  app.post('/v1/log/cosignatures', { bodyLimit: cosignatureBodyBytesMax, config: { accepts: 'text/plain' } }, async (request, reply) => {
    const body = request.body;
    if (typeof body !== 'string') throw contentTypeRefusal('text/plain');
    return reply.code(201).send(await storeCosignatures(pool, logSigner(ledger), witnesses, body));
  });
}

/**
 * Checks a requested tree size against the committed log. Committed sizes only grow, so a
 * size within the largest one read so far needs no query; only a larger one reads the head
 * again (proofs at the newest size are the common case, and a query each would be most of
 * their latency).
 */
function treeSizeChecker(pool: Pool): (size: number, name: string) => Promise<void> {
  let largest = -1;
  return async (size, name) => {
    if (size <= largest) return;
    const head = await readHead(pool);
    largest = Math.max(largest, head.size);
    if (size > head.size) throw new DomainError('invalid_input', `${name} ${size} is beyond the log's size ${head.size}`);
  };
}

async function sendEntries(request: FastifyRequest, reply: FastifyReply, options: LogRouteOptions, tileIndex: number, width: number, size: number): Promise<FastifyReply> {
  const actor = await options.verifier.verify(request.headers.authorization);
  if (!['authority_admin', 'authority_officer', 'auditor'].includes(actor.role)) {
    throw new DomainError('forbidden', 'entry bundles hold every event; only authorities and auditors may read them (others read their own events at /v1/events)');
  }
  const first = tileIndex * tileWidth;
  if (first + width > size) throw new DomainError('not_found', `the log (size ${size}) has no entry bundle ${tileIndex} of width ${width} yet`);
  const entries = await readEntries(options.pool, first, first + width);
  // C2SP tlog-tiles entry bundle: each entry as a big-endian uint16 length and the bytes.
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(entry.length);
    parts.push(length, entry);
  }
  // Partial bundles too: the entries of a bundle of width W never change.
  reply.header('cache-control', 'private, max-age=31536000, immutable').header('vary', 'Accept-Encoding');
  const bundle = Buffer.concat(parts);
  // C2SP tlog-tiles: entry bundles SHOULD be compressed at the HTTP layer. Only for a client
  // that asks for gzip (fetch and curl --compressed do): a plain client gets the bytes as they are.
  if (acceptsGzip(request.headers['accept-encoding'])) {
    reply.header('content-encoding', 'gzip');
    return reply.type('application/octet-stream').send(await gzipAsync(bundle));
  }
  return reply.type('application/octet-stream').send(bundle);
}

const gzipAsync = promisify(gzip);

/**
 * Whether Accept-Encoding makes gzip acceptable (RFC 9110 §12.5.3). gzip and x-gzip name one
 * coding: when either is listed, its q alone decides (the higher, if both are). `*` stands only
 * for codings not listed, so its q decides only when neither is: `gzip;q=0, *` refuses gzip.
 * A q that is not a valid qvalue counts as 0: the plain bytes suit every client, so a header
 * we cannot read never earns gzip.
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  let gzipWeight: number | undefined;
  let anyWeight: number | undefined;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    if (coding === 'gzip' || coding === 'x-gzip') gzipWeight = Math.max(gzipWeight ?? 0, weightOf(params));
    else if (coding === '*') anyWeight = Math.max(anyWeight ?? 0, weightOf(params));
  }
  return (gzipWeight ?? anyWeight ?? 0) > 0;
}

/** RFC 9110 §12.4.2 qvalue: 0 to 1, at most three decimals; 1 when absent; 0 when unreadable. */
function weightOf(params: readonly string[]): number {
  const q = params.find((param) => /^q\s*=/.test(param));
  if (q === undefined) return 1;
  const value = q.slice(q.indexOf('=') + 1).trim();
  return /^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$/.test(value) ? Number(value) : 0;
}

/**
 * Stores the cosignatures a witness added to one of our checkpoints. The note must be a
 * checkpoint the log signed (same text, its signature valid) with any of its keys: after a
 * rotation a witness may still cosign the last checkpoint of the old key, and a server whose
 * key another process retired still takes cosignatures of the new key's checkpoints. Each
 * witness line is verified against the configured witness keys; unknown lines are ignored, a
 * forged one refused.
 */
async function storeCosignatures(pool: Pool, signer: { verifierKey: string }, witnesses: readonly CosignatureVerifier[], note: string): Promise<z.output<typeof wire.cosignaturesStored>> {
  const open = (key: string) => openCheckpoint(note, parseVerifierKey(key), witnesses as readonly NoteVerifier[]);
  let opened: ReturnType<typeof openCheckpoint> | undefined;
  try {
    opened = open(signer.verifierKey);
  } catch (error) {
    // Not this server's key: the log's other keys are read only then, and this key's refusal
    // is the one said when none opens the note.
    for (const { verifier_key: key } of await listLogKeys(pool)) {
      if (key === signer.verifierKey) continue;
      try {
        opened = open(key);
        break;
      } catch {
        // the next key
      }
    }
    if (opened === undefined) throw new DomainError('invalid_input', `couldn't accept the cosignatures: ${(error as Error).message}`, { cause: error });
  }
  const size = opened.checkpoint.size;
  const ours = (await pool.query<{ key_id: string; signed_note: string }>('SELECT key_id, signed_note FROM tlog_checkpoints WHERE size = $1', [size])).rows;
  // The cosignature is over this text: it belongs to the checkpoint rows with this text only.
  const cosigned = ours.filter((row) => parseNote(row.signed_note).text === opened.note.text);
  if (cosigned.length === 0) {
    throw new DomainError('not_found', `this log never signed that checkpoint of size ${size}`);
  }
  const verified = cosignaturesOf(opened.note, witnesses);
  if (verified.length === 0) throw noConfiguredWitness(witnesses, opened.note.unknown);
  for (const [cosignature, checkpoint] of verified.flatMap((one) => cosigned.map((row) => [one, row] as const))) {
    // Stored in its canonical spelling, not as sent: base64 read leniently (padding bits
    // ignored, as Go's note.Open reads it) lets one signature be spelt several ways, a
    // strict decoder refuses every spelling but one, and a log publishes one spelling per value.
    const line = canonicalSignatureLine(opened.note.verified.find((signature) => signature.name === cosignature.name && signature.keyId === cosignature.keyId)!);
    await insertCosignature(pool, {
      checkpoint_size: size,
      checkpoint_key_id: checkpoint.key_id,
      witness: cosignature.name,
      key_id: formatKeyId(cosignature.keyId),
      timestamp_s: cosignature.timestampSeconds,
      signature_line: `${line}\n`,
    });
  }
  // Whose lines were taken, so that a witness can tell its own from another's the note
  // carried already (a served note that another witness cosigned, sent back with one more line).
  return { stored: verified.length, witnesses: verified.map((cosignature) => `${cosignature.name}+${formatKeyId(cosignature.keyId)}`) };
}

/**
 * The refusal of a note without a line of a configured witness, saying what can change it. A
 * witness gains nothing by sending again: the log's operator adds its verifier key. A server
 * with no witnesses configured stores no cosignatures at all, which the witness cannot know;
 * one whose witnesses are others names them, so a witness can see whether its key was mistyped.
 */
function noConfiguredWitness(witnesses: readonly CosignatureVerifier[], unknown: readonly { name: string; keyId: number }[]): DomainError {
  const carried = unknown.length === 0 ? 'no witness signature' : `signatures by ${unknown.map((signature) => `${signature.name}+${formatKeyId(signature.keyId)}`).join(', ')}`;
  const remedy = "its operator adds a witness by putting the witness's verifier key (as `chipledger log cosigner-keygen` printed it) in CHIPLEDGER_LOG_WITNESSES";
  if (witnesses.length === 0) {
    return new DomainError('forbidden', `this log has no witnesses configured (CHIPLEDGER_LOG_WITNESSES is empty), so it stores no cosignatures; the note carries ${carried}; ${remedy}`, { rule: 'configured-witness' });
  }
  const known = [...new Set(witnesses.map((witness) => `${witness.name}+${formatKeyId(witness.keyId)}`))].join(', ');
  return new DomainError('forbidden', `the note carries no cosignature of a witness this log knows: it carries ${carried}, and the witnesses configured are ${known}; ${remedy}`, { rule: 'configured-witness' });
}
