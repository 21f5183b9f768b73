/**
 * serve's PostgreSQL runs in a process group of its own (startEmbeddedPostgres with
 * ownProcessGroup), so no Ctrl-C or group SIGTERM reaches it but through us: when our process
 * exits without having stopped it (an exit forced by a second Ctrl-C, a stop that timed out),
 * it is told to stop then, and does not outlive us.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
});
