/**
 * Inclusion and consistency proofs (RFC 6962 §2.1.1–2.1.2, RFC 9162 §2.1.3–2.1.4).
 *
 * Generation is split in two: a plan (which complete-subtree hashes each proof element folds
 * from) and the fold itself. A storage layer that reads hashes asynchronously asks for the
 * plan's nodes in one query, then runs the synchronous fold over what it read. Verification
 * follows RFC 9162 step by step and never assumes the proof came from us.
 */
import { assert } from '../core/errors.ts';
import { emptyRoot, hashSize, nodeHash } from './hash.ts';
import { tlogLimits } from './limits.ts';
import { assertTreeSize, exactLog2, foldNodes, isPowerOfTwo, rangeNodes, splitPoint, type NodeGetter, type NodeId } from './tree.ts';

/** One proof element: the MTH of a range, given as the complete subtrees that fold into it. */
export type ProofPlan = NodeId[][];

/**
 * PATH(index, D[0:size]) of RFC 6962 §2.1.1, as a plan. Walks down from the root: at each
 * split the sibling of the half holding the leaf is a proof element. Elements are collected
 * top-down and returned bottom-up (leaf's sibling first), the order verifiers consume.
 */
export function inclusionProofPlan(index: number, size: number): ProofPlan {
  assertTreeSize(size, 'tree size');
  assert(Number.isSafeInteger(index) && index >= 0 && index < size, `leaf index ${index} is outside a tree of ${size}`);
  const plan: ProofPlan = [];
  let start = 0; // the current subtree is D[start : start + count]; start is a multiple of every later k
  let count = size;
  let offset = index;
  while (count > 1) {
    const k = splitPoint(count);
    if (offset < k) {
      plan.push(rangeNodes(start + k, start + count));
      count = k;
    } else {
      plan.push([{ level: exactLog2(k), index: start / k }]);
      start += k;
      offset -= k;
      count -= k;
    }
  }
  return plan.reverse();
}

/**
 * PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true) of RFC 6962 §2.1.2, as a plan. The flag
 * `startsAtOldRoot` is SUBPROOF's b: while it holds, the old tree is a left part of the
 * current subtree and its root is known to the verifier, so it is not sent.
 */
export function consistencyProofPlan(oldSize: number, newSize: number): ProofPlan {
  assertTreeSize(newSize, 'new tree size');
  assert(Number.isSafeInteger(oldSize) && oldSize >= 0 && oldSize <= newSize, `old size ${oldSize} must be within 0..${newSize}`);
  // A proof from the empty tree, or to the same size, is empty (RFC 9162 §2.1.4 leaves 0 undefined).
  if (oldSize === 0 || oldSize === newSize) return [];
  const plan: ProofPlan = [];
  let start = 0;
  let m = oldSize;
  let n = newSize;
  let startsAtOldRoot = true;
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      plan.push(rangeNodes(start + k, start + n));
      n = k;
    } else {
      plan.push([{ level: exactLog2(k), index: start / k }]);
      start += k;
      m -= k;
      n -= k;
      startsAtOldRoot = false;
    }
  }
  if (!startsAtOldRoot) plan.push(rangeNodes(start, start + m));
  return plan.reverse();
}

/** Every node a plan reads, without duplicates, for one batched storage read. */
export function planNodes(plan: ProofPlan): NodeId[] {
  const seen = new Set<string>();
  const nodes: NodeId[] = [];
  for (const node of plan.flat()) {
    const key = `${node.level}/${node.index}`;
    if (seen.has(key)) continue;
    seen.add(key);
    nodes.push(node);
  }
  return nodes;
}

export function executePlan(plan: ProofPlan, getNode: NodeGetter): Buffer[] {
  return plan.map((nodes) => foldNodes(nodes, getNode));
}

/** Audit path for leaf `index` in the tree of `size` leaves, leaf's sibling first. */
export function inclusionProof(index: number, size: number, getNode: NodeGetter): Buffer[] {
  return executePlan(inclusionProofPlan(index, size), getNode);
}

/** Consistency proof from the tree of oldSize leaves to the tree of newSize leaves. */
export function consistencyProof(oldSize: number, newSize: number, getNode: NodeGetter): Buffer[] {
  return executePlan(consistencyProofPlan(oldSize, newSize), getNode);
}

/**
 * A NodeGetter over an in-memory list of leaf hashes: every complete subtree hash is computed
 * once (2n hashes), then read in O(1). For tests, tools and small trees.
 */
export function nodeGetterFromLeaves(leafHashes: readonly Buffer[]): NodeGetter {
  const levels: Buffer[][] = [leafHashes.slice()];
  for (let below = levels[0]!; below.length > 1; ) {
    const above: Buffer[] = [];
    for (let i = 0; i + 1 < below.length; i += 2) above.push(nodeHash(below[i]!, below[i + 1]!));
    levels.push(above);
    below = above;
  }
  return (level, index) => {
    const hash = levels[level]?.[index];
    assert(hash !== undefined, `node (${level}, ${index}) is not a complete subtree of ${leafHashes.length} leaves`);
    return hash;
  };
}

export function inclusionProofFromLeaves(index: number, leafHashes: readonly Buffer[]): Buffer[] {
  return inclusionProof(index, leafHashes.length, nodeGetterFromLeaves(leafHashes));
}

/** Consistency proof from the first oldSize leaves to all of leafHashes. */
export function consistencyProofFromLeaves(oldSize: number, leafHashes: readonly Buffer[]): Buffer[] {
  return consistencyProof(oldSize, leafHashes.length, nodeGetterFromLeaves(leafHashes));
}

function wellFormed(proof: readonly Uint8Array[]): boolean {
  return proof.length <= tlogLimits.proofHashesMax && proof.every((hash) => hash.length === hashSize);
}

function isSize(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n <= tlogLimits.treeSizeMax;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function isOdd(n: number): boolean {
  return n % 2 === 1;
}

function half(n: number): number {
  return Math.floor(n / 2);
}

/**
 * RFC 9162 §2.1.3.2: recomputes the root from the leaf hash and the audit path, using the
 * index and size to decide at each step whether the proof hash is a left or right sibling.
 * Input is untrusted: any malformed argument is a failed verification, never a crash.
 */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!isSize(size) || !Number.isSafeInteger(index) || index < 0 || index >= size) return false;
  if (leaf.length !== hashSize || root.length !== hashSize || !wellFormed(proof)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      // A left sibling on the right edge: skip the levels where the path has no sibling.
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalBytes(r, root);
}

/**
 * RFC 9162 §2.1.4.2: recomputes both the old and the new root from one proof. Pitfall: when
 * the old size is a power of two the old tree is a complete subtree whose hash the proof
 * omits, so verification starts from the old root itself (step 2).
 */
export function verifyConsistency(oldSize: number, newSize: number, proof: readonly Uint8Array[], oldRoot: Uint8Array, newRoot: Uint8Array): boolean {
  if (!isSize(oldSize) || !isSize(newSize) || oldSize > newSize) return false;
  if (oldRoot.length !== hashSize || newRoot.length !== hashSize || !wellFormed(proof)) return false;
  if (oldSize === newSize) return proof.length === 0 && equalBytes(oldRoot, newRoot);
  // Everything extends the empty tree, but only the empty tree's root describes it.
  if (oldSize === 0) return proof.length === 0 && equalBytes(oldRoot, emptyRoot);
  if (proof.length === 0) return false;
  const path: readonly Uint8Array[] = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return equalBytes(fr, oldRoot) && equalBytes(sr, newRoot) && sn === 0;
}

/** Re-exported here because proofs and roots are computed from the same complete subtrees. */
export { rootFromNodes, rootNodes } from './tree.ts';
