/**
 * The embedded PostgreSQL after a start that was cut short: a cluster without the `chipledger`
 * database (killed between initdb and CREATE DATABASE), a postmaster.pid naming a process that
 * is not our postmaster (pids start over after a container restart), a postmaster left running
 * by a killed parent, and clusters whose creation died half-way (a clear error, not a mystery).
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.ts';
import { isProcessAlive } from './processes.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-embedded-recovery-'));
const dataDir = join(folder, 'pg');
const running: EmbeddedDatabase[] = [];
afterAll(async () => {
  // stop() never returns for a server that another start already stopped: wait a little at most.
  const stopped = Promise.all(running.map((database) => database.stop().catch(() => {})));
  await Promise.race([stopped, new Promise((done) => setTimeout(done, 5_000))]);
  rmSync(folder, { recursive: true, force: true });
});

async function start(dir = dataDir): Promise<EmbeddedDatabase> {
  const database = await startEmbeddedPostgres({ dataDir: dir, durable: false });
  running.push(database);
  return database;
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

function onDatabase(url: string, name: string): string {
  const other = new URL(url);
  other.pathname = `/${name}`;
  return other.toString();
}

describe('the embedded PostgreSQL after an interrupted start', () => {
  it('creates the chipledger database when the cluster exists without it (killed after initdb)', async () => {
    const first = await start();
    await query(onDatabase(first.url, 'postgres'), 'DROP DATABASE chipledger WITH (FORCE)');
    await first.stop();

    const second = await start();
    expect(await query<{ name: string }>(second.url, 'SELECT current_database() AS name')).toEqual([{ name: 'chipledger' }]);
    await second.stop();
  });

  it('leaves a process alone that got the pid of postmaster.pid, and starts', async () => {
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pid = bystander.pid!;
      // The file as a killed postmaster leaves it, but naming the process that now has its pid.
      writeFileSync(join(dataDir, 'postmaster.pid'), `${pid}\n${dataDir}\n1700000000\n5432\n/tmp\n127.0.0.1\n  1234567     12345\nready   \n`);
      const database = await start();
      expect(await query<{ one: number }>(database.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      expect(isProcessAlive(pid), 'the unrelated process was signalled').toBe(true);
      expect(bystander.exitCode).toBe(null);
      await database.stop();
    } finally {
      bystander.kill('SIGKILL');
    }
  });

  it('stops the postmaster a killed parent left running, and starts again', async () => {
    await start(); // never stopped: like a parent killed with SIGKILL
    const orphan = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const database = await start();
    expect(await query<{ one: number }>(database.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(isProcessAlive(orphan)).toBe(false);
    await database.stop();
  });

  it('names the folder to delete when the cluster is broken (initdb died half-way)', async () => {
    rmSync(join(dataDir, 'global', 'pg_control'));
    const failure = await start().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EmbeddedPostgresError);
    expect((failure as Error).message).toContain(`couldn't start the embedded PostgreSQL in ${dataDir}`);
    expect((failure as Error).message).toContain(`delete ${dataDir} and ${dataDir}.password, then start again`);
  });

  it('never tells to delete a whole cluster that fails to start: it holds data (the packaging review, finding 3)', async () => {
    const whole = join(folder, 'whole');
    await (await start(whole)).stop();
    appendFileSync(join(whole, 'postgresql.conf'), '\nno_such_setting_of_postgres = 1\n');
    const failure = await start(whole).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EmbeddedPostgresError);
    const { message } = failure as Error;
    expect(message).toContain(`couldn't start the embedded PostgreSQL in ${whole}`);
    expect(message).toContain('no_such_setting_of_postgres');
    expect(message).toContain('The cluster there holds data: keep it');
    expect(message).not.toContain('delete');
    expect(existsSync(join(whole, 'PG_VERSION'))).toBe(true);
  });

  it('names the folder to delete when it holds files but no cluster', async () => {
    const partial = join(folder, 'partial');
    mkdirSync(join(partial, 'base'), { recursive: true });
    const failure = await start(partial).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EmbeddedPostgresError);
    expect((failure as Error).message).toContain(`${partial} holds files but no PostgreSQL cluster`);
    expect((failure as Error).message).toContain(`delete ${partial} and ${partial}.password, then start again`);
  });

  it('creates a cluster beside its folder and names it so only once whole, and deletes what an interrupted creation left (the s25 crash review)', async () => {
    const interrupted = join(folder, 'interrupted');
    // What initdb killed half-way now leaves: the sibling it was creating in, with PG_VERSION
    // and pg_control but no catalogue (which, left under the data dir's own name, the next
    // start took for a cluster and hung on).
    mkdirSync(join(`${interrupted}.creating`, 'global'), { recursive: true });
    writeFileSync(join(`${interrupted}.creating`, 'PG_VERSION'), '17\n');
    writeFileSync(join(`${interrupted}.creating`, 'global', 'pg_control'), 'half a cluster');
    const database = await start(interrupted);
    expect(await query<{ name: string }>(database.url, 'SELECT current_database() AS name')).toEqual([{ name: 'chipledger' }]);
    expect(existsSync(`${interrupted}.creating`)).toBe(false);
    expect(existsSync(join(interrupted, 'global', 'pg_filenode.map'))).toBe(true);
    await database.stop();
  });
});
