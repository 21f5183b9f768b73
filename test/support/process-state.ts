/**
 * What of its process a test file may leave changed for the files after it in its worker
 * (test/worker-state-guard.ts): environment variables, the umask, the working directory,
 * and listeners on signals and on the process's error events.
 *
 * 'exit' listeners are not counted: test/support/http-serve.ts adds its one when first loaded,
 * for the whole worker, and one that runs when the worker ends changes no later file.
 */
const watchedEvents = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'uncaughtException', 'unhandledRejection', 'warning'] as const;

export interface ProcessState {
  environment: Record<string, string | undefined>;
  umask: number;
  cwd: string;
  listeners: Record<string, number>;
}

export function processState(): ProcessState {
  // process.umask() without a mask to set is deprecated: set one and put the old one back.
  const umask = process.umask(0o022);
  process.umask(umask);
  return {
    environment: { ...process.env },
    umask,
    cwd: process.cwd(),
    listeners: Object.fromEntries(watchedEvents.map((event) => [event, process.listenerCount(event)])),
  };
}

/** What differs between two states, in words; empty when nothing does. */
export function stateChanges(before: ProcessState, after: ProcessState): string[] {
  const changes: string[] = [];
  for (const name of new Set([...Object.keys(before.environment), ...Object.keys(after.environment)])) {
    const was = before.environment[name];
    const is = after.environment[name];
    // Only the name: a value may be a secret a test set.
    if (was !== is) changes.push(was === undefined ? `environment variable ${name} was set` : is === undefined ? `environment variable ${name} was removed` : `environment variable ${name} was changed`);
  }
  if (before.umask !== after.umask) changes.push(`the umask went from ${before.umask.toString(8)} to ${after.umask.toString(8)}`);
  if (before.cwd !== after.cwd) changes.push(`the working directory went from ${before.cwd} to ${after.cwd}`);
  for (const event of watchedEvents) {
    const added = (after.listeners[event] ?? 0) - (before.listeners[event] ?? 0);
    if (added !== 0) changes.push(`${Math.abs(added)} '${event}' listener(s) ${added > 0 ? 'left on' : 'taken off'} the process`);
  }
  return changes;
}
