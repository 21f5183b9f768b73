/**
 * `chipledger serve --demo` as people run it: a child process with its own data dir and a free
 * port, the printed URL and admin token used over HTTP, then SIGTERM and a clean stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../store/embedded.ts';
import { unusedPort } from '../../test/support/port.ts';
import { generateSignerKey } from '../tlog/index.ts';
import { isProcessAlive } from '../store/processes.ts';

const root = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-serve-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** The environment of a fresh shell: none of our settings leak in from the test run. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
  return { ...env, ...extra };
}

function start(args: string[], env: Record<string, string>): { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: string | null }>((done) => child.on('exit', (code, signal) => done({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

/** A command line run by bash in the repository, as a user would paste it: exit code and output. */
async function shell(line: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-c', line], { cwd: root, env: cleanEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number | null>((done) => child.on('exit', (exitCode) => done(exitCode)));
  return { code, stdout, stderr };
}

async function waitFor<T>(what: string, read: () => T | undefined, exited: Promise<unknown>, timeoutMs: number, log: () => string): Promise<T> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (gone) throw new Error(`the server exited before printing ${what}:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms:\n${log()}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}


/** The demo's token table as serve prints it: organisation id and name, part, role, secret. */
function tokenRows(stdout: string): Array<{ organisationId: string; part: string; role: string; secret: string }> {
  return [...stdout.matchAll(/^(ORG-\S+) .*?\S {2,}(\S.*?) {2,}(authority_admin|authority_officer|exporter|recipient|auditor) {2,}(clt_\S+)$/gm)]
    .map((match) => ({ organisationId: match[1]!, part: match[2]!, role: match[3]!, secret: match[4]! }));
}

describe('chipledger serve --demo', () => {
  it('serves the demo with a token for every organisation, then on a later start says how to make them; stops cleanly on SIGTERM', async () => {
    // Not findFreePort's: another file may be given that one while the demo loads (test/support/port.ts).
    const port = await unusedPort();
    const dataDir = join(folder, 'data');
    const env = { CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_LOG_LEVEL: 'info' };
    // The first start as `npm start` makes it (npm's variables), where no `chipledger` is on PATH.
    const server = start(['serve', '--demo', '--port', String(port)], { ...env, npm_package_name: 'chipledger', npm_lifecycle_event: 'start' });
    const log = () => `stdout:\n${server.stdout()}\nstderr:\n${server.stderr()}`;
    let secrets: string[] = [];
    try {
      const url = await waitFor('its URL', () => /^chipledger is serving (http:\/\/\S+)/m.exec(server.stdout())?.[1], server.exit, 150_000, log);
      const token = await waitFor('the admin token', () => /^\s+(clt_\S+)$/m.exec(server.stdout())?.[1], server.exit, 10_000, log);
      await waitFor('the last line', () => (/^Stop with Ctrl-C/m.test(server.stdout()) ? true : undefined), server.exit, 10_000, log);
      expect(url).toBe(`http://127.0.0.1:${port}`);
      expect(server.stdout()).toContain('Admin token (authority_admin of 中华人民共和国商务部');
      // The command it says to try runs as printed, from the repository, with no `chipledger` on PATH.
      const tryLine = /^ {2}or: (.+)$/m.exec(server.stdout())?.[1];
      expect(tryLine).toBe(`CHIPLEDGER_URL=${url} CHIPLEDGER_TOKEN=${token} npm run -s chipledger -- report utilisation`);
      const tried = await shell(tryLine!);
      expect(tried.code, tried.stderr).toBe(0);
      expect(tried.stdout).toMatch(/^licence +reference +status/);
      // The log's verifier key, for an auditor's log verify and log prove; the api command prints it too, as served.
      const verifierKey = /^The log's verifier key \(for log verify --key and log prove --key\): (\S+)$/m.exec(server.stdout())?.[1];
      const served = await (await fetch(`${url}/v1/log/key`)).text();
      expect(`${verifierKey}\n`).toBe(served);
      const keyByCli = await shell(`CHIPLEDGER_URL=${url} CHIPLEDGER_TOKEN=${token} npm run -s chipledger -- api GET /v1/log/key`);
      expect({ code: keyByCli.code, stdout: keyByCli.stdout }, keyByCli.stderr).toEqual({ code: 0, stdout: served });

      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/v1/licences`)).status).toBe(401);
      const licences = await fetch(`${url}/v1/licences`, { headers: { authorization: `Bearer ${token}` } });
      expect(licences.status).toBe(200);
      expect(licences.headers.get('x-chipledger-demo')).toBe('true');
      const body = (await licences.json()) as { items: Array<{ authorisedUnits: number; direction: string; demo: boolean }> };
      expect(body.items.map((licence) => [licence.direction, licence.authorisedUnits, licence.demo])).toEqual([['export', 400_000, true], ['import', 400_000, true]]);

      // Every other organisation has its token, labelled, and can act with it.
      const rows = tokenRows(server.stdout());
      expect(rows.map((row) => [row.part, row.role])).toEqual([
        ['US export authority (BIS)', 'authority_admin'], ['US exporter', 'exporter'], ['importer (holds the import licence)', 'recipient'],
        ['end user (allocations, sites)', 'recipient'], ['end user (allocations, sites)', 'recipient'], ['end user (allocations, sites)', 'recipient'], ['auditor (reads everything)', 'auditor'],
      ]);
      secrets = [token, ...rows.map((row) => row.secret)];
      const get = async (path: string, secret: string) => {
        const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${secret}` } });
        expect(response.status, path).toBe(200);
        return ((await response.json()) as { items: unknown[] }).items;
      };
      const [bis, exporter, , endUser, , , auditor] = rows;
      expect(await get('/v1/allocations', exporter!.secret)).toHaveLength(6); // on both licences it ships under
      expect(await get('/v1/allocations', endUser!.secret)).toHaveLength(2); // its own, one on each licence
      expect(await get('/v1/events?limit=5', auditor!.secret)).toHaveLength(5);
      // BIS, an admin, makes a token for the US exporter through the API.
      const made = await fetch(`${url}/v1/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bis!.secret}`, 'content-type': 'application/json', 'idempotency-key': 'serve-test-1' },
        body: JSON.stringify({ organisationId: exporter!.organisationId, role: 'exporter', label: 'compliance desk' }),
      });
      expect(made.status, await made.clone().text()).toBe(201);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exit, log()).toEqual({ code: 0, signal: null });
    expect(secrets).toHaveLength(8);
    for (const secret of secrets) expect(server.stderr(), 'a secret on stderr (the log)').not.toContain(secret.slice(4));
    const pidFile = join(dataDir, 'pg', 'postmaster.pid');
    if (existsSync(pidFile)) expect(isProcessAlive(Number(readFileSync(pidFile, 'utf8').split('\n')[0])), 'postgres still running').toBe(false);
    expect(existsSync(join(dataDir, 'chipledger.lock'))).toBe(false);

    // A later start: a new admin token, and the commands that make the others (run one here).
    let auditorSecret = '';
    const again = start(['serve', '--demo', '--port', String(port)], env);
    const againLog = () => `stdout:\n${again.stdout()}\nstderr:\n${again.stderr()}`;
    try {
      const url = await waitFor('its URL', () => /^chipledger is serving (http:\/\/\S+)/m.exec(again.stdout())?.[1], again.exit, 150_000, againLog);
      await waitFor('the last line', () => (/^Stop with Ctrl-C/m.test(again.stdout()) ? true : undefined), again.exit, 10_000, againLog);
      expect(again.stdout()).toContain('Admin token (authority_admin of 中华人民共和国商务部');
      expect(again.stdout()).toContain('chipledger demo   (a new token for every demo organisation)');
      expect(again.stdout()).toMatch(/^The log's verifier key \(for log verify --key and log prove --key\): demo\.chipledger\.local\/log\+[0-9a-f]{8}\+\S+$/m);
      const commands = [...again.stdout().matchAll(/^ {2}chipledger (token create --org (\S+) --role (\S+) --label "([^"]+)") +# (.+)$/gm)];
      expect(commands.map((command) => [command[2], command[3]])).toEqual(tokenRows(server.stdout()).map((row) => [row.organisationId, row.role]));
      const auditorCommand = commands.find((command) => command[3] === 'auditor')!;
      const minted = start(['token', 'create', '--org', auditorCommand[2]!, '--role', 'auditor', '--label', auditorCommand[4]!], env);
      expect(await minted.exit, minted.stderr()).toEqual({ code: 0, signal: null });
      const secret = /^(clt_\S+)$/m.exec(minted.stdout())?.[1];
      expect(secret, minted.stdout()).toBeDefined();
      expect((await fetch(`${url}/v1/events?limit=1`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
      auditorSecret = secret!;
    } finally {
      again.child.kill('SIGTERM');
    }
    expect(await again.exit, againLog()).toEqual({ code: 0, signal: null });

    // Served without --demo (the demo's key given as the log's), a database that holds the
    // demo is still served as demo data: its rows say so, and so do its answers and events.
    const plain = start(['serve', '--port', String(port)], { ...env, CHIPLEDGER_LOG_KEY_FILE: join(dataDir, 'demo-log-signer.key') });
    const plainLog = () => `stdout:\n${plain.stdout()}\nstderr:\n${plain.stderr()}`;
    try {
      const url = await waitFor('its URL', () => /^chipledger is serving (http:\/\/\S+)/m.exec(plain.stdout())?.[1], plain.exit, 150_000, plainLog);
      const events = await fetch(`${url}/v1/events?limit=3`, { headers: { authorization: `Bearer ${auditorSecret}` } });
      expect(events.status).toBe(200);
      expect(events.headers.get('x-chipledger-demo')).toBe('true');
      expect(((await events.json()) as { items: Array<{ demo: boolean }> }).items.map((event) => event.demo)).toEqual([true, true, true]);
    } finally {
      plain.child.kill('SIGTERM');
    }
    expect(await plain.exit, plainLog()).toEqual({ code: 0, signal: null });

    // A production key on this data dir (the demo's, left as the default): refused, naming the
    // database whose log it is and that it holds the demo, so the data dir is seen to be wrong.
    const production = start(['serve', '--port', String(port)], { ...env, CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('ops.serve.test/log').signerKey });
    expect(await production.exit, production.stderr()).toEqual({ code: 1, signal: null });
    expect(production.stderr()).toMatch(/^chipledger: the configured log key is of origin ops\.serve\.test\/log, but this log's origin is demo\.chipledger\.local\/log /m);
    expect(production.stderr()).toContain(`; this is the log of the embedded database of ${dataDir}, which holds the demo data: if that is not this deployment's database, set CHIPLEDGER_DATA_DIR to this server's own folder\n`);
  }, 300_000);

  it('fails with a clear message when the port is taken', async () => {
    const busy = createServer();
    const port = await new Promise<number>((done) => busy.listen(0, '127.0.0.1', () => done((busy.address() as { port: number }).port)));
    try {
      const server = start(['serve', '--demo', '--port', String(port)], { CHIPLEDGER_DATA_DIR: join(folder, 'busy') });
      expect(await server.exit).toEqual({ code: 1, signal: null });
      expect(server.stderr()).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(existsSync(join(folder, 'busy', 'pg'))).toBe(false); // failed before starting PostgreSQL
    } finally {
      busy.close();
    }
  }, 60_000);

  it('refuses to start without a log key: a configuration problem (exit 2), said before anything is made', async () => {
    const port = await findFreePort();
    const dataDir = join(folder, 'no-key');
    const server = start(['serve', '--port', String(port)], { CHIPLEDGER_DATA_DIR: dataDir });
    expect(await server.exit, server.stderr()).toEqual({ code: 2, signal: null });
    expect(server.stderr()).toContain('chipledger: the configuration has 1 problem:\n  - no transparency-log signing key: set CHIPLEDGER_LOG_KEY_FILE');
    expect(existsSync(dataDir), 'no data folder, no PostgreSQL cluster').toBe(false);
  }, 60_000);

  it('lists every problem with the log key files (exit 2), even in the demo, before anything is made', async () => {
    const port = await findFreePort();
    const dataDir = join(folder, 'bad-keys');
    const open = join(folder, 'open.key');
    writeFileSync(open, `${generateSignerKey('log.example').signerKey}\n`);
    chmodSync(open, 0o644);
    const server = start(['serve', '--demo', '--port', String(port)], { CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_LOG_KEY_FILE: '/nonexistent', CHIPLEDGER_LOG_PREVIOUS_KEY_FILE: open });
    expect(await server.exit, server.stderr()).toEqual({ code: 2, signal: null });
    expect(server.stderr()).toContain('the configuration has 2 problems');
    expect(server.stderr()).toContain("CHIPLEDGER_LOG_KEY_FILE: couldn't read the log signing key /nonexistent: ENOENT");
    expect(server.stderr()).toContain(`CHIPLEDGER_LOG_PREVIOUS_KEY_FILE: the log signing key ${open} is open to its group or others (mode 644)`);
    expect(existsSync(dataDir), 'no data folder, no PostgreSQL cluster').toBe(false);
  }, 60_000);

  it('lists every configuration problem and exits 2', async () => {
    const server = start(['serve'], { CHIPLEDGER_PORT: 'eighty', CHIPLEDGER_LOGLEVEL: 'debug' });
    expect(await server.exit).toEqual({ code: 2, signal: null });
    expect(server.stderr()).toContain('the configuration has 2 problems');
  }, 60_000);
});
