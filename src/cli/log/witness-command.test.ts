/**
 * `log witness --witness-key-file`: the witness's key is read as serve reads the log's, through
 * one descriptor, and a file its group or others can read (and so cosign with) is refused
 * before anything is fetched or signed.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateCosignerKey, generateSignerKey } from '../../tlog/index.ts';
import { memoryLog, syntheticEntries, type MemoryLog } from '../../../test/tlog/memory-log.ts';
import { failureOf } from '../../../test/support/failure.ts';
import { readMonitorState } from './state.ts';
import { witnessCommand } from './witness-command.ts';
import { recordingDeps } from './test-deps.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-log-witness-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
const file = (name: string) => join(folder, name);

const logKey = generateSignerKey('log.witness.test');
const log = memoryLog(syntheticEntries(10), logKey.signerKey);
const witnessKey = generateCosignerKey('witness.witness.test');
const url = 'http://log.test';

/** A key file of `mode` holding `text`; chmod after writing, as the umask may take bits off the mode asked for. */
function keyFile(name: string, text: string, mode: number): string {
  writeFileSync(file(name), `${text}\n`, { mode });
  chmodSync(file(name), mode);
  return file(name);
}

/** A fetch that serves `served()`'s checkpoint and key list and takes a cosignature; `paths` lists what was asked. */
function serving(served: () => MemoryLog = () => log): { fetch: typeof fetch; paths: string[] } {
  const paths: string[] = [];
  const fetch = (async (input: URL | string) => {
    const path = new URL(String(input)).pathname;
    paths.push(path);
    if (path === '/v1/log/checkpoint') return new Response(served().note, { headers: { 'content-type': 'text/plain' } });
    if (path === '/v1/log/keys') return Response.json({ keys: served().keyList });
    if (path === '/v1/log/cosignatures') return Response.json({ stored: 1 });
    return Response.json({ title: 'Not found' }, { status: 404 });
  }) as typeof globalThis.fetch;
  return { fetch, paths };
}

const deps = recordingDeps;

describe('log witness --witness-key-file', () => {
  it('cosigns with a key file only its owner can read', async () => {
    const { fetch, paths } = serving();
    const run = deps(fetch);
    expect(await witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: keyFile('own.key', witnessKey.signerKey, 0o600), state: file('own.state') }, run)).toBe(0);
    expect(run.out[0]).toMatch(/^cosigned log\.witness\.test size 10 .* as witness\.witness\.test/);
    expect(paths).toContain('/v1/log/cosignatures');
  });

  it.each(['644', '640', '604', '660'])('refuses a key file of mode %s, open to its group or others, before it fetches or signs anything (exit 2)', async (octal) => {
    const mode = Number.parseInt(octal, 8);
    const { fetch, paths } = serving();
    const path = keyFile(`open-${mode.toString(8)}.key`, witnessKey.signerKey, mode);
    // Given relative to the working folder, as under npm run: the hint names the file by its absolute path.
    const failure = await failureOf(witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: relative(process.cwd(), path), state: file(`open-${mode.toString(8)}.state`) }, deps(fetch)));
    expect(failure.exitCode).toBe(2);
    expect(failure.message).toBe(`chipledger: --witness-key-file: the witness key ${path} is open to its group or others (mode ${mode.toString(8)}); run chmod 600 ${path}`);
    expect(paths).toEqual([]);
  });

  it('refuses a file that is missing, or holds no cosigner key, naming the file and never quoting the key (exit 2)', async () => {
    const missing = await failureOf(witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: file('missing.key'), state: file('missing.state') }, deps(serving().fetch)));
    expect(missing.exitCode).toBe(2);
    expect(missing.message).toMatch(/^chipledger: --witness-key-file: couldn't read the witness key .*missing\.key: ENOENT/);
    // Named by its absolute path: under npm run a relative name is the repository's.
    const relative = await failureOf(witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: 'missing.key', state: file('missing.state') }, deps(serving().fetch)));
    expect(relative.message).toContain(`couldn't read the witness key ${join(process.cwd(), 'missing.key')}: ENOENT`);
    const logSigner = keyFile('log-signer.key', logKey.signerKey, 0o600);
    const notCosigner = await failureOf(witnessCommand({ url, logKey: logKey.verifierKey, witnessKeyFile: logSigner, state: file('log-signer.state') }, deps(serving().fetch)));
    expect(notCosigner.exitCode).toBe(2);
    expect(notCosigner.message).toMatch(new RegExp(`^chipledger: --witness-key-file: ${logSigner.replaceAll('.', '\\.')} does not hold a C2SP cosigner key \\(cosignature/v1\\): `));
    expect(notCosigner.message).not.toContain('PRIVATE+KEY');
  });
});

describe('log witness on a log that shows it a fork once', () => {
  it('keeps the forked note, says it, and refuses to cosign in every later run though the log goes back to the honest view', async () => {
    const forked = memoryLog(syntheticEntries(10, 120, 'fork'), logKey.signerKey);
    const options = { url, logKey: logKey.verifierKey, witnessKeyFile: keyFile('fork.key', witnessKey.signerKey, 0o600), state: file('fork.state') };
    expect(await witnessCommand(options, deps(serving().fetch))).toBe(0);
    const shown = deps(serving(() => forked).fetch);
    expect((await failureOf(witnessCommand(options, shown))).message).toMatch(/^refusing to cosign: \[fork\] fork: two checkpoints of size 10/);
    expect(shown.err[0]).toBe(`the log signed the checkpoint of size 10 (root ${forked.signed.rootHash.toString('hex')}), which contradicts what this witness holds; ${options.state} keeps it as evidence, and later runs refuse to cosign until it is moved away. Its note as served:`);
    expect((await readMonitorState(options.state))?.unsettled.heads.map((head) => head.note)).toEqual([forked.note]);
    // Back to the honest view: before this fix the witness cosigned it again.
    const { fetch, paths } = serving();
    expect((await failureOf(witnessCommand(options, deps(fetch)))).message).toMatch(/^refusing to cosign: \[consistency\] inconsistent: .* \(a fork\)/);
    expect(paths).not.toContain('/v1/log/cosignatures');
  });
});
