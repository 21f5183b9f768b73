/**
 * What the server's logs never hold: token secrets. A secret is meant for the Authorization
 * header, which is redacted wherever a log line carries it; but a secret pasted where an id
 * goes (`POST /v1/tokens/clt_TOK-14_…/revoke`) arrives in the URL, which the request log
 * (fastify's "incoming request", at info) writes as sent. So the request serializer writes the
 * URL with any token secret cut down to its prefix and id, which is all an operator needs.
 */
import type { LoggerOptions } from 'pino';

/** Header values never written to logs. */
export const redactedPaths = ['req.headers.authorization', 'request.headers.authorization', 'headers.authorization', 'authorization'];

/**
 * Percent-encoded, maybe more than once (%2563 is a `c` encoded twice): `%`, any number of
 * `25`, then the character's code. The code may not itself be `25`, so each escape is read
 * one way only and a run of %2525… costs no backtracking.
 */
const escapeOf = (codes: string): string => `%(?:25)*(?!25)(?:${codes})`;

/** A letter or `_` of `clt_`, as sent or percent-encoded (in either case: the match ignores case). */
const spelled = (character: string): string => `(?:${character}|${escapeOf(character.charCodeAt(0).toString(16))}|${escapeOf(character.toUpperCase().charCodeAt(0).toString(16))})`;

/** A character of a token id, as sent or percent-encoded (any escape, so that no encoded letter or digit is missed). */
const idCharacter = `(?:[A-Za-z0-9-]|${escapeOf('[0-9A-Fa-f]{2}')})`;

/**
 * A token secret anywhere in a URL: `clt_`, the token's id, `_` and its random part, any of
 * their characters maybe percent-encoded, for a secret written `clt_%54OK-9_…` is the same
 * secret to whoever reads the URL decoded. As src/server/auth.ts and src/cli/config.ts spell
 * it, and looser, so that a mistyped secret is cut too.
 */
const secretInUrl = new RegExp(`${spelled('c')}${spelled('l')}${spelled('t')}${spelled('_')}(${idCharacter}{1,128}?)${spelled('_')}[A-Za-z0-9_%-]*`, 'gi');

/** The id as an operator reads it: escapes of id characters decoded (however often encoded), any other escape as sent. */
function readableId(id: string): string {
  return id.replace(new RegExp(escapeOf('[0-9A-Fa-f]{2}'), 'g'), (escape) => {
    const character = String.fromCharCode(Number.parseInt(escape.slice(-2), 16));
    return /^[A-Za-z0-9-]$/.test(character) ? character : escape;
  });
}

/** The URL with every token secret in it replaced by `clt_<id>_[redacted]`. */
export function withoutSecrets(url: string): string {
  return url.replace(secretInUrl, (_secret, id: string) => `clt_${readableId(id)}_[redacted]`);
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/**
 * The pino options every server logger takes: the Authorization header redacted, and requests
 * logged as fastify logs them (lib/logger-pino.js asReqValue; a logger's own serializers take
 * its place), their URL without secrets.
 */
export function serverLoggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: redactedPaths, censor: '[redacted]' },
    serializers: {
      req: (request: LoggedRequest) => ({
        method: request.method,
        url: request.url === undefined ? undefined : withoutSecrets(request.url),
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
  };
}
