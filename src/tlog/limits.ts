/**
 * Bounds of the transparency-log formats (STYLE.md habit 2). They live here, beside the code
 * that parses untrusted text, because src/tlog imports nothing but core; core/limits.ts may
 * re-export them once the edge needs them.
 */
export const tlogLimits = {
  /**
   * Largest tree size and leaf index: sizes are JavaScript numbers, exact up to 2^53 - 1,
   * which at a million leaves a second lasts 285 years.
   */
  treeSizeMax: Number.MAX_SAFE_INTEGER,
  /** Hashes in one inclusion or consistency proof: a tree below 2^53 leaves needs at most 2 × 53. */
  proofHashesMax: 128,
  /** Signature lines in one signed note (the spec asks verifiers to accept at least 16). */
  noteSignaturesMax: 100,
  /** Bytes of a whole signed note; a checkpoint with a hundred cosignatures is about 12 KiB. */
  noteBytesMax: 1024 * 1024,
  /** Extension lines in a checkpoint (their use is not recommended; we write none). */
  checkpointExtensionLinesMax: 16,
  /** Bytes of the opaque extra data in a tlog-proof. */
  proofExtraBytesMax: 64 * 1024,
} as const;
