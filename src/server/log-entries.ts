/**
 * C2SP tlog-tiles entry bundles: every event of one tile, each as a big-endian uint16 length
 * and its canonical bytes, gzipped for a client that asks for it. Bundles carry the events
 * themselves, so only roles that read every event may fetch them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { DomainError } from '../core/errors.ts';
import { tileWidth } from '../tlog/index.ts';
import type { Pool } from '../store/pool.ts';
import { readEntries } from '../store/tlog-tables.ts';
import type { TokenVerifier } from './auth.ts';

export interface EntryOptions {
  pool: Pool;
  verifier: TokenVerifier;
}

export async function sendEntries(request: FastifyRequest, reply: FastifyReply, options: EntryOptions, tileIndex: number, width: number, size: number): Promise<FastifyReply> {
  const actor = await options.verifier.verify(request.headers.authorization);
  const readers = ['authority_admin', 'authority_officer', 'auditor'];
  if (!readers.includes(actor.role)) {
    throw new DomainError('forbidden', 'entry bundles hold every event; only authorities and auditors may read them (others read their own events at /v1/events)', {
      rule: 'role', details: { role: actor.role, allowedRoles: readers },
    });
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
