/**
 * Token secrets never reach the server's logs: not from the Authorization header, and not
 * from a URL that carries one where an id goes (a secret pasted into a revoke).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/database.ts';
import { buildServer } from './app.ts';
import { serverLoggerOptions, withoutSecrets } from './log-redaction.ts';
import { buildApiWorld, inject } from './testing.ts';

describe('withoutSecrets', () => {
  it('cuts every token secret in a URL to its id, raw or percent-encoded, and leaves the rest as sent', () => {
    expect(withoutSecrets('/v1/tokens/clt_TOK-14_kBoBq3Zt0d9wQm1x8yLs2vRa/revoke')).toBe('/v1/tokens/clt_TOK-14_[redacted]/revoke');
    expect(withoutSecrets('/v1/tokens/clt%5FTOK-14%5FkBoBq3Zt0d9wQm1x/revoke?x=clt_TOK-2_abc')).toBe('/v1/tokens/clt_TOK-14_[redacted]/revoke?x=clt_TOK-2_[redacted]');
    expect(withoutSecrets('/v1/tokens/TOK-14/revoke')).toBe('/v1/tokens/TOK-14/revoke');
  });
});

describe('the server logger', () => {
  it('writes a request\'s URL without a token secret in it, and never the Authorization header', () => {
    const lines: string[] = [];
    const logger = pino(serverLoggerOptions('info'), new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } }));
    const secret = 'clt_TOK-14_kBoBq3Zt0d9wQm1x8yLs2vRa';
    logger.info({ req: { method: 'POST', url: `/v1/tokens/${secret}/revoke`, ip: '127.0.0.1', headers: { authorization: `Bearer ${secret}` } } }, 'incoming request');
    logger.info({ headers: { authorization: `Bearer ${secret}` } }, 'a request\'s headers');
    const log = lines.join('');
    expect(log).toContain('"url":"/v1/tokens/clt_TOK-14_[redacted]/revoke"');
    expect(log).not.toContain('kBoBq3Zt0d9wQm1x');
  });
});

describe('a problem answering a URL that holds a token secret', () => {
  it('names the URL without the secret', async () => {
    const database = await createTestDatabase();
    const api = await buildApiWorld(database.pool);
    const app = await buildServer({ ledger: api.world.ledger, pool: database.pool, logger: false });
    try {
      const secret = api.tokens.exporter;
      const id = /^clt_([A-Za-z0-9-]+)_/.exec(secret)![1]!;
      const response = await inject(app, { method: 'POST', url: `/v1/tokens/${secret}/revoke`, token: api.tokens.authority_admin, body: {} });
      expect(response.statusCode).toBeGreaterThanOrEqual(400);
      expect(response.json()).toMatchObject({ instance: `/v1/tokens/clt_${id}_[redacted]/revoke` });
      const hidden = secret.slice(`clt_${id}_`.length);
      expect(response.body).not.toContain(hidden);
      // Anywhere an id goes, and where no route is: the detail, the details and the instance.
      const elsewhere = [
        await inject(app, { method: 'GET', url: `/v1/licences/${secret}`, token: api.tokens.auditor }),
        await inject(app, { method: 'POST', url: `/v1/licences/${secret}/suspend`, token: api.tokens.authority_admin, body: {}, key: 'secret-in-path' }),
        await inject(app, { method: 'GET', url: `/v1/tokens/${secret}/revoke`, token: api.tokens.authority_admin }),
        await inject(app, { method: 'POST', url: `/v1/tokens/${secret}/revok`, token: api.tokens.authority_admin, body: {} }),
      ];
      for (const answer of elsewhere) {
        expect(answer.statusCode, answer.body).toBeGreaterThanOrEqual(400);
        expect(answer.body).not.toContain(hidden);
      }
      // Nothing keeps it: the refusal of the command was not remembered under its key.
      const kept = await database.pool.query('SELECT 1 FROM idempotency_keys WHERE response::text LIKE $1', [`%${hidden}%`]);
      expect(kept.rowCount).toBe(0);
    } finally {
      await app.close();
      await api.world.ledger.close();
      await database.drop();
    }
  });
});
