/**
 * `log prove` across a key rotation: it reads the log's key list even when the key given
 * signs the proof's checkpoint, as verify, monitor and witness do, so a key the log retired
 * (perhaps because it leaked) proves nothing past its successor's announcement.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatCheckpoint, formatTlogProof, generateSignerKey, inclusionProofFromLeaves, keyRotationExtension, parseSignerKey, rootOf, signCheckpoint, signNote } from '../../tlog/index.ts';
import { syntheticEntries, memoryLog } from '../../../test/tlog/memory-log.ts';
import { failureOf } from '../../../test/support/failure.ts';
import type { LogKeyEntry } from './client.ts';
import { proveCommand } from './prove-command.ts';
import { recordingDeps } from './test-deps.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-log-prove-rotation-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const origin = 'log.prove-rotation.test';
const url = 'http://log.test';
const oldKey = generateSignerKey(origin);
const newKey = generateSignerKey(origin);
const entries = syntheticEntries(300);
const { leaves } = memoryLog(entries, oldKey.signerKey);
/** The log moved from oldKey to newKey at this size. */
const rotatedAt = 256;

const announcement = signNote(
  formatCheckpoint({ origin, size: rotatedAt, rootHash: rootOf(leaves.slice(0, rotatedAt)), extensions: [`${keyRotationExtension} ${newKey.verifierKey}`] }),
  [parseSignerKey(oldKey.signerKey), parseSignerKey(newKey.signerKey)],
);
/** The key list as the log serves it, honestly. */
const keyList: LogKeyEntry[] = [
  { verifierKey: oldKey.verifierKey, firstSize: 0, announcement: null },
  { verifierKey: newKey.verifierKey, firstSize: rotatedAt, announcement },
];

/** A checkpoint of the first `size` entries, signed by `signerKey`. */
const checkpointOf = (size: number, signerKey: string) => signCheckpoint({ origin, size, rootHash: rootOf(leaves.slice(0, size)), extensions: [] }, parseSignerKey(signerKey));

/** A fetch that answers every event's proof over `note` (a checkpoint of `size`), and the key list, or `keys` instead of it. */
function serving(note: string, size: number, keys: () => Response = () => Response.json({ keys: keyList })): typeof fetch {
  return (async (input: URL | string) => {
    const path = new URL(String(input)).pathname;
    const proof = /^\/v1\/log\/events\/(\d+)\/proof$/.exec(path);
    if (proof) {
      const index = Number(proof[1]);
      const hashes = inclusionProofFromLeaves(index, leaves.slice(0, size)).map((hash) => Buffer.from(hash));
      return new Response(formatTlogProof({ index, inclusionProof: hashes, checkpointNote: note }));
    }
    if (path === '/v1/log/keys') return keys();
    return Response.json({ title: 'Not found' }, { status: 404 });
  }) as typeof globalThis.fetch;
}

const deps = recordingDeps;

const eventFile = (seq: number) => {
  const file = join(folder, `event-${seq}.bin`);
  writeFileSync(file, entries[seq]!);
  return file;
};

describe('log prove across a key rotation', () => {
  it('refuses a proof over a checkpoint the retired key signed past its successor\'s announcement, though that key is the one given', async () => {
    const run = deps(serving(checkpointOf(300, oldKey.signerKey), 300));
    const failure = await failureOf(proveCommand('7', { url, key: oldKey.verifierKey, eventFile: eventFile(7) }, run));
    expect(failure.exitCode).toBe(1);
    expect(failure.message).toMatch(new RegExp(`^the proof for event 7 does not verify: \\[signature\\] the checkpoint of size 300 is signed by ${origin.replaceAll('.', '\\.')}\\+[0-9a-f]{8}, which the log retired at size ${rotatedAt} `));
    expect(run.out).toEqual([]);
    expect(run.err.join('\n')).not.toContain('ok:');
  });

  it('takes the retired key\'s checkpoint up to the announcement, and the new key\'s after it, followed from the key given', async () => {
    const before = deps(serving(checkpointOf(rotatedAt, oldKey.signerKey), rotatedAt));
    expect(await proveCommand('7', { url, key: oldKey.verifierKey, eventFile: eventFile(7) }, before)).toBe(0);
    expect(before.err.at(-1)).toMatch(new RegExp(`^ok: event 7 is entry 7 of ${origin.replaceAll('.', '\\.')} at size ${rotatedAt} .*the proof verifies offline with the log key$`));
    const after = deps(serving(checkpointOf(300, newKey.signerKey), 300));
    expect(await proveCommand('7', { url, key: oldKey.verifierKey, eventFile: eventFile(7) }, after)).toBe(0);
    expect(after.err.at(-1)).toMatch(new RegExp(`^ok: event 7 is entry 7 of ${origin.replaceAll('.', '\\.')} at size 300 .*followed from the key given`));
  });

  it('says the proof could not be checked when the key list that settles whether the key was retired does not come', async () => {
    const run = deps(serving(checkpointOf(300, oldKey.signerKey), 300, () => new Response('unavailable', { status: 503 })));
    const failure = await failureOf(proveCommand('7', { url, key: oldKey.verifierKey, eventFile: eventFile(7) }, run));
    expect(failure.message).toMatch(/^the proof for event 7 could not be checked: \[fetch\] the checkpoint is signed by .*, but whether the log retired that key is unknown: couldn't fetch the log's keys/);
  });
});
