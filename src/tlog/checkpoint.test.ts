import { describe, expect, it } from 'vitest';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint, type Checkpoint } from './checkpoint.ts';
import { generateSignerKey, parseSignerKey, parseVerifierKey } from './note.ts';
import { hex, reason } from './test-support.ts';


const root8 = hex('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
const checkpoint: Checkpoint = { origin: 'chipledger.example/log', size: 8, rootHash: root8, extensions: [] };
const body = 'chipledger.example/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n';

describe('checkpoint bodies', () => {
  it('formats origin, decimal size and base64 root, one per line', () => {
    expect(formatCheckpoint(checkpoint)).toBe(body);
    expect(parseCheckpoint(body)).toEqual(checkpoint);
    const withExtension = { ...checkpoint, extensions: ['ext one', 'x'] };
    expect(parseCheckpoint(formatCheckpoint(withExtension))).toEqual(withExtension);
    expect(parseCheckpoint('example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n').size).toBe(20852163);
  });

  it('has one spelling per checkpoint', () => {
    const lines = body.split('\n');
    for (const [text, why] of [
      [body.slice(0, -1), 'no final newline'],
      [`\n8\n${lines[2]}\n`, 'empty origin'],
      [`${lines[0]}\n08\n${lines[2]}\n`, 'leading zero'],
      [`${lines[0]}\n+8\n${lines[2]}\n`, 'sign'],
      [`${lines[0]}\n8.0\n${lines[2]}\n`, 'not an integer'],
      [`${lines[0]}\n9007199254740992\n${lines[2]}\n`, 'beyond 2^53'],
      [`${lines[0]}\n8\n${lines[2]!.slice(0, -1)}\n`, 'unpadded base64'],
      [`${lines[0]}\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n`, 'non-zero padding bits'],
      [`${lines[0]}\n8\n${Buffer.alloc(31).toString('base64')}\n`, 'short root'],
      [`${lines[0]}\n8\n`, 'no root line'],
      [`${body}\n`, 'empty extension line'],
      [`${body}${'ext\n'.repeat(17)}`, 'too many extension lines'],
    ] as const) {
      expect(reason(() => parseCheckpoint(text)), why).toBe('malformed_checkpoint');
    }
    expect(parseCheckpoint(`${lines[0]}\n0\n${lines[2]}\n`).size).toBe(0);
  });
});

describe('signed checkpoints', () => {
  const log = generateSignerKey('chipledger.example/log');
  const logSigner = parseSignerKey(log.signerKey);
  const logVerifier = parseVerifierKey(log.verifierKey);

  it('opens what the log signed', () => {
    const opened = openCheckpoint(signCheckpoint(checkpoint, logSigner), logVerifier);
    expect(opened.checkpoint).toEqual(checkpoint);
    expect(opened.note.verified.map((s) => s.name)).toEqual(['chipledger.example/log']);
  });

  it('refuses a checkpoint not signed by the log, or from another origin', () => {
    const other = generateSignerKey('other.example/log');
    const signedByOther = signCheckpoint({ ...checkpoint, origin: 'other.example/log' }, parseSignerKey(other.signerKey));
    expect(reason(() => openCheckpoint(signedByOther, logVerifier))).toBe('unverified_note');
    // The log signing another origin's body (a confused or compromised signer) is refused too.
    const wrongOrigin = signCheckpoint({ ...checkpoint, origin: 'other.example/log' }, logSigner);
    expect(reason(() => openCheckpoint(wrongOrigin, logVerifier))).toBe('wrong_origin');
    // A witness alone cannot make a checkpoint trusted.
    const witness = parseVerifierKey(other.verifierKey);
    const signedByWitnessOnly = signCheckpoint(checkpoint, parseSignerKey(other.signerKey));
    expect(reason(() => openCheckpoint(signedByWitnessOnly, logVerifier, [witness]))).toBe('unverified_checkpoint');
  });

  it('refuses an origin that only begins with the log\'s name, or that the name begins with', () => {
    for (const origin of ['chipledger.example/log/other', 'chipledger.example/log2', 'chipledger.example']) {
      const signed = signCheckpoint({ ...checkpoint, origin }, logSigner);
      expect(reason(() => openCheckpoint(signed, logVerifier)), origin).toBe('wrong_origin');
    }
  });

  it('refuses a signed note whose text is not a checkpoint', () => {
    const note = signCheckpoint(checkpoint, logSigner).replace('\n8\n', '\n08\n');
    expect(reason(() => openCheckpoint(note, logVerifier))).toBe('invalid_signature');
  });
});
