/**
 * The transparency log's public surface: pure functions and small value types, no I/O. The
 * ledger and store layers supply leaves and node hashes; this folder hashes, proves, formats
 * and signs them following RFC 6962 / RFC 9162 and the C2SP specifications.
 */
export { emptyRoot, hashSize, leafHash, nodeHash } from './hash.ts';
export {
  MerkleAppender,
  foldNodes,
  isPowerOfTwo,
  rangeNodes,
  rootFromNodes,
  rootNodes,
  rootOf,
  splitPoint,
  type CompletedNode,
  type NodeGetter,
  type NodeId,
} from './tree.ts';
export {
  entriesPath,
  formatTileIndex,
  innerNodeOffset,
  innerNodesBytes,
  innerNodesOf,
  newTiles,
  nodeFromTile,
  parseTilePath,
  storedHashCount,
  storedHashIndex,
  tileData,
  tileForNode,
  tileHeight,
  tilePath,
  tileRootOf,
  tileWidth,
  tileWidthInTree,
  type ParsedTilePath,
  type Tile,
} from './tile.ts';
export {
  consistencyProof,
  consistencyProofFromLeaves,
  consistencyProofPlan,
  executePlan,
  inclusionProof,
  inclusionProofFromLeaves,
  inclusionProofPlan,
  nodeGetterFromLeaves,
  planNodes,
  verifyConsistency,
  verifyInclusion,
  type ProofPlan,
} from './proof.ts';
export {
  addSignatures,
  canonicalSignatureLine,
  computeKeyId,
  formatKeyId,
  decodeVerifierKey,
  formatVerifierKey,
  generateSignerKey,
  isValidKeyName,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  signatureTypes,
  type Ed25519NoteSigner,
  type Ed25519NoteVerifier,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
  type ParsedNote,
} from './note.ts';
export { formatCheckpoint, keyRotationExtension, openCheckpoint, parseCheckpoint, signCheckpoint, type Checkpoint, type OpenedCheckpoint } from './checkpoint.ts';
export {
  cosignCheckpoint,
  cosignatureMessage,
  cosignaturesOf,
  cosignatureTimestamp,
  generateCosignerKey,
  parseCosignatureVerifierKey,
  parseCosignerKey,
  type Cosigner,
  type CosignatureVerifier,
  type VerifiedCosignature,
} from './cosignature.ts';
export { formatTlogProof, parseTlogProof, verifyTlogProof, type TlogProof, type TlogProofPolicy, type VerifiedTlogProof } from './proof-bundle.ts';
export { tlogLimits } from './limits.ts';
export { TreeAuditor, type AuditFailure, type AuditStart, type InnerNodeSink, type StoredHashLookup } from './audit.ts';
