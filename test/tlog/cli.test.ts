/**
 * The log CLI against a real server: keys, verify (clean, growing, each tampering caught
 * and named), prove, monitor and witness. Tampering goes straight to the database behind
 * a freshly started server (whose start-up check passed before the change), and is undone
 * after each case.
 */
import { Command } from 'commander';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keygenCommand, monitorCommand, proveCommand, registerLogCommands, verifyCommand, witnessCommand } from '../../src/cli/log/commands.ts';
import { readState, writeState } from '../../src/cli/log/state.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import { LogCheckError } from '../../src/ledger/log/check.ts';
import { createPool } from '../../src/store/pool.ts';
import {
  generateCosignerKey, generateSignerKey, leafHash, openCheckpoint, parseCosignatureVerifierKey, parseSignerKey, parseVerifierKey, signCheckpoint, verifyTlogProof,
} from '../../src/tlog/index.ts';
import { captured, startHarness, type Harness, type LogServer } from './harness.ts';
import { untriggered, withTriggerOff } from '../support/tamper.ts';
import { failureOf } from '../support/failure.ts';
import { testSealingKey } from '../support/sealing-key.ts';

const logKey = generateSignerKey('log.cli.test');
const witnessKey = generateCosignerKey('witness.cli.test');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-log-cli-'));
const file = (name: string) => join(folder, name);
let harness: Harness;
let server: LogServer;

/** A checkpoint verified over every entry at the start, for the tests that begin from a saved one; none changes it. */
const verifiedState = file('verify.state');

beforeAll(async () => {
  harness = await startHarness({ signerKey: logKey.signerKey, witnessKeys: [witnessKey.verifierKey], events: 300 });
  server = await harness.serve();
  // Here rather than in the first test, so that any test runs alone (-t) or in any order (--sequence.shuffle).
  await verify(server.url, { token: harness.tokens.auditor, state: verifiedState });
});
afterAll(async () => {
  await harness?.close();
  rmSync(folder, { recursive: true, force: true }); // it holds private keys (test ones, but keys)
});

/** The stored canonical bytes of one event. */
const canonical = async (seq: number) => (await harness.database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = $1', [seq])).rows[0]!.canonical;


async function verify(url: string, options: { state?: string; token?: string } = {}) {
  const capture = captured();
  await verifyCommand({ url, key: logKey.verifierKey, ...options }, capture.deps);
  return capture;
}

async function verifyFails(url: string, options: { state?: string; token?: string } = {}) {
  const capture = captured();
  const failure = await failureOf(verifyCommand({ url, key: logKey.verifierKey, ...options }, capture.deps));
  return { failure, lines: capture.err.filter((line) => line.startsWith('FAILED')), err: capture.err };
}

describe('log keygen', () => {
  it('writes a signer key readable by its owner only, prints the verifier key, and never overwrites', async () => {
    const capture = captured();
    await keygenCommand({ origin: 'log.example', out: file('keygen-log.key') }, 'log', capture.deps);
    expect(statSync(file('keygen-log.key')).mode & 0o777).toBe(0o600);
    const signer = parseSignerKey(readFileSync(file('keygen-log.key'), 'utf8').trim());
    expect(capture.out).toEqual([signer.verifierKey]);
    const again = await failureOf(keygenCommand({ origin: 'log.example', out: file('keygen-log.key') }, 'log', capture.deps));
    expect(again.message).toContain('refusing to overwrite');
    await keygenCommand({ origin: 'witness.example', out: file('keygen-witness.key') }, 'witness', capture.deps);
    expect(() => parseCosignatureVerifierKey(capture.out[1]!)).not.toThrow();
  });
});

describe('log verify against the server', () => {
  it('verifies tiles only without a token, and every entry with an auditor token; saves the checkpoint', async () => {
    const tilesOnly = await verify(server.url);
    expect(tilesOnly.out[0]).toContain('entries NOT checked');
    const full = await verify(server.url, { token: harness.tokens.auditor, state: file('first.state') });
    const size = (await readState(file('first.state')))!.size;
    expect(full.out[0]).toMatch(new RegExp(`^ok: log.cli.test size ${size} .*signature ok, 3 hash tiles ok, ${size} entries hashed; no earlier checkpoint saved`));
  });

  it('takes the token from CHIPLEDGER_TOKEN when --token is not given (a command line shows in ps), only for CHIPLEDGER_URL', async () => {
    const capture = captured();
    await verifyCommand({ url: server.url, key: logKey.verifierKey }, { ...capture.deps, envToken: harness.tokens.auditor, envUrl: `${server.url}/` });
    expect(capture.out[0]).toMatch(/\d+ entries hashed/);
    // Another log (here: the same server under another name) never gets our token.
    const elsewhere = captured();
    await verifyCommand({ url: server.url.replace('127.0.0.1', 'localhost'), key: logKey.verifierKey }, { ...elsewhere.deps, envToken: harness.tokens.auditor, envUrl: server.url });
    expect(elsewhere.out[0]).toContain('entries NOT checked');
  });

  it('goes through commander with the documented flags, and checks consistency as the log grows', async () => {
    await harness.book(40);
    await server.ledger.checkpointer!.checkpointNow();
    copyFileSync(verifiedState, file('grown.state'));
    const before = (await readState(file('grown.state')))!.size;
    writeFileSync(file('log.pub'), `${logKey.verifierKey}\n`);
    const capture = captured();
    const program = new Command('chipledger').exitOverride();
    registerLogCommands(program, capture.deps);
    await program.parseAsync(['log', 'verify', '--url', server.url, '--key-file', file('log.pub'), '--state', file('grown.state'), '--token', harness.tokens.auditor], { from: 'user' });
    expect(capture.out[0]).toContain(`consistent with saved size ${before}`);
    expect((await readState(file('grown.state')))!.size).toBeGreaterThan(before);
  });

  it('refuses a recipient token for entry bundles with the status and URL', async () => {
    const { lines } = await verifyFails(server.url, { token: harness.tokens.recipient });
    expect(lines[0]).toMatch(/FAILED \[fetch\] couldn't fetch entry bundle 0: http:\/\/127\.0\.0\.1:\d+\/v1\/log\/tile\/entries\/000 answered 403/);
  });
});

describe('log verify catches tampering and names it', () => {
  /** A server started on the clean state, then the change, the check, and the undo. */
  async function tampered(change: string, undo: string, check: (url: string) => Promise<void>, startupCatches = true): Promise<void> {
    const fresh = await harness.serve();
    await harness.database.pool.query(change);
    try {
      await check(fresh.url);
      if (startupCatches) {
        const pool = createPool({ url: harness.database.url, connectionsMax: 2, applicationName: 'startup-check' });
        await expect(Ledger.open({ logSealingKey: testSealingKey, pool, logSignerKey: logKey.signerKey })).rejects.toThrow(LogCheckError);
        await pool.end();
      }
    } finally {
      await harness.database.pool.query(undo);
      await fresh.close();
    }
  }
  const flipEvent = "UPDATE events SET canonical = set_byte(canonical, 20, get_byte(canonical, 20) # 1) WHERE seq = 37";
  const flipTile = untriggered('UPDATE tlog_tiles SET hashes = set_byte(hashes, 160, get_byte(hashes, 160) # 1) WHERE level = 0 AND index = 0');
  const swap = 'UPDATE events e SET canonical = o.canonical FROM events o WHERE (e.seq, o.seq) IN ((40, 41), (41, 40))';

  it('one stored event changed', async () => {
    await tampered(flipEvent, flipEvent, async (url) => {
      const { failure, lines } = await verifyFails(url, { token: harness.tokens.auditor });
      expect(lines).toEqual([expect.stringMatching(/^FAILED \[entry\] entry 37 \(event seq 37\) was changed/)]);
      expect(failure.message).toContain('1 problem(s)');
    });
  });

  it('one tile hash changed (caught with and without a token)', async () => {
    await tampered(flipTile, flipTile, async (url) => {
      for (const token of [harness.tokens.auditor, undefined]) {
        const { lines } = await verifyFails(url, token ? { token } : {});
        expect(lines).toEqual([expect.stringMatching(/^FAILED \[tile\] tile tile\/0\/000: its 256 hashes give/)]);
      }
      // Tiles are served as stored, but proofs come from the tiles the server's start-up
      // check proved: a proof through the changed hash still verifies.
      const capture = captured();
      // Leaf 4's proof starts with the changed hash (leaf 5's).
      await proveCommand('4', { url, key: logKey.verifierKey, token: harness.tokens.auditor }, capture.deps);
      expect(verifyTlogProof(`${capture.out[0]!}\n`, leafHash(await canonical(4)), parseVerifierKey(logKey.verifierKey)).index).toBe(4);
    });
  });

  it('one signature byte changed', async () => {
    const row = (await harness.database.pool.query<{ size: number; signed_note: string }>('SELECT size, signed_note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1')).rows[0]!;
    const at = row.signed_note.lastIndexOf(' ') + 30;
    const forged = `${row.signed_note.slice(0, at)}${row.signed_note[at] === 'A' ? 'B' : 'A'}${row.signed_note.slice(at + 1)}`;
    const set = (note: string) => untriggered(`UPDATE tlog_checkpoints SET signed_note = '${note.replaceAll("'", "''")}' WHERE size = ${row.size}`, 'tlog_checkpoints');
    await tampered(set(forged), set(row.signed_note), async (url) => {
      const { lines } = await verifyFails(url);
      expect(lines).toEqual([expect.stringMatching(/^FAILED \[signature\] the checkpoint does not verify with the log key log\.cli\.test: .*does not verify/)]);
    });
  });

  it('two leaves reordered', async () => {
    await tampered(swap, swap, async (url) => {
      const { lines } = await verifyFails(url, { token: harness.tokens.auditor });
      expect(lines).toEqual([expect.stringMatching(/^FAILED \[order\] entry 40 is out of order: its bytes are the entry the log committed at index 41 .*; entries were reordered$/)]);
    });
  });

  it('one leaf overwritten with a copy of another: named a copy, not a reordering', async () => {
    const original = (await harness.database.pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq = 40')).rows[0]!.canonical;
    const copy = 'UPDATE events SET canonical = (SELECT canonical FROM events WHERE seq = 41) WHERE seq = 40';
    const restore = `UPDATE events SET canonical = '\\x${original.toString('hex')}'::bytea WHERE seq = 40`;
    await tampered(copy, restore, async (url) => {
      const { lines } = await verifyFails(url, { token: harness.tokens.auditor });
      expect(lines).toEqual([expect.stringMatching(/^FAILED \[order\] entry 40 is out of order: .*; entry 40 was overwritten with a copy of entry 41$/)]);
    });
  });

  it('truncated: the log serves an older checkpoint than one seen before', async () => {
    const pool = harness.database.pool;
    await harness.book(10);
    await server.ledger.checkpointer!.checkpointNow();
    await verify(server.url, { state: file('truncate.state') });
    const saved = (await readState(file('truncate.state')))!;
    const row = (await pool.query('SELECT size, root, key_id, signed_note, created_at FROM tlog_checkpoints WHERE size = $1', [saved.size])).rows[0];
    const cosignatures = (await pool.query('SELECT * FROM tlog_cosignatures WHERE checkpoint_size = $1', [saved.size])).rows;
    // Withdraw the newest checkpoint (as a log rolled back to an older state would), then put it back.
    await withTriggerOff(pool, 'tlog_cosignatures', () => pool.query('DELETE FROM tlog_cosignatures WHERE checkpoint_size = $1', [saved.size]));
    await withTriggerOff(pool, 'tlog_checkpoints', () => pool.query('DELETE FROM tlog_checkpoints WHERE size = $1', [saved.size]));
    try {
      const { lines } = await verifyFails(server.url, { state: file('truncate.state') });
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^FAILED \\[truncation\\] truncation: the log now signs size \\d+, smaller than the checkpoint of size ${saved.size} saved earlier; a log never shrinks; both checkpoints are signed`))]);
    } finally {
      await pool.query('INSERT INTO tlog_checkpoints (size, root, key_id, signed_note, created_at) VALUES ($1, $2, $3, $4, $5)', [row.size, row.root, row.key_id, row.signed_note, row.created_at]);
      for (const cosignature of cosignatures) {
        await pool.query('INSERT INTO tlog_cosignatures (checkpoint_size, checkpoint_key_id, witness, key_id, timestamp_s, signature_line, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          [cosignature.checkpoint_size, cosignature.checkpoint_key_id, cosignature.witness, cosignature.key_id, cosignature.timestamp_s, cosignature.signature_line, cosignature.received_at]);
      }
    }
  });

  it('truncated: a saved checkpoint claims more entries than the log has', async () => {
    const saved = (await readState(verifiedState))!;
    await writeState(file('claims-more.state'), { ...saved, size: saved.size + 500, rootHash: Buffer.alloc(32, 9) });
    const { lines } = await verifyFails(server.url, { state: file('claims-more.state') });
    expect(lines[0]).toMatch(/^FAILED \[truncation\] truncation: the log now signs size \d+, smaller than the checkpoint of size \d+ saved earlier/);
  });

  it('forked: a signed checkpoint of the same size with another root', async () => {
    const saved = (await readState(verifiedState))!;
    const current = openCheckpoint(await (await fetch(`${server.url}/v1/log/checkpoint`)).text(), parseVerifierKey(logKey.verifierKey)).checkpoint;
    const forkRoot = Buffer.alloc(32, 5);
    const note = signCheckpoint({ origin: 'log.cli.test', size: current.size, rootHash: forkRoot, extensions: [] }, parseSignerKey(logKey.signerKey));
    await writeState(file('fork.state'), { ...saved, size: current.size, rootHash: forkRoot, note });
    const { lines } = await verifyFails(server.url, { state: file('fork.state') });
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^FAILED \\[fork\\] fork: two checkpoints of size ${current.size} with different roots: .*both checkpoints are signed by log\\.cli\\.test`))]);
    // The served checkpoint that contradicts the saved one is said whole after the failures: the other half of the evidence.
    const served = await (await fetch(`${server.url}/v1/log/checkpoint`)).text();
    const { err } = await verifyFails(server.url, { state: file('fork.state') });
    expect(err.slice(1)).toEqual([
      `the checkpoint the log signed (size ${current.size}, root ${current.rootHash.toString('hex')}) is contradicted above; keep it as evidence. Its note as served:`,
      ...served.trimEnd().split('\n').map((line) => `  ${line}`),
    ]);
    // A fork below the current size: the tiles give another root there, and the proof fails.
    await writeState(file('fork-below.state'), { ...saved, size: 100, rootHash: forkRoot, note: '' });
    const below = await verifyFails(server.url, { state: file('fork-below.state'), token: harness.tokens.auditor });
    expect(below.lines.map((line) => /\[(\w+)\]/.exec(line)![1])).toEqual(['fork', 'consistency']);
  });
});

describe('log prove', () => {

  it("fetches an event's tlog-proof and the event with an auditor token, and verifies it offline", async () => {
    const capture = captured();
    await proveCommand('42', { url: server.url, key: logKey.verifierKey, token: harness.tokens.auditor }, capture.deps);
    expect(capture.err[0]).toMatch(/^ok: event 42 is entry 42 of log\.cli\.test at size \d+/);
    const bundle = `${capture.out[0]!}\n`;
    expect(bundle.startsWith('c2sp.org/tlog-proof@v1\nindex 42\n')).toBe(true);
    expect(verifyTlogProof(bundle, leafHash(await canonical(42)), parseVerifierKey(logKey.verifierKey)).index).toBe(42);
  });

  it('checks against an event file and saves the proof', async () => {
    writeFileSync(file('event-7.json'), await canonical(7));
    const capture = captured();
    await proveCommand('7', { url: server.url, key: logKey.verifierKey, eventFile: file('event-7.json'), out: file('event-7.proof') }, capture.deps);
    expect(capture.out[0]).toContain(`saved to ${file('event-7.proof')}`);
    expect(readFileSync(file('event-7.proof'), 'utf8').startsWith('c2sp.org/tlog-proof@v1\nindex 7\n')).toBe(true);
    // Another event's bytes: the file is wrong, not the log (whose proof of its own entry 8 verifies).
    const wrong = await failureOf(proveCommand('8', { url: server.url, key: logKey.verifierKey, eventFile: file('event-7.json') }, captured().deps));
    expect(wrong.message).toMatch(/^the event file .*event-7\.json is not event 8's canonical bytes: their leaf hash is [0-9a-f]{64}, but entry 8 of the checkpoint of size \d+ is [0-9a-f]{64}, and the log's proof of that entry verifies/);
  });

  it('checks against an event file saved from GET /v1/events/SEQ, and refuses one of another event (exit 2)', async () => {
    const answer = await fetch(`${server.url}/v1/events/19`, { headers: { authorization: `Bearer ${harness.tokens.auditor}` } });
    expect(answer.status).toBe(200);
    writeFileSync(file('event-19.json'), Buffer.from(await answer.arrayBuffer()));
    const capture = captured();
    expect(await proveCommand('19', { url: server.url, key: logKey.verifierKey, eventFile: file('event-19.json') }, capture.deps)).toBe(0);
    expect(capture.err[0]).toMatch(/^ok: event 19 is entry 19 of log\.cli\.test/);
    const other = await failureOf(proveCommand('20', { url: server.url, key: logKey.verifierKey, eventFile: file('event-19.json') }, captured().deps));
    expect(other.exitCode).toBe(2);
    expect(other.message).toContain('holds event 19 as GET /v1/events/:seq serves it, not event 20');
  });

  it('says there is no such event past the log, rather than to try again', async () => {
    const failure = await failureOf(proveCommand('100000', { url: server.url, key: logKey.verifierKey, token: harness.tokens.auditor }, captured().deps));
    expect(failure.message).toMatch(/there is no event 100000: the log holds \d+ events, numbered 0 to \d+/);
    expect(failure.message).not.toContain('try again');
  });

  it('says when the token does not see the event', async () => {
    const failure = await failureOf(proveCommand('42', { url: server.url, key: logKey.verifierKey, token: harness.tokens.recipient }, captured().deps));
    expect(failure.message).toContain('event 42 is not visible to this token');
  });
});

describe('log monitor', () => {
  const grow = async () => {
    await harness.book(5);
    await server.ledger.checkpointer!.checkpointNow();
  };

  it('follows a growing log, saving each consistent checkpoint', async () => {
    const capture = captured(grow);
    await monitorCommand({ url: server.url, key: logKey.verifierKey, state: file('monitor.state'), intervalMs: '1', maxRounds: '3' }, capture.deps);
    expect(capture.out.map((line) => line.split(' ')[1])).toEqual(['first', 'consistent:', 'consistent:']);
    expect(capture.err).toEqual([]);
    const head = (await harness.database.pool.query<{ size: number }>('SELECT max(size) AS size FROM tlog_checkpoints')).rows[0]!.size;
    expect((await readState(file('monitor.state')))!.size).toBe(head);
  });

  it('alerts on a fork and stops, or keeps going with --keep-going; the state keeps the last good checkpoint', async () => {
    // A good checkpoint at the head, so that the first round meets the forked one at its own size.
    await monitorCommand({ url: server.url, key: logKey.verifierKey, state: file('monitor-good.state'), maxRounds: '1' }, captured().deps);
    const good = (await readState(file('monitor-good.state')))!;
    await writeState(file('monitor-fork.state'), { ...good, rootHash: Buffer.alloc(32, 6) });
    const stop = captured(grow);
    const stopped = await failureOf(monitorCommand({ url: server.url, key: logKey.verifierKey, state: file('monitor-fork.state'), intervalMs: '1', maxRounds: '3' }, stop.deps));
    expect(stopped.message).toContain('stopped on an alert');
    // The served checkpoint, which contradicts the state, is said with its note and kept; then the alert.
    expect(stop.err[0]).toMatch(/^the log signed the checkpoint of size \d+ \(root [0-9a-f]{64}\), which contradicts what this monitor holds; .*monitor-fork\.state keeps it as evidence/);
    expect(stop.err.filter((line) => line.startsWith('ALERT'))).toEqual([expect.stringMatching(/^ALERT \[fork\] http:\/\/127\.0\.0\.1:\d+: fork: two checkpoints of size/)]);
    expect(stop.err.at(-1)).toMatch(/^ALERT/);
    const going = captured(grow);
    const failed = await failureOf(monitorCommand({ url: server.url, key: logKey.verifierKey, state: file('monitor-fork.state'), intervalMs: '1', maxRounds: '2', keepGoing: true }, going.deps));
    expect(failed.message).toContain('raised 2 alert(s)');
    expect(going.err.flatMap((line) => /^ALERT \[(\w+)\]/.exec(line)?.[1] ?? [])).toEqual(['fork', 'consistency']); // same size first, then a larger one that does not extend it
    expect((await readState(file('monitor-fork.state')))!.rootHash.equals(Buffer.alloc(32, 6))).toBe(true);
  });
});

describe('log witness', () => {
  it('cosigns a consistent checkpoint, sends it to the log, and refuses an inconsistent one', async () => {
    writeFileSync(file('witness.key'), `${witnessKey.signerKey}\n`, { mode: 0o600 });
    const options = { url: server.url, logKey: logKey.verifierKey, witnessKeyFile: file('witness.key'), state: file('witness.state') };
    const first = captured();
    await witnessCommand(options, first.deps);
    expect(first.out[0]).toMatch(/^cosigned log\.cli\.test size \d+ root [0-9a-f]{64} as witness\.cli\.test \(first checkpoint seen\); the log stored 1 cosignature/);
    const served = await (await fetch(`${server.url}/v1/log/checkpoint`)).text();
    const opened = openCheckpoint(served, parseVerifierKey(logKey.verifierKey), [parseCosignatureVerifierKey(witnessKey.verifierKey)]);
    expect(opened.note.verified.map((signature) => signature.name)).toEqual(['log.cli.test', 'witness.cli.test']);

    const again = captured();
    await witnessCommand(options, again.deps); // the served note carries our line already: it is replaced
    expect(again.out[0]).toContain('same as last time');
    await harness.book(3);
    await server.ledger.checkpointer!.checkpointNow();
    const grown = captured();
    await witnessCommand(options, grown.deps);
    expect(grown.out[0]).toContain(`consistent with size ${opened.checkpoint.size}`);

    const saved = (await readState(file('witness.state')))!;
    await writeState(file('witness-fork.state'), { ...saved, size: saved.size - 1 });
    const refused = await failureOf(witnessCommand({ ...options, state: file('witness-fork.state') }, captured().deps));
    expect(refused.message).toMatch(/^refusing to cosign: \[consistency\] inconsistent: the checkpoint of size \d+/);
    const stranger = generateSignerKey('log.cli.test').verifierKey;
    const wrongKey = await failureOf(witnessCommand({ ...options, logKey: stranger, state: file('witness-stranger.state') }, captured().deps));
    expect(wrongKey.message).toMatch(/^refusing to cosign: \[signature\]/);
    // With a state checked under the log's key, a key the log never announced is a mistake in the command.
    const mismatch = await failureOf(witnessCommand({ ...options, logKey: stranger }, captured().deps));
    expect({ exitCode: mismatch.exitCode, message: mismatch.message }).toEqual({ exitCode: 2, message: expect.stringMatching(/^chipledger: the key given, log\.cli\.test\+[0-9a-f]{8}, is not the key recorded in .*witness\.state \(log\.cli\.test\+[0-9a-f]{8}\)/) });
  });

  it('a witness the log does not know is told which witnesses it knows and what its operator configures', async () => {
    writeFileSync(file('unknown-witness.key'), `${generateCosignerKey('unknown.cli.test').signerKey}\n`, { mode: 0o600 });
    // A new checkpoint, which no configured witness cosigned yet: the note sent carries the unknown line only.
    await harness.book(1);
    await server.ledger.checkpointer!.checkpointNow();
    const failure = await failureOf(witnessCommand({ url: server.url, logKey: logKey.verifierKey, witnessKeyFile: file('unknown-witness.key'), state: file('unknown-witness.state') }, captured().deps));
    expect(failure.message).toMatch(/it carries signatures by unknown\.cli\.test\+[0-9a-f]{8}, and the witnesses configured are witness\.cli\.test\+[0-9a-f]{8}; its operator adds a witness by putting the witness's verifier key .* in CHIPLEDGER_LOG_WITNESSES/);
  });

  it('a witness the log does not know is not told "stored" when the note it sends back carries a known witness\'s line', async () => {
    writeFileSync(file('known.key'), `${witnessKey.signerKey}\n`, { mode: 0o600 });
    writeFileSync(file('stranger.key'), `${generateCosignerKey('stranger.cli.test').signerKey}\n`, { mode: 0o600 });
    await harness.book(1);
    await server.ledger.checkpointer!.checkpointNow();
    // The configured witness cosigns first, so the checkpoint the stranger is served carries its line.
    await witnessCommand({ url: server.url, logKey: logKey.verifierKey, witnessKeyFile: file('known.key'), state: file('known-2.state') }, captured().deps);
    const failure = await failureOf(witnessCommand({ url: server.url, logKey: logKey.verifierKey, witnessKeyFile: file('stranger.key'), state: file('stranger.state') }, captured().deps));
    expect(failure.exitCode).toBe(1);
    expect(failure.message).toMatch(/the log did not take this witness's cosignature: it took those of witness\.cli\.test\+[0-9a-f]{8} only, so it does not know stranger\.cli\.test\+[0-9a-f]{8}; its operator adds this witness's verifier key stranger\.cli\.test\+[0-9a-f]{8}\+\S+ to CHIPLEDGER_LOG_WITNESSES/);
  });
});
