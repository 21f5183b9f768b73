/**
 * Admin commands: they reach the database directly (embedded or DATABASE_URL) and act through
 * the ledger as the system actor, so everything they change is in the event stream too.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { limits } from '../core/limits.ts';
import { Ledger } from '../ledger/ledger.ts';
import { checkLogOnStart, LogCheckError } from '../ledger/log/check.ts';
import { TransparencyLog } from '../ledger/log/transparency-log.ts';
import { systemActor } from '../ledger/permissions.ts';
import { organisationRegister, role as roleSchema, tokenCreate, tokenSecretPrefix, type CommandRequest } from '../ledger/schemas.ts';
import { inTransaction, type PoolClient } from '../store/pool.ts';
import { currentLogKey, readHead } from '../store/tlog-tables.ts';
import { HeadNotVouched, HeadSealer } from '../ledger/log/head-seal.ts';
import { countEvents, countLegacyGpuUuidUnits, ledgerViolationsBounded, violationsShownPerInvariantMax, type InvariantTally, type Violation } from '../store/violations.ts';
import { schemaFunctionViolations } from '../store/schema-functions.ts';
import { createDemoTokens, loadDemo, type DemoToken } from '../demo/load.ts';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './database.ts';
import { printDemoTokens, printLogVerifierKey } from './demo-tokens.ts';
import { demoKeyFileName, readKeyFile, readKeyFileChecked } from './log-key.ts';
import { parseSignerKey } from '../tlog/index.ts';
import { chipledgerCommand } from './http.ts';
import { replayCheck } from './check-replay.ts';
import { replayInvariant } from '../ledger/replay/replay.ts';
import { differencesNamedMax } from '../store/state-diff.ts';
import { PublishedCheckpointGuard } from './published-checkpoint.ts';
import { Failure, printable, printableJson, type Output } from './output.ts';
import { renderTable } from './table.ts';
import { unconfirmedChangeMessage } from '../ledger/refusals.ts';

/** Only these admin commands create the embedded database; the others need the server's (see database.ts). */
type AdminCommand = 'migrate' | 'demo' | 'organisation' | 'token' | 'check';
const createsCluster = (name: AdminCommand): boolean => name === 'migrate' || name === 'demo';

async function withDatabase<T>(config: Config, name: AdminCommand, output: Output, run: (database: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(config, {
    exclusive: false, createsCluster: createsCluster(name), connectionsMax: limits.adminConnectionsMax, applicationName: `chipledger-${name}`,
    notice: (line) => output.err(`chipledger: ${line}`),
  });
  try {
    return await run(database);
  } finally {
    await database.close();
  }
}

async function withLedger<T>(config: Config, name: AdminCommand, output: Output, run: (ledger: Ledger) => Promise<T>): Promise<T> {
  return withDatabase(config, name, output, async (database) => {
    // A command that writes hands out ids from the log's size, as serve does: on a database
    // older than what this data dir's server published (published-checkpoint.ts) it would give
    // out published ids again, so it is refused as serve is. Through a running serve's server
    // ('shared') the database is the one that serve checked at its start.
    if (database.origin !== 'shared') await refuseUnpublished(database, config);
    const sealingKey = await adminSealingKey(database, config);
    const ledger = await Ledger.open({ pool: database.pool, ...(sealingKey === undefined ? {} : { logSealingKey: sealingKey }) });
    try {
      return await run(ledger);
    } finally {
      await ledger.close();
    }
  });
}

/**
 * The rollback guard of serve (PublishedCheckpointGuard.check), for an admin command. The
 * recorded checkpoint is verified with the keys the database records, and those this data dir
 * or the configuration holds (an admin command is seldom given the log's key; the demo keeps
 * its own in the data dir), so a replaced database that records no key is still told apart.
 */
async function refuseUnpublished(database: Database, config: Config): Promise<void> {
  const keys: string[] = [];
  if (config.log.signerKey !== undefined) keys.push(config.log.signerKey);
  for (const file of [config.log.keyFile, join(config.dataDir, demoKeyFileName)]) {
    if (file === undefined || !existsSync(file)) continue;
    try {
      keys.push(readKeyFile(file));
    } catch {
      // a key that cannot be read verifies nothing; the database's keys may still do
    }
  }
  await PublishedCheckpointGuard.check(database.pool, config.dataDir, keys, 'refusing to write to this database');
}

/**
 * The log key an admin command seals its heads with (ledger/log/head-seal.ts): the configured
 * key (CHIPLEDGER_LOG_SIGNER_KEY, CHIPLEDGER_LOG_KEY_FILE) or the demo's in the data dir. A
 * server extends and signs only heads a holder of the log's key wrote, so once the log has a
 * key, a command without it is refused before it writes: its events would stop every server.
 * Before the log has a key none is needed, and the key at hand seals: a server started just
 * before (`serve &` and the next line) may adopt it while this command runs, and a command
 * without it would then be refused (transparency-log.ts, vouch).
 */
async function adminSealingKey(database: Database, config: Config): Promise<string | undefined> {
  const current = (await currentLogKey(database.pool))?.verifier_key;
  const atHand = logKeysAtHand(config);
  if (current === undefined) return atHand.keys[0];
  const key = logKeyOf(atHand.keys, current);
  if (key !== undefined) return key;
  const unread = atHand.problems.length === 0 ? '' : ` (${atHand.problems.join('; ')})`;
  throw new Failure(
    `this command writes to the ledger, whose log is signed by ${current}, and it was not given that key${unread}: a server appends to and signs only a log head sealed by the log's key, `
      + 'so events written without it would stop every server; give it the key the server signs with (CHIPLEDGER_LOG_KEY_FILE or CHIPLEDGER_LOG_SIGNER_KEY)',
  );
}

/** The log signing keys an admin command has at hand (the configured one, and the demo's in the data dir), and why a key file was not read. */
function logKeysAtHand(config: Config): { keys: string[]; problems: string[] } {
  const keys: string[] = [];
  const problems: string[] = [];
  if (config.log.signerKey !== undefined) keys.push(config.log.signerKey);
  for (const file of [config.log.keyFile, join(config.dataDir, demoKeyFileName)]) {
    if (file === undefined || !existsSync(file)) continue;
    const read = readKeyFileChecked(file);
    if (read.ok) keys.push(read.signerKey);
    else problems.push(read.problem);
  }
  return { keys, problems };
}

/** Of `keys`, the one whose verifier key is `verifierKey`. */
function logKeyOf(keys: readonly string[], verifierKey: string): string | undefined {
  return keys.find((key) => parseSignerKey(key).verifierKey === verifierKey);
}

export async function migrateCommand(config: Config, output: Output): Promise<number> {
  const applied = await withDatabase(config, 'migrate', output, async (database) => database.applied);
  output.out(applied.length === 0 ? 'The database is up to date; no migration to apply.' : `Applied ${applied.length} migration(s): ${applied.join(', ')}`);
  return 0;
}

export async function demoCommand(config: Config, output: Output): Promise<number> {
  return withLedger(config, 'demo', output, async (ledger) => {
    const result = await loadDemo(ledger, { log: (line) => output.err(`demo: ${line}`) });
    if (!result.loaded && result.state === 'partial') {
      throw new Failure('the demo data in this database is incomplete (an earlier load was interrupted); load the demo into an empty database instead: an empty CHIPLEDGER_DATA_DIR, or DATABASE_URL naming an empty database');
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
    // The key the log is signed with now, as the database records it (serve records it at its start).
    printLogVerifierKey((await currentLogKey(ledger.pool))?.verifier_key, output);
    return 0;
  });
}

export interface OrganisationRegisterOptions {
  name: string;
  nameRomanised?: string;
  country: string;
  /** Comma-separated, as typed: authority,exporter. */
  roles: string;
  uscc?: string;
  /** Each KIND=VALUE, as typed (--identifier is repeatable). */
  identifier?: string[];
  address?: string;
  json?: boolean;
}

/**
 * Registers an organisation as the system actor: the one way to make the first organisation of
 * a deployment (the authority, whose admin token then registers the rest through the API), and
 * the operator's way to add any other. Options that the command's schema refuses are a usage
 * error (exit 2), said before the database is opened; the ledger's refusals (a Chinese
 * organisation without a valid Unified Social Credit Code) exit 1 with their rule.
 */
export async function organisationRegisterCommand(config: Config, options: OrganisationRegisterOptions, output: Output): Promise<number> {
  const input = organisationRequest(options);
  return withLedger(config, 'organisation', output, async (ledger) => {
    const answer = await ledger.submit('organisation.register', input, systemActor);
    if (!answer.ok) throw adminRefusal(`register the organisation ${printable(input.name)}`, answer.error);
    const organisationId = String(answer.body.organisationId);
    if (options.json === true) {
      output.out(printableJson(answer.body));
      return 0;
    }
    // The id alone on stdout, so that ORG=$(chipledger organisation register …) works.
    output.err(`registered ${printable(input.name)} (${input.country}; ${input.roles.join(', ')}) as:`);
    output.out(organisationId);
    const role = input.roles.includes('authority') ? 'authority_admin' : input.roles[0]!;
    output.err(`next: ${chipledgerCommand()} token create --org ${organisationId} --role ${role} --label "…" makes a token for it`);
    return 0;
  });
}

const organisationRoles = organisationRegister.shape.roles.unwrap().options;
type OrganisationRole = (typeof organisationRoles)[number];
const isOrganisationRole = (role: string): role is OrganisationRole => (organisationRoles as readonly string[]).includes(role);

/** The command's input from the options, or a usage error naming the option to correct. */
function organisationRequest(options: OrganisationRegisterOptions): CommandRequest<'organisation.register'> & { roles: OrganisationRole[] } {
  const usage = (message: string) => new Failure(message, 2);
  const roles: OrganisationRole[] = [];
  for (const role of options.roles.split(',').map((typed) => typed.trim())) {
    if (!isOrganisationRole(role)) throw usage(`--roles must be one or more of ${organisationRoles.join(', ')}, separated by commas; got ${JSON.stringify(role)} in ${JSON.stringify(options.roles)}`);
    roles.push(role);
  }
  // A Map, then fromEntries: no kind can set the object's prototype (and __proto__ is refused:
  // the ledger takes no such kind, ledger/schemas.ts commandInputDropped).
  const identifiers = new Map<string, string>();
  for (const pair of options.identifier ?? []) {
    const at = pair.indexOf('=');
    if (at < 1) throw usage(`--identifier must be KIND=VALUE, such as lei=5493001KJTIIGC8Y1R12; got ${JSON.stringify(pair)}`);
    const kind = pair.slice(0, at);
    if (!/^[a-z_]{1,32}$/.test(kind)) throw usage(`--identifier ${JSON.stringify(kind)}: a kind is 1 to 32 lower-case letters and _, such as lei`);
    if (kind === '__proto__') throw usage('--identifier __proto__: a kind must not be __proto__, the name of an object\'s prototype');
    if (identifiers.has(kind)) throw usage(`--identifier ${kind} is given twice`);
    identifiers.set(kind, pair.slice(at + 1));
  }
  if (options.uscc !== undefined) {
    if (identifiers.has('uscc')) throw usage('give the Unified Social Credit Code once: --uscc or --identifier uscc=…, not both');
    identifiers.set('uscc', options.uscc);
  }
  const request = {
    name: options.name,
    ...(options.nameRomanised === undefined ? {} : { nameRomanised: options.nameRomanised }),
    country: options.country,
    roles,
    identifiers: Object.fromEntries(identifiers),
    ...(options.address === undefined ? {} : { address: options.address }),
  };
  const parsed = organisationRegister.safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const [field, kind] = issue.path.map(String);
    const option = field === 'identifiers' ? (kind === 'uscc' && options.uscc !== undefined ? '--uscc' : `--identifier ${kind ?? ''}`) : optionOfField[field ?? ''] ?? field;
    throw usage(`${option} ${issue.message}`);
  }
  return request;
}

/** The ledger's refusal of an admin command's change, with its code and rule (exit 1). */
export function adminRefusal(what: string, error: { code: string; rule?: string | undefined; message: string }): Failure {
  return new Failure(`couldn't ${what} (${error.code}${error.rule ? `, ${error.rule}` : ''}): ${error.message === unconfirmedChangeMessage ? unconfirmedWithoutKey : error.message}`);
}

/**
 * An admin command sends no Idempotency-Key (it reaches the ledger directly), so the ledger's
 * advice for an unconfirmed change does not apply: run again, it may make a second
 * organisation or token (the s25 crash review ran `organisation register` twice: two).
 */
const unconfirmedWithoutKey = 'the database did not confirm the change, so it may have been made; admin commands carry no Idempotency-Key, so running this one again may make it twice: look first (`chipledger check` says how many events the log holds; the newest are the API\'s GET /v1/events)';

/** The option that carries each field of organisation.register. */
const optionOfField: Readonly<Record<string, string>> = { name: '--name', nameRomanised: '--name-romanised', country: '--country', roles: '--roles', address: '--address' };

export interface TokenCreateOptions {
  org: string;
  role: string;
  label: string;
}

/**
 * Creates a token as the system actor. Options that token.create's schema refuses (an empty or
 * malformed --org, an empty --label) are a usage error (exit 2) naming the option, said before
 * the database is opened; the ledger's refusals (no such organisation) exit 1 with their rule.
 */
export async function tokenCreateCommand(config: Config, options: TokenCreateOptions, output: Output): Promise<number> {
  const input = tokenRequest(options);
  return withLedger(config, 'token', output, async (ledger) => {
    const answer = await ledger.submit('token.create', input, systemActor);
    if (!answer.ok) throw adminRefusal('create the token', answer.error);
    // The sentence to stderr, the secret alone to stdout (as organisation register does with its
    // id), so `T=$(chipledger token create …)` holds the token and nothing else.
    output.err(`Token ${String(answer.body.tokenId)} for ${input.organisationId} as ${input.role} ("${printable(input.label)}"); the secret is shown once:`);
    output.out(String(answer.body.secret));
    return 0;
  });
}

/** token.create's input from the options, or a usage error naming the option to correct. */
function tokenRequest(options: TokenCreateOptions): CommandRequest<'token.create'> {
  const role = roleSchema.safeParse(options.role);
  if (!role.success) throw new Failure(`--role must be one of ${roleSchema.options.join(', ')}; got ${JSON.stringify(options.role)}`, 2);
  const request = { organisationId: options.org, role: role.data, label: options.label };
  const parsed = tokenCreate.safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // An empty value fails both its length and its pattern; zod's words for the first ("Too small") say less than this.
    if (issue.code === 'too_small') throw new Failure(`${issue.path[0] === 'organisationId' ? '--org' : '--label'} must not be empty`, 2);
    if (issue.path[0] !== 'organisationId') throw new Failure(`--label ${issue.message}`, 2);
    // A token's secret given as --org is refused without being quoted: the terminal, its scrollback and a CI log keep it.
    if (options.org.startsWith(tokenSecretPrefix)) throw new Failure("--org is a token's secret, not an organisation id: treat it as leaked, and revoke its token", 2);
    // Whatever else is wrong with it (a pattern, a length), the value is shown: captured with
    // npm's banner lines (`ORG=$(npm run chipledger -- …)` without -s), it says so at once.
    throw new Failure(`--org must be an organisation id such as ORG-3 (letters, digits, - and _; at most ${limits.referenceLengthMax} characters); got ${quotedValue(options.org)}`, 2);
  }
  return request;
}

/** The most of a refused value a usage error quotes. */
const quotedValueLengthMax = 40;

/** A value as typed, for a one-line message: as a JSON string (a line break shows as \n), cut after quotedValueLengthMax characters. */
function quotedValue(value: string): string {
  const characters = [...value];
  if (characters.length <= quotedValueLengthMax) return printableJson(value, 'one line');
  return `${printableJson(characters.slice(0, quotedValueLengthMax).join(''), 'one line')}… (${characters.length} characters)`;
}

/**
 * Revokes a token as the operator, with direct database access: the way to revoke what no
 * authority admin may (another authority's tokens, and those of organisations in a country
 * without an authority here, such as an auditor's). A token already revoked is refused
 * (exit 1), with when it was.
 */
export async function tokenRevokeCommand(config: Config, tokenId: string, output: Output): Promise<number> {
  return withLedger(config, 'token', output, async (ledger) => {
    const answer = await ledger.submit('token.revoke', { tokenId }, systemActor);
    // A secret given in place of the id is not echoed: the terminal, its scrollback and a CI log keep it.
    const shown = tokenId.startsWith(tokenSecretPrefix) ? '(given as its secret, not its id)' : tokenId;
    if (!answer.ok) throw adminRefusal(`revoke token ${shown}`, answer.error);
    output.out(`Token ${String(answer.body.tokenId)} revoked at ${String(answer.body.revokedAt)}; its commands are refused now on every server, and a server process that checked it in the last ${limits.tokenCacheTtlMs / 1000} s may still answer its reads until then.`);
    return 0;
  });
}

/**
 * The full re-check, as one list: every invariant the database can re-derive
 * (ledger_violations()), and the transparency log's start-up check (invariant 5: every event
 * a leaf, every stored hash and checkpoint consistent). A log that fails its check is a
 * violation to list beside the others, not a reason to stop before listing them. It writes
 * nothing but migrations a newer chipledger brings, and takes no writes itself; both checks
 * and the count of events read one snapshot, so the count is what was checked. Its answer
 * names the database and the events it covered: "no violations" about some other, empty
 * database (a wrong CHIPLEDGER_DATA_DIR) must not pass for the server's. Of each invariant the
 * re-check finds broken, it shows at most violationsShownPerInvariantMax and counts the rest
 * (store/violations.ts), so a badly damaged database is neither read whole nor printed whole;
 * the count it gives, and its exit status, cover every violation.
 */
export async function checkCommand(config: Config, output: Output, options: { replay?: boolean } = {}): Promise<number> {
  const { violations, notShown, events, legacyGpuUuids, sealNote, replayNote } = await withDatabase(config, 'check', output, async (database) => {
    return inTransaction(database.pool, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (client) => {
      const counted = await countEvents(client);
      // The re-check runs in the database: its functions first, held to this release's. One
      // replaced (or dropped, or added) makes its answer worthless, so it is then not asked;
      // the log's check and the replay below run in this process, and still say what they find.
      const schema = await schemaFunctionViolations(client);
      const recheck = schema.length === 0 ? await ledgerViolationsBounded(client) : { shown: [...schema, {
        invariant: 'schema', subject: 'ledger_violations()', detail: "not run: the database's functions above are not this release's, so what they answered would prove nothing; check --replay re-derives the state in this process",
      }], tallies: [] };
      const found = recheck.shown;
      // Said, not counted: spellings a release before 037 accepted, which the re-check passes (042).
      const legacy = await countLegacyGpuUuidUnits(client);
      try {
        await checkLogOnStart(client, new TransparencyLog(database.pool));
      } catch (error) {
        if (!(error instanceof LogCheckError)) throw error;
        found.push({ invariant: 'invariant-5', subject: `log: ${error.check}`, detail: error.message });
      }
      const sealKey = await headSealCheck(client, config);
      if (sealKey.violation !== undefined) found.push(sealKey.violation);
      const replay = options.replay === true ? await replayCheck(client, database.ownerUrl, (await readHead(client)).size, output) : undefined;
      if (replay !== undefined) found.push(...replay.violations);
      const notShown = recheck.tallies.filter((tally) => tally.violations > tally.shown);
      return { violations: found, notShown, events: counted, legacyGpuUuids: legacy, sealNote: sealKey.note, replayNote: replay?.note };
    });
  });
  const covered = `${events.toLocaleString('en-US')} event${events === 1 ? '' : 's'} in ${checkedDatabase(config)}`;
  const legacyNote = `${legacyGpuUuids.toLocaleString('en-US')} unit${legacyGpuUuids === 1 ? ' keeps a GPU UUID' : 's keep GPU UUIDs'} in the spelling a release before migration 037 accepted (recorded by migration 042, not a violation).`;
  const violationCount = violations.reduce((sum, violation) => sum + (violation.standsFor ?? 1), 0) + notShown.reduce((sum, tally) => sum + tally.violations - tally.shown, 0);
  if (violationCount === 0) {
    output.out(`Every invariant holds: no violations (${covered}).`);
  } else {
    printViolations(output, violations, notShown, `${violationCount.toLocaleString('en-US')} invariant violation(s) (${covered})`);
  }
  if (legacyGpuUuids > 0) output.out(legacyNote);
  if (sealNote !== undefined) output.out(sealNote);
  if (replayNote !== undefined) output.out(replayNote);
  return violationCount === 0 ? 0 : 1;
}

/**
 * The check's violations as a table under `heading`, and after it, for each invariant with more
 * than the table shows, how many more: the table says what is wrong, the counts how much.
 */
function printViolations(output: Output, shown: readonly Violation[], notShown: readonly InvariantTally[], heading: string): void {
  // The replay bounds its rows by table (differencesNamedMax each, then an "and N more" row),
  // not by invariant: the heading says so where replay rows are in the table.
  const replayBound = shown.some((violation) => violation.invariant === replayInvariant) ? ` (${replayInvariant}: at most ${differencesNamedMax} of each table, the rest counted in its table's last row)` : '';
  output.out(notShown.length === 0 ? `${heading}:` : `${heading}, at most ${violationsShownPerInvariantMax} of each invariant shown${replayBound}:`);
  output.out(renderTable(shown.map((violation) => ({ ...violation })), ['invariant', 'subject', 'detail']));
  for (const { invariant, violations, shown: shownCount } of notShown) {
    const more = violations - shownCount;
    output.out(`… and ${more.toLocaleString('en-US')} more violation${more === 1 ? '' : 's'} of ${printable(invariant)} (${violations.toLocaleString('en-US')} in all).`);
  }
}

/**
 * Whether the log's head is one a holder of the log's key vouches for (ledger/log/head-seal.ts),
 * checked with the key at hand (the configured one, or the demo's) when it is the log's current
 * key: a violation if not. Without that key the seal cannot be checked, and the note says so.
 */
async function headSealCheck(client: PoolClient, config: Config): Promise<{ violation?: Violation; note?: string }> {
  const current = (await currentLogKey(client))?.verifier_key;
  if (current === undefined) return {};
  const key = logKeyOf(logKeysAtHand(config).keys, current);
  if (key === undefined) return { note: `The log head's seal was not checked: this command was not given the log's key (${current}); give it as the server is given it (CHIPLEDGER_LOG_KEY_FILE).` };
  try {
    await new HeadSealer(key).assertVouched(client, await readHead(client));
    return {};
  } catch (error) {
    if (!(error instanceof HeadNotVouched)) throw error;
    return { violation: { invariant: 'invariant-5', subject: 'log: head-seal', detail: error.message } };
  }
}

/** The database a check read, for its answer: the data dir, or DATABASE_URL's host, port and database (never its password). */
export function checkedDatabase(config: Config): string {
  if (config.database.kind === 'embedded') return `the embedded database of ${config.dataDir}`;
  let url: URL;
  try {
    url = new URL(config.database.url);
  } catch {
    return 'the database of DATABASE_URL';
  }
  // As pg reads it: a host and port in the query string stand in for missing ones (a socket folder, say).
  const host = url.hostname || url.searchParams.get('host') || 'localhost';
  const port = url.port || url.searchParams.get('port') || '5432';
  const database = url.pathname.replace(/^\//, '');
  let name: string;
  try {
    name = decodeURIComponent(database);
  } catch {
    name = database;
  }
  return `database ${printable(name || '(the user\'s default)')} on ${printable(host)}:${printable(port)} (DATABASE_URL)`;
}
