/**
 * A reader that leaves ends every command at once but serve (a `log monitor | head` followed
 * the log for ever into a closed pipe); any other stdout failure is kept to be said.
 */
import { describe, expect, it } from 'vitest';
import { exitCodeWhenReaderLeft, stdoutFailure } from './stdout-closed.ts';

const failure = (code: string, message = `write ${code}`): NodeJS.ErrnoException => Object.assign(new Error(message), { code });

describe('stdoutFailure', () => {
  it('ends a command at once when its reader left, whichever it is, but serve', () => {
    for (const command of ['log', 'api', 'report', 'shipments', undefined]) {
      expect(stdoutFailure(failure('EPIPE'), command), String(command)).toEqual({ kind: 'reader-left', exitNow: true });
    }
    expect(stdoutFailure(failure('EPIPE'), 'serve')).toEqual({ kind: 'reader-left', exitNow: false });
  });

  it('keeps any other failure to say it: the output is incomplete', () => {
    expect(stdoutFailure(failure('ENOSPC', 'no space left on device'), 'api')).toEqual({ kind: 'lost', message: 'no space left on device' });
    expect(stdoutFailure(failure('EIO'), 'serve')).toEqual({ kind: 'lost', message: 'write EIO' });
  });
});

describe('exitCodeWhenReaderLeft', () => {
  it('keeps the code of a command that had ended, a failure included; 0 for one still running', () => {
    expect(exitCodeWhenReaderLeft(1)).toBe(1);
    expect(exitCodeWhenReaderLeft(2)).toBe(2);
    expect(exitCodeWhenReaderLeft(0)).toBe(0);
    expect(exitCodeWhenReaderLeft(undefined)).toBe(0);
  });
});
