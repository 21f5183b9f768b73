import { Failure } from '../../src/cli/output.ts';

/** The Failure a CLI command ended with (its message and exit code); anything else fails the test. */
export async function failureOf(run: Promise<number>): Promise<Failure> {
  try {
    await run;
  } catch (error) {
    if (error instanceof Failure) return error;
    throw error;
  }
  throw new Error('expected the command to fail');
}
