/**
 * Admin commands against a data dir that holds no database. Only serve, migrate and demo
 * create the embedded cluster: `check`, `token create`, `token revoke` and `organisation
 * register` run elsewhere than the server (another folder, so another ./.chipledger) used to
 * start a new, empty database there and report on it ("no violations") or write into it. They
 * are refused now, exit 2, naming the folder, and nothing is made there. And `token create`
 * checks its options before it opens any database: a bad one is a usage error naming it.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Output } from './output.ts';
import { main } from './program.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-admin-data-dir-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

async function chipledger(args: string[], env: Record<string, string>): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const output: Output = { out: (line) => void out.push(line), err: (line) => void err.push(line), errStream: { isTTY: false, write: (text) => err.push(text) > 0 } };
  return { code: await main(args, env, output), out, err };
}

const commands: string[][] = [
  ['check'],
  ['token', 'create', '--org', 'ORG-3', '--role', 'exporter', '--label', 'desk'],
  ['token', 'revoke', 'TOK-1'],
  ['organisation', 'register', '--name', 'Ministry of Commerce', '--country', 'CN', '--roles', 'authority', '--uscc', '11100000MB0000001T'],
];

const advice = "set CHIPLEDGER_DATA_DIR to the server's data dir, or DATABASE_URL (only serve, migrate and demo create a database)";

describe('admin commands without a database in the data dir', () => {
  it('refuses them (exit 2) where the data dir does not exist, and makes nothing', async () => {
    const dataDir = join(folder, 'nothing');
    for (const args of commands) {
      const refused = await chipledger(args, { CHIPLEDGER_DATA_DIR: dataDir });
      expect({ args, code: refused.code, out: refused.out, err: refused.err }).toEqual({
        args, code: 2, out: [], err: [`chipledger: no chipledger database in ${dataDir} (nothing there yet); ${advice}`],
      });
      expect(existsSync(dataDir)).toBe(false);
    }
  });

  it('refuses them (exit 2) where the data dir holds no cluster, and leaves it as it was', async () => {
    const dataDir = join(folder, 'empty');
    mkdirSync(dataDir);
    for (const args of commands) {
      const refused = await chipledger(args, { CHIPLEDGER_DATA_DIR: dataDir });
      expect({ args, code: refused.code, err: refused.err }).toEqual({
        args, code: 2, err: [`chipledger: no chipledger database in ${dataDir} (no PostgreSQL cluster in ${join(dataDir, 'pg')}); ${advice}`],
      });
      expect(readdirSync(dataDir)).toEqual([]);
    }
  });
});

describe('chipledger token create', () => {
  it('refuses options its schema refuses as usage errors naming the option, before opening any database', async () => {
    // A data dir with no database: an option checked only after opening one would be refused for that instead.
    const env = { CHIPLEDGER_DATA_DIR: join(folder, 'unused') };
    const create = (org: string, label: string) => chipledger(['token', 'create', '--org', org, '--role', 'exporter', '--label', label], env);
    const banner = '\n> chipledger@0.1.0 chipledger\n> exec node --import tsx src/cli/main.ts\n\nORG-12';
    const usage: Array<[string, string, string]> = [
      ['', 'desk', 'chipledger: --org must not be empty'],
      ['ORG 3', 'desk', 'chipledger: --org must be an organisation id such as ORG-3 (letters, digits, - and _; at most 128 characters); got "ORG 3"'],
      // What `ORG=$(npm run chipledger -- organisation register …)` captures without -s: npm's banner, then the id.
      [banner, 'desk', 'chipledger: --org must be an organisation id such as ORG-3 (letters, digits, - and _; at most 128 characters); got "\\n> chipledger@0.1.0 chipledger\\n> exec no"… (79 characters)'],
      [`ORG-${'3'.repeat(200)}`, 'desk', `chipledger: --org must be an organisation id such as ORG-3 (letters, digits, - and _; at most 128 characters); got "ORG-${'3'.repeat(36)}"… (204 characters)`],
      // A secret is never echoed: the terminal, its scrollback and a CI log keep it.
      ['clt_not-an-id', 'desk', "chipledger: --org is a token's secret, not an organisation id: treat it as leaked, and revoke its token"],
      ['ORG-3', ' ', 'chipledger: --label must not be empty'],
    ];
    for (const [org, label, message] of usage) {
      const refused = await create(org, label);
      expect({ org, label, code: refused.code, err: refused.err }).toEqual({ org, label, code: 2, err: [message] });
    }
    expect(existsSync(env.CHIPLEDGER_DATA_DIR)).toBe(false);
  });
});
