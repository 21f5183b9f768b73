/**
 * Fails a test file that leaves its worker process changed (vitest.config.ts: files share
 * their worker with the files after them), as test/support/process-state.ts tells: each
 * change would reach whichever file runs next in that worker, which the order of a run
 * decides, so its failure would show in another file, and on some runs only.
 */
import { afterAll, beforeAll } from 'vitest';
import { processState, stateChanges, type ProcessState } from './support/process-state.ts';

let before: ProcessState;

beforeAll(() => {
  before = processState();
});

afterAll(() => {
  const changes = stateChanges(before, processState());
  if (changes.length > 0) {
    throw new Error(`this file left its worker process changed, which the files after it in the worker would see: ${changes.join('; ')} (put it back in an afterAll or a finally)`);
  }
});
