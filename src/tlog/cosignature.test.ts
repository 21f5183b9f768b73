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
import { privateKeyFromSeed, signEd25519 } from './ed25519.ts';
import {
  addSignatures,
  computeKeyId,
  decodeSignerKey,
  decodeVerifierKey,
  formatKeyId,
  formatSignerKey,
  formatVerifierKey,
  generateSignerKey,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  type NoteSigner,
} from './note.ts';
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
  });

  it('cosigns a signed checkpoint; the cosignature carries the time and verifies', () => {
    const cosigned = cosignCheckpoint(signed, witness, 1_767_225_600);
    const opened = openCheckpoint(cosigned, logVerifier, [witnessVerifier]);
    expect(cosignaturesOf(opened.note, [witnessVerifier])).toEqual([{ name: 'witness.example/w1', keyId: witnessVerifier.keyId, timestampSeconds: 1_767_225_600 }]);
    const line = parseNote(cosigned).signatures[1]!;
    expect(line.signature).toHaveLength(8 + 64);
    expect(line.signature.readBigUInt64BE(0)).toBe(1_767_225_600n);
    expect(cosignatureTimestamp(line.signature)).toBe(1_767_225_600n);
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

  it('reads timestamps only from well-formed cosignatures, all 64 bits exactly', () => {
    expect(cosignatureTimestamp(Buffer.alloc(71))).toBeUndefined();
    expect(cosignatureTimestamp(Buffer.alloc(73))).toBeUndefined();
    const huge = Buffer.alloc(72);
    huge.writeBigUInt64BE(2n ** 63n - 1n);
    expect(cosignatureTimestamp(huge)).toBe(2n ** 63n - 1n);
    huge.writeBigUInt64BE(2n ** 64n - 1n);
    expect(cosignatureTimestamp(huge)).toBe(2n ** 64n - 1n);
  });
});

/** The witness's seed, to sign what Cosigner.at would not (any u64 time, a plain 0x01 note line). */
const witnessSeed = decodeSignerKey(witnessKeys.signerKey).key;
const witnessPrivateKey = privateKeyFromSeed(witnessSeed);

/** A cosignature/v1 signer for any 64-bit time, written from the spec's text, not from cosignature.ts. */
function cosignerAtAnyTime(time: bigint): NoteSigner {
  return {
    name: 'witness.example/w1',
    keyId: witnessVerifier.keyId,
    sign(text) {
      const timestamp = Buffer.alloc(8);
      timestamp.writeBigUInt64BE(time);
      return Buffer.concat([timestamp, signEd25519(witnessPrivateKey, Buffer.from(`cosignature/v1\ntime ${time}\n${text.toString('utf8')}`, 'utf8'))]);
    },
  };
}

describe('witness verifier keys given as plain Ed25519 keys (type 0x01)', () => {
  // The same public key, written as a plain signed-note key: its id is computed with 0x01.
  const plainVerifierKey = formatVerifierKey('witness.example/w1', witnessVerifier.publicKey);

  it('are accepted, with the 0x04 key id that cosignature lines carry (as transparency-dev/formats does)', () => {
    expect(decodeVerifierKey(plainVerifierKey).type).toBe(0x01);
    const fromPlain = parseCosignatureVerifierKey(plainVerifierKey);
    expect(fromPlain.name).toBe('witness.example/w1');
    expect(fromPlain.keyId).toBe(computeKeyId('witness.example/w1', 0x04, witnessVerifier.publicKey));
    expect(fromPlain.keyId).toBe(witnessVerifier.keyId);
    expect(fromPlain.publicKey).toEqual(witnessVerifier.publicKey);
    // transparency-dev/formats TestCoSigV1NewVerifier "works: convert from algEd25519".
    const published = parseCosignatureVerifierKey('TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6');
    expect(published.keyId).toBe(computeKeyId('TEST', 0x04, published.publicKey));
    expect(formatKeyId(computeKeyId('TEST', 0x01, published.publicKey))).toBe('7997405c');
  });

  it('verify a cosignature line by its 0x04 id, and ignore a line by the 0x01 id of the same key', () => {
    const fromPlain = parseCosignatureVerifierKey(plainVerifierKey);
    const cosigned = cosignCheckpoint(signed, witness, 1_767_225_600);
    const opened = openCheckpoint(cosigned, logVerifier, [fromPlain]);
    expect(cosignaturesOf(opened.note, [fromPlain])).toEqual([{ name: 'witness.example/w1', keyId: witnessVerifier.keyId, timestampSeconds: 1_767_225_600 }]);
    // A plain note signature by the same key carries the 0x01 id: not a cosignature, so unknown.
    const plainSigner = parseSignerKey(formatSignerKey('witness.example/w1', witnessSeed, 0x01, witnessVerifier.publicKey));
    const plainSigned = addSignatures(signed, plainSigner);
    const openedPlain = openCheckpoint(plainSigned, logVerifier, [fromPlain]);
    expect(openedPlain.note.unknown.map((line) => line.keyId)).toEqual([computeKeyId('witness.example/w1', 0x01, witnessVerifier.publicKey)]);
    expect(cosignaturesOf(openedPlain.note, [fromPlain])).toEqual([]);
  });

  it('are still read strictly: a wrong id, bad base64, a wrong length or another type is refused, saying which', () => {
    const name = 'witness.example/w1';
    const material = plainVerifierKey.slice(`${name}+12345678+`.length);
    const keyOf = (bytes: Buffer, type = 0x01) => `${name}+${formatKeyId(computeKeyId(name, type, bytes.subarray(1)))}+${bytes.toString('base64')}`;
    const raw = Buffer.concat([Buffer.of(0x01), witnessVerifier.publicKey]);
    const cases: [string, RegExp][] = [
      // The 0x04 id with the 0x01 type byte: the id must be the one of the type written.
      [`${name}+${formatKeyId(witnessVerifier.keyId)}+${material}`, /key id does not match the key/],
      [`${name}+${formatKeyId(computeKeyId(name, 0x01, witnessVerifier.publicKey))}+${material.slice(0, -1)}`, /not base64/],
      [`${name}+${formatKeyId(computeKeyId(name, 0x01, witnessVerifier.publicKey))}+${material.replace(/=*$/, '')}!`, /not base64/],
      [keyOf(raw.subarray(0, 32)), /32-byte Ed25519 public key, got 31 bytes/],
      [keyOf(Buffer.concat([raw, Buffer.of(0)])), /32-byte Ed25519 public key, got 33 bytes/],
      [keyOf(Buffer.concat([Buffer.of(0x02), witnessVerifier.publicKey]), 0x02), /expected signature type 0x04 \(cosignature\/v1\) or 0x01 \(Ed25519\), got 0x02/],
      [keyOf(Buffer.concat([Buffer.of(0x06), witnessVerifier.publicKey]), 0x06), /got 0x06/],
    ];
    expect(decodeVerifierKey(`${name}+00000000+${material}`).key).toEqual(witnessVerifier.publicKey);
    for (const [key, message] of cases) {
      expect(reason(() => parseCosignatureVerifierKey(key)), key).toBe('malformed_key');
      expect(() => parseCosignatureVerifierKey(key), key).toThrow(message);
    }
  });
});

describe('witness verifier keys of small order', () => {
  // A point of order 8: a cosignature of R = the identity and S = 0 verifies under it for one
  // time in eight, so anyone could cosign in the witness's name by trying a few times.
  const order8 = hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');

  it('are refused as 0x04 and as 0x01 keys, naming the key and why', () => {
    for (const type of [0x04, 0x01]) {
      const key = formatVerifierKey('witness.example/weak', order8, type);
      expect(reason(() => parseCosignatureVerifierKey(key)), key).toBe('weak_key');
      expect(() => parseCosignatureVerifierKey(key), key).toThrow(`refused the Ed25519 public key ${order8.toString('hex')}: it is a point of small order`);
    }
  });
});

describe('cosignature times beyond 2^53', () => {
  const text = Buffer.from(parseNote(signed).text, 'utf8');
  const cosignedAt = (time: bigint) => addSignatures(signed, cosignerAtAnyTime(time));

  it('verify when correctly signed: the time is read as all 64 bits, so the message is rebuilt exactly', () => {
    for (const time of [2n ** 53n, 2n ** 63n - 1n, 2n ** 64n - 1n]) {
      const line = parseNote(cosignedAt(time)).signatures[1]!;
      expect(witnessVerifier.verify(text, line.signature), `time ${time}`).toBe(true);
      expect(() => openCheckpoint(cosignedAt(time), logVerifier, [witnessVerifier]), `time ${time}`).not.toThrow();
      // Another time in the same signature does not verify.
      const otherTime = Buffer.from(line.signature);
      otherTime.writeBigUInt64BE(time - 1n);
      expect(witnessVerifier.verify(text, otherTime), `time ${time}`).toBe(false);
    }
  });

  it('are refused as in the future, naming the limit, above 2^53 - 1 seconds; 2^53 - 1 itself is kept exactly', () => {
    const at = (time: bigint) => cosignaturesOf(openCheckpoint(cosignedAt(time), logVerifier, [witnessVerifier]).note, [witnessVerifier]);
    expect(at(2n ** 53n - 1n)).toEqual([{ name: 'witness.example/w1', keyId: witnessVerifier.keyId, timestampSeconds: Number.MAX_SAFE_INTEGER }]);
    for (const time of [2n ** 53n, 2n ** 63n - 1n]) {
      expect(reason(() => at(time)), `time ${time}`).toBe('future_timestamp');
      expect(() => at(time)).toThrow(`time ${time} is in the future`);
      expect(() => at(time)).toThrow('at most 9007199254740991 seconds');
    }
  });

  it('are refused as malformed above 2^63 - 1, which the spec forbids', () => {
    const at = (time: bigint) => cosignaturesOf(openCheckpoint(cosignedAt(time), logVerifier, [witnessVerifier]).note, [witnessVerifier]);
    expect(reason(() => at(2n ** 63n))).toBe('malformed_cosignature');
    expect(() => at(2n ** 64n - 1n)).toThrow('time 18446744073709551615 exceeds 2^63 - 1');
  });
});
