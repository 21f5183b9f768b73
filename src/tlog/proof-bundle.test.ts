import { describe, expect, it } from 'vitest';
import { signCheckpoint } from './checkpoint.ts';
import { cosignCheckpoint, generateCosignerKey, parseCosignatureVerifierKey, parseCosignerKey } from './cosignature.ts';
import { generateSignerKey, parseSignerKey, parseVerifierKey } from './note.ts';
import { inclusionProof, nodeGetterFromLeaves } from './proof.ts';
import { formatTlogProof, parseTlogProof, verifyTlogProof } from './proof-bundle.ts';
import { flipBit, reason, seededLeafHashes } from './test-support.ts';
import { rootOf } from './tree.ts';


// The example of c2sp.org/tlog-proof (its signatures are elided, so only the head parses).
const specExample = `c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

— example.com/fancylog hI2DJw[...]1roloI=
`;

const origin = 'chipledger.example/log';
const log = generateSignerKey(origin);
const logVerifier = parseVerifierKey(log.verifierKey);
const leaves = seededLeafHashes(99, 1000);
const getNode = nodeGetterFromLeaves(leaves);
const size = 777;
const checkpointNote = signCheckpoint({ origin, size, rootHash: rootOf(leaves.slice(0, size)), extensions: [] }, parseSignerKey(log.signerKey));

function proofFor(index: number, note = checkpointNote, extra?: Buffer): string {
  return formatTlogProof({ index, inclusionProof: inclusionProof(index, size, getNode), checkpointNote: note, ...(extra === undefined ? {} : { extra }) });
}

describe('tlog-proof format', () => {
  it('parses the specification example', () => {
    const parsed = parseTlogProof(specExample);
    expect(parsed.index).toBe(73894);
    expect(parsed.inclusionProof).toHaveLength(5);
    expect(parsed.extra?.toString('latin1').startsWith('age-v1.2.1-darwin-arm64.tar.gz')).toBe(true);
    expect(parsed.checkpointNote.startsWith('example.com/fancylog\n109482\n')).toBe(true);
  });

  it('round-trips, with and without extra data and with an empty proof', () => {
    const text = proofFor(5, checkpointNote, Buffer.from('context'));
    expect(text.split('\n').slice(0, 3)).toEqual(['c2sp.org/tlog-proof@v1', `extra ${Buffer.from('context').toString('base64')}`, 'index 5']);
    expect(formatTlogProof(parseTlogProof(text))).toBe(text);
    const single = formatTlogProof({ index: 0, inclusionProof: [], checkpointNote });
    expect(single).toBe(`c2sp.org/tlog-proof@v1\nindex 0\n\n${checkpointNote}`);
    expect(parseTlogProof(single)).toEqual({ index: 0, inclusionProof: [], checkpointNote });
  });

  it('refuses malformed proofs', () => {
    const good = proofFor(5);
    for (const [text, why] of [
      [good.replace('c2sp.org/tlog-proof@v1', 'c2sp.org/tlog-proof@v2'), 'other version'],
      [good.replace('index 5', 'index 05'), 'leading zero'],
      [good.replace('index 5', 'index  5'), 'two spaces'],
      [good.replace('index 5\n', ''), 'no index'],
      [good.replace('\n\n', '\n'), 'no blank line'],
      [good.replace('index 5\n', 'index 5\nnot-base64\n'), 'bad hash'],
      [good.replace('index 5\n', `index 5\n${Buffer.alloc(31).toString('base64')}\n`), 'short hash'],
      [good.replace('c2sp.org/tlog-proof@v1\n', 'c2sp.org/tlog-proof@v1\nextra \n'), 'empty extra'],
      [good.replace('index 5\n', 'index 5\nextra AAAA\n'), 'extra after index'],
      [`${good}${'界'.repeat(400_000)}`, 'over the bound in UTF-8 bytes, under it in UTF-16 units'],
    ] as const) {
      expect(reason(() => parseTlogProof(text)), why).toBe('malformed_proof');
    }
  });
});

describe('verifying a tlog-proof offline', () => {
  it('accepts the entry at its index in the signed tree', () => {
    for (const index of [0, 1, 255, 256, 511, 776]) {
      const verified = verifyTlogProof(proofFor(index), leaves[index]!, logVerifier);
      expect(verified.index).toBe(index);
      expect(verified.checkpoint.size).toBe(size);
    }
    expect(verifyTlogProof(proofFor(3, checkpointNote, Buffer.from('x')), leaves[3]!, logVerifier).extra?.toString()).toBe('x');
  });

  it('refuses another entry, another index, a changed proof or another log', () => {
    expect(reason(() => verifyTlogProof(proofFor(5), leaves[6]!, logVerifier))).toBe('inclusion_failed');
    expect(reason(() => verifyTlogProof(proofFor(5).replace('index 5', 'index 4'), leaves[5]!, logVerifier))).toBe('inclusion_failed');
    expect(reason(() => verifyTlogProof(proofFor(5).replace('index 5', 'index 777'), leaves[5]!, logVerifier))).toBe('inclusion_failed');
    const parsed = parseTlogProof(proofFor(5));
    const changed = formatTlogProof({ ...parsed, inclusionProof: parsed.inclusionProof.map((hash, i) => (i === 2 ? flipBit(hash) : hash)) });
    expect(reason(() => verifyTlogProof(changed, leaves[5]!, logVerifier))).toBe('inclusion_failed');
    const otherLog = parseVerifierKey(generateSignerKey(origin).verifierKey);
    expect(reason(() => verifyTlogProof(proofFor(5), leaves[5]!, otherLog))).toBe('unverified_note');
  });

  it('enforces a witness quorum', () => {
    const w1 = generateCosignerKey('witness.example/w1');
    const w2 = generateCosignerKey('witness.example/w2');
    const witnesses = [parseCosignatureVerifierKey(w1.verifierKey), parseCosignatureVerifierKey(w2.verifierKey)];
    const once = cosignCheckpoint(checkpointNote, parseCosignerKey(w1.signerKey), 1_767_225_600);
    const twice = cosignCheckpoint(once, parseCosignerKey(w2.signerKey), 1_767_225_601);
    expect(reason(() => verifyTlogProof(proofFor(9, once), leaves[9]!, logVerifier, { witnesses, witnessQuorum: 2 }))).toBe('witness_quorum');
    const verified = verifyTlogProof(proofFor(9, twice), leaves[9]!, logVerifier, { witnesses, witnessQuorum: 2 });
    expect(verified.cosignatures.map((c) => c.timestampSeconds)).toEqual([1_767_225_600, 1_767_225_601]);
  });

  it('counts witnesses, not keys: one witness with two keys (before and after a rotation) is one', () => {
    const before = generateCosignerKey('witness.example/w1');
    const after = generateCosignerKey('witness.example/w1');
    const witnesses = [parseCosignatureVerifierKey(before.verifierKey), parseCosignatureVerifierKey(after.verifierKey)];
    const both = cosignCheckpoint(cosignCheckpoint(checkpointNote, parseCosignerKey(before.signerKey), 1_767_225_600), parseCosignerKey(after.signerKey), 1_767_225_601);
    expect(verifyTlogProof(proofFor(9, both), leaves[9]!, logVerifier, { witnesses, witnessQuorum: 1 }).cosignatures).toHaveLength(2);
    expect(reason(() => verifyTlogProof(proofFor(9, both), leaves[9]!, logVerifier, { witnesses, witnessQuorum: 2 }))).toBe('witness_quorum');
  });
});
