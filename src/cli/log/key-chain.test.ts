/**
 * Following a key rotation over an in-memory log: the announcement is followed only when
 * the old key and the new one both sign it and it names the new key, and it is held to the
 * rest of the log like any other checkpoint.
 */
import { describe, expect, it } from 'vitest';
import {
  canonicalSignatureLine, computeKeyId, formatCheckpoint, formatVerifierKey, generateSignerKey, keyRotationExtension, parseSignerKey, parseVerifierKey, rootOf, signCheckpoint, signNote,
} from '../../tlog/index.ts';
import { memoryLog, syntheticEntries } from '../../../test/tlog/memory-log.ts';
import { LogFetchError } from './client.ts';
import { followStep } from './follow.ts';
import type { SavedCheckpoint } from './state.ts';
import { verifyLog } from './verify.ts';

const origin = 'log.chain.test';
const oldKey = generateSignerKey(origin);
const newKey = generateSignerKey(origin);
const trusted = parseVerifierKey(oldKey.verifierKey);
const entries = syntheticEntries(300);

interface Announcement {
  size?: number;
  root?: Buffer;
  names?: string;
  signers?: readonly string[];
}

/** The log at 300 entries signed by the new key, announced at 256 as `announcement` says. */
function rotatedLog(announcement: Announcement = {}, keyList?: 'without-old') {
  const log = memoryLog(entries, newKey.signerKey);
  const size = announcement.size ?? 256;
  const text = formatCheckpoint({ origin, size, rootHash: announcement.root ?? rootOf(log.leaves.slice(0, size)), extensions: [`${keyRotationExtension} ${announcement.names ?? newKey.verifierKey}`] });
  const note = signNote(text, (announcement.signers ?? [oldKey.signerKey, newKey.signerKey]).map((key) => parseSignerKey(key)));
  log.keyList = [
    ...(keyList === 'without-old' ? [] : [{ verifierKey: oldKey.verifierKey, firstSize: 0, announcement: null }]),
    { verifierKey: newKey.verifierKey, firstSize: size, announcement: note },
  ];
  return log;
}

/** A checkpoint of the first 200 entries, signed by the old key: what a monitor saw before. */
function savedAt200(): SavedCheckpoint {
  const rootHash = rootOf(memoryLog(entries.slice(0, 200), oldKey.signerKey).leaves);
  return { origin, size: 200, rootHash, note: signCheckpoint({ origin, size: 200, rootHash, extensions: [] }, parseSignerKey(oldKey.signerKey)) };
}

/**
 * Two rotations: oldKey to newKey at 100, newKey to a third key at 256. The log serves, as
 * whoever still holds oldKey could, a checkpoint of size `size` signed by oldKey.
 */
function rotatedTwiceServing(size: number) {
  const thirdKey = generateSignerKey(origin);
  const log = memoryLog(entries, thirdKey.signerKey);
  const announce = (at: number, names: string, signers: readonly string[]) =>
    signNote(formatCheckpoint({ origin, size: at, rootHash: rootOf(log.leaves.slice(0, at)), extensions: [`${keyRotationExtension} ${names}`] }), signers.map((key) => parseSignerKey(key)));
  log.keyList = [
    { verifierKey: oldKey.verifierKey, firstSize: 0, announcement: null },
    { verifierKey: newKey.verifierKey, firstSize: 100, announcement: announce(100, newKey.verifierKey, [oldKey.signerKey, newKey.signerKey]) },
    { verifierKey: thirdKey.verifierKey, firstSize: 256, announcement: announce(256, thirdKey.verifierKey, [newKey.signerKey, thirdKey.signerKey]) },
  ];
  const rootHash = rootOf(log.leaves.slice(0, size));
  Object.assign(log, { signed: { origin, size, rootHash, extensions: [] }, note: signCheckpoint({ origin, size, rootHash, extensions: [] }, parseSignerKey(oldKey.signerKey)) });
  return log;
}

describe('following a key rotation', () => {
  it('verify and follow go from the old key to the announced one, every entry and head checked', async () => {
    const report = await verifyLog(rotatedLog(), { verifier: trusted, saved: savedAt200(), checkEntries: true });
    expect(report.failures).toEqual([]);
    expect(report.rotations.map((rotation) => rotation.announcement.size)).toEqual([256]);
    const step = await followStep(rotatedLog(), trusted, savedAt200());
    expect(step).toMatchObject({ kind: 'ok', change: 'grew', verifier: { keyId: parseVerifierKey(newKey.verifierKey).keyId } });
  });

  it.each([
    ['signed by the new key alone', { signers: [newKey.signerKey] }, /not signed by both the key before it/],
    ['signed by the old key alone', { signers: [oldKey.signerKey] }, /not signed by both the key before it/],
    ['naming another key', { names: generateSignerKey(origin).verifierKey }, /does not name the new key/],
  ] as const)('refuses an announcement %s', async (_name, announcement, message) => {
    const report = await verifyLog(rotatedLog(announcement), { verifier: trusted, checkEntries: false });
    expect(report.failures).toEqual([{ kind: 'signature', message: expect.stringMatching(message) }]);
    expect(await followStep(rotatedLog(announcement), trusted, undefined)).toMatchObject({ kind: 'alert', failure: { kind: 'signature', message: expect.stringMatching(message) } });
  });

  it('refuses a checkpoint by a key retired at the first of two rotations, at a size past that rotation but not the second', async () => {
    // Consistent with the log, but oldKey was retired at 100: it signs nothing past it, however
    // far the next rotation is.
    for (const size of [101, 200, 256]) {
      const report = await verifyLog(rotatedTwiceServing(size), { verifier: trusted, checkEntries: false });
      expect(report.failures, `size ${size}`).toEqual([{ kind: 'signature', message: expect.stringMatching(new RegExp(`^the checkpoint of size ${size} is signed by log\\.chain\\.test\\+[0-9a-f]{8}, which the log retired at size 100 `)) }]);
      expect(await followStep(rotatedTwiceServing(size), trusted, undefined), `size ${size}`).toMatchObject({ kind: 'alert', failure: { kind: 'signature', message: expect.stringContaining('retired at size 100') } });
    }
    // Up to its successor's announcement it still speaks for the log.
    expect((await verifyLog(rotatedTwiceServing(100), { verifier: trusted, checkEntries: false })).failures).toEqual([]);
  });

  it('refuses an announcement of a key of small order, under which anyone would sign every checkpoint after it', async () => {
    // The identity point: R = the identity and S = 0 is its "signature" of any text, so the
    // announcement and the checkpoint after it below are signed by nobody at all.
    const identity = Buffer.concat([Buffer.of(1), Buffer.alloc(31)]);
    const weakKey = formatVerifierKey(origin, identity);
    const forgedLine = `${canonicalSignatureLine({ name: origin, keyId: computeKeyId(origin, 0x01, identity), signature: Buffer.concat([identity, Buffer.alloc(32)]) })}\n`;
    const log = memoryLog(entries, oldKey.signerKey);
    const announcement = signNote(formatCheckpoint({ origin, size: 256, rootHash: rootOf(log.leaves.slice(0, 256)), extensions: [`${keyRotationExtension} ${weakKey}`] }), parseSignerKey(oldKey.signerKey)) + forgedLine;
    log.keyList = [{ verifierKey: oldKey.verifierKey, firstSize: 0, announcement: null }, { verifierKey: weakKey, firstSize: 256, announcement }];
    log.note = `${formatCheckpoint(log.signed)}\n${forgedLine}`;
    const refused = new RegExp(`no announced key leads from it to one that does \\(the log lists a key that is not a verifier key .*: refused the Ed25519 public key ${identity.toString('hex')}: it is a point of small order`);
    const report = await verifyLog(log, { verifier: trusted, checkEntries: false });
    expect(report.failures).toEqual([{ kind: 'signature', message: expect.stringMatching(refused) }]);
    expect(await followStep(log, trusted, undefined)).toMatchObject({ kind: 'alert', failure: { kind: 'signature', message: expect.stringMatching(refused) } });
  });

  it('refuses a key list that does not lead from the trusted key', async () => {
    const report = await verifyLog(rotatedLog({}, 'without-old'), { verifier: trusted, checkEntries: false });
    expect(report.failures).toEqual([{ kind: 'signature', message: expect.stringMatching(/the log's key list does not include the key trusted here/) }]);
  });

  it('catches an announcement that both keys signed over a forked root', async () => {
    const forked = { root: Buffer.alloc(32, 7) };
    const report = await verifyLog(rotatedLog(forked), { verifier: trusted, checkEntries: false });
    expect(report.failures).toEqual([{ kind: 'fork', message: expect.stringMatching(/^fork: the log's tiles give root [0-9a-f]{64} at size 256, but the announcement of key log\.chain\.test\+[0-9a-f]{8} at size 256 signs 0707/) }]);
    const step = await followStep(rotatedLog(forked), trusted, savedAt200());
    expect(step).toMatchObject({ kind: 'alert', failure: { kind: 'consistency', message: expect.stringMatching(/^inconsistent: the announcement of key .* at size 256 \(root 0707/) } });
  });

  it('an announcement beyond the signed size is a truncation', async () => {
    const log = rotatedLog({ size: 256 });
    // The new key signs a smaller tree than it was announced at.
    const small = memoryLog(entries.slice(0, 200), newKey.signerKey);
    Object.assign(log, { note: small.note, signed: small.signed });
    const report = await verifyLog(log, { verifier: trusted, checkEntries: false });
    expect(report.failures.map((failure) => failure.kind)).toContain('truncation');
    expect(await followStep(log, trusted, undefined)).toMatchObject({ kind: 'alert', failure: { kind: 'truncation' } });
  });

  it('a key list answered as something else (a 200 that is no list) fails the signature, not only the fetch', async () => {
    const log = rotatedLog();
    log.keys = async () => {
      throw new LogFetchError('memory/keys', 200, 'memory/keys: the answer is not a list of log keys');
    };
    const report = await verifyLog(log, { verifier: trusted, checkEntries: false });
    expect(report.failures).toEqual([{ kind: 'signature', message: expect.stringMatching(/the log's key list is not one/) }]);
  });

  it('a key list that cannot be fetched: the checkpoint is not verified, and a follower is told it could not reach the log', async () => {
    const log = rotatedLog();
    log.keys = async () => {
      throw new LogFetchError('memory/keys', 503, 'memory/keys answered 503');
    };
    const report = await verifyLog(log, { verifier: trusted, checkEntries: false });
    expect(report.failures).toEqual([{ kind: 'fetch', message: expect.stringMatching(/does not verify with the log key .*no announced key could be looked for \(couldn't fetch the log's keys/) }]);
    expect(await followStep(log, trusted, undefined)).toMatchObject({ kind: 'unreachable' });
  });
});
