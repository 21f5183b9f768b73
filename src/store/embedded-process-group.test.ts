/**
 * serve's PostgreSQL runs in a process group of its own (startEmbeddedPostgres with
 * ownProcessGroup), so no Ctrl-C or group SIGTERM reaches it but through us: when our process
 * exits without having stopped it (an exit forced by a second Ctrl-C, a stop that timed out),
 * it is told to stop then, and does not outlive us; also when our process exits while the
 * postmaster is still starting.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isProcessAlive } from './processes.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-embedded-group-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** Waits until `done()` holds, for at most `timeoutMs`; says whether it did. */
async function eventually(done: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((wake) => setTimeout(wake, 100))) {
    if (done()) return true;
  }
  return done();
}

/** The live processes whose command line names `dataDir` (a postmaster's is `postgres -D <dataDir> …`). */
function processesOf(dataDir: string): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).flatMap((name) => {
    try {
      return readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(dataDir) ? [Number(name)] : [];
    } catch {
      return []; // gone meanwhile
    }
  });
}

describe('an embedded PostgreSQL in a process group of its own', () => {
  it('runs outside our process group, and stops when our process exits without stopping it', async () => {
    const dataDir = join(folder, 'pg');
    const script = join(folder, 'start-and-exit.mts');
    const embedded = fileURLToPath(new URL('./embedded.ts', import.meta.url));
    writeFileSync(script, [
      `import { readFileSync } from 'node:fs';`,
      `import { startEmbeddedPostgres } from ${JSON.stringify(embedded)};`,
      `await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, durable: false, ownProcessGroup: true });`,
      `const pid = Number(readFileSync(${JSON.stringify(join(dataDir, 'postmaster.pid'))}, 'utf8').split('\\n')[0]);`,
      `const group = readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ')[2];`,
      `console.log(JSON.stringify({ pid, group: Number(group), ours: process.pid }));`,
      // Exits at once, as serve's forced exit does, without stopping PostgreSQL.
      `process.exit(1);`,
    ].join('\n'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(1);
    const { pid, group, ours } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { pid: number; group: number; ours: number };
    expect(group, 'the postmaster leads a process group of its own').toBe(pid);
    expect(group).not.toBe(ours);
    expect(await eventually(() => !isProcessAlive(pid), 20_000), `postmaster ${pid} still running after its starter exited`).toBe(true);
  }, 150_000);

  it('stops when our process exits while the postmaster is still starting (before it is ready)', async () => {
    const dataDir = join(folder, 'pg-starting');
    const script = join(folder, 'exit-while-starting.mts');
    const embedded = fileURLToPath(new URL('./embedded.ts', import.meta.url));
    writeFileSync(script, [
      `import { startEmbeddedPostgres } from ${JSON.stringify(embedded)};`,
      // The postmaster's first line comes before it is ready: exit then, as a forced exit would.
      `await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, durable: false, ownProcessGroup: true, log: (line) => {`,
      `  if (line.includes('starting PostgreSQL')) { console.log('exiting while it starts'); process.exit(1); }`,
      `} });`,
      `console.log('started');`,
    ].join('\n'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 120_000 });
    expect(run.stdout.trim(), run.stderr).toBe('exiting while it starts');
    expect(await eventually(() => processesOf(dataDir).length === 0, 20_000), `PostgreSQL processes of ${dataDir} still running after their starter exited: ${processesOf(dataDir).join(', ')}`).toBe(true);
  }, 150_000);
});
