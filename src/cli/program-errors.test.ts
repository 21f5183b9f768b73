/**
 * Operating errors, through the command line's entry function as people meet them: each is one
 * paragraph on stderr with exit code 1, names DATABASE_URL (without its password) or the
 * embedded data dir, and carries no stack trace. A bug still shows its stack.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { DemoLoadError } from '../demo/load.ts';
import { LogKeyError } from '../ledger/log/keys.ts';
import { findFreePort } from '../store/embedded.ts';
import { generateSignerKey } from '../tlog/index.ts';
import { main, reportFailure, withoutPassword } from './program.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';
import { withTriggerOff } from '../../test/support/tamper.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-program-'));
const password = 'pw-never-shown-7f3a';
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
  rmSync(folder, { recursive: true, force: true });
});

/** Runs `chipledger ARGS` in this process with only the given settings. */
async function run(args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const { output, err } = recordingOutput();
  const code = await main(args, { CHIPLEDGER_DATA_DIR: join(folder, 'data'), ...env }, output);
  return { code, stderr: err.join('\n') };
}

/** One paragraph, exit 1, no stack, no password. */
function expectOperatingError(result: { code: number; stderr: string }, secret = password): string {
  expect(result.code).toBe(1);
  expect(result.stderr).not.toContain('unexpected error');
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stderr.split('\n')).toHaveLength(1);
  expect(result.stderr).not.toContain(secret);
  return result.stderr;
}

function urlWith(change: (url: URL) => void): string {
  const url = new URL(database.url);
  change(url);
  return url.toString();
}

/**
 * A server that refuses every connection as PostgreSQL does, with FATAL `code`: 57P03 while it
 * starts, 53300 when every connection slot is taken.
 */
async function refusingPostgres(code: string, message: string): Promise<{ port: number; server: Server }> {
  const field = (type: string, value: string) => Buffer.from(`${type}${value}\0`, 'utf8');
  const body = Buffer.concat([field('S', 'FATAL'), field('V', 'FATAL'), field('C', code), field('M', message), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(body.length + 4, 1);
  const server = createServer((socket) => socket.once('data', () => socket.end(Buffer.concat([head, body]))));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  return { port: typeof address === 'object' && address !== null ? address.port : 0, server };
}

/** A server that answers pg's SSLRequest as a PostgreSQL without SSL does: 'N'. */
async function postgresWithoutSsl(): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => socket.once('data', () => socket.end(Buffer.from('N'))));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  return { port: typeof address === 'object' && address !== null ? address.port : 0, server };
}

describe('operating errors of admin commands', () => {
  it('a refused connection names DATABASE_URL without its password', async () => {
    const port = await findFreePort();
    const message = expectOperatingError(await run(['migrate'], { DATABASE_URL: `postgres://ledger:${password}@127.0.0.1:${port}/chipledger` }));
    expect(message).toBe(`chipledger: couldn't connect to the PostgreSQL of DATABASE_URL (postgres://ledger@127.0.0.1:${port}/chipledger): the connection was refused; is PostgreSQL running there, and are the host and port right? (ECONNREFUSED)`);
  });

  it('an unknown host', async () => {
    const message = expectOperatingError(await run(['check'], { DATABASE_URL: `postgres://ledger:${password}@no-such-host.invalid:5432/chipledger` }));
    expect(message).toMatch(/^chipledger: couldn't connect to the PostgreSQL of DATABASE_URL \(postgres:\/\/ledger@no-such-host\.invalid:5432\/chipledger\): the host name .* \((ENOTFOUND|EAI_AGAIN)\)$/);
  });

  it('an ssl file that is not there', async () => {
    const message = expectOperatingError(await run(['migrate'], { DATABASE_URL: `postgres://ledger:${password}@127.0.0.1:5432/chipledger?sslcert=/nonexistent/client.crt&sslpassword=${password}` }));
    expect(message).toMatch(/^chipledger: couldn't connect to the PostgreSQL of DATABASE_URL \(postgres:\/\/ledger@127\.0\.0\.1:5432\/chipledger\?sslcert=.*\): couldn't read its sslcert file \/nonexistent\/client\.crt \(ENOENT\); correct the path in DATABASE_URL$/);
  });

  it('a wrong password (28P01), a missing database (3D000), a server that is starting (57P03)', async () => {
    const wrong = expectOperatingError(await run(['migrate'], { DATABASE_URL: urlWith((url) => (url.password = password)) }));
    expect(wrong).toMatch(/^chipledger: couldn't connect to the PostgreSQL of DATABASE_URL \(postgres:\/\/\w+@[^)]+\): password authentication failed for user "\w+" \(28P01\); check the user and password$/);

    const missing = expectOperatingError(await run(['migrate'], { DATABASE_URL: urlWith((url) => (url.pathname = '/no_such_database')) }), new URL(database.url).password);
    expect(missing).toMatch(/: database "no_such_database" does not exist \(3D000\); create the database \(createdb\) or correct its name$/);

    const { port, server } = await refusingPostgres('57P03', 'the database system is starting up');
    try {
      const starting = expectOperatingError(await run(['migrate'], { DATABASE_URL: `postgres://ledger:${password}@127.0.0.1:${port}/chipledger` }));
      expect(starting).toBe(`chipledger: couldn't connect to the PostgreSQL of DATABASE_URL (postgres://ledger@127.0.0.1:${port}/chipledger): the database system is starting up (57P03); try again in a moment`);
    } finally {
      server.close();
    }
  });

  it('every connection slot taken (53300): what to free or raise', async () => {
    const { port, server } = await refusingPostgres('53300', 'sorry, too many clients already');
    try {
      const full = expectOperatingError(await run(['check'], { DATABASE_URL: `postgres://ledger:${password}@127.0.0.1:${port}/chipledger` }));
      expect(full).toBe(`chipledger: couldn't connect to the PostgreSQL of DATABASE_URL (postgres://ledger@127.0.0.1:${port}/chipledger): sorry, too many clients already (53300); every connection slot is taken: end an idle client, or raise max_connections`);
    } finally {
      server.close();
    }
  });

  it("a statement cut off by the database's statement_timeout (57014)", async () => {
    // migrate reads which migrations were applied, on a table this test holds locked, until
    // statement_timeout ends it (its wait for the migrations' own lock has bounds of its own).
    const holder = await database.pool.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE');
      const url = urlWith((url) => url.searchParams.set('options', '-c statement_timeout=200'));
      const where = withoutPassword(url);
      const message = expectOperatingError(await run(['migrate'], { DATABASE_URL: url }), new URL(database.url).password);
      expect(message).toBe(`chipledger: the database is not answering: canceling statement due to statement timeout (57014), at the PostgreSQL of DATABASE_URL (${where}); a statement ran past the database's statement_timeout: raise it for chipledger's database or user, or try again when the database is less busy`);
    } finally {
      await holder.query('ROLLBACK').finally(() => holder.release());
    }
  });

  it('sslmode=require against a server without SSL, from an admin command and from serve', async () => {
    const { port, server } = await postgresWithoutSsl();
    try {
      const url = `postgres://ledger:${password}@127.0.0.1:${port}/chipledger?sslmode=require`;
      const expected = `chipledger: couldn't connect to the PostgreSQL of DATABASE_URL (postgres://ledger@127.0.0.1:${port}/chipledger?sslmode=require): the server does not support SSL connections, which DATABASE_URL asks for; turn SSL on in the server, or, on a network you trust, remove sslmode (and ssl) from DATABASE_URL`;
      expect(expectOperatingError(await run(['migrate'], { DATABASE_URL: url }))).toBe(expected);
      // serve as a process: it takes the process's signals over, which a test must keep.
      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
      const serve = await new Promise<{ code: number; stderr: string }>((done) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
          cwd: fileURLToPath(new URL('../../', import.meta.url)),
          env: { ...env, DATABASE_URL: url, CHIPLEDGER_HOST: '127.0.0.1', CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('log.program-errors.test').signerKey },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
        child.on('close', (code) => done({ code: code ?? -1, stderr: stderr.trim() }));
      });
      // Before its line: pg's own warning about what sslmode=require means to it (node prints it).
      expect(expectOperatingError({ ...serve, stderr: serve.stderr.slice(serve.stderr.indexOf('chipledger:')) })).toBe(expected);
      expect(serve.stderr).not.toContain(password);
    } finally {
      server.close();
    }
  }, 60_000);

  it('a database migrated by a newer chipledger', async () => {
    await database.pool.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, '999_future.sql', 'x')");
    try {
      const message = expectOperatingError(await run(['migrate'], { DATABASE_URL: database.url }), new URL(database.url).password);
      expect(message).toMatch(/^chipledger: the database was migrated by a newer chipledger: it has migration 999 \(999_future\.sql\), which this build does not know .*; run the newer chipledger against this database$/);
    } finally {
      await database.pool.query('DELETE FROM schema_migrations WHERE version = 999');
    }
  });

  it('a transparency log that fails its start-up check', async () => {
    // An event the log's head does not count: the "events" check.
    await database.pool.query(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
      VALUES (0, now(), 'organisation.register', 'system', 'ORG-0', '{ORG-0}', '\\x7b7d'::bytea)`);
    try {
      const message = expectOperatingError(await run(['token', 'create', '--org', 'ORG-0', '--role', 'auditor', '--label', 'audit desk'], { DATABASE_URL: database.url }), new URL(database.url).password);
      expect(message).toMatch(/^chipledger: transparency log check "events" failed: .*\. chipledger refuses to run on a transparency log it cannot prove, so it stopped before taking any command; /);
    } finally {
      await withTriggerOff(database.pool, 'events', () => database.pool.query('DELETE FROM events WHERE seq = 0'));
    }
  });

  it('another admin command running on the embedded PostgreSQL (a serve still starting is waited for: database-lock.test.ts)', async () => {
    const dataDir = join(folder, 'starting');
    mkdirSync(dataDir);
    // A live admin command that holds the lock, starting PostgreSQL (no URL yet): it lends to nobody.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dataDir, 'chipledger.lock'), JSON.stringify({ pid: other.pid, startTime: null, url: '', lends: false, command: 'chipledger-check' }));
      const message = expectOperatingError(await run(['migrate'], { CHIPLEDGER_DATA_DIR: dataDir }));
      expect(message).toBe(`chipledger: the embedded PostgreSQL in ${dataDir} is used by chipledger-check (chipledger process ${other.pid}), which stops it when it finishes; run this command again once it has`);
    } finally {
      other.kill();
    }
  });
});

describe('reportFailure', () => {
  it('says a demo load error by its message, and shows a bug with its stack', () => {
    const demo = recordingOutput();
    expect(reportFailure(new DemoLoadError("couldn't load the demo: licence.issue was refused"), demo.output)).toBe(1);
    expect(demo.err).toEqual(["chipledger: couldn't load the demo: licence.issue was refused"]);

    const bug = recordingOutput();
    expect(reportFailure(new TypeError("Cannot read properties of undefined (reading 'seq')"), bug.output)).toBe(1);
    expect(bug.err.join('\n')).toMatch(/^chipledger: unexpected error: TypeError: Cannot read properties of undefined \(reading 'seq'\)\n\s+at /);
  });

  it('says a log key that is not the log\'s in one line: the message says what to configure', () => {
    const key = recordingOutput();
    expect(reportFailure(new LogKeyError('this log is signed by a+1+x, not by the configured key b+2+y; to rotate to the new key, also configure the current one'), key.output)).toBe(1);
    expect(key.err).toEqual(['chipledger: this log is signed by a+1+x, not by the configured key b+2+y; to rotate to the new key, also configure the current one']);
  });

  it('says a database that stops answering mid-command in one line, whatever pg calls it', () => {
    const said = (error: Error) => {
      const recorded = recordingOutput();
      expect(reportFailure(error, recorded.output)).toBe(1);
      expect(recorded.err).toHaveLength(1);
      return recorded.err[0];
    };
    expect(said(new Error('Connection terminated unexpectedly'))).toBe('chipledger: the database is not answering: Connection terminated unexpectedly, at PostgreSQL; try again once it answers');
    expect(said(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })))
      .toBe('chipledger: the database is not answering: terminating connection due to administrator command (57P01), at PostgreSQL; try again once it answers');
    // The database killed while a migration ran (the s25 crash review): said with the migration, in one line.
    const lost = new Error('Client has encountered a connection error and is not queryable');
    expect(said(new Error(`couldn't apply migration 024_log_rows_in_lock_order.sql: ${lost.message}`, { cause: lost })))
      .toBe("chipledger: the database is not answering: couldn't apply migration 024_log_rows_in_lock_order.sql: Client has encountered a connection error and is not queryable, at PostgreSQL; try again once it answers");
    // An operator's cancel is no outage, but no bug either: the command can simply run again.
    expect(said(Object.assign(new Error('canceling statement due to user request'), { code: '57014' })))
      .toBe('chipledger: the database cancelled a statement: canceling statement due to user request (57014), at PostgreSQL; someone cancelled it (pg_cancel_backend): run the command again');
  });

  it('an ENOENT that is not a DATABASE_URL ssl file is no connection error', () => {
    const other = recordingOutput();
    const error = Object.assign(new Error("ENOENT: no such file or directory, open '/elsewhere'"), { code: 'ENOENT', syscall: 'open', path: '/elsewhere' });
    reportFailure(error, other.output);
    expect(other.err.join('\n')).toContain('unexpected error');
  });
});

describe('withoutPassword', () => {
  it('drops the password from the user part and from any password parameter', () => {
    expect(withoutPassword(`postgresql://ledger:${password}@db.internal:5432/chipledger?sslmode=require&sslpassword=${password}`))
      .toBe('postgresql://ledger@db.internal:5432/chipledger?sslmode=require&sslpassword=%28hidden%29');
  });
});
