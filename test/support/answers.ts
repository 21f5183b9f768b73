/**
 * Helpers shared by the invariant tests: waiting for the ledger with a bound, so that a
 * stuck sequencer fails a test with a message instead of hanging it.
 */
import type { Answer } from '../../src/ledger/ledger.ts';

export class NoAnswer extends Error {}

/** The ledger's answer, or a NoAnswer error after `timeoutMs` (a stuck sequencer). */
export function answerWithin<T = Answer>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswer(`the ledger did not answer within ${timeoutMs} ms: its sequencer is stuck or crashed`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
