import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isProcessAlive, processStartTime } from '../src/store/processes.ts';
import { claimTestCluster, removeStaleTestClusters, testClusterPrefix, testRunPidFile, unclaimedClusterAgeMsMax } from './stale-clusters.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-stale-clusters-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const nowMs = Date.parse('2026-02-01T12:00:00Z');
const longAgoMs = nowMs - 2 * unclaimedClusterAgeMsMax;

/** A tmpdir of its own for each test. */
const newTmpdir = () => mkdtempSync(join(folder, 'tmp-'));

/** A run's cluster folder as global-setup makes it in `parent`: its run's pid file, its postmaster's, last changed at `changedMs`. */
function cluster(parent: string, name: string, files: { run?: string; postmaster?: string }, changedMs = nowMs): string {
  const path = join(parent, `${testClusterPrefix}${name}`);
  mkdirSync(join(path, 'pg'), { recursive: true });
  writeFileSync(join(path, 'pg', 'PG_VERSION'), '16\n');
  if (files.run !== undefined) writeFileSync(join(path, testRunPidFile), files.run);
  if (files.postmaster !== undefined) writeFileSync(join(path, 'pg', 'postmaster.pid'), `${files.postmaster}\n${path}/pg\n1769947200\n5432\n`);
  utimesSync(path, changedMs / 1000, changedMs / 1000);
  return path;
}

/** The pid of a process that has exited and been reaped: no process has it now. */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '']).pid;
  expect(isProcessAlive(pid)).toBe(false);
  return pid;
}

describe('removeStaleTestClusters', () => {
  it("removes a Ctrl-C'd run's cluster (run dead, PostgreSQL's pid file gone with its fast shutdown), and keeps a live run's", () => {
    const parent = newTmpdir();
    const interrupted = cluster(parent, 'ctrlc0', { run: `${deadPid()} 123\n` });
    const live = cluster(parent, 'live00', { run: `${process.pid} ${processStartTime(process.pid) ?? ''}\n` }, longAgoMs);
    expect(removeStaleTestClusters(parent, nowMs)).toEqual([interrupted]);
    expect([interrupted, live].map(existsSync)).toEqual([false, true]);
  });

  it('removes a cluster whose postmaster is dead, and keeps one whose postmaster lives, whatever its run', () => {
    const parent = newTmpdir();
    const dead = cluster(parent, 'dead00', { postmaster: String(deadPid()) });
    const live = cluster(parent, 'live00', { postmaster: String(process.pid) }, longAgoMs); // a run from before runs claimed their folder
    const orphan = cluster(parent, 'orphn0', { run: String(deadPid()), postmaster: String(process.pid) });
    expect(removeStaleTestClusters(parent, nowMs)).toEqual([dead]);
    expect([dead, live, orphan].map(existsSync)).toEqual([false, true, true]);
  });

  // Without /proc there are no start times, and a live pid is taken for the run.
  it.skipIf(processStartTime(process.pid) === null)('takes a pid reused by another process for a dead run, where /proc gives start times', () => {
    const parent = newTmpdir();
    const reused = cluster(parent, 'reuse0', { run: `${process.pid} ${processStartTime(process.pid)}0\n` });
    expect(removeStaleTestClusters(parent, nowMs)).toEqual([reused]);
  });

  it('keeps a folder naming no process (being made, or a pid file being written) until it is older than unclaimedClusterAgeMsMax', () => {
    const parent = newTmpdir();
    const fresh = cluster(parent, 'fresh0', {}); // another run between its mkdtemp and claiming it
    const writing = cluster(parent, 'write0', { run: '' });
    const young = cluster(parent, 'young0', {}, nowMs - unclaimedClusterAgeMsMax + 60_000);
    const old = cluster(parent, 'old000', {}, nowMs - unclaimedClusterAgeMsMax - 1);
    expect(removeStaleTestClusters(parent, nowMs)).toEqual([old]);
    expect([fresh, writing, young].map(existsSync)).toEqual([true, true, true]);
  });

  it('claimTestCluster names this process, so that its own folder is kept', () => {
    const parent = newTmpdir();
    const own = mkdtempSync(join(parent, testClusterPrefix));
    claimTestCluster(own);
    utimesSync(own, 0, 0);
    expect(readFileSync(join(own, testRunPidFile), 'utf8')).toMatch(new RegExp(`^${process.pid} \\d*\\n$`));
    expect(removeStaleTestClusters(parent, nowMs)).toEqual([]);
  });

  it('leaves alone what is not a cluster folder: other names, and a file or a link by that name', () => {
    const parent = newTmpdir();
    const other = join(parent, 'chipledger-crash-abc123');
    mkdirSync(other);
    utimesSync(other, 0, 0);
    writeFileSync(join(parent, `${testClusterPrefix}file00`), 'not a folder');
    symlinkSync(other, join(parent, `${testClusterPrefix}link00`));
    const before = readdirSync(parent).sort();
    expect(removeStaleTestClusters(parent, nowMs)).toEqual([]);
    expect(readdirSync(parent).sort()).toEqual(before);
  });

  it('answers nothing for a folder that does not exist', () => {
    expect(removeStaleTestClusters(join(newTmpdir(), 'nonexistent'), nowMs)).toEqual([]);
  });
});
