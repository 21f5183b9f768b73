/**
 * Runs test/support/load-client.ts as a child process and collects its answer lines.
 * Only complete lines count: a line cut short by a kill was never acknowledged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadAnswer, LoadConfig } from './load-client.ts';

const clientPath = fileURLToPath(new URL('./load-client.ts', import.meta.url));
const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface LoadProcess {
  child: ChildProcess;
  /** Every answer line printed so far, in order. */
  answers: LoadAnswer[];
  /** Resolves once the client has opened its target. */
  ready: Promise<void>;
  /** Resolves when the process has exited and its stdout is fully read. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Resolves once at least `count` answers were printed (rejects if the process exits first). */
  answered(count: number): Promise<void>;
}

export function spawnLoadClient(target: string, config: LoadConfig): LoadProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', clientPath, target, JSON.stringify(config)], {
    cwd: repositoryRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const answers: LoadAnswer[] = [];
  const waiters: Array<{ count: number; done: () => void; fail: (error: Error) => void }> = [];
  let buffered = '';
  let stderr = '';
  let markReady: () => void = () => {};
  let failReady: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  const wake = () => {
    for (const waiter of [...waiters]) {
      if (answers.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.done();
      }
    }
  };
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffered += chunk;
    let end = buffered.indexOf('\n');
    while (end >= 0) {
      const line = JSON.parse(buffered.slice(0, end)) as { type: string };
      buffered = buffered.slice(end + 1);
      if (line.type === 'ready') markReady();
      if (line.type === 'answer') answers.push(line as LoadAnswer);
      end = buffered.indexOf('\n');
    }
    wake();
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => {
      const error = new Error(`the load client exited (${signal ?? code}) after ${answers.length} answers: ${stderr.slice(-2_000)}`);
      failReady(error);
      for (const waiter of waiters.splice(0)) waiter.fail(error);
      resolve({ code, signal, stderr });
    });
  });
  return {
    child,
    answers,
    ready,
    exited,
    answered(count) {
      if (answers.length >= count) return Promise.resolve();
      return new Promise((done, fail) => waiters.push({ count, done, fail }));
    },
  };
}
