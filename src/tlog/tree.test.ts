import { describe, expect, it } from 'vitest';
import { emptyRoot, nodeHash } from './hash.ts';
import { nodeGetterFromLeaves } from './proof.ts';
import { hex, seededLeafHashes, vectorLeafHashes } from './test-support.ts';
import { MerkleAppender, isPowerOfTwo, largestPowerOfTwoAtMost, rangeNodes, rootFromNodes, rootNodes, rootOf, splitPoint } from './tree.ts';

const publishedLeafHashes = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
  '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
  '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
  'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
  '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
  'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
  '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
];

const publishedLevels: Record<number, string[]> = {
  1: [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  2: ['d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'],
};

const publishedRoots = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

describe('the published 8-leaf tree', () => {
  it('has the published leaf hashes and interior nodes', () => {
    expect(vectorLeafHashes.map((hash) => hash.toString('hex'))).toEqual(publishedLeafHashes);
    const getNode = nodeGetterFromLeaves(vectorLeafHashes);
    for (const [level, hashes] of Object.entries(publishedLevels)) {
      hashes.forEach((expected, index) => expect(getNode(Number(level), index).toString('hex')).toBe(expected));
    }
  });

  it('has the published roots for n = 1..8, by recursion, from nodes and by appending', () => {
    const appender = new MerkleAppender();
    const getNode = nodeGetterFromLeaves(vectorLeafHashes);
    publishedRoots.forEach((expected, i) => {
      const n = i + 1;
      appender.append(vectorLeafHashes[i]!);
      expect(rootOf(vectorLeafHashes.slice(0, n)).toString('hex')).toBe(expected);
      expect(rootFromNodes(n, getNode).toString('hex')).toBe(expected);
      expect(appender.root().toString('hex')).toBe(expected);
    });
    expect(hex(publishedRoots[7]!).toString('base64')).toBe('XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=');
  });

  it('has the empty root for no leaves', () => {
    expect(rootOf([]).equals(emptyRoot)).toBe(true);
    expect(new MerkleAppender().root().equals(emptyRoot)).toBe(true);
    expect(rootFromNodes(0, () => Buffer.alloc(32)).equals(emptyRoot)).toBe(true);
  });
});

describe('power-of-two arithmetic', () => {
  it('splits where RFC 6962 does, also beyond 32 bits', () => {
    expect([2, 3, 4, 5, 8, 9].map(splitPoint)).toEqual([1, 2, 2, 4, 4, 8]);
    expect(splitPoint(2 ** 40 + 1)).toBe(2 ** 40);
    expect(splitPoint(2 ** 40)).toBe(2 ** 39);
    expect(largestPowerOfTwoAtMost(2 ** 52 + 3)).toBe(2 ** 52);
    expect([1, 2, 3, 4, 6, 8, 2 ** 45].map(isPowerOfTwo)).toEqual([true, true, false, true, false, true, true]);
  });

  it('decomposes a tree into its complete subtrees, largest first', () => {
    expect(rootNodes(13)).toEqual([
      { level: 3, index: 0 },
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(rangeNodes(8, 13)).toEqual([
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(() => rangeNodes(1, 4)).toThrow(/not aligned/);
  });
});

describe('MerkleAppender', () => {
  const leaves = seededLeafHashes(6962, 1000);
  const getNode = nodeGetterFromLeaves(leaves);

  it('has the reference root after every append up to 1000 leaves', () => {
    const appender = new MerkleAppender();
    for (let n = 1; n <= leaves.length; n++) {
      appender.append(leaves[n - 1]!);
      expect(appender.size).toBe(n);
      expect(appender.root().equals(rootOf(leaves.slice(0, n))), `n = ${n}`).toBe(true);
    }
  });

  it('reports each complete subtree exactly once, with its hash, when its last leaf arrives', () => {
    const appender = new MerkleAppender();
    const reported = new Set<string>();
    for (let n = 1; n <= leaves.length; n++) {
      const completed = appender.append(leaves[n - 1]!);
      expect(completed[0]).toEqual({ level: 0, index: n - 1, hash: leaves[n - 1] });
      for (const node of completed) {
        const key = `${node.level}/${node.index}`;
        expect(reported.has(key)).toBe(false);
        reported.add(key);
        expect((node.index + 1) * 2 ** node.level).toBe(n); // completed by leaf n - 1
        expect(node.hash.equals(getNode(node.level, node.index))).toBe(true);
      }
    }
    // Every complete subtree of 1000 leaves: 1000 + 500 + 250 + ... (floor at each level).
    let expected = 0;
    for (let width = 1; width <= leaves.length; width *= 2) expected += Math.floor(leaves.length / width);
    expect(reported.size).toBe(expected);
  });

  it('resumes from stored nodes or a saved frontier and continues identically', () => {
    const resumed = MerkleAppender.fromNodes(357, getNode);
    const fromFrontier = new MerkleAppender(357, resumed.frontier());
    for (let i = 357; i < 600; i++) {
      resumed.append(leaves[i]!);
      fromFrontier.append(leaves[i]!);
    }
    expect(resumed.root().equals(rootOf(leaves.slice(0, 600)))).toBe(true);
    expect(fromFrontier.root().equals(resumed.root())).toBe(true);
  });

  it('appends a whole aligned subtree as its leaves one by one would: the same nodes completed at and above it, the same roots', () => {
    const byLeaves = new MerkleAppender();
    const bySubtrees = new MerkleAppender();
    // Subtrees of 1 to 32 leaves, each where the size is a multiple of its width.
    const plan = [0, 0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 5];
    for (const level of plan) {
      const width = 2 ** level;
      if (bySubtrees.size % width !== 0) throw new Error('the plan is not aligned');
      const first = bySubtrees.size;
      const leafNodes = leaves.slice(first, first + width).flatMap((leaf) => byLeaves.append(leaf));
      const completed = bySubtrees.appendSubtree(level, getNode(level, first / width));
      expect(completed).toEqual(leafNodes.filter((node) => node.level >= level));
      expect(bySubtrees.size).toBe(byLeaves.size);
      expect(bySubtrees.root().equals(byLeaves.root())).toBe(true);
      expect(bySubtrees.frontier()).toEqual(byLeaves.frontier());
    }
    expect(bySubtrees.size).toBe(96);
    expect(() => bySubtrees.appendSubtree(6, leaves[0]!)).toThrow(/a subtree of 2\^6 leaves cannot be appended at size 96/);
    expect(() => bySubtrees.appendSubtree(4, Buffer.alloc(31))).toThrow(/32 bytes/);
  });

  it('refuses a frontier that does not fit the size, and leaf hashes of the wrong length', () => {
    expect(() => new MerkleAppender(3, [leaves[0]!])).toThrow(/frontier/);
    expect(() => new MerkleAppender().append(Buffer.alloc(31))).toThrow(/32 bytes/);
  });

  it('does not let callers mutate its state through returned buffers', () => {
    const appender = new MerkleAppender();
    const leaf = Buffer.from(leaves[0]!);
    appender.append(leaf);
    appender.append(leaves[1]!);
    const root = appender.root();
    leaf.fill(0);
    appender.root().fill(0);
    appender.frontier()[0]!.fill(0);
    expect(appender.root().equals(root)).toBe(true);
    expect(root.equals(nodeHash(leaves[0]!, leaves[1]!))).toBe(true);
  });
});
