/**
 * A killed process that its parent has not reaped yet (a zombie) still answers signal 0, but
 * runs nothing: a lock it left is stale at once (the crash review found a restart right after
 * kill -9 refused while the killed server was a zombie).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isProcessAlive } from './processes.ts';

describe.skipIf(process.platform !== 'linux')('isProcessAlive', () => {
  it('says a zombie is not alive, and a running process is', async () => {
    // `exec sleep` replaces the shell with a parent that never waits for its child.
    const parent = spawn('bash', ['-c', 'sleep 60 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const child = Number(await new Promise<string>((done) => parent.stdout!.once('data', (chunk: Buffer) => done(chunk.toString('utf8').trim()))));
      // Until bash has become `sleep`, it would reap the killed child itself (a race seen
      // under a loaded suite): wait for the exec before killing.
      const execDeadline = Date.now() + 5_000;
      while (readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim() !== 'sleep' && Date.now() < execDeadline) await new Promise((resume) => setTimeout(resume, 10));
      expect(readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim()).toBe('sleep');
      expect(isProcessAlive(child)).toBe(true);
      process.kill(child, 'SIGKILL');
      const deadline = Date.now() + 5_000;
      while (isProcessAlive(child) && Date.now() < deadline) await new Promise((resume) => setTimeout(resume, 20));
      expect(() => process.kill(child, 0), 'the zombie answers signal 0').not.toThrow();
      expect(isProcessAlive(child)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
