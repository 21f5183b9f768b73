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
import { buildApiWorld, inject } from '../../test/support/server.ts';

describe('withoutSecrets', () => {
  it('cuts every token secret in a URL to its id, raw or percent-encoded, and leaves the rest as sent', () => {
    expect(withoutSecrets('/v1/tokens/clt_TOK-14_kBoBq3Zt0d9wQm1x8yLs2vRa/revoke')).toBe('/v1/tokens/clt_TOK-14_[redacted]/revoke');
    expect(withoutSecrets('/v1/tokens/clt%5FTOK-14%5FkBoBq3Zt0d9wQm1x/revoke?x=clt_TOK-2_abc')).toBe('/v1/tokens/clt_TOK-14_[redacted]/revoke?x=clt_TOK-2_[redacted]');
    expect(withoutSecrets('/v1/tokens/TOK-14/revoke')).toBe('/v1/tokens/TOK-14/revoke');
  });

  it('cuts a secret whatever character of its prefix or id is percent-encoded, in either case or encoded twice, and names the id decoded', () => {
    const random = 'rpiTFPc05NssAbCdEfGh_-0123456789abcdefghijk';
    for (const written of [
      `clt_%54OK-9_${random}`, // the T of the id
      `%63lt_TOK-9_${random}`, // the c of clt_
      `c%6Ct_TOK-9_${random}`, // the l, its hex in capitals
      `cl%74%5fTOK%2D9%5F${random}`, // t, both underscores and the id's dash
      `%43LT_%74ok-9_${random}`, // capitals
      `%2563lt_%2554OK-9%255F${random}`, // encoded twice
    ]) {
      const url = `/v1/tokens/${written}/revoke?x=${written}`;
      const cut = withoutSecrets(url);
      expect(cut, url).not.toContain(random.slice(0, 12));
      expect(cut, url).toMatch(/^\/v1\/tokens\/clt_(TOK|tok)-9_\[redacted\]\/revoke\?x=clt_(TOK|tok)-9_\[redacted\]$/);
    }
    // An escape of what no id holds is left as sent; a `clt_` without an id and a `_` is no secret.
    expect(withoutSecrets(`/x/clt_%2F1_${random}`)).toBe('/x/clt_%2F1_[redacted]');
    expect(withoutSecrets('/v1/licences/clt_only?q=%63lt')).toBe('/v1/licences/clt_only?q=%63lt');
  });

  it('takes no longer on a long run of escapes than on any other URL', () => {
    for (const url of [`/x/clt_${'%25'.repeat(5000)}`, `/x/${'%2563'.repeat(3000)}`, `/x/${`clt_${'a'.repeat(127)}`.repeat(100)}`]) {
      const started = performance.now();
      withoutSecrets(url);
      expect(performance.now() - started, url.slice(0, 20)).toBeLessThan(250);
    }
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
      // A letter of the prefix or the id percent-encoded is the same secret, and is cut too.
      const encoded = `%63lt_%${id.charCodeAt(0).toString(16)}${id.slice(1)}_${hidden}`;
      const encodedAnswer = await inject(app, { method: 'POST', url: `/v1/tokens/${encoded}/revoke`, token: api.tokens.authority_admin, body: {} });
      expect(encodedAnswer.statusCode).toBeGreaterThanOrEqual(400);
      expect(encodedAnswer.json()).toMatchObject({ instance: `/v1/tokens/clt_${id}_[redacted]/revoke` });
      expect(encodedAnswer.body).not.toContain(hidden);
      const inQuery = await inject(app, { method: 'GET', url: `/v1/tokens/${id}/revoke?x=${encoded}`, token: api.tokens.authority_admin });
      expect(inQuery.statusCode).toBeGreaterThanOrEqual(400);
      expect(inQuery.body).not.toContain(hidden);
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
