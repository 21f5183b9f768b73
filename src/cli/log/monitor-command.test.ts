/**
 * `log monitor` run by cron (--max-rounds 1): what one run leaves open, a signed head whose
 * proof the log withheld and the rounds left unsettled, the next run is held to, as one long
 * run holds its later rounds; and a Retry-After longer than a timer can wait is capped.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../../core/limits.ts';
import { consistencyProofFromLeaves, generateSignerKey } from '../../tlog/index.ts';
import { memoryLog, syntheticEntries, type MemoryLog } from '../../../test/tlog/memory-log.ts';
import { failureOf } from '../../../test/support/failure.ts';
import { monitorCommand } from './monitor-command.ts';
import { readMonitorState, readState, writeState } from './state.ts';
import { recordingDeps } from './test-deps.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-monitor-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
const file = (name: string) => join(folder, name);

const logKey = generateSignerKey('log.monitor.test');
const url = 'http://log.test';
const entries = syntheticEntries(300);
const honest = memoryLog(entries, logKey.signerKey);
/** Signed by the log's key, of the honest log's size, with another root. */
const forked = memoryLog(syntheticEntries(300, 120, 'fork'), logKey.signerKey);

/**
 * A log at http://log.test that serves `log()`'s checkpoint, its key list and its consistency
 * proofs; while `withheld()`, every proof is answered 503.
 */
function serving(log: () => MemoryLog, withheld: () => boolean): typeof fetch {
  return (async (input: URL | string) => {
    const target = new URL(String(input));
    if (target.pathname === '/v1/log/checkpoint') return new Response(log().note, { headers: { 'content-type': 'text/plain' } });
    if (target.pathname === '/v1/log/keys') return Response.json({ keys: log().keyList });
    if (target.pathname === '/v1/log/proof/consistency') {
      if (withheld()) return Response.json({ title: 'Unavailable' }, { status: 503 });
      const hashes = consistencyProofFromLeaves(Number(target.searchParams.get('from')), log().leaves.slice(0, Number(target.searchParams.get('to'))));
      return Response.json({ hashes: hashes.map((hash) => Buffer.from(hash).toString('base64')) });
    }
    return Response.json({ title: 'Not found' }, { status: 404 });
  }) as typeof globalThis.fetch;
}

/** A state file at 256 entries of the honest log, as the current release writes it. */
async function savedAt256(name: string): Promise<string> {
  const earlier = memoryLog(entries.slice(0, 256), logKey.signerKey);
  await writeState(file(name), { origin: earlier.signed.origin, size: 256, rootHash: earlier.signed.rootHash, note: earlier.note });
  return file(name);
}

describe('log monitor run by cron, on a log that forks and withholds the proof', () => {
  it('raises in the next run the alert that one run of two rounds raises, and prints the unproven note when first seen', async () => {
    // One process, two rounds: the fork with its proof withheld, then the honest head of the same size.
    let rounds = 0;
    const together = recordingDeps(serving(() => (rounds <= 1 ? forked : honest), () => rounds <= 1));
    const counted = together.fetch!;
    together.fetch = (async (input: URL | string, init?: RequestInit) => {
      if (new URL(String(input)).pathname === '/v1/log/checkpoint') rounds += 1;
      return counted(input, init);
    }) as typeof globalThis.fetch;
    const once = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: await savedAt256('together.state'), maxRounds: '2', intervalMs: '1' }, together));
    const alert = together.err.find((line) => line.startsWith('ALERT'));
    expect(alert).toMatch(new RegExp(`^ALERT \\[consistency\\] http://log\\.test: inconsistent: the checkpoint of size 300 served earlier \\(root ${forked.signed.rootHash.toString('hex')}\\)`));

    // The same as two cron runs of one round each.
    const state = await savedAt256('cron.state');
    const first = recordingDeps(serving(() => forked, () => true));
    const unreached = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, first));
    expect(unreached.message).toBe("log monitor couldn't reach the log at http://log.test in any of its 1 round(s); nothing was checked");
    expect(first.err.filter((line) => line.startsWith('ALERT'))).toEqual([]);
    // The signed note the log left unproven is said at once, line by line: evidence outside the state file too.
    const said = first.err.filter((line) => !line.startsWith('note: ')); // the transport's retries
    expect(said[0]).toBe(`warning: the log signed the checkpoint of size 300 (root ${forked.signed.rootHash.toString('hex')}) without a proof that it extends the others; ${state} keeps it, and later rounds are held to it. Its note as served:`);
    expect(said.slice(1, 1 + forked.note.trimEnd().split('\n').length)).toEqual(forked.note.trimEnd().split('\n').map((line) => `  ${line}`));
    const kept = await readMonitorState(state);
    expect(kept?.saved?.size).toBe(256);
    expect(kept?.unsettled).toEqual({ rounds: 1, heads: [{ size: 300, rootHash: forked.signed.rootHash, note: forked.note }] });

    const second = recordingDeps(serving(() => honest, () => false));
    const stopped = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, second));
    // README: the monitor stops with exit 1 at the first alert.
    expect({ exitCode: stopped.exitCode, message: stopped.message.replace(state, 'STATE') }).toEqual({ exitCode: 1, message: once.message.replace(file('together.state'), 'STATE') });
    expect(stopped.message).toBe(`log monitor stopped on an alert; ${state} still holds the last consistent checkpoint (size 256)`);
    expect(second.err.filter((line) => line.startsWith('ALERT'))).toEqual([alert]);
    // Nothing moved on: the honest head is not saved over the fork's evidence. Both signed
    // heads of size 300 are kept, the pair that proves the fork, and a third run alerts again.
    expect((await readMonitorState(state))?.unsettled.heads.map((head) => head.note)).toEqual([forked.note, honest.note]);
    expect((await readState(state))?.size).toBe(256);
    const third = recordingDeps(serving(() => honest, () => false));
    expect((await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, third))).message).toBe(stopped.message);
    expect(third.err.filter((line) => line.startsWith('ALERT'))).toEqual([alert]);
  });

  it('keeps a fork it meets at once (same size, or a proof that does not verify), and alerts on it in every later run though the log goes back to the honest view', async () => {
    // Case 1: the state holds the honest head of size 300; the log serves a forked one of that size once.
    const honestState = file('fork-at-once.state');
    await writeState(honestState, { origin: honest.signed.origin, size: 300, rootHash: honest.signed.rootHash, note: honest.note });
    // Case 2: the state holds size 256; the log serves a forked 300 whose proof does not verify.
    const grownState = await savedAt256('fork-proof.state');
    for (const state of [honestState, grownState]) {
      const first = recordingDeps(serving(() => forked, () => false));
      expect((await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, first))).message).toMatch(/^log monitor stopped on an alert/);
      // The forked note is said whole before the alert, and kept.
      expect(first.err[0]).toBe(`the log signed the checkpoint of size 300 (root ${forked.signed.rootHash.toString('hex')}), which contradicts what this monitor holds; ${state} keeps it as evidence, and later rounds are held to it. Its note as served:`);
      expect(first.err.slice(1, 1 + forked.note.trimEnd().split('\n').length)).toEqual(forked.note.trimEnd().split('\n').map((line) => `  ${line}`));
      expect((await readMonitorState(state))?.unsettled.heads.map((head) => head.note)).toContain(forked.note);
      // Before this fix the log's going back made these runs exit 0, "consistent: size 300".
      for (let run = 0; run < 2; run += 1) {
        const later = recordingDeps(serving(() => honest, () => false));
        expect((await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, later))).message).toMatch(/^log monitor stopped on an alert/);
        expect(later.err.filter((line) => line.startsWith('ALERT'))).toHaveLength(1);
      }
      expect((await readMonitorState(state))?.unsettled.heads.map((head) => head.note)).toContain(forked.note);
    }
  });

  it(`counts the unsettled rounds across runs: the ${limits.monitorUnprovenRoundsMax}rd cron run alerts, as the ${limits.monitorUnprovenRoundsMax}rd round of one run does`, async () => {
    const state = await savedAt256('unsettled.state');
    const withheld = serving(() => honest, () => true);
    for (let run = 1; run < limits.monitorUnprovenRoundsMax; run += 1) {
      const deps = recordingDeps(withheld);
      expect((await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, deps))).message).toMatch(/couldn't reach the log/);
      expect((await readMonitorState(state))?.unsettled.rounds).toBe(run);
    }
    const last = recordingDeps(withheld);
    expect((await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, last))).message).toMatch(/^log monitor stopped on an alert/);
    expect(last.err.at(-1)).toMatch(new RegExp(`^ALERT \\[consistency\\] http://log\\.test: unsettled: in ${limits.monitorUnprovenRoundsMax} rounds since all it served was last settled`));
    // Once the log proves what it served, nothing is left open, and the state is the checkpoint alone (version 1).
    expect(await monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, recordingDeps(serving(() => honest, () => false)))).toBe(0);
    expect(await readMonitorState(state)).toEqual({ origin: 'log.monitor.test', saved: expect.objectContaining({ size: 300 }), unsettled: { rounds: 0, heads: [] } });
    expect(JSON.parse(readFileSync(state, 'utf8')).version).toBe(1);
  });

  it('keeps what a first run left open, before it saved any checkpoint, and refuses it for another log', async () => {
    // A first run whose checkpoint was read but whose key list was not: a round unsettled, no checkpoint yet.
    const state = file('first.state');
    const noKeys = (async (input: URL | string, init?: RequestInit) => {
      if (new URL(String(input)).pathname === '/v1/log/keys') return Response.json({ title: 'Unavailable' }, { status: 503 });
      return serving(() => honest, () => false)(input, init);
    }) as typeof globalThis.fetch;
    await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, recordingDeps(noKeys)));
    expect(await readMonitorState(state)).toEqual({ origin: 'log.monitor.test', saved: undefined, unsettled: { rounds: 1, heads: [] } });
    const other = generateSignerKey('other.monitor.test');
    const refused = await failureOf(monitorCommand({ url, key: other.verifierKey, state, maxRounds: '1' }, recordingDeps(noKeys)));
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(/holds a checkpoint of the log "log\.monitor\.test", not of "other\.monitor\.test"/);
  });
});

describe('log monitor asked by the log to wait longer than a timer can', () => {
  it('leaves the state file alone through quiet rounds: it is replaced only when what it holds changes', async () => {
    const state = await savedAt256('quiet.state');
    const inodes: number[] = [];
    const deps = { ...recordingDeps(serving(() => honest, () => false)), sleep: async () => void inodes.push(statSync(state).ino) };
    expect(await monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '5', intervalMs: '1' }, deps)).toBe(0);
    inodes.push(statSync(state).ino);
    // The first round moved the checkpoint (256 to 300) and saved it; the four after found the same and saved nothing.
    expect(new Set(inodes.slice(0)).size, JSON.stringify(inodes)).toBe(1);
  });

  it(`waits ${limits.monitorIntervalMsMax} ms at most, and says so, whatever the Retry-After`, async () => {
    for (const retryAfter of ['2147484', 'Fri, 01 Jan 2100 00:00:00 GMT']) {
      const busy = (async () => new Response('{"code":"overloaded"}', { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': retryAfter } })) as typeof globalThis.fetch;
      const slept: number[] = [];
      const deps = { ...recordingDeps(busy), sleep: async (ms: number) => void slept.push(ms) };
      await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('busy.state'), maxRounds: '3', intervalMs: '10' }, deps));
      expect(slept).toEqual([limits.monitorIntervalMsMax, limits.monitorIntervalMsMax]);
      expect(deps.err[0]).toMatch(new RegExp(`answered 503.*; trying again in ${limits.monitorIntervalMsMax} ms, the longest it waits \\(the log asked for \\d+ ms\\)$`));
    }
  });
});
