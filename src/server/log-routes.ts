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
import { z } from 'zod';
import { DomainError } from '../core/errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { formatTlogProof, parseCosignatureVerifierKey, parseTilePath, parseVerifierKey, tileHeight, tileWidth, type CosignatureVerifier } from '../tlog/index.ts';
import type { Pool } from '../store/pool.ts';
import { currentLogKey, listAnnouncementNotes, listLogKeys, readHead } from '../store/tlog-tables.ts';
import type { TokenVerifier } from './auth.ts';
import { registerPublicReadCors } from './cors.ts';
import { targetPath } from './http-edges.ts';
import { assertEventExists, checkpointServer, cosignedCheckpoint, storeCosignatures } from './log-cosignatures.ts';
import { sendEntries } from './log-entries.ts';
import { contentTypeRefusal } from './problem.ts';
import { noQuery, queryParameterRefusal, readQueryString } from './query-string.ts';
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

const proofBundleQuery = z.strictObject({
  cosignatures: z.string().regex(/^(0|[1-9][0-9]{0,2})$/, 'must be a whole number of witnesses, at most 999').transform(Number).default(0),
});

/**
 * Registers the routes in their own scope, which reads text/plain (cosigned notes) and
 * nothing else: the one body it takes is a note, and a JSON string holding one is not the
 * media type the document names (it is refused like any other, rule content-type). Its reads
 * are open to pages on every origin (cors.ts).
 */
export async function registerLogRoutes(app: FastifyInstance, options: LogRouteOptions): Promise<void> {
  await app.register(async (scope) => {
    registerPublicReadCors(scope);
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: cosignatureBodyBytesMax }, (_request, body, done) => done(null, body));
    logRoutes(scope, options);
  });
}

/** What the log's routes share: the witnesses, the served checkpoint and the tree size check. */
interface LogRouteContext {
  options: LogRouteOptions;
  witnesses: CosignatureVerifier[];
  checkpointWithCosignatures: ReturnType<typeof checkpointServer>;
  checkTreeSize: ReturnType<typeof treeSizeChecker>;
}

function logRoutes(app: FastifyInstance, options: LogRouteOptions): void {
  const { pool } = options;
  const checkTreeSize = treeSizeChecker(pool, options.ledger.log.tiles);
  const witnesses: CosignatureVerifier[] = options.witnessKeys.map((key) => parseCosignatureVerifierKey(key));
  const checkpointWithCosignatures = checkpointServer(pool, witnesses);
  const context: LogRouteContext = { options, witnesses, checkpointWithCosignatures, checkTreeSize };
  keyAndCheckpointRoutes(app, context);
  tileRoute(app, context);
  proofRoutes(app, context);
  cosignatureRoute(app, context);
}

/** The log's key, its every key, and its newest checkpoint. */
function keyAndCheckpointRoutes(app: FastifyInstance, { options: { ledger, pool }, checkpointWithCosignatures }: LogRouteContext): void {
  app.get('/v1/log/key', async (request, reply) => {
    readQueryString(noQuery, request.query);
    return reply.type(textPlain).send(`${await logKeyNow(ledger, pool)}\n`);
  });

  // Every key the log was signed with, oldest first, each new one with the checkpoint that
  // announced it (signed by the key before it): how a verifier follows a rotation.
  app.get('/v1/log/keys', async (request, reply) => {
    readQueryString(noQuery, request.query);
    const keys = await listLogKeys(pool);
    const announcements = await listAnnouncementNotes(pool);
    return reply.send({
      keys: keys.map((key) => ({
        verifierKey: key.verifier_key,
        firstSize: key.first_size,
        announcement: announcements.find((row) => row.key_id === key.key_id && row.size === key.announced_size)?.signed_note ?? null,
      })),
    } satisfies z.output<typeof wire.logKeys>);
  });

  app.get('/v1/log/checkpoint', async (request, reply) => {
    readQueryString(noQuery, request.query);
    const { note } = await checkpointWithCosignatures();
    return reply.type(textPlain).header('cache-control', 'no-cache').send(note);
  });
}

/** C2SP tlog-tiles: hash tiles, and entry bundles (log-entries.ts). */
function tileRoute(app: FastifyInstance, { options }: LogRouteContext): void {
  const { ledger, pool } = options;
  app.get('/v1/log/tile/*', async (request: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) => {
    // The path as sent, not as decoded: '%30%30%30' decodes to '000', and a second URL for one
    // tile would split caches. Only the canonical spelling is served. An absolute-form target
    // (http://host/v1/log/tile/…) is the same tile. A query is refused for the same reason:
    // `?x=1` would be a second URL, cached as immutable beside it.
    const rawPath = targetPath(request.url);
    readQueryString(noQuery, request.query);
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
}

/** RFC 9162 inclusion and consistency proofs, and C2SP tlog-proof bundles. */
function proofRoutes(app: FastifyInstance, { options: { ledger, pool }, witnesses, checkpointWithCosignatures, checkTreeSize }: LogRouteContext): void {
  app.get('/v1/log/proof/inclusion', async (request, reply) => {
    const query = readQueryString(inclusionQuery, request.query);
    await checkTreeSize(query.size, 'size');
    if (query.index >= query.size) throw queryParameterRefusal('index', `index ${query.index} is not in a tree of size ${query.size}`);
    const hashes = await ledger.log.inclusionProof(query.index, query.size, pool);
    return reply.send({ index: query.index, size: query.size, hashes: hashes.map((hash) => hash.toString('base64')) } satisfies z.output<typeof wire.inclusionProof>);
  });

  app.get('/v1/log/proof/consistency', async (request, reply) => {
    const query = readQueryString(consistencyQuery, request.query);
    await checkTreeSize(query.to, 'to');
    if (query.from > query.to) throw queryParameterRefusal('from', `from ${query.from} is after to ${query.to}`);
    const hashes = await ledger.log.consistencyProof(query.from, query.to, pool);
    return reply.send({ from: query.from, to: query.to, hashes: hashes.map((hash) => hash.toString('base64')) } satisfies z.output<typeof wire.consistencyProof>);
  });

  // A C2SP tlog-proof bundle for one event: verifiable offline with the log's key alone.
  // ?cosignatures=N asks for a checkpoint that N witnesses cosigned: checkpoints are signed
  // every second and witnesses cosign later, so the newest one seldom carries their lines,
  // and a verifier that needs a quorum needs an older, cosigned one.
  app.get('/v1/log/events/:seq/proof', async (request: FastifyRequest<{ Params: { seq: string }; Querystring: Record<string, unknown> }>, reply) => {
    const seq = seqInPath(request.params.seq);
    const { cosignatures } = readQueryString(proofBundleQuery, request.query);
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
}

/** A witness's cosignatures of one of the log's checkpoints. */
function cosignatureRoute(app: FastifyInstance, { options: { ledger, pool }, witnesses }: LogRouteContext): void {
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
function treeSizeChecker(pool: Pool, tiles: { generation: number }): (size: number, name: string) => Promise<void> {
  let largest = -1;
  let generation = tiles.generation;
  return async (size, name) => {
    // The log's tiles forgotten (the database went back under the process: tile-reader.ts),
    // the sizes it had seen are no longer known to be there.
    if (generation !== tiles.generation) [largest, generation] = [-1, tiles.generation];
    if (size <= largest) return;
    const readIn = tiles.generation;
    const head = await readHead(pool);
    // Not a size read before a forget that came while this one was read.
    if (readIn === tiles.generation) largest = Math.max(largest, head.size);
    if (size > head.size) throw queryParameterRefusal(name, `${name} ${size} is beyond the log's size ${head.size}`);
  };
}

