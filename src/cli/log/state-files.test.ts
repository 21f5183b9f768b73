/**
 * Who may steer a state file (the files review, finding 1): a run writes only to the file its
 * state path led to when it started, so a link swapped in for the state during a long
 * `log monitor` run is refused at the next save instead of written through (it made a root
 * monitor overwrite any file); and a state file, or the folder of a new one, that another
 * account owns or that its group or others can write is refused with exit 2, as key files are.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consistencyProofFromLeaves, generateSignerKey } from '../../tlog/index.ts';
import { memoryLog, syntheticEntries, type MemoryLog } from '../../../test/tlog/memory-log.ts';
import { failureOf } from '../../../test/support/failure.ts';
import { Failure } from '../output.ts';
import { monitorCommand } from './monitor-command.ts';
import { assertStateWritable } from './state-file.ts';
import { readMonitorState, readState, writeMonitorState, writeState, type SavedCheckpoint } from './state.ts';
import { recordingDeps } from './test-deps.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-state-files-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const saved = (size: number): SavedCheckpoint => ({ origin: 'log.example', size, rootHash: Buffer.alloc(32, size), note: `log.example\n${size}\n...\n` });
const ofSize = (size: number) => ({ origin: 'log.example', saved: saved(size), unsettled: { rounds: 0, heads: [] } });

/** A folder of its own for each case, as only this account may write it. */
function caseFolder(name: string): string {
  const made = join(folder, name);
  mkdirSync(made, { mode: 0o700 });
  return made;
}

/** A file of another's that a link points at (/etc/passwd in the review). */
function victim(at: string): string {
  const file = join(at, 'victim.conf');
  writeFileSync(file, 'precious root config\n', { mode: 0o644 });
  return file;
}

/** What another account does in a folder it may write: replaces `path` with `by`, in one rename. */
function swap(path: string, by: (aside: string) => void): void {
  const aside = `${path}.new`;
  by(aside);
  renameSync(aside, path);
}

async function refusal(run: Promise<unknown>): Promise<Failure> {
  const error = await run.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(Failure);
  return error as Failure;
}

describe('a state file swapped during a run', () => {
  it('is not written through: a link put in its place between two saves is refused, and the file it points to is untouched', async () => {
    const at = caseFolder('swapped-link');
    const path = join(at, 'mon.json');
    const target = victim(at);
    await assertStateWritable(path);
    await writeMonitorState(path, ofSize(1));
    swap(path, (aside) => symlinkSync(target, aside));
    const refused = await refusal(writeMonitorState(path, ofSize(2)));
    expect(refused.message).toBe(`couldn't save the checkpoint to the state file ${path}: it now leads to ${target}, not to ${path} as when this run started (replaced during the run); nothing was saved; see who else can write ${at}, and run again`);
    expect(readFileSync(target, 'utf8')).toBe('precious root config\n');
    expect(statSync(target).mode & 0o777).toBe(0o644);
    expect(readlinkSync(path)).toBe(target);
  });

  it('is not replaced when another file was put in its place (a hard link, a state of someone else\'s)', async () => {
    const at = caseFolder('swapped-file');
    const path = join(at, 'mon.json');
    await assertStateWritable(path);
    await writeMonitorState(path, ofSize(1));
    swap(path, (aside) => writeFileSync(aside, 'theirs\n', { mode: 0o600 }));
    const refused = await refusal(writeMonitorState(path, ofSize(2)));
    expect(refused.message).toBe(`couldn't save the checkpoint to the state file ${path}: ${path} is not the file this run read and last wrote: another was put there during the run; nothing was saved; see who else can write ${at}, and run again`);
    expect(readFileSync(path, 'utf8')).toBe('theirs\n');
  });

  it('is refused when a file appears where the run found none', async () => {
    const at = caseFolder('appeared');
    const path = join(at, 'new.json');
    await assertStateWritable(path);
    writeFileSync(path, 'theirs\n', { mode: 0o600 });
    const refused = await refusal(writeState(path, saved(1)));
    expect(refused.message).toContain(`${path} is not the file this run found absent: another was put there during the run`);
    expect(readFileSync(path, 'utf8')).toBe('theirs\n');
  });

  it('takes the file each save renamed into place, goes on writing through a link given as the state path, and writes afresh a file removed meanwhile', async () => {
    const at = caseFolder('own-saves');
    const volume = join(at, 'volume.json');
    const link = join(at, 'link.json');
    await writeState(volume, saved(1));
    symlinkSync('volume.json', link);
    await assertStateWritable(link);
    for (const size of [2, 3, 4]) await writeState(link, saved(size));
    expect(readlinkSync(link)).toBe('volume.json');
    expect((await readState(volume))!.size).toBe(4);
    // Removed while the run goes on (moved away as the evidence of a fork): made anew.
    await assertStateWritable(volume);
    rmSync(volume);
    await writeState(volume, saved(5));
    await writeState(volume, saved(6));
    expect((await readState(link))!.size).toBe(6);
  });

  it('stops a long `log monitor` run at the save after the swap, before it writes its state over the file a link points to', async () => {
    const at = caseFolder('monitor');
    const path = join(at, 'mon.json');
    const target = victim(at);
    const logKey = generateSignerKey('log.state-files.test');
    const entries = syntheticEntries(300);
    const logs = [memoryLog(entries.slice(0, 256), logKey.signerKey), memoryLog(entries, logKey.signerKey)];
    let round = 0;
    const served = (): MemoryLog => logs[Math.min(round, 1)]!;
    const deps = recordingDeps((async (input: URL | string) => {
      const asked = new URL(String(input));
      if (asked.pathname === '/v1/log/checkpoint') return new Response(served().note, { headers: { 'content-type': 'text/plain' } });
      if (asked.pathname === '/v1/log/keys') return Response.json({ keys: served().keyList });
      if (asked.pathname === '/v1/log/proof/consistency') {
        const hashes = consistencyProofFromLeaves(Number(asked.searchParams.get('from')), served().leaves.slice(0, Number(asked.searchParams.get('to'))));
        return Response.json({ hashes: hashes.map((hash) => Buffer.from(hash).toString('base64')) });
      }
      return Response.json({ title: 'Not found' }, { status: 404 });
    }) as typeof globalThis.fetch);
    // Between the rounds, the other account swaps the state for a link; the log grows meanwhile.
    deps.sleep = async () => {
      round += 1;
      if (round === 1) swap(path, (aside) => symlinkSync(target, aside));
    };
    const failure = await failureOf(monitorCommand({ url: 'http://log.test', key: logKey.verifierKey, state: path, maxRounds: '2', intervalMs: '1' }, deps));
    expect(failure.message).toContain(`couldn't save the checkpoint to the state file ${path}: it now leads to ${target}`);
    expect(readFileSync(target, 'utf8')).toBe('precious root config\n');
    expect(lstatSync(path).isSymbolicLink()).toBe(true);
  });
});

describe('a state file other accounts can write', () => {
  it('is refused (exit 2, naming the chmod that mends it) when its group or others can write it, before anything is checked and when it is read', async () => {
    const at = caseFolder('open-mode');
    const path = join(at, 'v.json');
    await writeState(path, saved(1));
    for (const mode of [0o666, 0o620, 0o602]) {
      chmodSync(path, mode);
      const message = `the state file ${path} can be written by its group or others (mode ${mode.toString(8)}), who could choose the checkpoint the log is held to; check what it holds, then run chmod go-w ${path}`;
      for (const refused of [await refusal(assertStateWritable(path)), await refusal(readMonitorState(path))]) {
        expect(refused.exitCode).toBe(2);
        expect(refused.message).toBe(message);
      }
    }
    chmodSync(path, 0o644);
    await assertStateWritable(path);
    expect((await readState(path))!.size).toBe(1);
  });

  it('is refused at a save (exit 2) when it became open to its group since the run started, and is left as it was: a save never carries the mode on', async () => {
    const at = caseFolder('open-mode-mid-run');
    const path = join(at, 'v.json');
    await writeState(path, saved(1));
    await assertStateWritable(path);
    chmodSync(path, 0o660);
    const refused = await refusal(writeState(path, saved(2)));
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toContain(`run chmod go-w ${path}`);
    expect(statSync(path).mode & 0o777).toBe(0o660);
    chmodSync(path, 0o600);
    expect((await readState(path))!.size).toBe(1);
  });

  it('is refused (exit 2) when it is new and its folder is open to its group or others, sticky or not; nothing is made there', async () => {
    for (const mode of [0o777, 0o1777, 0o770]) {
      const at = caseFolder(`open-folder-${mode.toString(8)}`);
      chmodSync(at, mode);
      const path = join(at, 'v.json');
      const refused = await refusal(assertStateWritable(path));
      expect(refused.exitCode).toBe(2);
      expect(refused.message).toBe(`the folder ${at} of the new state file ${path} can be written by its group or others (mode ${mode.toString(8)}), who could put a link or a state of their own there; give --state a path in a folder only this account can write`);
      expect((await refusal(writeState(path, saved(1)))).exitCode).toBe(2);
      expect(existsSync(path)).toBe(false);
    }
  });

  // Giving a file to another account needs root (CI runs as root).
  it.skipIf(process.getuid?.() !== 0)('is refused (exit 2, naming the chown that mends it) when another account owns it, or the folder of a new one', async () => {
    const at = caseFolder('other-owner');
    const path = join(at, 'v.json');
    await writeState(path, saved(1));
    chownSync(path, 65534, 65534);
    const message = `the state file ${path} belongs to another account (uid 65534; this one is uid 0), which could choose the checkpoint the log is held to; check what it holds, then run chown 0 ${path}`;
    for (const refused of [await refusal(assertStateWritable(path)), await refusal(readMonitorState(path))]) {
      expect(refused.exitCode).toBe(2);
      expect(refused.message).toBe(message);
    }
    expect(statSync(path).uid).toBe(65534);

    const theirs = caseFolder('their-folder');
    chownSync(theirs, 65534, 65534);
    const refused = await refusal(assertStateWritable(join(theirs, 'v.json')));
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toBe(`the folder ${theirs} of the new state file ${join(theirs, 'v.json')} belongs to another account (uid 65534; this one is uid 0), which could put a link or a state of its own there; give --state a path in a folder of this account's`);
  });

  it.skipIf(process.getuid?.() !== 0)('written through a link to a file of another account\'s is refused too, and that file keeps its owner and text', async () => {
    const at = caseFolder('link-to-theirs');
    const theirs = join(at, 'theirs.json');
    await writeState(theirs, saved(1));
    chownSync(theirs, 65534, 65534);
    const before = readFileSync(theirs, 'utf8');
    const link = join(at, 'link.json');
    symlinkSync('theirs.json', link);
    const refused = await refusal(writeState(link, saved(2)));
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toBe(`the state file ${theirs} belongs to another account (uid 65534; this one is uid 0), which could choose the checkpoint the log is held to; check what it holds, then run chown 0 ${theirs}`);
    expect(readFileSync(theirs, 'utf8')).toBe(before);
    expect(statSync(theirs).uid).toBe(65534);
  });
});
