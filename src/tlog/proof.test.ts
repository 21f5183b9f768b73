import { describe, expect, it } from 'vitest';
import { emptyRoot, nodeHash } from './hash.ts';
import {
  consistencyProof,
  consistencyProofFromLeaves,
  consistencyProofPlan,
  inclusionProof,
  inclusionProofFromLeaves,
  nodeGetterFromLeaves,
  planNodes,
  verifyConsistency,
  verifyInclusion,
} from './proof.ts';
import { flipBit, hex, seededLeafHashes, toHex, vectorLeafHashes } from './test-support.ts';
import { rootOf } from './tree.ts';

const vectorRoots = (n: number): Buffer => rootOf(vectorLeafHashes.slice(0, n));

const publishedInclusion: [number, number, string[]][] = [
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [0, 1, []],
];

const publishedConsistency: [number, number, string[]][] = [
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
];

describe('published proof vectors', () => {
  it.each(publishedInclusion)('inclusion of leaf %i in a tree of %i', (index, size, expected) => {
    const leaves = vectorLeafHashes.slice(0, size);
    expect(toHex(inclusionProofFromLeaves(index, leaves))).toEqual(expected);
    expect(verifyInclusion(vectorLeafHashes[index]!, index, size, expected.map(hex), vectorRoots(size))).toBe(true);
  });

  it.each(publishedConsistency)('consistency from %i to %i (old power of two starts at the old root)', (oldSize, newSize, expected) => {
    const leaves = vectorLeafHashes.slice(0, newSize);
    expect(toHex(consistencyProofFromLeaves(oldSize, leaves))).toEqual(expected);
    expect(verifyConsistency(oldSize, newSize, expected.map(hex), vectorRoots(oldSize), vectorRoots(newSize))).toBe(true);
  });
});

/**
 * The reference: RFC 6962 §2.1 MTH, §2.1.1 PATH and §2.1.2 SUBPROOF exactly as written, by
 * recursion over slices (MTH memoised by range so the exhaustive check stays fast).
 */
function reference(leaves: readonly Buffer[]) {
  const memo = new Map<string, Buffer>();
  const split = (n: number): number => {
    let k = 1;
    while (k * 2 < n) k *= 2;
    return k;
  };
  const mth = (start: number, end: number): Buffer => {
    const key = `${start}:${end}`;
    let hash = memo.get(key);
    if (hash !== undefined) return hash;
    if (end - start === 1) hash = leaves[start]!;
    else {
      const k = split(end - start);
      hash = nodeHash(mth(start, start + k), mth(start + k, end));
    }
    memo.set(key, hash);
    return hash;
  };
  const path = (m: number, start: number, end: number): Buffer[] => {
    const n = end - start;
    if (n === 1) return [];
    const k = split(n);
    return m < k ? [...path(m, start, start + k), mth(start + k, end)] : [...path(m - k, start + k, end), mth(start, start + k)];
  };
  const subproof = (m: number, start: number, end: number, b: boolean): Buffer[] => {
    const n = end - start;
    if (m === n) return b ? [] : [mth(start, end)];
    const k = split(n);
    return m <= k ? [...subproof(m, start, start + k, b), mth(start + k, end)] : [...subproof(m - k, start + k, end, false), mth(start, start + k)];
  };
  return { root: (n: number) => mth(0, n), path: (m: number, n: number) => path(m, 0, n), proof: (m: number, n: number) => subproof(m, 0, n, true) };
}

describe('every proof for 1 <= m <= n <= 128', () => {
  const maxSize = 128;
  const leaves = seededLeafHashes(20240501, maxSize);
  const getNode = nodeGetterFromLeaves(leaves); // complete subtrees of a prefix are those of the whole
  const ref = reference(leaves);

  it('inclusion proofs equal RFC 6962 PATH and verify', () => {
    for (let n = 1; n <= maxSize; n++) {
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(m, n, getNode);
        expect(toHex(proof)).toEqual(toHex(ref.path(m, n)));
        if (!verifyInclusion(leaves[m]!, m, n, proof, ref.root(n))) expect.fail(`inclusion ${m} in ${n} does not verify`);
      }
    }
  });

  it('consistency proofs equal RFC 6962 PROOF and verify', () => {
    for (let n = 1; n <= maxSize; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(m, n, getNode);
        expect(toHex(proof)).toEqual(toHex(ref.proof(m, n)));
        if (!verifyConsistency(m, n, proof, ref.root(m), ref.root(n))) expect.fail(`consistency ${m} -> ${n} does not verify`);
      }
    }
  });

  it('rejects every tampered inclusion proof', () => {
    for (let n = 1; n <= 64; n++) {
      const root = ref.root(n);
      for (let m = 0; m < n; m++) {
        const proof = ref.path(m, n);
        const fails = (leaf: Buffer, index: number, p: Buffer[], r: Buffer, why: string) => {
          if (verifyInclusion(leaf, index, n, p, r)) expect.fail(`${why}: inclusion ${m} in ${n} still verifies`);
        };
        fails(flipBit(leaves[m]!, 7), m, proof, root, 'changed leaf');
        fails(leaves[m]!, m, proof, flipBit(root, 100), 'changed root');
        for (let other = 0; other < n; other++) if (other !== m) fails(leaves[m]!, other, proof, root, `index ${other}`);
        for (let i = 0; i < proof.length; i++) fails(leaves[m]!, m, proof.map((h, j) => (j === i ? flipBit(h, 200) : h)), root, `element ${i}`);
        if (proof.length > 0) fails(leaves[m]!, m, proof.slice(0, -1), root, 'truncated');
        fails(leaves[m]!, m, [...proof, root], root, 'extended');
        if (n > 1) fails(leaves[m]!, m, proof, ref.root(n - 1), 'root of another size');
      }
    }
  });

  it('rejects every tampered consistency proof', () => {
    for (let n = 2; n <= 64; n++) {
      for (let m = 1; m < n; m++) {
        const proof = ref.proof(m, n);
        const [oldRoot, newRoot] = [ref.root(m), ref.root(n)];
        const fails = (o: number, nn: number, p: Buffer[], or: Buffer, nr: Buffer, why: string) => {
          if (verifyConsistency(o, nn, p, or, nr)) expect.fail(`${why}: consistency ${m} -> ${n} still verifies`);
        };
        fails(m, n, proof, flipBit(oldRoot, 3), newRoot, 'changed old root');
        fails(m, n, proof, oldRoot, flipBit(newRoot, 3), 'changed new root');
        for (let i = 0; i < proof.length; i++) fails(m, n, proof.map((h, j) => (j === i ? flipBit(h, 9) : h)), oldRoot, newRoot, `element ${i}`);
        fails(m, n, proof.slice(0, -1), oldRoot, newRoot, 'truncated');
        fails(m, n, [...proof, newRoot], oldRoot, newRoot, 'extended');
        fails(n, m, proof, newRoot, oldRoot, 'swapped');
        if (m + 1 < n) fails(m + 1, n, proof, ref.root(m + 1), newRoot, 'other old size');
      }
    }
  });

  it('rejects a proof to a smaller tree, shorter than one to the size claimed, offered with that tree\'s root as the larger one\'s', () => {
    // A log that signs the root of size k as the root of size n > k and serves the honest
    // m -> k proof: its hashes fold to the roots claimed, but the path stops short of the
    // top of a tree of size n. (A proof as long as an m -> n proof is another matter: its
    // hashes carry no level, so the same fold can be the root of either size.)
    let offered = 0;
    for (let n = 3; n <= 64; n++) {
      for (let k = 2; k < n; k++) {
        for (let m = 1; m < k; m++) {
          const proof = ref.proof(m, k);
          if (proof.length >= ref.proof(m, n).length) continue;
          offered += 1;
          if (verifyConsistency(m, n, proof, ref.root(m), ref.root(k))) expect.fail(`the proof ${m} -> ${k} verifies as ${m} -> ${n}`);
        }
      }
    }
    expect(offered).toBeGreaterThan(10_000);
  });
});

describe('proof edge cases', () => {
  const leaves = seededLeafHashes(5, 16);
  const getNode = nodeGetterFromLeaves(leaves);

  it('treats equal sizes and the empty old tree as RFC 9162 and transparency-dev do', () => {
    const root = rootOf(leaves);
    expect(consistencyProof(16, 16, getNode)).toEqual([]);
    expect(consistencyProof(0, 16, getNode)).toEqual([]);
    expect(verifyConsistency(16, 16, [], root, root)).toBe(true);
    expect(verifyConsistency(16, 16, [root], root, root)).toBe(false);
    expect(verifyConsistency(16, 16, [], root, flipBit(root))).toBe(false);
    expect(verifyConsistency(0, 16, [], emptyRoot, root)).toBe(true);
    expect(verifyConsistency(0, 16, [], root, root)).toBe(false);
    expect(verifyConsistency(0, 0, [], emptyRoot, emptyRoot)).toBe(true);
    expect(verifyConsistency(3, 16, [], rootOf(leaves.slice(0, 3)), root)).toBe(false);
  });

  it('rejects malformed arguments instead of crashing', () => {
    const root = rootOf(leaves);
    const proof = inclusionProof(3, 16, getNode);
    expect(verifyInclusion(leaves[3]!, 3, 16, proof, root)).toBe(true);
    expect(verifyInclusion(leaves[3]!, 16, 16, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[3]!, -1, 16, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[3]!, 3.5, 16, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[3]!, 3, 2 ** 60, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[3]!.subarray(1), 3, 16, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[3]!, 3, 16, [...proof.slice(0, -1), proof[3]!.subarray(1)], root)).toBe(false);
    expect(verifyInclusion(leaves[3]!, 3, 16, Array.from({ length: 200 }, () => root), root)).toBe(false);
    expect(verifyConsistency(17, 16, [], root, root)).toBe(false);
    expect(verifyConsistency(NaN, 16, [], root, root)).toBe(false);
  });

  it('plans proofs as node lists a storage layer can fetch in one read', () => {
    expect(consistencyProofPlan(6, 8)).toEqual([[{ level: 1, index: 2 }], [{ level: 1, index: 3 }], [{ level: 2, index: 0 }]]);
    const plan = consistencyProofPlan(3, 13);
    const fetched = new Map(planNodes(plan).map((node) => [`${node.level}/${node.index}`, getNode(node.level, node.index)]));
    const proof = consistencyProof(3, 13, (level, index) => fetched.get(`${level}/${index}`)!);
    expect(verifyConsistency(3, 13, proof, rootOf(leaves.slice(0, 3)), rootOf(leaves.slice(0, 13)))).toBe(true);
  });

  it('asserts on impossible requests (a bug in the caller, not input)', () => {
    expect(() => inclusionProof(16, 16, getNode)).toThrow(/assertion failed/);
    expect(() => consistencyProof(17, 16, getNode)).toThrow(/assertion failed/);
    expect(() => getNode(4, 1)).toThrow(/not a complete subtree/);
  });
});
