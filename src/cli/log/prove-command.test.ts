/**
 * `log prove --event-file`: what the file may hold (the event as GET /v1/events/SEQ serves it,
 * or its canonical bytes), and a proof that does not include the file's bytes blamed on the
 * right party: the file when the log's proof of its own leaf verifies, the log when it does not.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../../core/limits.ts';
import { formatTlogProof, generateSignerKey, inclusionProofFromLeaves, newTiles, tilePath } from '../../tlog/index.ts';
import { memoryLog, syntheticEntries, type MemoryLog } from '../../../test/tlog/memory-log.ts';
import { failureOf } from '../../../test/support/failure.ts';
import { proveCommand } from './prove-command.ts';
import { recordingDeps } from './test-deps.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-log-prove-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
const file = (name: string, bytes: string | Buffer) => {
  writeFileSync(join(folder, name), bytes);
  return join(folder, name);
};

const logKey = generateSignerKey('log.prove.test');
const url = 'http://log.test';
// JSON with a seq, as canonical event bytes are: still taken as the bytes themselves (no `canonical` field).
const entries = syntheticEntries(300);
const log = memoryLog(entries.slice(), logKey.signerKey);

/** A fetch that serves `log` at http://log.test: the checkpoint, hash tiles and proof bundles (`proofHashes` may change them). */
function serving(served: MemoryLog, options: { proofHashes?: (hashes: Buffer[]) => Buffer[]; tiles?: boolean } = {}): typeof fetch {
  const tiles = new Map(newTiles(0, served.leaves.length).map((tile) => [`/v1/log/${tilePath(tile.level, tile.index, tile.width)}`, served.tiles.get(`${tile.level}/${tile.index}`)!.subarray(0, tile.width * 32)]));
  return (async (input: URL | string) => {
    const path = new URL(String(input)).pathname;
    const tile = options.tiles === false ? undefined : tiles.get(path);
    if (tile) return new Response(tile, { headers: { 'content-type': 'application/octet-stream' } });
    const proof = /^\/v1\/log\/events\/(\d+)\/proof$/.exec(path);
    if (proof) {
      const index = Number(proof[1]);
      const hashes = inclusionProofFromLeaves(index, served.leaves).map((hash) => Buffer.from(hash));
      return new Response(formatTlogProof({ index, inclusionProof: options.proofHashes ? options.proofHashes(hashes) : hashes, checkpointNote: served.note }));
    }
    if (path === '/v1/log/keys') return Response.json({ keys: served.keyList });
    return Response.json({ title: 'Not found' }, { status: 404 });
  }) as typeof globalThis.fetch;
}

const deps = recordingDeps;

/** Event `seq` as GET /v1/events/:seq serves it: its canonical bytes in base64, beside their parsed body. */
const served = (seq: number, canonical = entries[seq]!) => JSON.stringify({ seq, leafIndex: seq, kind: 'shipment.book', canonical: canonical.toString('base64'), body: JSON.parse(canonical.toString('utf8')) }, null, 2);

describe('log prove --event-file', () => {
  it('takes the event as GET /v1/events/SEQ serves it: the leaf is its canonical field, decoded', async () => {
    const run = deps(serving(log));
    expect(await proveCommand('19', { url, key: logKey.verifierKey, eventFile: file('event-19.json', served(19)) }, run)).toBe(0);
    expect(run.err[0]).toMatch(/^ok: event 19 is entry 19 of log\.prove\.test at size 300/);
    // With a byte order mark, as some editors save it, too.
    expect(await proveCommand('19', { url, key: logKey.verifierKey, eventFile: file('event-19-bom.json', `\uFEFF${served(19)}`) }, deps(serving(log)))).toBe(0);
  });

  it('takes any other file as the canonical bytes themselves, JSON with a seq included', async () => {
    expect(await proveCommand('7', { url, key: logKey.verifierKey, eventFile: file('event-7.bin', entries[7]!) }, deps(serving(log)))).toBe(0);
  });

  it('refuses a served event of another number, or one whose canonical field is not base64, as a usage error (exit 2)', async () => {
    const other = await failureOf(proveCommand('8', { url, key: logKey.verifierKey, eventFile: file('event-19-as-8.json', served(19)) }, deps(serving(log))));
    expect(other.exitCode).toBe(2);
    expect(other.message).toMatch(/^chipledger: the event file .*event-19-as-8\.json holds event 19 as GET \/v1\/events\/:seq serves it, not event 8/);
    const garbled = JSON.stringify({ seq: 7, canonical: 'not base64!' });
    const notBase64 = await failureOf(proveCommand('7', { url, key: logKey.verifierKey, eventFile: file('garbled.json', garbled) }, deps(serving(log))));
    expect(notBase64.exitCode).toBe(2);
    expect(notBase64.message).toContain('its canonical field is not base64');
  });

  it('reads an event file only up to its bound: a file too big, or one that never ends, is refused without reading it whole', async () => {
    const big = await failureOf(proveCommand('7', { url, key: logKey.verifierKey, eventFile: file('big.bin', Buffer.alloc(limits.eventFileBytesMax + 1)) }, deps(serving(log))));
    expect(big.message).toBe(`${join(folder, 'big.bin')} is ${(limits.eventFileBytesMax + 1).toLocaleString('en-US')} bytes; an event file may have at most ${limits.eventFileBytesMax.toLocaleString('en-US')}`);
    const endless = await failureOf(proveCommand('7', { url, key: logKey.verifierKey, eventFile: '/dev/zero' }, deps(serving(log))));
    expect(endless.message).toBe(`/dev/zero holds more than ${limits.eventFileBytesMax.toLocaleString('en-US')} bytes (reading stopped there); an event file may have at most ${limits.eventFileBytesMax.toLocaleString('en-US')}`);
  });

  it('says the file is not event SEQ\'s canonical bytes when the log proves its own leaf there, naming both leaf hashes', async () => {
    const failure = await failureOf(proveCommand('8', { url, key: logKey.verifierKey, eventFile: file('event-7-as-8.bin', entries[7]!) }, deps(serving(log))));
    expect(failure.exitCode).toBe(1);
    expect(failure.message).toMatch(/^the event file .*event-7-as-8\.bin is not event 8's canonical bytes: their leaf hash is [0-9a-f]{64}, but entry 8 of the checkpoint of size 300 is [0-9a-f]{64}, and the log's proof of that entry verifies; give the event as GET \/v1\/events\/SEQ serves it/);
    expect(failure.message).toContain(log.leaves[7]!.toString('hex'));
    expect(failure.message).toContain(log.leaves[8]!.toString('hex'));
    expect(failure.message).not.toContain('does not verify');
  });

  it('blames the proof, not the file, when the proof fails against the checkpoint for the log\'s own leaf too', async () => {
    const broken = serving(log, { proofHashes: (hashes) => hashes.map((hash, index) => (index === 0 ? Buffer.alloc(32, 7) : hash)) });
    const failure = await failureOf(proveCommand('19', { url, key: logKey.verifierKey, eventFile: file('event-19-right.json', served(19)) }, deps(broken)));
    expect(failure.message).toMatch(/^the proof for event 19 does not verify: .*entry 19 is not included in the checkpoint of size 300/);
  });

  it('says it cannot tell which is wrong when the log\'s leaf hash cannot be fetched', async () => {
    const failure = await failureOf(proveCommand('8', { url, key: logKey.verifierKey, eventFile: file('event-7-as-8-again.bin', entries[7]!) }, deps(serving(log, { tiles: false }))));
    expect(failure.message).toMatch(/^the proof for event 8 does not include the bytes of .*: either the file is not event 8's canonical bytes or the proof is wrong, and the log's leaf hash that would tell which could not be fetched \(.*404/);
  });
});

describe('log prove --token, when the event is not the token\'s (GET /v1/events/SEQ answers 404)', () => {
  /** A log that answers the proof of event `seq` with `checkpoint`'s note (not yet verified when the bundle is chosen), and `bundle` for every entry bundle. */
  function servingProofOver(checkpoint: MemoryLog, seq: number, bundle: Buffer[]): { fetch: typeof fetch; paths: string[] } {
    const paths: string[] = [];
    const fetch = (async (input: URL | string) => {
      const path = new URL(String(input)).pathname;
      paths.push(path);
      if (path === `/v1/log/events/${seq}/proof`) return new Response(formatTlogProof({ index: seq, inclusionProof: [], checkpointNote: checkpoint.note }));
      if (path.startsWith('/v1/log/tile/entries/')) return new Response(Buffer.concat(bundle.flatMap((entry) => [Buffer.from([entry.length >> 8, entry.length & 0xff]), entry])));
      if (path === '/v1/log/keys') return Response.json({ keys: checkpoint.keyList });
      return Response.json({ title: 'Not found' }, { status: 404 });
    }) as typeof globalThis.fetch;
    return { fetch, paths };
  }

  it('refuses, before reading a bundle, a proof whose checkpoint does not cover the event, in one line', async () => {
    for (const size of [3, 290]) {
      const small = memoryLog(entries.slice(0, size), logKey.signerKey);
      const { fetch, paths } = servingProofOver(small, 300, entries.slice(256, 290));
      const failure = await failureOf(proveCommand('300', { url, key: logKey.verifierKey, token: 'clt_auditor' }, deps(fetch)));
      expect(failure.message).toBe(`the proof for event 300 does not verify: its checkpoint, of size ${size}, does not cover event 300`);
      expect(paths.filter((path) => path.startsWith('/v1/log/tile/'))).toEqual([]);
    }
  });
});
