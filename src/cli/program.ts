/**
 * The `chipledger` command (entry point: main.ts): the wiring of commands to their modules, and the one place that
 * turns failures into messages and exit codes (0 ok, 1 refused or failed, 2 usage or
 * configuration, 130 or 143 for a Ctrl-C or SIGTERM while a change was awaited). Configuration is read and checked, with the command's flags, before any command runs.
 *
 * Operating errors (a database that cannot be reached or stops answering, a schema from a newer
 * chipledger, a transparency log that fails its start-up check) are said in one paragraph
 * without a stack; anything else is a bug and is printed with its stack. No message ever holds
 * a password.
 */
import { Command, CommanderError, Option } from 'commander';
import { limits } from '../core/limits.ts';
import {
  checkCommand, demoCommand, migrateCommand, organisationRegisterCommand, tokenCreateCommand, tokenRevokeCommand, type OrganisationRegisterOptions,
} from './admin.ts';
import { apiCommand, type ApiCommandOptions } from './api-command.ts';
import {
  bookCommand, clientFor, columns, deployCommand, listCommand, manifestImportCommand, showCommand, transitionCommand, utilisationCommand,
  type BookOptions, type ChangeOptions, type ListOptions,
} from './client-commands.ts';
import { describeSettings, formatProblems, readConfig, type Config, type ConfigFlags } from './config.ts';
import { DataDirInUse } from './database.ts';
import { DemoLoadError } from '../demo/load.ts';
import { LogCheckError } from '../ledger/log/check.ts';
import { LogKeyError } from '../ledger/log/keys.ts';
import { MigrationRefused } from '../store/migrate.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { isStatementTimeout, isTransientDatabaseError, sqlState, transientDatabaseErrorWords } from '../store/sqlstate.ts';
import { ApiError, InterruptedError, NetworkError, UnexpectedAnswerError, formatApiError, formatUnknownOutcome, unknownOutcomeOf } from './http.ts';
import { repeated } from './client-values.ts';
import { Failure, processOutput, type Output } from './output.ts';
import { refuseRepeatedOptions } from './single-value-options.ts';
import { serve } from './serve.ts';
import { registerLogCommands } from './log/commands.ts';
import { registerUnitCommands } from './unit-commands.ts';
import { registerLicenceCommands } from './licence-commands.ts';

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, output: Output = processOutput): Promise<number> {
  let exitCode = 0;
  /** The configuration last checked: failures say which database they were about. */
  let checked: Config | undefined;
  const config = (flags: ConfigFlags = {}): Config => {
    const result = readConfig(env, flags);
    if (!result.ok) throw new Failure(formatProblems(result.problems), 2);
    checked = result.config;
    return result.config;
  };
  const run: Runner = (action) => async (...args) => {
    exitCode = await action(...args);
  };
  const program = buildProgram(config, run, output);
  // Every command starts from a valid configuration, whatever it needs of it; help does not.
  // The command's own flags (serve's --port and --host, the only ones that are settings) win
  // over the environment here too, so a flag can stand in for a bad variable.
  program.hook('preAction', (_program, command) => void config(flagsOf(command.opts())));
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return exitCode;
  } catch (error) {
    return reportFailure(error, output, checked);
  }
}

// Commander passes each action its arguments and options untyped; each action states their types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Action = (...args: any[]) => Promise<number>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Runner = (action: Action) => (...args: any[]) => Promise<void>;

function buildProgram(config: (flags?: ConfigFlags) => Config, run: Runner, output: Output): Command {
  const program = new Command('chipledger')
    .description('System of record for export-controlled AI accelerators: licences, allocations, shipments, units, deployments.')
    .exitOverride()
    .configureOutput({ writeOut: (text) => output.out(text.trimEnd()), writeErr: (text) => output.err(text.trimEnd()) })
    .addHelpText('after', `\nConfiguration (environment):\n${describeSettings()}`)
    .showHelpAfterError();

  program.command('serve').description('run the HTTP API (embedded PostgreSQL unless DATABASE_URL is set)')
    .option('--demo', 'load the demo data on a fresh database and print a token for each demo organisation (on a later start: a new admin token, and how to make the others)')
    .option('--port <port>', 'TCP port (overrides CHIPLEDGER_PORT)')
    .option('--host <host>', 'address to listen on (overrides CHIPLEDGER_HOST)')
    .action(run(async (options: { demo?: boolean; port?: string; host?: string }) => serve(config(flagsOf(options)), { demo: options.demo === true }, output)));
  program.command('demo').description("load the demo scenario into the configured database and print a token for each demo organisation")
    .action(run(async () => demoCommand(config(), output)));
  program.command('migrate').description('apply database migrations (serve also does this at start)')
    .action(run(async () => migrateCommand(config(), output)));
  const organisation = program.command('organisation').description('manage organisations (admin: direct database access)');
  organisation.command('register').description("register an organisation as the operator (the first one of a deployment: its authority); prints the new organisation's id")
    .requiredOption('--name <name>', 'its name in the original script, e.g. 中华人民共和国商务部')
    .option('--name-romanised <name>', 'its name romanised, e.g. "Ministry of Commerce of the PRC"')
    .requiredOption('--country <code>', 'ISO 3166-1 alpha-2 code of its country, e.g. CN')
    .requiredOption('--roles <roles>', 'what it is, comma-separated: authority, exporter, recipient, auditor')
    .option('--uscc <code>', 'its Unified Social Credit Code (required in CN)')
    .option('--identifier <kind=value>', 'another identifier, e.g. lei=5493001KJTIIGC8Y1R12 (repeatable)', repeated)
    .option('--address <text>', 'its address')
    .option('--json', "print the ledger's answer as JSON")
    .action(run(async (options: OrganisationRegisterOptions) => organisationRegisterCommand(config(), options, output)));
  const token = program.command('token').description('manage API tokens (admin: direct database access)');
  token.command('create').description('create a token bound to an organisation and a role; prints the secret once')
    .requiredOption('--org <id>', 'organisation id, e.g. ORG-3')
    .addOption(new Option('--role <role>', 'role of the token').choices(['authority_admin', 'authority_officer', 'exporter', 'recipient', 'auditor']).makeOptionMandatory())
    .requiredOption('--label <label>', 'what the token is for, e.g. "compliance desk laptop"')
    .action(run(async (options: { org: string; role: string; label: string }) => tokenCreateCommand(config(), options, output)));
  token.command('revoke').description('revoke a token, any organisation\'s (the operator\'s way; an authority admin revokes only in its jurisdiction, through the API)')
    .argument('<tokenId>', 'the token\'s id, e.g. TOK-12 (not its secret)')
    .action(run(async (tokenId: string) => tokenRevokeCommand(config(), tokenId, output)));
  program.command('check').description('re-check invariants 1 to 5, the event readers, the serial lists and the log from the database; exit 1 if any is violated')
    .option('--replay', "also replay every command the log records through this release's rules, in a database of its own on the same server, and compare the state they make with the database's, row by row")
    .action(run(async (options: { replay?: boolean }) => checkCommand(config(), output, options)));

  registerLogCommands(program, { output });
  addClientCommands(program, config, run, output);
  // Last, once every option is declared: an option that takes one value, given twice, is a
  // usage error before any command runs (single-value-options.ts).
  refuseRepeatedOptions(program);
  return program;
}

/**
 * Every state-changing client command takes the key to send, so a change whose outcome was
 * unknown (the CLI gave up on a 503, or the answer was lost) can be sent again safely.
 */
const idempotencyKeyOption = [
  '--idempotency-key <key>',
  'send this Idempotency-Key (default: a fresh one); rerun a change whose outcome was unknown with the key it printed, and it is not made twice',
] as const;

function addClientCommands(program: Command, config: (flags?: ConfigFlags) => Config, run: Runner, output: Output): void {
  const client = () => clientFor(config(), output);
  const listOptions = (command: Command, statuses?: readonly string[]) => {
    if (statuses) command.addOption(new Option('--status <status>', 'only this status').choices(statuses));
    return command.option('--limit <n>', 'rows per page').option('--cursor <cursor>', 'continue after a previous page').option('--json', 'print the API answer as JSON');
  };
  const licences = program.command('licences').description('licences (client: CHIPLEDGER_URL, CHIPLEDGER_TOKEN)');
  listOptions(licences.command('list').description('licences you hold or are named on'), ['draft', 'issued', 'suspended', 'revoked', 'surrendered', 'expired', 'exhausted'])
    .action(run(async (options: ListOptions) => listCommand(client(), 'licences', columns.licences, options, output)));
  licences.command('show <id>').description('one licence with its parties and allocations').option('--json', 'print JSON')
    .action(run(async (id: string, options: { json?: boolean }) => showCommand(client(), 'licences', id, options, output)));

  const allocations = program.command('allocations').description('allocations (client)');
  listOptions(allocations.command('list').description('allocations you receive or that are on your licences').option('--licence <id>', 'only those on this licence, e.g. L-7'))
    .action(run(async (options: ListOptions) => listCommand(client(), 'allocations', columns.allocations, options, output)));

  const shipments = program.command('shipments').description('shipments (client)');
  listOptions(shipments.command('list').description('shipments you export or receive'), ['booked', 'shipped', 'cleared', 'delivered', 'cancelled', 'expired', 'returned'])
    .action(run(async (options: ListOptions) => listCommand(client(), 'shipments', columns.shipments, options, output)));
  shipments.command('show <id>').description('one shipment').option('--json', 'print JSON')
    .action(run(async (id: string, options: { json?: boolean }) => showCommand(client(), 'shipments', id, options, output)));
  shipments.command('book').description('book a shipment: reserves units on the export and the import allocation together')
    .requiredOption('--export-allocation <id>', 'allocation on the export licence')
    .requiredOption('--import-allocation <id>', 'allocation on the import licence')
    .requiredOption('--product <id>', 'product id, e.g. PRD-9')
    .requiredOption('--units <n>', 'units to reserve')
    .option('--deadline <time>', 'ship by then or the booking expires: ISO time, or a span such as 30d (365d books 365 days less 5 min, for clock drift)', '30d')
    .option('--reference <text>', "exporter's own reference")
    .option(...idempotencyKeyOption)
    .action(run(async (options: BookOptions) => bookCommand(client(), options, output)));
  for (const step of ['ship', 'clear', 'deliver', 'cancel'] as const) {
    shipments.command(`${step} <id>`).description(`${step} a shipment`).option('--reason <text>', 'recorded with the event')
      .option(...idempotencyKeyOption)
      .action(run(async (id: string, options: { reason?: string } & ChangeOptions) => transitionCommand(client(), step, id, options, output)));
  }
  shipments.command('return <id>').description('record a shipped shipment turned back before import clearance (entry refused): its units return to the exporter; what it shipped stays counted on both licences')
    .requiredOption('--reason <text>', 'why it was turned back, and by whom: recorded with the event')
    .option(...idempotencyKeyOption)
    .action(run(async (id: string, options: { reason: string } & ChangeOptions) => transitionCommand(client(), 'return', id, options, output)));

  const manifest = program.command('manifest').description('serial manifests (client)');
  manifest.command('import <shipment> <file>').description('attach serials from a CSV (header: serial[,gpu_uuid]), a file or - for stdin; every line is checked first, and nothing is imported if any is bad')
    .option(...idempotencyKeyOption)
    .action(run(async (shipment: string, file: string, options: ChangeOptions) => manifestImportCommand(client(), shipment, file, output, options)));
  program.command('deploy <site> <file>').description('report the units in a CSV (header: serial), a file or - for stdin, as deployed at a site (client)')
    .option(...idempotencyKeyOption)
    .action(run(async (site: string, file: string, options: ChangeOptions) => deployCommand(client(), site, file, output, options)));
  registerUnitCommands(program, { client, run, output, idempotencyKeyOption });
  program.command('report').description('reports (client)').command('utilisation').description('units per licence and allocation: allocated, reserved, shipped, available')
    .option('--json', 'print JSON')
    .action(run(async (options: { json?: boolean }) => utilisationCommand(client(), options, output)));
  registerLicenceCommands(program, { client, run, output, idempotencyKeyOption });
  program.command('api <method> <path>').description('send any request of the API, for what has no command of its own (products, organisations, tokens, a shipment\'s serial list); prints the answer as JSON (client)')
    .addHelpText('after', '\nExamples:\n  chipledger api GET /v1/products\n  chipledger api POST /v1/products --body product.json\n  chipledger api GET /v1/organisations --all')
    .option('--body <file>', 'the JSON body of a POST, from a file, or - for stdin (default: {})')
    .option(...idempotencyKeyOption)
    .option('--all', `GET: follow nextCursor through every page of a list (at most ${limits.reportPagesMax} pages) and print their items together`)
    .option('--json', 'print the answer on one line instead of indented')
    .action(run(async (method: string, path: string, options: ApiCommandOptions) => apiCommand(client(), method, path, options, output)));
}

function flagsOf(options: { port?: string; host?: string }): ConfigFlags {
  return { ...(options.port === undefined ? {} : { port: options.port }), ...(options.host === undefined ? {} : { host: options.host }) };
}

/** The one place failures become messages and exit codes; `config` names the database in connection failures. */
export function reportFailure(error: unknown, output: Output, config?: Config): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
  if (error instanceof Failure) {
    output.err(error.exitCode === 2 && error.message.startsWith('chipledger:') ? error.message : `chipledger: ${error.message}`);
    return error.exitCode;
  }
  // A change whose outcome is unknown: after what went wrong, the key and how to rerun with it.
  const outcome = unknownOutcomeOf(error);
  if (error instanceof InterruptedError) {
    output.err(`chipledger: ${error.message}`);
    output.err(formatUnknownOutcome(error.unknownOutcome));
    return error.exitCode;
  }
  if (error instanceof ApiError) {
    output.err(formatApiError(error));
    if (outcome !== undefined) output.err(formatUnknownOutcome(outcome));
    return 1;
  }
  const operating = describeOperatingError(error, config);
  if (operating !== undefined) {
    output.err(`chipledger: ${operating}`);
    if (outcome !== undefined) output.err(formatUnknownOutcome(outcome));
    return 1;
  }
  // Not an operating error we know: a bug or an unexpected state. Show everything.
  output.err(`chipledger: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 1;
}

/** The message for an operating error, or undefined for anything else (a bug). */
function describeOperatingError(error: unknown, config: Config | undefined): string | undefined {
  // LogKeyError: a log key that is not the log's (say, one made anew without the previous
  // key configured to announce it); its message says what to configure.
  if (error instanceof NetworkError || error instanceof UnexpectedAnswerError || error instanceof DataDirInUse || error instanceof MigrationRefused || error instanceof DemoLoadError || error instanceof LogKeyError) return error.message;
  if (error instanceof LogCheckError) {
    // The message names the check (error.check) and where it failed.
    return `${error.message}. chipledger refuses to run on a transparency log it cannot prove, so it stopped before taking any command; `
      + 'a database restored from an older backup, or changed by hand, can cause this';
  }
  return describeConnectionError(error, config);
}

/** Why a connection failed, by the code node gave it (a system error). */
const systemConnectionProblems: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'the connection was refused; is PostgreSQL running there, and are the host and port right?',
  ENOTFOUND: 'the host name is not known; check the host',
  EAI_AGAIN: 'the host name could not be looked up (the DNS server did not answer); try again, or check the host',
  ETIMEDOUT: 'no answer in time; check the host, the port and any firewall between',
  EHOSTUNREACH: 'the host cannot be reached from here; check the host and the network',
  ENETUNREACH: 'the network of the host cannot be reached from here; check the host and the network',
};
/** Why PostgreSQL refused a connection, by its SQLSTATE; its own words come first. */
const serverConnectionProblems: Readonly<Record<string, string>> = {
  [sqlState.invalidPassword]: 'check the user and password',
  [sqlState.invalidAuthorizationSpecification]: "check the user and the server's access rules (pg_hba.conf)",
  [sqlState.invalidCatalogName]: 'create the database (createdb) or correct its name',
  [sqlState.cannotConnectNow]: 'try again in a moment',
  [sqlState.tooManyConnections]: 'every connection slot is taken: end an idle client, or raise max_connections',
};
/** What pg-pool and pg say, without a code, when connectionTimeoutMillis runs out. */
const connectTimeoutMessages = new Set(['timeout exceeded when trying to connect', 'Connection terminated due to connection timeout']);
/**
 * What pg says, without a code, when DATABASE_URL asks for SSL (sslmode, ssl=true) and the
 * server answers its SSL request with no.
 */
const sslRefusedMessage = 'The server does not support SSL connections';
/** Query parameters of DATABASE_URL that name files pg reads when it connects. */
const sslFileParameters = ['sslcert', 'sslkey', 'sslrootcert'] as const;

function describeConnectionError(error: unknown, config: Config | undefined): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = connectionErrorCode(error);
  const where = databaseDescription(config);
  const sslFile = config?.database.kind === 'external' ? sslFileOf(config.database.url, error) : undefined;
  if (sslFile !== undefined) return `couldn't connect to ${where}: couldn't read its ${sslFile.parameter} file ${sslFile.path} (${code ?? error.message}); correct the path in DATABASE_URL`;
  if (error.message === sslRefusedMessage) {
    return `couldn't connect to ${where}: the server does not support SSL connections, which DATABASE_URL asks for; turn SSL on in the server, or, on a network you trust, remove sslmode (and ssl) from DATABASE_URL`;
  }
  if (code === 'ENOENT' && (error as NodeJS.ErrnoException).syscall === 'connect') {
    return `couldn't connect to ${where}: there is no PostgreSQL socket at ${String((error as { address?: unknown }).address ?? 'the socket path')} (ENOENT); is PostgreSQL running there?`;
  }
  if (code === undefined) return describeUnansweredStatement(error, code, where);
  if (Object.hasOwn(systemConnectionProblems, code)) {
    const host = (error as { hostname?: unknown }).hostname;
    const problem = code === 'ENOTFOUND' && typeof host === 'string' ? `the host name ${host} is not known; check the host` : systemConnectionProblems[code];
    return `couldn't connect to ${where}: ${problem} (${code})`;
  }
  // PostgreSQL's own words name the user or the database, never the password.
  if (Object.hasOwn(serverConnectionProblems, code)) return `couldn't connect to ${where}: ${error.message} (${code}); ${serverConnectionProblems[code]}`;
  return describeUnansweredStatement(error, code, where);
}

/**
 * A database that stopped answering once connected (cut off, shutting down, a statement over
 * its statement_timeout), a statement an operator cancelled, or another "not now" of the
 * write path's (a lock not had within the database's lock_timeout while a migration or a
 * VACUUM FULL holds a table, a deadlock): operating errors that the command can simply be run
 * again after, said in one line. isDatabaseUnavailable and isTransientDatabaseError are the
 * server's own tests for its 503, so the CLI and the API agree on what "not now" is.
 */
function describeUnansweredStatement(error: Error, code: string | undefined, where: string): string | undefined {
  const said = `${error.message}${code === undefined ? '' : ` (${code})`}, at ${where}`;
  if (isStatementTimeout(error)) {
    return `the database is not answering: ${said}; a statement ran past the database's statement_timeout: raise it for chipledger's database or user, or try again when the database is less busy`;
  }
  // Or a step that said what it was doing around the failure (a migration: migrate.ts migrationFailed).
  if (isDatabaseUnavailable(error) || isDatabaseUnavailable(error.cause)) return `the database is not answering: ${said}; try again once it answers`;
  if (code === sqlState.queryCanceled) return `the database cancelled a statement: ${said}; someone cancelled it (pg_cancel_backend): run the command again`;
  if (code !== undefined && isTransientDatabaseError(code)) return `the database couldn't run a statement now: ${said}; ${transientDatabaseErrorWords(code)}: run the command again`;
  return undefined;
}

function connectionErrorCode(error: Error): string | undefined {
  if (connectTimeoutMessages.has(error.message)) return 'ETIMEDOUT';
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // net.connect to a name with several addresses fails with an AggregateError of each attempt.
  const first = error instanceof AggregateError ? (error.errors[0] as { code?: unknown } | undefined)?.code : undefined;
  return typeof first === 'string' ? first : undefined;
}

function databaseDescription(config: Config | undefined): string {
  if (config === undefined) return 'PostgreSQL';
  if (config.database.kind === 'embedded') return `the embedded PostgreSQL in ${config.database.dataDir}`;
  return `the PostgreSQL of DATABASE_URL (${withoutPassword(config.database.url)})`;
}

/** DATABASE_URL to show: the password gone, from the userinfo and from any *password* parameter. */
export function withoutPassword(databaseUrl: string): string {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return 'not a URL';
  }
  url.password = '';
  for (const name of [...url.searchParams.keys()]) {
    if (/password/i.test(name)) url.searchParams.set(name, '(hidden)');
  }
  return url.toString();
}

/** The ssl file parameter of DATABASE_URL that `error` failed to read, if that is what it is. */
function sslFileOf(databaseUrl: string, error: Error): { parameter: string; path: string } | undefined {
  const path = (error as NodeJS.ErrnoException).path;
  if (path === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return undefined;
  }
  const parameter = sslFileParameters.find((name) => url.searchParams.get(name) === path);
  return parameter === undefined ? undefined : { parameter, path };
}
