/**
 * The log CLI across a key rotation on a real server: verify, monitor, witness and prove,
 * given only the key they trusted before it, follow the announcement (signed by the old key
 * and the new one) to the new key, and hold the announcement to the rest of the log.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monitorCommand, proveCommand, verifyCommand, witnessCommand } from '../../src/cli/log/commands.ts';
import { readState } from '../../src/cli/log/state.ts';
import { formatKeyId, generateCosignerKey, generateSignerKey, parseVerifierKey } from '../../src/tlog/index.ts';
import { captured, startHarness, type Harness, type LogServer } from './harness.ts';
import { failureOf } from '../support/failure.ts';

const oldKey = generateSignerKey('log.rotation.test');
const newKey = generateSignerKey('log.rotation.test');
const witnessKey = generateCosignerKey('witness.rotation.test');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-log-rotation-'));
const file = (name: string) => join(folder, name);
const newKeyName = `log.rotation.test+${formatKeyId(parseVerifierKey(newKey.verifierKey).keyId)}`;
let harness: Harness;
let after: LogServer;
let url: string;
let rotatedAt: number;

beforeAll(async () => {
  harness = await startHarness({ signerKey: oldKey.signerKey, witnessKeys: [witnessKey.verifierKey], events: 40 });
  const before = await harness.serve();
  // Each command's state holds a checkpoint signed by the old key.
  await verifyCommand({ url: before.url, key: oldKey.verifierKey, state: file('verify.state') }, captured().deps);
  await monitorCommand({ url: before.url, key: oldKey.verifierKey, state: file('monitor.state'), maxRounds: '1' }, captured().deps);
  writeFileSync(file('witness.key'), `${witnessKey.signerKey}\n`, { mode: 0o600 });
  await witnessCommand({ url: before.url, logKey: oldKey.verifierKey, witnessKeyFile: file('witness.key'), state: file('witness.state') }, captured().deps);
  await before.close();
  await harness.book(10);
  rotatedAt = (await harness.database.pool.query<{ size: number }>('SELECT size FROM log_head')).rows[0]!.size;
  after = await harness.serve({ signerKey: newKey.signerKey, previousSignerKey: oldKey.signerKey });
  await harness.book(10);
  await after.ledger.checkpointer!.checkpointNow();
  url = after.url;
});
afterAll(async () => {
  await harness?.close();
  rmSync(folder, { recursive: true, force: true }); // it holds the witness's private key
});

describe('the log CLI after a key rotation, given the old key', () => {
  it('verify follows the announcement to the new key and checks it against the tiles', async () => {
    const capture = captured();
    await verifyCommand({ url, key: oldKey.verifierKey, state: file('verify.state'), token: harness.tokens.auditor }, capture.deps);
    expect(capture.out[0]).toContain(`signature ok (by ${newKeyName}, followed from the key given through the announcement at size ${rotatedAt})`);
    expect((await readState(file('verify.state')))!.size).toBe(rotatedAt + 10);
  });

  it('monitor follows it, says so, and keeps following with the new key', async () => {
    const capture = captured(async () => {
      await harness.book(2);
      await after.ledger.checkpointer!.checkpointNow();
    });
    await monitorCommand({ url, key: oldKey.verifierKey, state: file('monitor.state'), maxRounds: '2', intervalMs: '1' }, capture.deps);
    expect(capture.err.filter((line) => line.startsWith('ALERT'))).toEqual([]);
    expect(capture.out.some((line) => line.includes(`key rotation: ${newKeyName} announced at size ${rotatedAt}`))).toBe(true);
  });

  it('witness cosigns after following it; prove verifies a proof signed by the new key', async () => {
    const witnessed = captured();
    await witnessCommand({ url, logKey: oldKey.verifierKey, witnessKeyFile: file('witness.key'), state: file('witness.state') }, witnessed.deps);
    expect(witnessed.out[0]).toMatch(new RegExp(`^cosigned log\\.rotation\\.test size \\d+ .*followed from the key given through the announcement at size ${rotatedAt}`));
    const proved = captured();
    await proveCommand('3', { url, key: oldKey.verifierKey, token: harness.tokens.auditor }, proved.deps);
    expect(proved.err.at(-1)).toMatch(new RegExp(`^ok: event 3 is entry 3 .*followed from the key given`));
  });

  it('a key the log never announced is still refused', async () => {
    const stranger = generateSignerKey('log.rotation.test');
    const capture = captured();
    await failureOf(verifyCommand({ url, key: stranger.verifierKey }, capture.deps));
    expect(capture.err[0]).toMatch(/^FAILED \[signature\] the checkpoint does not verify .*the log's key list does not include the key trusted here/);
  });
});
