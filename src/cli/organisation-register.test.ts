/**
 * `chipledger organisation register`: how a production deployment gets its first organisation.
 * On a fresh database nothing else can make one: `token create` needs an organisation, and
 * POST /v1/organisations an authority admin's token. So, as the README's set-up says: a log
 * key, serve, the authority registered from the command line while serve runs (on the
 * embedded PostgreSQL it lends), its admin token, and that token registers the next
 * organisation over HTTP. The first admin command comes while serve is still creating the
 * cluster, as `serve &` and the next line do: it waits for serve, and serve keeps running.
 * The other order too: serve started while an admin command holds the data dir waits for it.
 * Without serve, options the schema refuses are usage errors (exit 2) that change nothing,
 * and the ledger's refusals exit 1 with their rule.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAllServers, startServe, type ServeProcess } from '../../test/support/http-serve.ts';
import { createTestDatabase } from '../../test/database.ts';
import { makeUscc } from '../core/uscc.ts';
import { findFreePort } from '../store/embedded.ts';
import type { Config } from './config.ts';
import { readLock } from './database-lock.ts';
import { openDatabase } from './database.ts';
import type { Output } from './output.ts';
import { main } from './program.ts';
import { until } from '../../test/support/until.ts';

/** initdb and a first start on a loaded 2-core machine. */
const startTimeoutMs = 90_000;

const folder = mkdtempSync(join(tmpdir(), 'chipledger-organisation-register-'));
/** The deployment's data dir: made by the first test's serve, used again by the second. */
const dataDir = join(folder, 'data');
afterAll(async () => {
  await killAllServers();
  rmSync(folder, { recursive: true, force: true });
});

/** Runs `chipledger ARGS` in this process with only the given settings. */
async function chipledger(args: string[], env: Record<string, string>): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const output: Output = { out: (line) => void out.push(line), err: (line) => void err.push(line), errStream: { isTTY: false, write: (text) => err.push(text) > 0 } };
  return { code: await main(args, env, output), out, err };
}

describe('setting up a production deployment', () => {
  it('registers the authority while serve runs, whose admin token then registers another organisation over HTTP', async () => {
    const keyFile = join(folder, 'k1');
    expect((await chipledger(['log', 'keygen', '--origin', 'ops.example/log', '--out', keyFile], {})).code).toBe(0);
    const serving = startServe({
      CHIPLEDGER_HOST: '127.0.0.1', CHIPLEDGER_PORT: String(await findFreePort()), CHIPLEDGER_DATA_DIR: dataDir,
      CHIPLEDGER_LOG_KEY_FILE: keyFile, CHIPLEDGER_SWEEP_INTERVAL_MS: '3600000',
    }, startTimeoutMs);
    serving.catch(() => {}); // awaited below; a failed start must not go unhandled meanwhile
    // The admin commands hold the log's key too: they seal the heads they write (ledger/log/head-seal.ts).
    const admin = { CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_LOG_KEY_FILE: keyFile };
    // While serve creates the cluster (its lock has no URL yet), the admin command waits for it.
    await until('serve took the data dir lock', () => readLock(join(dataDir, 'chipledger.lock')) !== null, { withinMs: startTimeoutMs, everyMs: 20 });
    expect(readLock(join(dataDir, 'chipledger.lock'))).toMatchObject({ url: '', lends: true });
    // Before: nothing to bind a token to.
    const early = await chipledger(['token', 'create', '--org', 'ORG-1', '--role', 'authority_admin', '--label', 'first'], admin);
    expect(early.code, early.err.join('\n')).toBe(1);
    expect(early.err[0]).toMatch(/^chipledger: waiting for the chipledger serve \(pid \d+\) that is starting the embedded PostgreSQL in /);
    expect(early.err.join('\n')).toMatch(/not_found/);
    const server = await serving;
    try {
      // Without it, a command that writes is refused before it writes anything.
      const keyless = await chipledger(['organisation', 'register', '--name', 'Keyless Authority', '--country', 'US', '--roles', 'authority'], { CHIPLEDGER_DATA_DIR: dataDir });
      expect(keyless.code, keyless.err.join('\n')).toBe(1);
      expect(keyless.err.join('\n')).toMatch(/this command writes to the ledger, whose log is signed by ops\.example\/log\+[0-9a-f]{8}\+\S+, and it was not given that key/);

      const registered = await chipledger(['organisation', 'register', '--name', 'Bureau of Industry and Security', '--country', 'US', '--roles', 'authority'], admin);
      expect(registered.code, registered.err.join('\n')).toBe(0);
      expect(registered.out).toEqual([expect.stringMatching(/^ORG-\S+$/)]);
      const authorityId = registered.out[0]!;
      expect(registered.err).toEqual([
        'registered Bureau of Industry and Security (US; authority) as:',
        `next: chipledger token create --org ${authorityId} --role authority_admin --label "…" makes a token for it`,
      ]);

      const token = await chipledger(['token', 'create', '--org', authorityId, '--role', 'authority_admin', '--label', 'first admin'], admin);
      expect(token.code, token.err.join('\n')).toBe(0);
      // The secret alone on stdout, so `T=$(chipledger token create …)` holds the token; the sentence on stderr.
      expect(token.out).toEqual([expect.stringMatching(/^clt_\S+$/)]);
      expect(token.err).toEqual([expect.stringMatching(new RegExp(`^Token TOK-\\S+ for ${authorityId} as authority_admin \\("first admin"\\); the secret is shown once:$`))]);
      const secret = token.out[0]!;

      const answer = await fetch(`${server.url}/v1/organisations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', 'idempotency-key': 'set-up-exporter-1' },
        body: JSON.stringify({ name: 'Example Accelerators Inc.', country: 'US', roles: ['exporter'] }),
      });
      const body = (await answer.json()) as { organisationId?: string };
      expect(answer.status, JSON.stringify(body)).toBe(201);
      expect(body.organisationId).toMatch(/^ORG-/);
      expect(body.organisationId).not.toBe(authorityId);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 180_000);

  it('starts serve while an admin command holds the data dir: serve waits for it, then serves', async () => {
    const config = { database: { kind: 'embedded', dataDir: join(dataDir, 'pg') }, dataDir } as Config;
    // An admin command that owns the embedded PostgreSQL for now (a long `check`, say).
    const admin = await openDatabase(config, { exclusive: false, createsCluster: true, connectionsMax: 1, applicationName: 'chipledger-check', notice: () => {} });
    let server: ServeProcess | undefined;
    try {
      expect(admin.origin).toBe('embedded');
      const serving = startServe({
        CHIPLEDGER_HOST: '127.0.0.1', CHIPLEDGER_PORT: String(await findFreePort()), CHIPLEDGER_DATA_DIR: dataDir,
        CHIPLEDGER_LOG_KEY_FILE: join(folder, 'k1'), CHIPLEDGER_SWEEP_INTERVAL_MS: '3600000',
      }, startTimeoutMs);
      serving.catch(() => {});
      // serve does not give up at once: it is still there, waiting, seconds later.
      const early = await Promise.race([serving.then(() => 'ready', (error: Error) => error.message), new Promise((done) => setTimeout(() => done('waiting'), 5_000))]);
      expect(early).toBe('waiting');
      await admin.close();
      server = await serving;
      expect(server.log()).toMatch(/chipledger: waiting for chipledger-check \(chipledger process \d+\) to finish with the embedded PostgreSQL in /);
      expect((await chipledger(['check'], { CHIPLEDGER_DATA_DIR: dataDir })).code).toBe(0);
    } finally {
      await admin.close().catch(() => {});
      server?.child.kill('SIGTERM');
      await server?.exited;
    }
  }, 180_000);
});

describe('chipledger organisation register without serve', () => {
  it('refuses options the schema refuses as usage errors (exit 2) that change nothing, and the ledger\'s refusals with exit 1 and their rule', async () => {
    const database = await createTestDatabase();
    try {
      // A data dir of its own: the repository's default (./.chipledger) holds the published
      // checkpoint of any `npm start` run there, which this database is not.
      const env = { DATABASE_URL: database.url, CHIPLEDGER_DATA_DIR: join(folder, 'without-serve') };
      const register = (...args: string[]) => chipledger(['organisation', 'register', ...args], env);
      const written = async () => (await database.pool.query<{ events: number; organisations: number }>('SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM organisations)::int AS organisations')).rows[0];
      const usage: Array<[string[], string]> = [
        [['--name', 'X', '--country', 'US', '--roles', 'authority,regulator'], 'chipledger: --roles must be one or more of authority, exporter, recipient, auditor, separated by commas; got "regulator" in "authority,regulator"'],
        [['--name', 'X', '--country', 'us', '--roles', 'authority'], 'chipledger: --country must be an ISO 3166-1 alpha-2 code such as CN'],
        [['--name', ' ', '--country', 'US', '--roles', 'authority'], 'chipledger: --name must not be empty'],
        [['--name', 'X', '--country', 'US', '--roles', 'exporter', '--identifier', 'lei'], 'chipledger: --identifier must be KIND=VALUE, such as lei=5493001KJTIIGC8Y1R12; got "lei"'],
        // Once an own key, zod would drop it and register the organisation without it.
        [['--name', 'X', '--country', 'US', '--roles', 'exporter', '--identifier', '__proto__=X1'], "chipledger: --identifier __proto__: a kind must not be __proto__, the name of an object's prototype"],
        [['--name', 'X', '--country', 'CN', '--roles', 'recipient', '--uscc', 'A', '--identifier', 'uscc=B'], 'chipledger: give the Unified Social Credit Code once: --uscc or --identifier uscc=…, not both'],
        [['--name', 'X', '--country', 'CN', '--roles', 'recipient', '--uscc', 'A'.repeat(200)], 'chipledger: --uscc Too big: expected string to have <=128 characters'],
      ];
      for (const [args, message] of usage) {
        const refused = await register(...args);
        expect({ code: refused.code, err: refused.err }).toEqual({ code: 2, err: [message] });
      }
      const missing = await register('--name', 'X', '--country', 'US');
      expect(missing.code).toBe(2);
      expect(missing.err.join('\n')).toContain("required option '--roles <roles>' not specified");
      expect(await written()).toEqual({ events: 0, organisations: 0 });

      const noUscc = await register('--name', '甲云计算有限公司', '--country', 'CN', '--roles', 'recipient');
      expect(noUscc.code).toBe(1);
      expect(noUscc.err).toEqual(["chipledger: couldn't register the organisation 甲云计算有限公司 (invalid_input, uscc-required): an organisation in CN needs its Unified Social Credit Code in identifiers.uscc (the CLI's --uscc)"]);
      expect(await written()).toEqual({ events: 0, organisations: 0 });

      const uscc = makeUscc('91110000MA0000001');
      const made = await register('--name', '甲云计算有限公司', '--name-romanised', 'Jia Cloud Computing Co., Ltd.', '--country', 'CN', '--roles', 'recipient,exporter',
        '--uscc', uscc, '--identifier', 'lei=5493001KJTIIGC8Y1R12', '--address', 'Beijing', '--json');
      expect(made.code, made.err.join('\n')).toBe(0);
      const { organisationId } = JSON.parse(made.out.join('\n')) as { organisationId: string };
      const row = (await database.pool.query('SELECT name, name_romanised, country, roles, identifiers, address FROM organisations WHERE id = $1', [organisationId])).rows[0];
      expect(row).toEqual({ name: '甲云计算有限公司', name_romanised: 'Jia Cloud Computing Co., Ltd.', country: 'CN', roles: ['recipient', 'exporter'], identifiers: { uscc, lei: '5493001KJTIIGC8Y1R12' }, address: 'Beijing' });
    } finally {
      await database.drop();
    }
  });
});
