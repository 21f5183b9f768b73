/**
 * The log commands' operating errors, over a fake HTTP server that serves an in-memory log:
 * each is a Failure with a message (exit 1, or 2 for a usage mistake), never a stack trace,
 * and a state file of another log is refused before it can raise a false alarm.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../../core/limits.ts';
import {
  consistencyProofFromLeaves, formatCheckpoint, formatTlogProof, generateCosignerKey, generateSignerKey, inclusionProofFromLeaves, keyRotationExtension, newTiles,
  parseSignerKey, parseVerifierKey, signNote, tilePath,
} from '../../tlog/index.ts';
import { memoryLog, syntheticEntries, type MemoryLog } from '../../../test/tlog/memory-log.ts';
import { Failure, printableJson } from '../output.ts';
import { keygenCommand, monitorCommand, proveCommand, verifyCommand, witnessCommand } from './commands.ts';
import { readMonitorState, readState, savedFrom, writeState } from './state.ts';
import { failureOf } from '../../../test/support/failure.ts';
import { recordingDeps } from './test-deps.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-log-commands-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
const file = (name: string) => join(folder, name);

const logKey = generateSignerKey('log.commands.test');
const otherLogKey = generateSignerKey('other.log.test');
const witnessKey = generateCosignerKey('witness.commands.test');
writeFileSync(file('witness.key'), `${witnessKey.signerKey}\n`, { mode: 0o600 });
const url = 'http://log.test';

/** A fetch that serves `log` at http://log.test as the server does; `override` answers first where it likes. */
function serving(log: MemoryLog, override: (path: string) => Response | undefined = () => undefined): { fetch: typeof fetch; paths: string[] } {
  const paths: string[] = [];
  const tiles = new Map(newTiles(0, log.leaves.length).map((tile) => [`/v1/log/${tilePath(tile.level, tile.index, tile.width)}`, log.tiles.get(`${tile.level}/${tile.index}`)!.subarray(0, tile.width * 32)]));
  const fetch = (async (input: URL | string) => {
    const target = new URL(String(input));
    const path = target.pathname;
    paths.push(`${path}${target.search}`);
    const answer = override(path);
    if (answer) return answer;
    if (path === '/v1/log/checkpoint') return new Response(log.note, { headers: { 'content-type': 'text/plain' } });
    const tile = tiles.get(path);
    if (tile) return new Response(tile, { headers: { 'content-type': 'application/octet-stream' } });
    if (path === '/v1/log/proof/consistency') {
      const hashes = consistencyProofFromLeaves(Number(target.searchParams.get('from')), log.leaves.slice(0, Number(target.searchParams.get('to'))));
      return Response.json({ hashes: hashes.map((hash) => Buffer.from(hash).toString('base64')) });
    }
    const proof = /^\/v1\/log\/events\/(\d+)\/proof$/.exec(path);
    if (proof) {
      const index = Number(proof[1]);
      return new Response(formatTlogProof({ index, inclusionProof: inclusionProofFromLeaves(index, log.leaves).map((hash) => Buffer.from(hash)), checkpointNote: log.note }));
    }
    if (path === '/v1/log/cosignatures') return Response.json({ stored: 1 });
    if (path === '/v1/log/keys') return Response.json({ keys: log.keyList });
    return Response.json({ title: 'Not found' }, { status: 404 });
  }) as typeof globalThis.fetch;
  return { fetch, paths };
}

const deps = recordingDeps;


const entries = syntheticEntries(300);
const log = () => memoryLog(entries.slice(), logKey.signerKey);

describe('state files', () => {
  it('a state file that cannot be written is a Failure naming it, said before the log is checked, and no temporary file is left', async () => {
    // A verification of a big log takes hours: a state it cannot save is said before it starts.
    const { fetch, paths } = serving(log());
    const state = file('no-such-folder/verify.state');
    const runs = [
      () => verifyCommand({ url, key: logKey.verifierKey, state }, deps(fetch)),
      () => monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '1' }, deps(fetch)),
      () => witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: file('witness.key'), state }, deps(fetch)),
    ];
    for (const run of runs) {
      const failure = await failureOf(run());
      expect(failure.exitCode).toBe(1);
      expect(failure.message).toBe(`couldn't save a checkpoint to the state file ${state}: its folder ${file('no-such-folder')} does not exist; nothing was checked`);
    }
    // A relative --state is named by its absolute path: under `npm run`, it is taken from the repository root.
    const relative = join('no-such-folder', 'verify.state');
    const failure = await failureOf(verifyCommand({ url, key: logKey.verifierKey, state: relative }, deps(fetch)));
    expect(failure.message).toBe(`couldn't save a checkpoint to the state file ${join(process.cwd(), relative)}: its folder no-such-folder does not exist; nothing was checked`);
    expect(paths).toEqual([]);
    // A folder where the file should go: the temporary file is written, the rename fails.
    const blocked = file('blocked.state');
    mkdirSync(join(blocked, 'inside'), { recursive: true });
    const served = log();
    const refused = await writeState(blocked, { origin: served.signed.origin, size: served.signed.size, rootHash: served.signed.rootHash, note: served.note }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Failure);
    expect((refused as Failure).message).toMatch(/^couldn't save the checkpoint to the state file .*blocked\.state: /);
    expect(readdirSync(folder).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it("refuses a state file of another log (exit 2) in verify, monitor and witness, before raising any alarm", async () => {
    const other = memoryLog(syntheticEntries(300, 120, 'other'), otherLogKey.signerKey);
    await writeState(file('other.state'), { origin: other.signed.origin, size: other.signed.size, rootHash: other.signed.rootHash, note: other.note });
    const expected = `the state file ${file('other.state')} holds a checkpoint of the log "other.log.test", not of "log.commands.test" (the log of the verifier key given); give this log its own state file (a new path starts afresh)`;
    const { fetch, paths } = serving(log());
    // Started one at a time: a command started before its failure is awaited rejects unhandled.
    const runs = [
      () => verifyCommand({ url, key: logKey.verifierKey, state: file('other.state') }, deps(fetch)),
      () => monitorCommand({ url, key: logKey.verifierKey, state: file('other.state'), maxRounds: '1' }, deps(fetch)),
      () => witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: file('witness.key'), state: file('other.state') }, deps(fetch)),
    ];
    for (const run of runs) {
      const failure = await failureOf(run());
      expect(failure.message).toBe(expected);
      expect(failure.exitCode).toBe(2);
    }
    expect(paths).toEqual([]);
    expect((await readState(file('other.state')))!.origin).toBe('other.log.test'); // untouched
  });
});

describe('answers that are not what a log serves', () => {
  it('a consistency proof that is not JSON is a failed consistency check naming the URL, not a parser crash', async () => {
    const served = log();
    await writeState(file('grown.state'), { origin: served.signed.origin, size: 100, rootHash: memoryLog(entries.slice(0, 100), logKey.signerKey).signed.rootHash, note: '' });
    const html = () => new Response('<html>Bad gateway</html>', { status: 200, headers: { 'content-type': 'text/html' } });
    const run = deps(serving(served, (path) => (path === '/v1/log/proof/consistency' ? html() : undefined)).fetch);
    const failure = await failureOf(verifyCommand({ url, key: logKey.verifierKey, state: file('grown.state') }, run));
    // A 200 that is no proof is the log's answer, as log monitor takes it: not "no check failed".
    expect(failure.message).toBe(`log verify: 1 problem(s) in the log at http://log.test; ${file('grown.state')} was not updated`);
    expect(run.err).toContainEqual(expect.stringMatching(/^FAILED \[consistency\] unproven: the log signed a checkpoint of size 300 but gave no proof that it extends the one of size 100 saved earlier: http:\/\/log\.test\/v1\/log\/proof\/consistency\?from=100&to=300 answered with something that is not a JSON object \("<html>Bad gateway<\/html>"…\); is --url a chipledger server\?$/));
  });

  it('log data of the wrong shape, or a proof refused, fails the check it is for; a 5xx or a missing tile is still no check failed', async () => {
    const served = log();
    const at100 = memoryLog(entries.slice(0, 100), logKey.signerKey);
    const bundle = (list: Buffer[]) => Buffer.concat(list.flatMap((entry) => [Buffer.from([entry.length >> 8, entry.length & 0xff]), entry]));
    const cases: Array<[string, (path: string) => Response | undefined, RegExp]> = [
      ['a tile 32 bytes too long', (path) => (path === '/v1/log/tile/0/000' ? new Response(Buffer.concat([served.tiles.get('0/0')!, Buffer.alloc(32)])) : undefined),
        /^FAILED \[tile\] the log served tile tile\/0\/000 malformed: GET http:\/\/log\.test\/v1\/log\/tile\/0\/000: expected 8192 bytes \(256 hashes\), got 8224$/],
      ['a tile 32 bytes too short', (path) => (path === '/v1/log/tile/0/000' ? new Response(served.tiles.get('0/0')!.subarray(32)) : undefined), /^FAILED \[tile\] .*expected 8192 bytes \(256 hashes\), got 8160$/],
      ['an entry bundle of 257 entries', (path) => (path === '/v1/log/tile/entries/000' ? new Response(bundle([...entries.slice(0, 256), entries[0]!])) : undefined),
        /^FAILED \[entry\] the log served entry bundle 0 malformed: GET http:\/\/log\.test\/v1\/log\/tile\/entries\/000: not an entry bundle of 256 entries \(257 entries\)$/],
      ['a consistency proof refused with 404', (path) => (path === '/v1/log/proof/consistency' ? Response.json({ title: 'Not found' }, { status: 404 }) : undefined),
        /^FAILED \[consistency\] unproven: the log signed a checkpoint of size 300 but gave no proof that it extends the one of size 100 saved earlier: .*answered 404: Not found$/],
      ['an oversized consistency proof', (path) => (path === '/v1/log/proof/consistency' ? new Response(Buffer.alloc(limits.logResponseBytesMax + 1, 0x20), { headers: { 'content-type': 'application/json' } }) : undefined),
        /^FAILED \[consistency\] unproven: .*the answer is more than \d+ bytes/],
    ];
    for (const [name, override, said] of cases) {
      const state = file(`malformed-${cases.findIndex(([other]) => other === name)}.state`);
      await writeState(state, savedFrom(at100.signed, at100.note));
      const run = deps(serving(served, (path) => override(path) ?? (path.startsWith('/v1/log/tile/entries/') ? new Response(bundle(entries.slice(Number(/entries\/(\d{3})/.exec(path)![1]) * 256, 300).slice(0, 256))) : undefined)).fetch);
      const failure = await failureOf(verifyCommand({ url, key: logKey.verifierKey, token: 'clt_auditor', state }, run));
      expect(run.err.filter((line) => line.startsWith('FAILED')), name).toEqual([expect.stringMatching(said)]);
      expect(failure.message, name).toBe(`log verify: 1 problem(s) in the log at http://log.test; ${state} was not updated`);
    }
    // The data not there to check: a 503 on a proof, a tile not found. Nothing was found wrong.
    for (const override of [(path: string) => (path === '/v1/log/proof/consistency' ? Response.json({ title: 'Unavailable' }, { status: 503 }) : undefined), (path: string) => (path === '/v1/log/tile/0/000' ? Response.json({ title: 'Not found' }, { status: 404 }) : undefined)]) {
      const state = file('not-there.state');
      await writeState(state, savedFrom(at100.signed, at100.note));
      const run = deps(serving(served, override).fetch);
      const failure = await failureOf(verifyCommand({ url, key: logKey.verifierKey, state }, run));
      expect(run.err.filter((line) => line.startsWith('FAILED'))).toEqual([expect.stringMatching(/^FAILED \[fetch\] couldn't fetch /)]);
      expect(failure.message).toMatch(/it is NOT verified, and no check failed/);
    }
  });

  it("the witness names a cosignature answer that is not JSON", async () => {
    const run = deps(serving(log(), (path) => (path === '/v1/log/cosignatures' ? new Response('OK', { status: 200 }) : undefined)).fetch);
    const failure = await failureOf(witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: file('witness.key'), state: file('witness.state') }, run));
    expect(failure.message).toBe('http://log.test/v1/log/cosignatures answered with something that is not a JSON object ("OK"…); is --url a chipledger server?');
  });

  it('a checkpoint sent without a length is read only up to the bound, then refused', async () => {
    let pulled = 0;
    const endless = () => new Response(new ReadableStream({
      pull(controller) {
        pulled += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024).fill(0x61));
      },
    }), { status: 200, headers: { 'content-type': 'text/plain' } });
    const run = deps(serving(log(), (path) => (path === '/v1/log/checkpoint' ? endless() : undefined)).fetch);
    const failure = await failureOf(verifyCommand({ url, key: logKey.verifierKey }, run));
    expect(run.err.join('\n')).toContain(`the answer is more than ${limits.logResponseBytesMax} bytes`);
    expect(failure.exitCode).toBe(1);
    expect(pulled).toBeLessThan(limits.logResponseBytesMax + 4 * 64 * 1024);
  });

  it('--url with a password is refused as a usage error without printing the password', async () => {
    const failure = await failureOf(verifyCommand({ url: 'https://auditor:hunter6@log.test', key: logKey.verifierKey }, deps(serving(log()).fetch)));
    expect(failure.exitCode).toBe(2);
    expect(failure.message).not.toContain('hunter6');
    expect(failure.message).toBe('chipledger: --url must not hold a user name or password; give a token with --token');
  });
});

describe('log prove --out', () => {
  it('a proof that cannot be saved is a Failure naming the file', async () => {
    writeFileSync(file('event-7.json'), entries[7]!);
    const failure = await failureOf(proveCommand('7', { url, key: logKey.verifierKey, eventFile: file('event-7.json'), out: file('no-such-folder/7.proof') }, deps(serving(log()).fetch)));
    expect(failure.message).toMatch(/^couldn't save the proof to .*no-such-folder\/7\.proof: ENOENT/);
    const relative = await failureOf(proveCommand('7', { url, key: logKey.verifierKey, eventFile: file('event-7.json'), out: join('no-such-folder', '7.proof') }, deps(serving(log()).fetch)));
    expect(relative.message).toMatch(new RegExp(`^couldn't save the proof to ${join(process.cwd(), 'no-such-folder', '7.proof').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));
    const saved = deps(serving(log()).fetch);
    await proveCommand('7', { url, key: logKey.verifierKey, eventFile: file('event-7.json'), out: file('7.proof') }, saved);
    expect(existsSync(file('7.proof'))).toBe(true);
  });
});

describe('log monitor on an unreachable log', () => {
  it('a bounded run that never reached the log fails, and does not promise a retry after its last round', async () => {
    const down = (async () => {
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    }) as typeof globalThis.fetch;
    const run = deps(down);
    const failure = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('monitor.state'), maxRounds: '2', intervalMs: '10' }, run));
    expect(failure.message).toBe("log monitor couldn't reach the log at http://log.test in any of its 2 round(s); nothing was checked");
    // Each request's own attempts are said as they happen (cli/fetch.ts), then the round's failure.
    const attempts = [2, 3].map((attempt) => `note: couldn't reach http://log.test for GET /v1/log/checkpoint: ECONNREFUSED; sending it again in 500 ms (attempt ${attempt} of 3)`);
    expect(run.err).toEqual([
      ...attempts,
      "warning: couldn't reach http://log.test for GET /v1/log/checkpoint: ECONNREFUSED (3 attempts); trying again in 10 ms",
      ...attempts,
      "warning: couldn't reach http://log.test for GET /v1/log/checkpoint: ECONNREFUSED (3 attempts)",
    ]);
    // Reached once, then down: it did check something, so the run stands.
    let calls = 0;
    const served = serving(log());
    const flaky = (async (input: URL | string, init?: RequestInit) => {
      calls += 1;
      return calls <= 2 ? served.fetch(input, init) : down(input, init); // the checkpoint and the key list
    }) as typeof globalThis.fetch;
    expect(await monitorCommand({ url, key: logKey.verifierKey, state: file('monitor.state'), maxRounds: '2', intervalMs: '1' }, deps(flaky))).toBe(0);
  });

  it('waits before its next round as long as the log asked, when that is longer than its interval', async () => {
    const busy = (async () => new Response('{"code":"overloaded"}', { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '30' } })) as typeof globalThis.fetch;
    const slept: number[] = [];
    const run = { ...deps(busy), sleep: async (ms: number) => void slept.push(ms) };
    await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('busy.state'), maxRounds: '2', intervalMs: '10' }, run));
    expect(slept).toEqual([30_000]);
    expect(run.err[0]).toMatch(/answered 503.*; trying again in 30000 ms, as the log asked$/);
  });
});

describe('log monitor on a log that withholds its consistency proofs', () => {
  /** A state file at 256 entries of the same log that now serves 300. */
  async function savedAt256(name: string): Promise<string> {
    const earlier = memoryLog(entries.slice(0, 256), logKey.signerKey);
    await writeState(file(name), { origin: earlier.signed.origin, size: earlier.signed.size, rootHash: earlier.signed.rootHash, note: earlier.note });
    return file(name);
  }
  const proofAnswer = (answer: () => Response) => (path: string) => (path === '/v1/log/proof/consistency' ? answer() : undefined);

  it('alerts at once when the proof is refused (4xx) or is no proof, and keeps the last consistent checkpoint', async () => {
    for (const [name, answer] of [
      ['refused', () => Response.json({ title: 'Not found' }, { status: 404 })],
      ['garbled', () => Response.json({ hashes: ['AAAA'] })],
    ] as const) {
      const state = await savedAt256(`withheld-${name}.state`);
      const run = deps(serving(log(), proofAnswer(answer)).fetch);
      const failure = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: '3', intervalMs: '1' }, run));
      expect(failure.message).toMatch(/^log monitor stopped on an alert/);
      // The note the log left unproven is said first, and kept: a later run is held to it.
      expect(run.err[0]).toMatch(/^the log signed the checkpoint of size 300 \(root [0-9a-f]{64}\), which contradicts what this monitor holds; .* keeps it as evidence, and later rounds are held to it\. Its note as served:$/);
      expect(run.err.find((line) => line.startsWith('ALERT'))).toMatch(/^ALERT \[consistency\] http:\/\/log\.test: unproven: the log signed a checkpoint of size 300 but gave no proof that it extends the one of size 256/);
      expect((await readState(state))!.size).toBe(256);
      expect((await readMonitorState(state))!.unsettled.heads.map((head) => head.size)).toEqual([300]);
    }
  });

  it(`warns while the proof fails with a 5xx, and alerts after ${limits.monitorUnprovenRoundsMax} such rounds in a row`, async () => {
    const unavailable = () => Response.json({ title: 'Unavailable' }, { status: 503 });
    const short = deps(serving(log(), proofAnswer(unavailable)).fetch);
    const state = await savedAt256('withheld-5xx.state');
    // One round short of the bound: warnings only (and nothing was checked).
    await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: String(limits.monitorUnprovenRoundsMax - 1), intervalMs: '1' }, short));
    expect(short.err.filter((line) => line.startsWith('ALERT'))).toEqual([]);
    const long = deps(serving(log(), proofAnswer(unavailable)).fetch);
    const failure = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state, maxRounds: String(limits.monitorUnprovenRoundsMax + 1), intervalMs: '1' }, long));
    expect(failure.message).toMatch(/^log monitor stopped on an alert/);
    expect(long.err.at(-1)).toMatch(new RegExp(`^ALERT \\[consistency\\] http://log\\.test: unsettled: in ${limits.monitorUnprovenRoundsMax} rounds since all it served was last settled, the log served a signed checkpoint of size 300 without a proof`));
    expect((await readState(state))!.size).toBe(256);
  });
});

/** A new log key and the log at 256 entries under it, announced there by the old key and the new. */
function rotationAt256() {
  const newKey = generateSignerKey('log.commands.test');
  const at256 = memoryLog(entries.slice(0, 256), newKey.signerKey);
  const text = formatCheckpoint({ origin: at256.signed.origin, size: 256, rootHash: at256.signed.rootHash, extensions: [`${keyRotationExtension} ${newKey.verifierKey}`] });
  return { newKey, at256, announcement: signNote(text, [parseSignerKey(logKey.signerKey), parseSignerKey(newKey.signerKey)]) };
}

describe('log monitor on a log that alternates an unsettled round with an old checkpoint', () => {
  it('counts the unsettled rounds since its state last moved, not in a row', async () => {
    const earlier = memoryLog(entries.slice(0, 256), logKey.signerKey);
    await writeState(file('alternating.state'), { origin: earlier.signed.origin, size: 256, rootHash: earlier.signed.rootHash, note: earlier.note });
    let checkpoints = 0;
    const grown = log();
    const run = deps(serving(grown, (path) => {
      if (path === '/v1/log/proof/consistency') return Response.json({ title: 'Unavailable' }, { status: 503 });
      // Every other round the old checkpoint: the same as saved, so nothing moves.
      if (path === '/v1/log/checkpoint') return new Response((checkpoints += 1) % 2 === 0 ? earlier.note : grown.note);
      return undefined;
    }).fetch);
    const failure = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('alternating.state'), maxRounds: String(2 * limits.monitorUnprovenRoundsMax), intervalMs: '1' }, run));
    expect(failure.message).toMatch(/^log monitor stopped on an alert/);
    expect(run.err.at(-1)).toMatch(/^ALERT \[consistency\] .*unsettled: in 3 rounds since all it served was last settled/);
  });
});

describe('a log key the log retired', () => {
  it('is not believed again once a run followed the rotation, even when the command still gives it', async () => {
    // The log rotated to newKey at 256; the state was saved there, under the new key.
    const { newKey, at256, announcement } = rotationAt256();
    await writeState(file('retired.state'), savedFrom(at256.signed, at256.note, parseVerifierKey(newKey.verifierKey)));
    // Whoever still holds the old key signs a bigger checkpoint with it (here a consistent one).
    const forged = log();
    forged.keyList = [{ verifierKey: logKey.verifierKey, firstSize: 0, announcement: null }, { verifierKey: newKey.verifierKey, firstSize: 256, announcement }];
    const run = deps(serving(forged).fetch);
    await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('retired.state'), maxRounds: '1' }, run));
    expect(run.err[0]).toMatch(/^ALERT \[signature\] http:\/\/log\.test: the checkpoint does not verify with the log key/);
    expect((await readState(file('retired.state')))!.size).toBe(256);
  });
});

describe('a log key the log retired, in a state saved before the rotation', () => {
  it('is refused when it signs past its successor\'s announcement (whoever holds it leaked it)', async () => {
    const { newKey, announcement } = rotationAt256();
    const at200 = memoryLog(entries.slice(0, 200), logKey.signerKey);
    await writeState(file('before-rotation.state'), savedFrom(at200.signed, at200.note, parseVerifierKey(logKey.verifierKey)));
    // Size 300 signed by the old key: consistent, but the old key was retired at 256.
    const forged = log();
    forged.keyList = [{ verifierKey: logKey.verifierKey, firstSize: 0, announcement: null }, { verifierKey: newKey.verifierKey, firstSize: 256, announcement }];
    const monitored = deps(serving(forged).fetch);
    await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('before-rotation.state'), maxRounds: '1' }, monitored));
    expect(monitored.err[0]).toMatch(/^ALERT \[signature\] .*size 300 is signed by log\.commands\.test\+[0-9a-f]{8}, which the log retired at size 256/);
    const witnessed = await failureOf(witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: file('witness.key'), state: file('before-rotation.state') }, deps(serving(forged).fetch)));
    expect(witnessed.message).toMatch(/^refusing to cosign: \[signature\] .*which the log retired at size 256/);
    expect((await readState(file('before-rotation.state')))!.size).toBe(200);
  });

  it('a key list that drops the key a state recorded is the log\'s fault (exit 1), not the command\'s', async () => {
    const { newKey, at256 } = rotationAt256();
    await writeState(file('dropped.state'), savedFrom(at256.signed, at256.note, parseVerifierKey(newKey.verifierKey)));
    const failure = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('dropped.state'), maxRounds: '1' }, deps(serving(log()).fetch)));
    expect({ exitCode: failure.exitCode, message: failure.message }).toEqual({ exitCode: 1, message: expect.stringMatching(/^\[signature\] the log's key list does not follow the key recorded in .*dropped\.state/) });
  });
});

describe('log monitor holds later rounds to a signed head it could not settle', () => {
  it('a fork served without proofs is not forgotten when a good checkpoint moves the state', async () => {
    const at200 = memoryLog(entries.slice(0, 200), logKey.signerKey);
    await writeState(file('pending.state'), { origin: at200.signed.origin, size: 200, rootHash: at200.signed.rootHash, note: at200.note });
    const fork = memoryLog(syntheticEntries(300, 120, 'fork'), logKey.signerKey);
    const good = memoryLog(entries.slice(0, 250), logKey.signerKey);
    let rounds = 0;
    const run = deps(serving(good, (path) => {
      if (path === '/v1/log/checkpoint') return new Response((rounds += 1) <= 2 ? fork.note : good.note);
      return undefined;
    }).fetch);
    // Proofs up to 250 come from the good log; any proof to 300 (the fork's size) fails with a 503.
    const proofs = run.fetch!;
    run.fetch = (async (input: URL | string, init?: RequestInit) => {
      const target = new URL(String(input));
      if (target.pathname === '/v1/log/proof/consistency' && target.searchParams.get('to') === '300') return Response.json({ title: 'Unavailable' }, { status: 503 });
      return proofs(input, init);
    }) as typeof globalThis.fetch;
    const failure = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('pending.state'), maxRounds: '3', intervalMs: '1' }, run));
    expect(failure.message).toMatch(/^log monitor stopped on an alert/);
    expect(run.err.at(-1)).toMatch(/^ALERT \[consistency\] .*unsettled: in 3 rounds .*a signed checkpoint of size 300 without a proof/);
  });
});

describe('text a log serves', () => {
  // A title change, a screen clear, colour, the one-byte CSI (U+009B) and a right-to-left override.
  const hostile = '\u001b]0;PWNED\u0007\u001b[2J\u001b[31mRED\u001b[0m \u009b31m \u202ereversed';
  const unprintable = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

  it('reaches the terminal without control or bidi characters: an error answer, in verify and monitor', async () => {
    for (const answer of [() => new Response(hostile, { status: 500 }), () => Response.json({ detail: hostile }, { status: 500 })]) {
      const verified = deps(serving(log(), (path) => (path === '/v1/log/checkpoint' ? answer() : undefined)).fetch);
      const failure = await failureOf(verifyCommand({ url, key: logKey.verifierKey }, verified));
      const monitored = deps(serving(log(), (path) => (path === '/v1/log/checkpoint' ? answer() : undefined)).fetch);
      const stopped = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('hostile-monitor.state'), maxRounds: '1' }, monitored));
      const lines = [failure.message, ...verified.err, stopped.message, ...monitored.err];
      expect(lines.join('\n')).toContain('answered 500: ');
      expect(lines.join('\n')).toContain('RED');
      for (const line of lines) expect(line).not.toMatch(unprintable);
    }
  });

  it('reaches the terminal without control or bidi characters: an answer that is not JSON, in verify, witness and prove', async () => {
    const served = log();
    await writeState(file('hostile-grown.state'), { origin: served.signed.origin, size: 100, rootHash: memoryLog(entries.slice(0, 100), logKey.signerKey).signed.rootHash, note: '' });
    const notJson = () => new Response(hostile, { status: 200 });
    const verified = deps(serving(served, (path) => (path === '/v1/log/proof/consistency' ? notJson() : undefined)).fetch);
    const failure = await failureOf(verifyCommand({ url, key: logKey.verifierKey, state: file('hostile-grown.state') }, verified));
    const witnessed = await failureOf(witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: file('witness.key'), state: file('hostile-witness.state') },
      deps(serving(log(), (path) => (path === '/v1/log/cosignatures' ? notJson() : undefined)).fetch)));
    const proved = await failureOf(proveCommand('3', { url, key: logKey.verifierKey, token: 'clt_auditor' }, deps(serving(log(), (path) => (path === '/v1/events/3' ? notJson() : undefined)).fetch)));
    const lines = [...verified.err, failure.message, witnessed.message, proved.message];
    expect(lines.filter((line) => line.includes('not a JSON object'))).toHaveLength(3);
    for (const line of lines) expect(line).not.toMatch(unprintable);
  });
});

describe('log keygen', () => {
  it("refuses an origin that cannot name a key as a usage error (exit 2), saying what one is, and writes nothing", async () => {
    // U+009B (an 8-bit CSI a terminal acts on) and U+202E (RLO): the name is printed raw in later lines.
    const refused = [['log', 'bad origin', '--origin'], ['log', '', '--origin'], ['log', 'a+x', '--origin'], ['witness', 'witness\u00a0example', '--name'],
      ['log', 'log\u009b2J', '--origin'], ['log', 'log\u202eevil', '--origin'], ['witness', 'w\u2066x', '--name'], ['log', 'log\u0085x', '--origin']] as const;
    for (const [index, [kind, origin, option]] of refused.entries()) {
      const out = file(`refused-${index}.key`);
      const failure = await failureOf(keygenCommand({ origin, out }, kind, deps(globalThis.fetch)));
      expect(failure.exitCode).toBe(2);
      expect(failure.message).toBe(`chipledger: ${option} must name the key in signed notes: not empty, without spaces, '+', control characters or bidi controls, such as ${kind === 'log' ? 'chipledger.example/log' : 'witness.example.org'}; got ${printableJson(origin, 'one line')}`);
      expect(failure.message).not.toMatch(/[\u0080-\u009f\u202a-\u202e\u2066-\u2069]/);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('names an --out it cannot write by its absolute path (under `npm run`, a relative one is taken from the repository root)', async () => {
    const out = join('no-such-folder', 'log.key');
    const failure = await failureOf(keygenCommand({ origin: 'chipledger.example/log', out }, 'log', deps(globalThis.fetch)));
    expect(failure.message).toContain(`couldn't write the key file ${join(process.cwd(), out)}: ENOENT`);
  });
});

describe('log commands say what is true', () => {
  it('a monitor stopped before it saved anything says no checkpoint was saved', async () => {
    const impostor = generateSignerKey('log.commands.test'); // the log's name, another key
    const state = file('never-saved.state');
    const run = deps(serving(log()).fetch);
    const failure = await failureOf(monitorCommand({ url, key: impostor.verifierKey, state, maxRounds: '1' }, run));
    expect(run.err[0]).toMatch(/^ALERT \[signature\]/);
    expect(failure.message).toBe(`log monitor stopped on an alert; no checkpoint was saved to ${state}`);
    expect(existsSync(state)).toBe(false);
  });

  it('a --token that is no chipledger token is a usage error (exit 2), not a network failure, and is not echoed', async () => {
    const { fetch, paths } = serving(log());
    const token = 'clt_SECRET\u4e2dX';
    for (const run of [() => verifyCommand({ url, key: logKey.verifierKey, token }, deps(fetch)), () => proveCommand('3', { url, key: logKey.verifierKey, token }, deps(fetch))]) {
      const failure = await failureOf(run());
      expect(failure.exitCode).toBe(2);
      expect(failure.message).toBe('chipledger: --token must be a chipledger token: clt_ followed by letters, digits, _ and -');
    }
    expect(paths).toEqual([]);
  });

  it(`bounds --interval-ms at ${limits.monitorIntervalMsMax} (a longer timer fires after 1 ms): a usage error, exit 2`, async () => {
    const { fetch, paths } = serving(log());
    for (const interval of ['3000000000', String(limits.monitorIntervalMsMax + 1), '0']) {
      const failure = await failureOf(monitorCommand({ url, key: logKey.verifierKey, state: file('interval.state'), intervalMs: interval, maxRounds: '5' }, deps(fetch)));
      expect(failure.exitCode).toBe(2);
      expect(failure.message).toBe(`chipledger: --interval-ms must be a whole number from 1 to 86,400,000, got "${interval}"`);
    }
    expect(paths).toEqual([]);
    const slept: number[] = [];
    const run = { ...deps(fetch), sleep: async (ms: number) => void slept.push(ms) };
    expect(await monitorCommand({ url, key: logKey.verifierKey, state: file('interval.state'), intervalMs: String(limits.monitorIntervalMsMax), maxRounds: '2' }, run)).toBe(0);
    expect(slept).toEqual([limits.monitorIntervalMsMax]);
  });

  it('counts one hash tile as one', async () => {
    const run = deps(serving(memoryLog(entries.slice(0, 10), logKey.signerKey)).fetch);
    expect(await verifyCommand({ url, key: logKey.verifierKey }, run)).toBe(0);
    expect(run.out[0]).toMatch(/signature ok, 1 hash tile ok, entries NOT checked/);
  });

  it('does not follow a redirect: a 3xx is a fetch failure naming where it points', async () => {
    const server = createServer((_request, response) => void response.writeHead(302, { location: 'http://127.0.0.1:1/moved' }).end());
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const address = server.address();
    const moved = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    try {
      const run = deps(globalThis.fetch);
      const failure = await failureOf(verifyCommand({ url: moved, key: logKey.verifierKey }, run));
      // Said as the API client says it (one transport), naming --url as what to correct.
      expect([failure.message, ...run.err].join('\n')).toContain(`${moved} answered GET /v1/log/checkpoint with 302, a redirect to http://127.0.0.1:1/moved; chipledger does not follow redirects (a POST would become a GET, without the token): set --url to the address of the chipledger API`);
    } finally {
      await new Promise((done) => server.close(done));
    }
  });
});

