import { describe, expect, it } from 'vitest';
import {
  addSignatures,
  computeKeyId,
  formatVerifierKey,
  generateSignerKey,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  type NoteSigner,
} from './note.ts';
import { flipBit, reason } from './test-support.ts';

// Published in data/tlog-vectors.md (Go golang.org/x/mod/sumdb/note).
const peterVerifierKey = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const peterSignerKey = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const enochVerifierKey = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const peterLine = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=';
const enochLine = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=';

const peter = parseVerifierKey(peterVerifierKey);
const enoch = parseVerifierKey(enochVerifierKey);


describe('published signed-note vectors', () => {
  it('signs the text exactly as Go does', () => {
    const signer = parseSignerKey(peterSignerKey);
    expect(signer.verifierKey).toBe(peterVerifierKey);
    expect(signNote(text, signer)).toBe(`${text}\n${peterLine}\n`);
  });

  it('verifies both published signatures and reports which keys signed', () => {
    const note = `${text}\n${peterLine}\n${enochLine}\n`;
    const opened = openNote(note, [peter, enoch]);
    expect(opened.text).toBe(text);
    expect(opened.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(opened.unknown).toEqual([]);
    const onlyEnoch = openNote(note, [enoch]);
    expect(onlyEnoch.verified.map((s) => s.name)).toEqual(['EnochRoot']);
    expect(onlyEnoch.unknown.map((s) => [s.name, s.keyId])).toEqual([['PeterNeumann', 0xc74f20a3]]);
  });

  it('computes the published key ids and keeps "+" inside base64', () => {
    expect(peter.keyId).toBe(0xc74f20a3);
    expect(enoch.keyId).toBe(0xaf0cfe78);
    expect(computeKeyId('PeterNeumann', 1, peter.publicKey)).toBe(0xc74f20a3);
    expect(formatVerifierKey('EnochRoot', enoch.publicKey)).toBe(enochVerifierKey);
  });
});

describe('refusing bad notes', () => {
  const good = `${text}\n${peterLine}\n`;

  it('refuses malformed notes', () => {
    for (const [note, why] of [
      [`${text}\n${peterLine}`, 'no final newline'],
      [`${text}${peterLine}\n`, 'no blank line'],
      [`${text}\n\n`, 'no signatures'],
      [`${text}\n- PeterNeumann ${peterLine.split(' ')[2]}\n`, 'hyphen instead of em dash'],
      [`${text}\n—PeterNeumann ${peterLine.split(' ')[2]}\n`, 'no space after the dash'],
      [`${text}\n— PeterNeumann\n`, 'no signature'],
      [`${text}\n— PeterNeumann x08gow==\n`, 'a key id and no signature'],
      [`${text}\n${peterLine.slice(0, -1)}\n`, 'base64 without padding'],
      [`${text}\n${peterLine} \n`, 'trailing space'],
      [`${text}\n— Peter+Neumann ${peterLine.split(' ')[2]}\n`, 'plus in name'],
      [`If you\tthink\n\n${peterLine}\n`, 'control character'],
      [`${text}\n${peterLine}\n\n`, 'blank line after the signatures'],
      [`${text}\n${`${peterLine}\n`.repeat(101)}`, 'too many signatures'],
    ] as const) {
      expect(reason(() => openNote(note, [peter])), why).toBe('malformed_note');
    }
    expect(reason(() => openNote(Buffer.from([...Buffer.from(good)].map((b, i) => (i === 3 ? 0xff : b))), [peter]))).toBe('malformed_note');
  });

  it('refuses a forged or corrupted signature by a known key, even beside a good one', () => {
    const signature = Buffer.from(peterLine.split(' ')[2]!, 'base64');
    const forged = `— PeterNeumann ${flipBit(signature, 100).toString('base64')}`;
    expect(reason(() => openNote(`${text}\n${forged}\n`, [peter]))).toBe('invalid_signature');
    expect(reason(() => openNote(`${text}\n${enochLine}\n${forged}\n`, [peter, enoch]))).toBe('invalid_signature');
    expect(reason(() => openNote(`${text.replace('answer', 'answers')}\n${peterLine}\n`, [peter]))).toBe('invalid_signature');
  });

  it("verifies every line of a known key, as C2SP says (Go's note.Open skips the repeats), and lists its first once", () => {
    const opened = openNote(`${text}\n${peterLine}\n${peterLine}\n${enochLine}\n`, [peter, enoch]);
    expect(opened.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    const signature = Buffer.from(peterLine.split(' ')[2]!, 'base64');
    const forged = `— PeterNeumann ${flipBit(signature, 100).toString('base64')}`;
    // A forged line of a known key taints the note, first or repeat: it cannot ride along after a good one.
    expect(reason(() => openNote(`${text}\n${forged}\n${peterLine}\n`, [peter]))).toBe('invalid_signature');
    expect(reason(() => openNote(`${text}\n${peterLine}\n${forged}\n`, [peter]))).toBe('invalid_signature');
    expect(reason(() => openNote(`${text}\n${peterLine}\n${enochLine}\n${forged}\n`, [peter, enoch]))).toBe('invalid_signature');
  });

  it("accepts what Go's note.Open accepts from unknown keys: any non-space name, padding bits set", () => {
    // U+FEFF is not Unicode White_Space (JavaScript's \s counts it; Go's unicode.IsSpace does not).
    const unknownName = `— odd\ufeffname ${peterLine.split(' ')[2]}`;
    expect(openNote(`${text}\n${unknownName}\n${peterLine}\n`, [peter]).unknown.map((s) => s.name)).toEqual(['odd\ufeffname']);
    // base64.StdEncoding ignores the padding bits: "AAAAAAAAAAAAAAAAAB==" decodes as "…AA==".
    const padded = openNote(`${text}\n— other AAAAAAAAAAAAAAAAAB==\n${peterLine}\n`, [peter]);
    expect(padded.unknown.map((s) => s.signature.length)).toEqual([9]);
    for (const space of ['\u00a0', '\u2003', '\u3000', '\u0085']) {
      expect(reason(() => openNote(`${text}\n— a${space}b ${peterLine.split(' ')[2]}\n${peterLine}\n`, [peter])), `U+${space.codePointAt(0)!.toString(16)}`).toBe('malformed_note');
    }
  });

  it('bounds a note by its UTF-8 bytes, given as text or as bytes', () => {
    const wide = `${'界'.repeat(400_000)}\n`; // 400,001 UTF-16 units, 1,200,001 bytes
    const note = `${wide}\n${peterLine}\n`;
    expect(reason(() => openNote(note, [peter]))).toBe('malformed_note');
    expect(reason(() => openNote(Buffer.from(note), [peter]))).toBe('malformed_note');
  });

  it('ignores unknown keys, including a known name with another key id, but needs one known signature', () => {
    const signature = Buffer.from(peterLine.split(' ')[2]!, 'base64');
    const otherId = `— PeterNeumann ${flipBit(signature, 0).toString('base64')}`;
    expect(openNote(`${text}\n${otherId}\n${peterLine}\n`, [peter]).unknown).toHaveLength(1);
    expect(reason(() => openNote(`${text}\n${otherId}\n`, [peter]))).toBe('unverified_note');
    expect(reason(() => openNote(good, [enoch]))).toBe('unverified_note');
    expect(reason(() => openNote(good, []))).toBe('unverified_note');
  });
});

describe('keys', () => {
  it('refuses keys whose id does not match, of another type, or malformed', () => {
    for (const key of [
      'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'PeterNeumann+c74f20a3+AhpjZDEPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=',
      'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T',
      'PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'PeterNeumann+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      '+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    ]) {
      expect(reason(() => parseVerifierKey(key)), key).toBe('malformed_key');
    }
    expect(reason(() => parseSignerKey(peterSignerKey.replace('c74f20a3', 'c74f20a4')))).toBe('malformed_key');
    expect(reason(() => parseSignerKey(peterSignerKey.replace('PRIVATE+KEY', 'PUBLIC+KEY')))).toBe('malformed_key');
    expect(reason(() => parseSignerKey(peterVerifierKey))).toBe('malformed_key');
  });

  it('refuses a public key of small order, under which anyone signs, naming the key and why', () => {
    // The identity point: a signature of R = the identity and S = 0 verifies any text under it.
    const identity = Buffer.concat([Buffer.of(1), Buffer.alloc(31)]);
    const key = formatVerifierKey('log.example', identity);
    expect(reason(() => parseVerifierKey(key))).toBe('weak_key');
    expect(() => parseVerifierKey(key)).toThrow(`refused the Ed25519 public key ${identity.toString('hex')}: it is a point of small order`);
  });

  it('generates keys that sign and verify, and only each other', () => {
    const a = generateSignerKey('log.example/a');
    const b = generateSignerKey('log.example/b');
    const note = signNote('hello\n', [parseSignerKey(a.signerKey), parseSignerKey(b.signerKey)]);
    expect(openNote(note, [parseVerifierKey(a.verifierKey), parseVerifierKey(b.verifierKey)]).verified).toHaveLength(2);
    const impostor = parseVerifierKey(generateSignerKey('log.example/a').verifierKey);
    expect(reason(() => openNote(note, [impostor]))).toBe('unverified_note');
  });
});

describe('signing', () => {
  const signer = parseSignerKey(peterSignerKey);

  it('refuses text that could not be read back the same', () => {
    expect(reason(() => signNote('no newline', signer))).toBe('malformed_note');
    expect(reason(() => signNote('tab\there\n', signer))).toBe('malformed_note');
    expect(reason(() => signNote('lone \ud800 surrogate\n', signer))).toBe('malformed_note');
    expect(reason(() => signNote('x\n', [signer, signer]))).toBe('duplicate_signature');
  });

  it('round-trips texts with blank lines and non-ASCII characters', () => {
    const tricky = 'Ognuno sta solo sul cuor della terra\n\ned è subito sera.\n\n';
    const opened = openNote(signNote(tricky, signer), [peter]);
    expect(opened.text).toBe(tricky);
  });

  it('adds signatures to a signed note without touching the existing lines', () => {
    const other = generateSignerKey('witness.example/w1');
    const otherSigner: NoteSigner = parseSignerKey(other.signerKey);
    const note = addSignatures(`${text}\n${peterLine}\n`, otherSigner);
    expect(note.startsWith(`${text}\n${peterLine}\n`)).toBe(true);
    expect(openNote(note, [peter, parseVerifierKey(other.verifierKey)]).verified).toHaveLength(2);
    expect(reason(() => addSignatures(note, otherSigner))).toBe('duplicate_signature');
    expect(parseNote(note).signatures).toHaveLength(2);
  });
});
