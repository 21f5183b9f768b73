/**
 * An outside party's verifier of a transparency log, written from the public specifications
 * alone (RFC 6962 / RFC 9162 Merkle trees, C2SP signed-note, tlog-checkpoint,
 * tlog-cosignature, tlog-tiles and tlog-proof) on node:crypto and Buffer only, for
 * test/tlog/independent-verify.test.ts. It must import nothing of src/: its worth is that
 * it shares no code, and so no misreading of a format, with the log it checks.
 */
import { createHash, createPrivateKey, createPublicKey, verify, type KeyObject } from 'node:crypto';
// ---------------------------------------------------------------------------------------------
// RFC 6962 section 2.1: hashes, the Merkle Tree Hash, audit paths and consistency proofs.

export const sha256 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};
export const leafHash = (entry: Uint8Array): Buffer => sha256(Buffer.of(0x00), entry);
export const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer => sha256(Buffer.of(0x01), left, right);

/** The largest power of two strictly smaller than n (n > 1). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH over leaf hashes, plainly recursive as in RFC 6962 section 2.1. */
export function mth(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** PATH(m, D[n]) of RFC 6962 section 2.1.1. */
export function auditPath(m: number, leaves: readonly Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = splitPoint(leaves.length);
  return m < k
    ? [...auditPath(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...auditPath(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

/** SUBPROOF(m, D[n], b) of RFC 6962 section 2.1.2. */
export function subproof(m: number, leaves: readonly Buffer[], whole: boolean): Buffer[] {
  if (m === leaves.length) return whole ? [] : [mth(leaves)];
  const k = splitPoint(leaves.length);
  return m <= k
    ? [...subproof(m, leaves.slice(0, k), whole), mth(leaves.slice(k))]
    : [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
}
export const consistencyPath = (m: number, leaves: readonly Buffer[]): Buffer[] => subproof(m, leaves, true);

// RFC 9162 section 2.1.3.2 and 2.1.4.2, step by step (sizes here stay far below 2^31).

export function verifyInclusion(leaf: Buffer, index: number, size: number, path: readonly Buffer[], root: Buffer): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1) === 0) while ((fn & 1) === 0 && fn !== 0) { fn >>>= 1; sn >>>= 1; }
    } else {
      r = nodeHash(r, p);
    }
    fn >>>= 1;
    sn >>>= 1;
  }
  return sn === 0 && r.equals(root);
}

export function verifyConsistency(first: number, second: number, path: readonly Buffer[], firstRoot: Buffer, secondRoot: Buffer): boolean {
  // The algorithm covers 0 < first < second; equal sizes have the empty proof (RFC 6962 SUBPROOF(m, D[m], true)).
  if (first === second) return path.length === 0 && firstRoot.equals(secondRoot);
  if (first <= 0 || first > second || path.length === 0) return false;
  const proof = (first & (first - 1)) === 0 ? [firstRoot, ...path] : [...path];
  let fn = first - 1;
  let sn = second - 1;
  while ((fn & 1) === 1) { fn >>>= 1; sn >>>= 1; }
  let fr = proof[0]!;
  let sr = proof[0]!;
  for (const c of proof.slice(1)) {
    if (sn === 0) return false;
    if ((fn & 1) === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1) === 0) while ((fn & 1) === 0 && fn !== 0) { fn >>>= 1; sn >>>= 1; }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>>= 1;
    sn >>>= 1;
  }
  return fr.equals(firstRoot) && sr.equals(secondRoot) && sn === 0;
}

// ---------------------------------------------------------------------------------------------
// C2SP signed-note, tlog-checkpoint and tlog-cosignature.

export const signatureType = { ed25519: 0x01, cosignatureV1: 0x04 } as const;
// DER prefixes of an Ed25519 SubjectPublicKeyInfo and PKCS #8 private key (RFC 8410), before the 32 raw bytes.
export const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');
export const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Standard base64 (RFC 4648 section 4) in its one canonical spelling, or undefined. */
export function base64Strict(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

export const keyId = (name: string, type: number, publicKey: Uint8Array): Buffer => sha256(Buffer.from(`${name}\n`, 'utf8'), Buffer.of(type), publicKey).subarray(0, 4);
export const validKeyName = (name: string): boolean => name.length > 0 && !/[\s+]/u.test(name);

export interface VerifierKey { name: string; keyId: Buffer; type: number; publicKey: KeyObject }

/** `name+hexid+base64(type || key)`, split at the first two '+' only. */
export function parseVerifierKey(text: string, expectedType: number): VerifierKey {
  const first = text.indexOf('+');
  const second = text.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw new Error('verifier key: expected name+hexid+base64');
  const [name, hexId, encoded] = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
  if (!validKeyName(name)) throw new Error(`verifier key: invalid name "${name}"`);
  if (!/^[0-9a-fA-F]{8}$/.test(hexId)) throw new Error('verifier key: key id must be 8 hex digits');
  const bytes = base64Strict(encoded);
  if (bytes === undefined || bytes.length !== 33) throw new Error('verifier key: expected base64 of a type byte and a 32-byte key');
  if (bytes[0] !== expectedType) throw new Error(`verifier key: signature type ${bytes[0]}, expected ${expectedType}`);
  const raw = bytes.subarray(1);
  if (!keyId(name, expectedType, raw).equals(Buffer.from(hexId, 'hex'))) throw new Error('verifier key: key id does not match name and key');
  return { name, keyId: Buffer.from(hexId, 'hex'), type: expectedType, publicKey: createPublicKey({ key: Buffer.concat([spkiPrefix, raw]), format: 'der', type: 'spki' }) };
}

export interface NoteSignature { name: string; keyId: Buffer; signature: Buffer }
export interface Note { text: string; signatures: NoteSignature[] }

/** A signed note: text ending in a newline, the last blank line, then `— name base64(keyid || sig)` lines. */
export function parseNote(raw: Buffer): Note {
  const note = raw.toString('utf8');
  if (!Buffer.from(note, 'utf8').equals(raw)) throw new Error('note: not valid UTF-8');
  if (/[\x00-\x09\x0b-\x1f]/.test(note)) throw new Error('note: control character other than newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('note: no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith('\n')) throw new Error('note: signature block must end in a newline');
  const signatures = block.slice(0, -1).split('\n').map((line) => {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line);
    const bytes = match ? base64Strict(match[2]!) : undefined;
    if (!match || !validKeyName(match[1]!) || bytes === undefined || bytes.length < 5) throw new Error(`note: malformed signature line "${line}"`);
    return { name: match[1]!, keyId: bytes.subarray(0, 4), signature: bytes.subarray(4) };
  });
  return { text, signatures };
}

export const signedBy = (signature: NoteSignature, key: VerifierKey): boolean => signature.name === key.name && signature.keyId.equals(key.keyId);
export const ed25519Verifies = (message: Buffer, key: KeyObject, signature: Buffer): boolean => signature.length === 64 && verify(null, message, key, signature);

export function cosignatureMessage(text: string, timestamp: bigint): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${text}`, 'utf8');
}

/** A cosignature's timestamp if it verifies: signature bytes are u64 big-endian timestamp || Ed25519 signature. */
export function verifyCosignature(text: string, signature: Buffer, key: VerifierKey): bigint | undefined {
  if (signature.length !== 8 + 64) return undefined;
  const timestamp = signature.readBigUInt64BE(0);
  if (timestamp > 2n ** 63n - 1n) return undefined;
  return ed25519Verifies(cosignatureMessage(text, timestamp), key.publicKey, signature.subarray(8)) ? timestamp : undefined;
}

export interface OpenedCheckpoint { origin: string; size: number; root: Buffer; extensions: string[]; text: string; cosigned: Map<string, bigint> }

/**
 * Opens a checkpoint: the log's Ed25519 signature must verify; each witness's line must verify
 * (a known key's bad signature rejects the whole note, signed-note: "clients SHOULD reject");
 * other lines are ignored.
 */
export function openCheckpoint(raw: Buffer, log: VerifierKey, witnesses: readonly VerifierKey[] = []): OpenedCheckpoint {
  const note = parseNote(raw);
  const ours = note.signatures.filter((signature) => signedBy(signature, log));
  if (ours.length === 0) throw new Error('checkpoint: no signature by the log key');
  for (const signature of ours) {
    if (!ed25519Verifies(Buffer.from(note.text, 'utf8'), log.publicKey, signature.signature)) throw new Error('checkpoint: the log signature does not verify');
  }
  const cosigned = new Map<string, bigint>();
  for (const witness of witnesses) {
    for (const signature of note.signatures.filter((one) => signedBy(one, witness))) {
      const timestamp = verifyCosignature(note.text, signature.signature, witness);
      if (timestamp === undefined) throw new Error(`checkpoint: cosignature by ${witness.name} does not verify`);
      cosigned.set(witness.name, timestamp);
    }
  }
  const lines = note.text.slice(0, -1).split('\n');
  const [origin, size, root, ...extensions] = lines;
  if (lines.length < 3 || lines.some((line) => line === '')) throw new Error('checkpoint: expected at least three non-empty lines');
  if (!/^(0|[1-9][0-9]*)$/.test(size!)) throw new Error('checkpoint: tree size must be decimal without leading zeros');
  const rootHash = base64Strict(root!);
  if (rootHash?.length !== 32) throw new Error('checkpoint: root hash must be base64 of 32 bytes');
  return { origin: origin!, size: Number(size), root: rootHash, extensions, text: note.text, cosigned };
}

// ---------------------------------------------------------------------------------------------
// C2SP tlog-tiles: paths, which tiles a tree size needs, and the whole tree checked from them.

/** N as zero-padded 3-digit path elements, all but the last prefixed with "x". */
export function tileIndexPath(index: number): string {
  const groups: string[] = [];
  let rest = index;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((group, at) => (at < groups.length - 1 ? `x${group}` : group)).join('/');
}

export interface Tile { level: number; index: number; width: number }
export const tilePath = (tile: Tile, kind: 'hashes' | 'entries' = 'hashes'): string =>
  `tile/${kind === 'entries' ? 'entries' : tile.level}/${tileIndexPath(tile.index)}${tile.width < 256 ? `.p/${tile.width}` : ''}`;

/** Every tile of a tree: level l has floor(size / 256^l) hashes; the last tile of a level may be partial. */
export function tilesFor(size: number): Tile[] {
  const tiles: Tile[] = [];
  for (let level = 0, hashes = size; hashes > 0; level++, hashes = Math.floor(hashes / 256)) {
    for (let index = 0; index * 256 < hashes; index++) tiles.push({ level, index, width: Math.min(256, hashes - index * 256) });
  }
  return tiles;
}

export function splitHashes(data: Buffer, tile: Tile): Buffer[] {
  if (data.length !== tile.width * 32) throw new Error(`${tilePath(tile)}: ${data.length} bytes, expected ${tile.width * 32}`);
  return Array.from({ length: tile.width }, (_, at) => data.subarray(at * 32, at * 32 + 32));
}

/** An entry bundle: big-endian uint16 length-prefixed entries. */
export function splitEntries(data: Buffer, tile: Tile): Buffer[] {
  const entries: Buffer[] = [];
  for (let offset = 0; offset < data.length;) {
    if (offset + 2 > data.length) throw new Error(`${tilePath(tile, 'entries')}: truncated length`);
    const length = data.readUInt16BE(offset);
    if (offset + 2 + length > data.length) throw new Error(`${tilePath(tile, 'entries')}: truncated entry`);
    entries.push(data.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  if (entries.length !== tile.width) throw new Error(`${tilePath(tile, 'entries')}: ${entries.length} entries, expected ${tile.width}`);
  return entries;
}

export interface Published { tiles: Map<string, Buffer>; bundles: Map<string, Buffer> }

/**
 * Checks a tree of `size` leaves against its checkpoint root, trusting nothing above level 0:
 * each entry hashes to its level-0 hash, each hash of level l >= 1 is recomputed by the spec's
 * formula MTH(D[(n*256+i)*256^l : (n*256+i+1)*256^l]) and compared with the served one, and
 * the root is the plain recursive MTH of all leaf hashes. Returns the leaf hashes.
 */
export function verifyTree(size: number, root: Buffer, published: Published): Buffer[] {
  const tiles = tilesFor(size);
  const leaves: Buffer[] = [];
  for (const tile of tiles.filter((one) => one.level === 0)) {
    const data = published.tiles.get(tilePath(tile));
    if (data === undefined) throw new Error(`${tilePath(tile)}: not fetched`);
    const hashes = splitHashes(data, tile);
    const bundle = published.bundles.get(tilePath(tile, 'entries'));
    if (bundle === undefined) throw new Error(`${tilePath(tile, 'entries')}: not fetched`);
    splitEntries(bundle, tile).forEach((entry, at) => {
      if (!leafHash(entry).equals(hashes[at]!)) throw new Error(`entry ${tile.index * 256 + at}: its leaf hash differs from ${tilePath(tile)}`);
    });
    leaves.push(...hashes);
  }
  for (const tile of tiles.filter((one) => one.level > 0)) {
    const served = splitHashes(published.tiles.get(tilePath(tile)) ?? Buffer.alloc(0), tile);
    const span = 256 ** tile.level;
    served.forEach((hash, at) => {
      const first = (tile.index * 256 + at) * span;
      if (!mth(leaves.slice(first, first + span)).equals(hash)) throw new Error(`${tilePath(tile)}: hash ${at} is not the MTH of leaves ${first} to ${first + span}`);
    });
  }
  if (!mth(leaves).equals(root)) throw new Error(`tree of size ${size}: root recomputed from the tiles differs from the checkpoint`);
  return leaves;
}

// ---------------------------------------------------------------------------------------------
// C2SP tlog-proof.

export interface TlogProof { index: number; path: Buffer[]; checkpoint: Buffer; extra?: Buffer }

export function parseTlogProof(raw: Buffer): TlogProof {
  const text = raw.toString('utf8');
  const split = text.indexOf('\n\n'); // proof lines are non-empty: the first blank line ends them
  if (split < 0) throw new Error('tlog-proof: no blank line before the checkpoint');
  const lines = text.slice(0, split).split('\n');
  if (lines.shift() !== 'c2sp.org/tlog-proof@v1') throw new Error('tlog-proof: wrong first line');
  const extra = lines[0]?.startsWith('extra ') ? base64Strict(lines.shift()!.slice(6)) : undefined;
  const index = /^index (0|[1-9][0-9]*)$/.exec(lines.shift() ?? '');
  if (!index) throw new Error('tlog-proof: expected "index <decimal>"');
  const path = lines.map((line) => {
    const hash = base64Strict(line);
    if (hash?.length !== 32) throw new Error('tlog-proof: a proof line must be base64 of 32 bytes');
    return hash;
  });
  return { index: Number(index[1]), path, checkpoint: Buffer.from(text.slice(split + 2), 'utf8'), ...(extra ? { extra } : {}) };
}

/** Verifies a tlog-proof offline for an entry: the checkpoint opens, and the entry is at `index` in its tree. */
export function verifyTlogProof(raw: Buffer, entry: Buffer, log: VerifierKey, witnesses: readonly VerifierKey[] = []): { index: number; checkpoint: OpenedCheckpoint } {
  const proof = parseTlogProof(raw);
  const checkpoint = openCheckpoint(proof.checkpoint, log, witnesses);
  if (!verifyInclusion(leafHash(entry), proof.index, checkpoint.size, proof.path, checkpoint.root)) throw new Error(`tlog-proof: entry is not at index ${proof.index}`);
  return { index: proof.index, checkpoint };
}

// ---------------------------------------------------------------------------------------------
// Keys for the setup, made here too (Go's x/mod note signer key `PRIVATE+KEY+name+hexid+base64(type || seed)`).

export function keyPairFromSeed(name: string, type: number, seed: Buffer) {
  const privateKey = createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' });
  const raw = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(spkiPrefix.length);
  const id = keyId(name, type, raw).toString('hex');
  const withType = (bytes: Buffer) => Buffer.concat([Buffer.of(type), bytes]).toString('base64');
  return { privateKey, keyId: Buffer.from(id, 'hex'), signerKey: `PRIVATE+KEY+${name}+${id}+${withType(seed)}`, verifierKey: `${name}+${id}+${withType(raw)}` };
}
export const deterministicSeed = (label: string): Buffer => sha256(Buffer.from(label, 'utf8'));

export const hex = (text: string): Buffer => Buffer.from(text, 'hex');
export const flipByte = (data: Buffer, at: number): Buffer => {
  const copy = Buffer.from(data);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
};

