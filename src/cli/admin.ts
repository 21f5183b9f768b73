/**
 * Admin commands: they reach the database directly (embedded or DATABASE_URL) and act through
 * the ledger as the system actor, so everything they change is in the event stream too.
 */
import { limits } from '../core/limits.ts';
import { Ledger, type Violation } from '../ledger/ledger.ts';
import { checkLogOnStart, LogCheckError } from '../ledger/log-check.ts';
import { TransparencyLog } from '../ledger/transparency-log.ts';
import { systemActor } from '../ledger/permissions.ts';
import { role as roleSchema, tokenSecretPrefix } from '../ledger/schemas.ts';
import { migrate } from '../store/migrate.ts';
import { createDemoTokens, loadDemo, type DemoToken } from '../demo/load.ts';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './database.ts';
import { printDemoTokens } from './demo-tokens.ts';
import { Failure, type Output } from './output.ts';
import { renderTable } from './table.ts';

/** Admin commands run a handful of statements at a time. */
const adminConnectionsMax = 4;

async function withDatabase<T>(config: Config, name: string, run: (database: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(config, { exclusive: false, connectionsMax: adminConnectionsMax, applicationName: `chipledger-${name}` });
  try {
    return await run(database);
  } finally {
    await database.close();
  }
}

async function withLedger<T>(config: Config, name: string, run: (ledger: Ledger) => Promise<T>): Promise<T> {
  return withDatabase(config, name, async (database) => {
    const ledger = await Ledger.open({ pool: database.pool });
    try {
      return await run(ledger);
    } finally {
      await ledger.close();
    }
  });
}

export async function migrateCommand(config: Config, output: Output): Promise<number> {
  const applied = await withDatabase(config, 'migrate', (database) => migrate(database.pool));
  output.out(applied.length === 0 ? 'The database is up to date; no migration to apply.' : `Applied ${applied.length} migration(s): ${applied.join(', ')}`);
  return 0;
}

export async function demoCommand(config: Config, output: Output): Promise<number> {
  return withLedger(config, 'demo', async (ledger) => {
    const result = await loadDemo(ledger, { log: (line) => output.err(`demo: ${line}`) });
    if (!result.loaded && result.state === 'partial') {
      throw new Failure('the demo data in this database is incomplete (an earlier load was interrupted); load the demo into an empty database instead');
    }
    let tokens: DemoToken[];
    if (result.loaded) {
      const counts = Object.entries(result.shipments).map(([status, count]) => `${count} ${status}`).join(', ');
      output.out(`Loaded the demo: ${result.events.toLocaleString('en-US')} events; shipments ${counts}; ${result.serials.toLocaleString('en-US')} serials.`);
      tokens = result.tokens;
    } else {
      output.out('The demo data is already loaded; nothing was added. New tokens for its organisations:');
      tokens = await createDemoTokens(ledger, 'all');
    }
    printDemoTokens('Tokens (shown once; keep them):', tokens, output);
    return 0;
  });
}

export interface TokenCreateOptions {
  org: string;
  role: string;
  label: string;
}

export async function tokenCreateCommand(config: Config, options: TokenCreateOptions, output: Output): Promise<number> {
  const role = roleSchema.safeParse(options.role);
  if (!role.success) throw new Failure(`--role must be one of ${roleSchema.options.join(', ')}; got ${JSON.stringify(options.role)}`, 2);
  return withLedger(config, 'token', async (ledger) => {
    const answer = await ledger.submit('token.create', { organisationId: options.org, role: role.data, label: options.label }, systemActor);
    if (!answer.ok) throw new Failure(`couldn't create the token (${answer.error.code}${answer.error.rule ? `, ${answer.error.rule}` : ''}): ${answer.error.message}`);
    output.out(`Token ${String(answer.body.tokenId)} for ${options.org} as ${role.data} ("${options.label}"); the secret is shown once:`);
    output.out(String(answer.body.secret));
    return 0;
  });
}

/**
 * Revokes a token as the operator, with direct database access: the way to revoke what no
 * authority admin may (another authority's tokens, and those of organisations in a country
 * without an authority here, such as an auditor's). A token already revoked is refused
 * (exit 1), with when it was.
 */
export async function tokenRevokeCommand(config: Config, tokenId: string, output: Output): Promise<number> {
  return withLedger(config, 'token', async (ledger) => {
    const answer = await ledger.submit('token.revoke', { tokenId }, systemActor);
    // A secret given in place of the id is not echoed: the terminal, its scrollback and a CI log keep it.
    const shown = tokenId.startsWith(tokenSecretPrefix) ? '(given as its secret, not its id)' : tokenId;
    if (!answer.ok) throw new Failure(`couldn't revoke token ${shown} (${answer.error.code}${answer.error.rule ? `, ${answer.error.rule}` : ''}): ${answer.error.message}`);
    output.out(`Token ${String(answer.body.tokenId)} revoked at ${String(answer.body.revokedAt)}; its commands are refused now on every server, and a server process that checked it in the last ${limits.tokenCacheTtlMs / 1000} s may still answer its reads until then.`);
    return 0;
  });
}

/**
 * The full re-check, as one list: every invariant the database can re-derive
 * (ledger_violations()), and the transparency log's start-up check (invariant 5: every event
 * a leaf, every stored hash and checkpoint consistent). A log that fails its check is a
 * violation to list beside the others, not a reason to stop before listing them. It writes
 * nothing but migrations a newer chipledger brings, and takes no writes itself.
 */
export async function checkCommand(config: Config, output: Output): Promise<number> {
  const violations = await withDatabase(config, 'check', async (database) => {
    await migrate(database.pool);
    const found = (await database.pool.query<Violation>('SELECT * FROM ledger_violations()')).rows;
    try {
      await checkLogOnStart(database.pool, new TransparencyLog(database.pool));
    } catch (error) {
      if (!(error instanceof LogCheckError)) throw error;
      found.push({ invariant: 'invariant-5', subject: `log: ${error.check}`, detail: error.message });
    }
    return found;
  });
  if (violations.length === 0) {
    output.out('Every invariant holds: no violations.');
    return 0;
  }
  output.out(`${violations.length} invariant violation(s):`);
  output.out(renderTable(violations.map((violation) => ({ ...violation })), ['invariant', 'subject', 'detail']));
  return 1;
}
