/**
 * What a file of commands needs from the program (program.ts) to add its commands to it: the
 * API client, the runner that turns an action's exit code into the program's, the output, and
 * the --idempotency-key option every change command takes.
 */
import type { ApiClient } from './http.ts';
import type { Output } from './output.ts';

// Commander passes each action its arguments and options untyped; each action states their types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Runner = (action: (...args: any[]) => Promise<number>) => (...args: any[]) => Promise<void>;

export interface Wiring {
  client: () => ApiClient;
  run: Runner;
  output: Output;
  /** The program's --idempotency-key option (program.ts), as flags and help, as every change command takes it. */
  idempotencyKeyOption: readonly [string, string];
}
