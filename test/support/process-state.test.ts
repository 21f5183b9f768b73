import { describe, expect, it } from 'vitest';
import { processState, stateChanges } from './process-state.ts';

describe('a worker process state', () => {
  it('is unchanged when nothing changed', () => {
    expect(stateChanges(processState(), processState())).toEqual([]);
  });

  it('names each variable set, changed or removed, without its value, and what else changed', () => {
    const real = processState();
    const before = { ...real, environment: { KEPT: 'k', CHANGED: 'old-value', REMOVED: 'r' } };
    const after = {
      environment: { KEPT: 'k', CHANGED: 'new-value', ADDED: 'secret-value' },
      umask: real.umask ^ 0o007,
      cwd: '/elsewhere',
      listeners: { ...real.listeners, SIGTERM: real.listeners.SIGTERM! + 1, unhandledRejection: real.listeners.unhandledRejection! - 1 },
    };
    const changes = stateChanges(before, after);
    expect(changes.sort()).toEqual([
      "1 'SIGTERM' listener(s) left on the process",
      "1 'unhandledRejection' listener(s) taken off the process",
      'environment variable ADDED was set',
      'environment variable CHANGED was changed',
      'environment variable REMOVED was removed',
      `the umask went from ${real.umask.toString(8)} to ${(real.umask ^ 0o007).toString(8)}`,
      `the working directory went from ${real.cwd} to /elsewhere`,
    ].sort());
    expect(changes.join('\n')).not.toMatch(/value/);
  });

  it('sees a listener a file left on the process', () => {
    const before = processState();
    const listener = () => {};
    process.on('SIGHUP', listener);
    try {
      expect(stateChanges(before, processState())).toEqual(["1 'SIGHUP' listener(s) left on the process"]);
    } finally {
      process.off('SIGHUP', listener);
    }
  });
});
