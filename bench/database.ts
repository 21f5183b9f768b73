/**
 * The PostgreSQL a benchmark measures: BENCH_DATABASE_URL when set, otherwise an embedded
 * server of its own in a fresh temporary folder, durable (fsync on, synchronous commit):
 * benchmarks measure what production runs. Each workload gets a fresh database on it.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/store/embedded.ts';
import { migrate } from '../src/store/migrate.ts';
import { createPool } from '../src/store/pool.ts';
import { embeddedWriter } from '../src/store/writer-role.ts';

export interface BenchServer {
  /** Where it runs, for the report. */
  description: string;
  /** Makes an empty database, or a copy of `template` (which nobody may be connected to), and returns its URL. */
  createDatabase(name: string, template?: string): Promise<string>;
  /** CPU seconds used so far by the server's processes, by pid; empty for an external server. */
  cpuTicks(): Map<number, number>;
  stop(): Promise<void>;
}

export interface BenchServerOptions {
  /**
   * Load pg_stat_statements (a restart of the embedded server) and create it in every
   * database made here, so a benchmark can read server-side time per statement.
   */
  statementStats?: boolean;
  /** Server settings over the product's own (store/embedded.ts EmbeddedOptions.settings); embedded servers only. */
  settings?: Readonly<Record<string, string>>;
}

export async function startBenchServer(label: string, options: BenchServerOptions = {}): Promise<BenchServer> {
  const external = process.env.BENCH_DATABASE_URL;
  if (external) return serverAt(external, `external server (BENCH_DATABASE_URL)`, async () => {}, () => null, options);
  const folder = mkdtempSync(join(tmpdir(), `chipledger-bench-${label}-`));
  const dataDir = join(folder, 'pg');
  const start = () => startEmbeddedPostgres({ dataDir, durable: true, ...(options.settings ? { settings: options.settings } : {}) });
  let started = await start();
  if (options.statementStats) {
    const admin = new pg.Client({ connectionString: started.url });
    await admin.connect();
    await admin.query(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
    // Planning time too, and statements run inside functions and triggers (nested).
    await admin.query(`ALTER SYSTEM SET pg_stat_statements.track_planning = on`);
    await admin.query(`ALTER SYSTEM SET pg_stat_statements.track = 'all'`);
    await admin.end();
    await started.stop();
    started = await start();
  }
  const stop = async () => {
    await started.stop();
    rmSync(folder, { recursive: true, force: true });
  };
  return serverAt(started.url, `embedded PostgreSQL in ${dataDir} (durable: fsync on)`, stop, () => postmasterPid(dataDir), options);
}

function serverAt(url: string, description: string, stop: () => Promise<void>, postmaster: () => number | null, options: BenchServerOptions): BenchServer {
  return {
    description,
    async createDatabase(name, template) {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
      } finally {
        await admin.end();
      }
      const target = new URL(url);
      target.pathname = `/${name}`;
      if (options.statementStats) {
        const client = new pg.Client({ connectionString: target.toString() });
        await client.connect();
        await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
        await client.end();
      }
      return target.toString();
    },
    cpuTicks() {
      const pid = postmaster();
      return pid === null ? new Map() : processTreeTicks(pid);
    },
    stop,
  };
}

function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** utime + stime (clock ticks) of a process and its direct children, from /proc. */
function processTreeTicks(root: number): Map<number, number> {
  const ticks = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return ticks;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      const ppid = Number(fields[1]);
      if (pid !== root && ppid !== root) continue;
      ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // The process ended while we looked: it no longer counts.
    }
  }
  return ticks;
}

/** Seconds of CPU the server used between two readings (clock ticks are 1/100 s on Linux). */
export function cpuSecondsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, value] of after) ticks += value - (before.get(pid) ?? 0);
  return ticks / 100;
}

/**
 * The URL of database `ownerUrl` for the writer role, as a server connects (store/writer-role.ts):
 * the owner migrates it and grants the writer its rights (the embedded cluster's role and
 * password, derived from the owner's, as `serve` does). The benchmarks' ledgers write as it.
 */
export async function writerUrlOf(ownerUrl: string): Promise<string> {
  const { url: writerUrl, role, password } = embeddedWriter(ownerUrl);
  const owner = createPool({ url: ownerUrl, connectionsMax: 1, applicationName: 'chipledger-bench-migrate' });
  try {
    await migrate(owner, { writer: { role, password } });
  } finally {
    await owner.end();
  }
  return writerUrl;
}
