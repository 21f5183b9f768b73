/**
 * `chipledger log verify`: everything a log's data can be checked for, from the outside.
 *
 * 1. The checkpoint is signed by the log key (nothing else is trusted before that).
 * 2. It is consistent with the checkpoint saved by the last run: not smaller (truncation),
 *    not the same size with another root (fork), and for a larger size both the old root
 *    recomputed from the tiles and the server's consistency proof agree.
 * 3. Every hash tile agrees with the level above, and the tiles give the signed root.
 * 4. With a token that may read entry bundles: every entry is hashed and the whole tree
 *    recomputed with TreeAuditor against the tiles and the signed roots.
 * The functions take a LogSource, so tests feed tampered data through the same path.
 */
import { totalmem } from 'node:os';
import { limits } from '../../core/limits.ts';
import {
  TreeAuditor, hashSize, leafHash, rootFromNodes, tilePath, tileWidth, verifyConsistency,
  type Checkpoint, type Ed25519NoteVerifier, type NoteVerifier, type Tile,
} from '../../tlog/index.ts';
import { LogFetchError, type LogSource } from './client.ts';
import { describeKey, openFollowingRotation, type Rotation } from './key-chain.ts';
import { recordedKey, savedNoteIsSigned, type SavedCheckpoint } from './state.ts';
import { TileSet, auditTiles, failuresReportedMax, findLeaf, tilesOfTree, type VerifyFailure } from './tiles.ts';

/**
 * The memory this process may use: the machine's, or less where a cgroup bounds it (a
 * container, where os.totalmem says the host's). process.constrainedMemory answers 0, or a
 * number past the machine's, when nothing bounds it.
 */
export function machineMemoryBytes(): number {
  const machine = totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < machine ? constrained : machine;
}
/**
 * Bytes of the process's memory per byte of hash tile held, as measured: about 18 KB resident
 * per 8 KiB tile (the buffers, the map that holds them, and what reading each answer leaves
 * for the collector), rounded up.
 */
export const tileMemoryPerByte = 2.5;

export interface ProgressSink {
  start(label: string, total: number, unit: string): { update(done: number): void; finish(note?: string): void; abandon(): void };
}

export interface VerifyOptions {
  /** The log key trusted; a key it announced (and so on) is followed to. */
  verifier: Ed25519NoteVerifier;
  saved?: SavedCheckpoint | undefined;
  /** Fetch and hash every entry (needs an authority or auditor token). */
  checkEntries: boolean;
  /** The machine's memory in bytes (machineMemoryBytes when absent: a container's bound, or os.totalmem); a tree whose tiles need more than limits.verifyMemoryShareMax of it is refused. */
  memoryBytes?: number;
  progress?: ProgressSink;
}

export interface VerifyReport {
  checkpoint: Checkpoint | undefined;
  note: string | undefined;
  failures: VerifyFailure[];
  tilesChecked: number;
  entriesChecked: number;
  /** Whether the saved checkpoint was compared (state given and the new one verified). */
  comparedWithSaved: boolean;
  /** The key rotations followed from the trusted key to the one that signed the checkpoint. */
  rotations: readonly Rotation[];
  /** The key that signed the checkpoint (the trusted one, or the last rotation's). */
  verifier?: Ed25519NoteVerifier;
}

const mebibyte = 1024 * 1024;

/** Bytes of every hash tile of a tree of `size` leaves: at level L, one hash per 256^L leaves. */
export function tileBytesOfTree(size: number): number {
  let hashes = 0;
  for (let level = size; level > 0; level = Math.floor(level / tileWidth)) hashes += level;
  return hashes * hashSize;
}

/** Said before any tile is fetched, when the tiles of the tree would not fit in the share of memory allowed. */
function memoryProblem(size: number, memoryBytes: number): VerifyFailure | undefined {
  const tileBytes = tileBytesOfTree(size);
  const needed = tileBytes * tileMemoryPerByte;
  const allowed = memoryBytes * limits.verifyMemoryShareMax;
  if (needed <= allowed) return undefined;
  const mib = (bytes: number) => `${Math.ceil(bytes / mebibyte).toLocaleString('en-US')} MiB`;
  return {
    kind: 'limit',
    message: `the checkpoint signs size ${size}: verifying it holds every hash tile in memory, ${mib(tileBytes)} of tiles, about ${mib(needed)} in all, `
      + `more than ${limits.verifyMemoryShareMax * 100}% of this machine's ${mib(memoryBytes)}; verify it on a machine with at least ${mib(needed / limits.verifyMemoryShareMax)} of memory`,
  };
}

const noProgress: ProgressSink = { start: () => ({ update() {}, finish() {}, abandon() {} }) };

/**
 * Proof answers that are the log contradicting itself: it signed the sizes, and the proof
 * route reads the committed head, so it owes the proof. A refusal of the request itself
 * (400, 404) or an answer that is no proof (a 200 not parsed) says so; an answer about the
 * caller or the moment (401, 403, 408, 429, 5xx, a proxy's) does not.
 */
export const contradictingProofStatuses: ReadonlySet<number> = new Set([200, 400, 404]);
/** Answers of tiles and entry bundles that are the log's data gone wrong: a 200 whose body has the wrong shape (client.ts). */
const malformedDataStatuses: ReadonlySet<number> = new Set([200]);

/**
 * A fetch that failed, as a failure. The data not there to check (the network, an error
 * status) is 'fetch': nothing was found wrong. But a log that served it wrong (a tile of
 * another length, a bundle of another count, no list of hashes), or refused a proof it owes,
 * failed the check `served` names: an operator must not read that as a network problem.
 */
function describeFetch(error: unknown, what: string, served?: { kind: 'tile' | 'entry' | 'consistency'; statuses: ReadonlySet<number>; wrong: string }): VerifyFailure {
  if (!(error instanceof LogFetchError)) throw error;
  if (served !== undefined && error.status !== undefined && served.statuses.has(error.status)) {
    return { kind: served.kind, message: `${served.wrong}: ${error.message}` };
  }
  return { kind: 'fetch', message: `couldn't fetch ${what}: ${error.message}` };
}

/**
 * Step 2a, before any data: a log only grows, and one size has one root. The saved note's
 * signature tells whether the contradiction is proven against the log (both signed).
 */
export function compareWithSaved(saved: SavedCheckpoint, checkpoint: Checkpoint, verifier: NoteVerifier): VerifyFailure | undefined {
  const proven = savedNoteIsSigned(saved, verifier) ? `; both checkpoints are signed by ${verifier.name}: keep the saved note as evidence` : '';
  if (checkpoint.size < saved.size) {
    return { kind: 'truncation', message: `truncation: the log now signs size ${checkpoint.size}, smaller than the checkpoint of size ${saved.size} saved earlier; a log never shrinks${proven}` };
  }
  if (checkpoint.size === saved.size && !checkpoint.rootHash.equals(saved.rootHash)) {
    return {
      kind: 'fork',
      message: `fork: two checkpoints of size ${saved.size} with different roots: ${checkpoint.rootHash.toString('hex')} now, ${saved.rootHash.toString('hex')} saved earlier${proven}`,
    };
  }
  return undefined;
}

/** Step 2b, for a larger size: the old root from the data and the server's proof must both agree. */
export function checkGrowth(saved: SavedCheckpoint, checkpoint: Checkpoint, tiles: TileSet | undefined, proof: Buffer[] | undefined): VerifyFailure[] {
  const failures: VerifyFailure[] = [];
  if (tiles !== undefined) failures.push(...forkFromTiles(tiles, saved.size, saved.rootHash, `the checkpoint of size ${saved.size} saved earlier`, ': the log was rewritten after it'));
  if (proof !== undefined && !verifyConsistency(saved.size, checkpoint.size, proof, saved.rootHash, checkpoint.rootHash)) {
    failures.push({ kind: 'consistency', message: `the server's consistency proof from size ${saved.size} to ${checkpoint.size} does not verify against the saved and the new root` });
  }
  return failures;
}

/** A signed head within the tree held to the tiles: their root at its size must be its root. */
function forkFromTiles(tiles: TileSet, size: number, rootHash: Buffer, what: string, consequence = ''): VerifyFailure[] {
  const root = rootFromNodes(size, tiles.getNode);
  if (root.equals(rootHash)) return [];
  return [{ kind: 'fork', message: `fork: the log's tiles give root ${root.toString('hex')} at size ${size}, but ${what} signs ${rootHash.toString('hex')}${consequence}` }];
}

function checkAnnouncement(rotation: Rotation, tiles: TileSet): VerifyFailure[] {
  // Within the tree: openFollowingRotation refuses a checkpoint smaller than an announcement.
  const { size, rootHash } = rotation.announcement;
  return forkFromTiles(tiles, size, rootHash, `the announcement of key ${describeKey(rotation.verifier)} at size ${size}`);
}

/** Runs up to `concurrency` tasks at a time, in order of the list. */
async function eachLimited<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) await task(items[index]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Step 3's input: every hash tile of the tree at `size`. */
export async function fetchTiles(source: LogSource, size: number, progress: ProgressSink): Promise<{ tiles: TileSet } | { failure: VerifyFailure }> {
  const wanted = tilesOfTree(size);
  const tiles = new TileSet(size);
  const bar = progress.start('hash tiles', wanted.length, 'tiles');
  let done = 0;
  let failure: VerifyFailure | undefined;
  await eachLimited(wanted, limits.fetchConcurrencyMax, async (tile: Tile) => {
    if (failure) return;
    try {
      tiles.add(tile, await source.tile(tile.level, tile.index, tile.width));
    } catch (error) {
      const what = `tile ${tilePath(tile.level, tile.index, tile.width)}`;
      failure ??= describeFetch(error, what, { kind: 'tile', statuses: malformedDataStatuses, wrong: `the log served ${what} malformed` });
    }
    bar.update((done += 1));
  });
  // A failed fetch leaves the bar where it stood: a full bar would say every tile came.
  if (failure) bar.abandon();
  else bar.finish();
  return failure ? { failure } : { tiles };
}

/**
 * Step 4: every entry through TreeAuditor, bundle by bundle, fetched a few bundles ahead.
 * On a leaf that disagrees, the level-0 tiles are searched for its hash: found elsewhere
 * means the entries were reordered (or one overwritten with a copy of another), not found
 * means the entry was changed.
 */
export async function auditEntries(source: LogSource, tiles: TileSet, roots: ReadonlyMap<number, Buffer>, progress: ProgressSink): Promise<{ failures: VerifyFailure[]; entries: number }> {
  const size = tiles.size;
  const auditor = new TreeAuditor(tiles.lookup, roots);
  const bundles = Math.ceil(size / tileWidth);
  const bar = progress.start('entries', size, 'entries');
  const fetchBundle = (index: number) => {
    const fetched = source.entries(index, Math.min(tileWidth, size - index * tileWidth));
    // Awaited in order below; a later bundle may fail first, while an earlier one is awaited.
    fetched.catch(() => {});
    return fetched;
  };
  const ahead: Array<Promise<Buffer[]>> = [];
  for (let index = 0; index < Math.min(bundles, limits.fetchConcurrencyMax); index += 1) ahead.push(fetchBundle(index));
  for (let index = 0; index < bundles; index += 1) {
    let entries: Buffer[];
    try {
      entries = await ahead[index]!;
    } catch (error) {
      bar.abandon(); // the failure is printed next, on a line of its own
      const malformed = { kind: 'entry', statuses: malformedDataStatuses, wrong: `the log served entry bundle ${index} malformed` } as const;
      return { failures: [describeFetch(error, `entry bundle ${index}`, malformed)], entries: auditor.size };
    }
    if (index + limits.fetchConcurrencyMax < bundles) ahead.push(fetchBundle(index + limits.fetchConcurrencyMax));
    auditor.addEntries(entries);
    bar.update(auditor.size);
    if (auditor.failure) {
      bar.abandon();
      return { failures: [explainAuditFailure(auditor.failure, index * tileWidth, entries, tiles, roots)], entries: auditor.size };
    }
  }
  bar.finish();
  const failure = auditor.finish(size);
  return { failures: failure ? [explainAuditFailure(failure, size, [], tiles, roots)] : [], entries: auditor.size };
}

function explainAuditFailure(failure: { kind: string; message: string }, first: number, entries: Buffer[], tiles: TileSet, roots: ReadonlyMap<number, Buffer>): VerifyFailure {
  if (failure.kind === 'tile') return { kind: 'tile', message: `recomputed from the entries, ${failure.message}` };
  if (failure.kind === 'checkpoint') {
    // TreeAuditor checks the roots in size order: the signed size is the largest one.
    const atSize = Number(/at size (\d+)/.exec(failure.message)?.[1] ?? Number.NaN);
    const atSaved = atSize !== Math.max(...roots.keys());
    return atSaved ? { kind: 'fork', message: `fork: recomputed from the entries, ${failure.message}` } : { kind: 'root', message: `recomputed from the entries, ${failure.message}` };
  }
  for (let offset = 0; offset < entries.length; offset += 1) {
    const index = first + offset;
    const leaf = leafHash(entries[offset]!);
    const stored = tiles.lookup(0, index);
    if (stored !== undefined && stored.equals(leaf)) continue;
    const elsewhere = findLeaf(tiles, leaf);
    const tile = tilePath(0, Math.floor(index / tileWidth));
    if (elsewhere !== undefined) {
      // Its bytes belong at another index. Where that index is in hand too, its own entry
      // tells a swap (different bytes there) from a copy (the same bytes in both places).
      const there = entries[elsewhere - first];
      const how = there === undefined ? 'entries were reordered, or one was overwritten with a copy of another'
        : there.equals(entries[offset]!) ? `entry ${index} was overwritten with a copy of entry ${elsewhere}` : 'entries were reordered';
      return { kind: 'order', message: `entry ${index} is out of order: its bytes are the entry the log committed at index ${elsewhere} (${tile} stores a different hash at ${index}); ${how}` };
    }
    return {
      kind: 'entry',
      message: `entry ${index} (event seq ${index}) was changed: its bytes hash to ${leaf.toString('hex')}, but ${tile} (covered by the signed root) stores ${stored?.toString('hex') ?? 'nothing'} at position ${index % tileWidth}`,
    };
  }
  return { kind: 'entry', message: failure.message };
}

/** The whole verification; the report lists every failure found (at most failuresReportedMax). */
export async function verifyLog(source: LogSource, options: VerifyOptions): Promise<VerifyReport> {
  const progress = options.progress ?? noProgress;
  const report: VerifyReport = { checkpoint: undefined, note: undefined, failures: [], tilesChecked: 0, entriesChecked: 0, comparedWithSaved: false, rotations: [] };
  try {
    report.note = await source.checkpoint();
  } catch (error) {
    report.failures.push(describeFetch(error, 'the checkpoint'));
    return report;
  }
  const opened = await openFollowingRotation(source, report.note, options.verifier);
  if ('failure' in opened) {
    report.failures.push(opened.failure);
    return report;
  }
  const checkpoint = (report.checkpoint = opened.checkpoint);
  report.rotations = opened.rotations;
  report.verifier = opened.verifier;
  const saved = options.saved;
  if (saved) {
    report.comparedWithSaved = true;
    const contradiction = compareWithSaved(saved, checkpoint, recordedKey(saved) ?? options.verifier);
    if (contradiction) report.failures.push(contradiction);
  }
  if (checkpoint.size > limits.verifiableSizeMax) {
    report.failures.push({ kind: 'limit', message: `the checkpoint signs size ${checkpoint.size}, more than this verifier holds in memory (${limits.verifiableSizeMax} leaves, 32 bytes each)` });
    return report;
  }
  const tooLarge = memoryProblem(checkpoint.size, options.memoryBytes ?? machineMemoryBytes());
  if (tooLarge !== undefined) {
    report.failures.push(tooLarge);
    return report;
  }
  const fetched = await fetchTiles(source, checkpoint.size, progress);
  if ('failure' in fetched) {
    report.failures.push(fetched.failure);
    return report;
  }
  report.tilesChecked = tilesOfTree(checkpoint.size).length;
  const tileFailures = auditTiles(fetched.tiles, checkpoint.rootHash);
  report.failures.push(...tileFailures);
  // Each announcement followed is a checkpoint of this log too: the tiles the signed root
  // vouches for must give its root at its size.
  if (tileFailures.length === 0) report.failures.push(...opened.rotations.flatMap((rotation) => checkAnnouncement(rotation, fetched.tiles)));
  let growthFailures: VerifyFailure[] = [];
  if (saved && saved.size < checkpoint.size) {
    let proof: Buffer[] | undefined;
    try {
      proof = await source.consistencyProof(saved.size, checkpoint.size);
    } catch (error) {
      const unproven = `unproven: the log signed a checkpoint of size ${checkpoint.size} but gave no proof that it extends the one of size ${saved.size} saved earlier`;
      report.failures.push(describeFetch(error, `the consistency proof from ${saved.size} to ${checkpoint.size}`, { kind: 'consistency', statuses: contradictingProofStatuses, wrong: unproven }));
    }
    growthFailures = checkGrowth(saved, checkpoint, tileFailures.length === 0 ? fetched.tiles : undefined, proof);
    report.failures.push(...growthFailures);
  }
  // Entries are checked against tiles the signed root vouches for; tiles already proven wrong
  // would only turn one failure into hundreds.
  if (options.checkEntries && tileFailures.length === 0) {
    const roots = new Map<number, Buffer>([[checkpoint.size, checkpoint.rootHash]]);
    if (saved && saved.size < checkpoint.size && !growthFailures.some((failure) => failure.kind === 'fork')) roots.set(saved.size, saved.rootHash);
    const audited = await auditEntries(source, fetched.tiles, roots, progress);
    report.entriesChecked = audited.entries;
    report.failures.push(...audited.failures);
  }
  report.failures.splice(failuresReportedMax);
  return report;
}
