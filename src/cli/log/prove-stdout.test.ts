/**
 * `log prove` without --out prints the proof as the server wrote it, since stdout is saved as
 * the proof: a signature line by a key not given here is the server's text, and one holding a
 * control or bidi character is refused rather than printed raw to a terminal or changed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatTlogProof, generateSignerKey, inclusionProofFromLeaves } from '../../tlog/index.ts';
import { memoryLog, syntheticEntries } from '../../../test/tlog/memory-log.ts';
import { failureOf } from '../../../test/support/failure.ts';
import { proveCommand } from './prove-command.ts';
import { recordingDeps } from './test-deps.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-log-prove-stdout-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const logKey = generateSignerKey('log.prove.stdout.test');
const url = 'http://log.test';
const entries = syntheticEntries(20);
const log = memoryLog(entries.slice(), logKey.signerKey);
const eventFile = join(folder, 'event-7.bin');
writeFileSync(eventFile, entries[7]!);

/** A log whose proofs carry one more signature line, by a key nobody gives: `name` is its key name. */
function servingWithForeignSignature(name: string): typeof fetch {
  const signature = Buffer.alloc(68, 7).toString('base64');
  return (async (input: URL | string) => {
    const path = new URL(String(input)).pathname;
    const proof = /^\/v1\/log\/events\/(\d+)\/proof$/.exec(path);
    if (proof) {
      const index = Number(proof[1]);
      const hashes = inclusionProofFromLeaves(index, log.leaves).map((hash) => Buffer.from(hash));
      const text = formatTlogProof({ index, inclusionProof: hashes, checkpointNote: log.note });
      return new Response(`${text.trimEnd()}\n\u2014 ${name} ${signature}\n`);
    }
    if (path === '/v1/log/keys') return Response.json({ keys: log.keyList });
    return Response.json({ title: 'Not found' }, { status: 404 });
  }) as typeof globalThis.fetch;
}

describe('log prove, printing to stdout', () => {
  it('prints a proof whose every line is plain text as it came, the foreign signature included', async () => {
    const run = recordingDeps(servingWithForeignSignature('witness.example'));
    expect(await proveCommand('7', { url, key: logKey.verifierKey, eventFile }, run)).toBe(0);
    expect(run.out.join('\n')).toContain('\u2014 witness.example ');
  });

  it('refuses to print a proof holding a C1 or bidi control (an 8-bit CSI, RLO), and points to --out, which still saves it', async () => {
    for (const name of ['\u009b2J\u009bHevil', '\u202eevil']) {
      const run = recordingDeps(servingWithForeignSignature(name));
      const failure = await failureOf(proveCommand('7', { url, key: logKey.verifierKey, eventFile }, run));
      expect(failure.message).toBe('the proof for event 7 verifies, but holds characters a terminal would act on (in a signature line by a key not given here); save it with --out FILE instead of printing it');
      expect(run.out).toEqual([]);
    }
    const out = join(folder, 'proof.txt');
    const saved = recordingDeps(servingWithForeignSignature('\u202eevil'));
    expect(await proveCommand('7', { url, key: logKey.verifierKey, eventFile, out }, saved)).toBe(0);
    expect(saved.out[0]).toMatch(/^ok: event 7 is entry 7 .*; saved to /);
  });
});
