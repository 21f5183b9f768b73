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
 * A token secret anywhere in a URL, raw or percent-encoded: `clt_` (maybe with its underscore
 * encoded), the token's id, and its random part. As src/server/auth.ts and src/cli/config.ts
 * spell it, and looser, so that a mistyped secret is cut too.
 */
const secretInUrl = /clt(?:_|%5F)([A-Za-z0-9-]{1,128})(?:_|%5F)[A-Za-z0-9_%-]*/gi;

/** The URL with every token secret in it replaced by `clt_<id>_[redacted]`. */
export function withoutSecrets(url: string): string {
  return url.replace(secretInUrl, (_secret, id: string) => `clt_${id}_[redacted]`);
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
