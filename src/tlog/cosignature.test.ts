import { describe, expect, it } from 'vitest';
import { openCheckpoint, signCheckpoint, type Checkpoint } from './checkpoint.ts';
import {
  cosignCheckpoint,
  cosignatureMessage,
  cosignaturesOf,
  cosignatureTimestamp,
  generateCosignerKey,
  parseCosignatureVerifierKey,
  parseCosignerKey,
} from './cosignature.ts';
import { computeKeyId, decodeVerifierKey, formatVerifierKey, generateSignerKey, parseNote, parseSignerKey, parseVerifierKey } from './note.ts';
import { flipBit, hex, reason } from './test-support.ts';


const checkpoint: Checkpoint = {
  origin: 'chipledger.example/log',
  size: 8,
  rootHash: hex('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'),
  extensions: [],
};
const log = generateSignerKey('chipledger.example/log');
const logVerifier = parseVerifierKey(log.verifierKey);
const signed = signCheckpoint(checkpoint, parseSignerKey(log.signerKey));
const witnessKeys = generateCosignerKey('witness.example/w1');
const witness = parseCosignerKey(witnessKeys.signerKey);
const witnessVerifier = parseCosignatureVerifierKey(witnessKeys.verifierKey);

describe('cosignature/v1', () => {
  it('signs the header line, the time line and the whole checkpoint text', () => {
    expect(cosignatureMessage('origin\n1\nroot\n', 1679315147).toString()).toBe('cosignature/v1\ntime 1679315147\norigin\n1\nroot\n');
  });

  it('uses signature type 0x04 in the key id and the verifier key', () => {
    const decoded = decodeVerifierKey(witnessKeys.verifierKey);
    expect(decoded.type).toBe(0x04);
    expect(witnessVerifier.keyId).toBe(computeKeyId('witness.example/w1', 0x04, witnessVerifier.publicKey));
    expect(witnessVerifier.keyId).not.toBe(computeKeyId('witness.example/w1', 0x01, witnessVerifier.publicKey));
    expect(witness.verifierKey).toBe(witnessKeys.verifierKey);
    expect(reason(() => parseVerifierKey(witnessKeys.verifierKey))).toBe('malformed_key');
    expect(reason(() => parseCosignatureVerifierKey(log.verifierKey))).toBe('malformed_key');
  });

  it('cosigns a signed checkpoint; the cosignature carries the time and verifies', () => {
    const cosigned = cosignCheckpoint(signed, witness, 1_767_225_600);
    const opened = openCheckpoint(cosigned, logVerifier, [witnessVerifier]);
    expect(cosignaturesOf(opened.note, [witnessVerifier])).toEqual([{ name: 'witness.example/w1', keyId: witnessVerifier.keyId, timestampSeconds: 1_767_225_600 }]);
    const line = parseNote(cosigned).signatures[1]!;
    expect(line.signature).toHaveLength(8 + 64);
    expect(line.signature.readBigUInt64BE(0)).toBe(1_767_225_600n);
    expect(cosignatureTimestamp(line.signature)).toBe(1_767_225_600);
  });

  it('fails when the timestamp, the signature or the checkpoint is changed', () => {
    const cosigned = cosignCheckpoint(signed, witness, 1_767_225_600);
    const line = parseNote(cosigned).signatures[1]!;
    const keyId = Buffer.alloc(4);
    keyId.writeUInt32BE(line.keyId);
    const withSignature = (signature: Buffer) => cosigned.replace(line.line, `— ${line.name} ${Buffer.concat([keyId, signature]).toString('base64')}`);
    expect(reason(() => openCheckpoint(withSignature(flipBit(line.signature, 63)), logVerifier, [witnessVerifier]))).toBe('invalid_signature'); // another time
    expect(reason(() => openCheckpoint(withSignature(flipBit(line.signature, 8 * 20)), logVerifier, [witnessVerifier]))).toBe('invalid_signature');
    expect(reason(() => openCheckpoint(withSignature(line.signature.subarray(0, 70)), logVerifier, [witnessVerifier]))).toBe('invalid_signature');
    // Domain separation: the same key as a plain (0x01) note key does not accept the signature.
    const asPlain = parseVerifierKey(formatVerifierKey('witness.example/w1', witnessVerifier.publicKey));
    expect(asPlain.verify(Buffer.from(parseNote(cosigned).text), line.signature.subarray(8))).toBe(false);
    const otherText = cosigned.replace('\n8\n', '\n9\n');
    expect(reason(() => openCheckpoint(otherText, logVerifier, [witnessVerifier]))).toBe('invalid_signature');
  });

  it('refuses to cosign twice, or a note that is not a checkpoint', () => {
    const cosigned = cosignCheckpoint(signed, witness, 1);
    expect(reason(() => cosignCheckpoint(cosigned, witness, 2))).toBe('duplicate_signature');
    const notCheckpoint = `hello\n\n${parseNote(signed).signatures[0]!.line}\n`;
    expect(reason(() => cosignCheckpoint(notCheckpoint, witness, 1))).toBe('malformed_checkpoint');
  });

  it('reads timestamps only from well-formed cosignatures', () => {
    expect(cosignatureTimestamp(Buffer.alloc(71))).toBeUndefined();
    const huge = Buffer.alloc(72);
    huge.writeBigUInt64BE(2n ** 63n);
    expect(cosignatureTimestamp(huge)).toBeUndefined();
  });
});
