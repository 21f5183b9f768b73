/**
 * The checkpoint a verifier, monitor or witness saw last, kept in a small JSON file between
 * runs: the next run must find the log consistent with it. This file is what a state holds,
 * how it reads and writes as JSON, and which versions of the file each release reads; where
 * the file is written and who may write it is state-file.ts.
 */
import { limits } from '../../core/limits.ts';
import { formatVerifierKey, openCheckpoint, parseVerifierKey, type Checkpoint, type Ed25519NoteVerifier, type NoteVerifier } from '../../tlog/index.ts';
import { Failure } from '../output.ts';
import { readStateText, writeStateText } from './state-file.ts';

/** A checkpoint as remembered: the tree head and the signed note it came in. */
export interface SavedCheckpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** The signed note as served; evidence if the log later contradicts it. */
  readonly note: string;
  /**
   * The log key that signed it (name+hexid+base64). The next run starts from this key, never
   * from an earlier one: once a rotation was followed, the retired key is not believed
   * again. Absent in state files of earlier versions.
   */
  readonly verifierKey?: string;
}

/**
 * A signed head a monitor read but could not settle (the log withheld the proof that it
 * extends the others): kept between runs, so that a bounded run (cron) holds the next runs
 * to it as one long run holds its later rounds.
 */
export interface PendingHead {
  readonly size: number;
  readonly rootHash: Buffer;
  /** The signed note as served: the evidence, should it prove a fork. */
  readonly note: string;
}

/** What a monitor's rounds left open: the rounds unsettled since its state last moved, and the heads no proof has tied in yet. */
export interface UnsettledRounds {
  readonly rounds: number;
  readonly heads: readonly PendingHead[];
}

/** A monitor's state: the log's origin, its last consistent checkpoint (none before the first), and what is still open. */
export interface MonitorState {
  readonly origin: string;
  readonly saved: SavedCheckpoint | undefined;
  readonly unsettled: UnsettledRounds;
}

export const nothingUnsettled: UnsettledRounds = { rounds: 0, heads: [] };

/**
 * Version 1: the checkpoint alone, as every release has written it. Version 2 adds what a
 * monitor left open (`unsettled`), and may then hold no checkpoint yet (a first run whose
 * proofs were withheld). Version 2 is written only when something is open, so an earlier
 * release still reads every other state file, and refuses one that holds heads it would drop.
 */
interface StateFile {
  version: 1 | 2;
  origin: string;
  size?: number;
  rootHash?: string;
  checkpoint?: string;
  verifierKey?: string;
  unsettled?: { rounds: number; heads: Array<{ size: number; rootHash: string; checkpoint: string }> };
  savedAt: string;
}

/** A verifier key as text (name+hexid+base64), as state files record it. */
export function verifierKeyText(key: Ed25519NoteVerifier): string {
  return formatVerifierKey(key.name, key.publicKey);
}

export function savedFrom(checkpoint: Checkpoint, note: string, signedBy?: Ed25519NoteVerifier): SavedCheckpoint {
  return { origin: checkpoint.origin, size: checkpoint.size, rootHash: checkpoint.rootHash, note, ...(signedBy ? { verifierKey: verifierKeyText(signedBy) } : {}) };
}

/** The key the state records as the saved checkpoint's signer; undefined when it records none (or one that does not parse). */
export function recordedKey(saved: SavedCheckpoint | undefined): Ed25519NoteVerifier | undefined {
  if (saved?.verifierKey === undefined) return undefined;
  try {
    return parseVerifierKey(saved.verifierKey);
  } catch {
    return undefined;
  }
}

/** The saved checkpoint, or undefined when the file does not exist yet (first run). */
export async function readState(path: string): Promise<SavedCheckpoint | undefined> {
  return (await readMonitorState(path))?.saved;
}

/** The saved checkpoint and what a monitor left open; undefined when the file does not exist yet (first run). */
export async function readMonitorState(path: string): Promise<MonitorState | undefined> {
  const text = await readStateText(path);
  if (text === undefined) return undefined;
  if (text.length > limits.stateBytesMax) throw new Failure(`the state file ${path} is larger than ${limits.stateBytesMax} bytes; it is not one of ours`);
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (error) {
    throw new Failure(`the state file ${path} is not JSON: ${(error as Error).message}`);
  }
  // null, a number, a string or a list parse as JSON too, and hold no fields to read.
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Failure(`the state file ${path} is not a saved checkpoint (it holds ${json === null ? 'null' : Array.isArray(json) ? 'a list' : `a ${typeof json}`}, not an object with version 1, origin, size, rootHash, checkpoint)`);
  }
  const state = stateOfFile(json as Partial<StateFile>);
  if (state === undefined) throw new Failure(`the state file ${path} is not a saved checkpoint (version 1 with origin, size, rootHash, checkpoint, or version 2 with those or a monitor's unsettled heads)`);
  return state;
}

/** A signed head as a state file records it (size, base64 root, note), or undefined when it is not one. */
function headOfFile(head: Partial<{ size: unknown; rootHash: unknown; checkpoint: unknown }>): PendingHead | undefined {
  const rootHash = typeof head.rootHash === 'string' ? Buffer.from(head.rootHash, 'base64') : Buffer.alloc(0);
  const size = head.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || rootHash.length !== 32 || typeof head.checkpoint !== 'string') return undefined;
  return { size, rootHash, note: head.checkpoint };
}

function stateOfFile(file: Partial<StateFile>): MonitorState | undefined {
  if ((file.version !== 1 && file.version !== 2) || typeof file.origin !== 'string') return undefined;
  if (file.verifierKey !== undefined && typeof file.verifierKey !== 'string') return undefined;
  // Version 2 may hold no checkpoint yet: then none of its fields.
  const noCheckpoint = file.version === 2 && file.size === undefined && file.rootHash === undefined && file.checkpoint === undefined && file.verifierKey === undefined;
  const head = noCheckpoint ? undefined : headOfFile(file);
  if (!noCheckpoint && head === undefined) return undefined;
  const saved = head === undefined ? undefined : { origin: file.origin, size: head.size, rootHash: head.rootHash, note: head.note, ...(file.verifierKey === undefined ? {} : { verifierKey: file.verifierKey }) };
  if (file.version === 1) return file.unsettled === undefined ? { origin: file.origin, saved, unsettled: nothingUnsettled } : undefined;
  const open = file.unsettled as Partial<{ rounds: unknown; heads: unknown }> | undefined;
  if (typeof open !== 'object' || open === null || !Number.isSafeInteger(open.rounds) || (open.rounds as number) < 0 || !Array.isArray(open.heads)) return undefined;
  const heads = (open.heads as unknown[]).map((held) => (typeof held === 'object' && held !== null ? headOfFile(held) : undefined));
  if (heads.some((held) => held === undefined)) return undefined;
  return { origin: file.origin, saved, unsettled: { rounds: open.rounds as number, heads: heads as PendingHead[] } };
}

/**
 * A verifier's or witness's save. What a monitor left open in the same file is kept: its
 * withheld heads are the evidence of a fork, and the next monitor run is held to them
 * (README: moving on does not make a fork forgotten, whichever command moves on).
 */
export async function writeState(path: string, saved: SavedCheckpoint, now: Date = new Date()): Promise<void> {
  const before = await readMonitorState(path).catch(() => undefined);
  const unsettled = before !== undefined && before.origin === saved.origin ? before.unsettled : nothingUnsettled;
  await writeMonitorState(path, { origin: saved.origin, saved, unsettled }, now);
}

/** A monitor's state: the checkpoint, and what its rounds left open (as version 2, only when something is). */
export async function writeMonitorState(path: string, state: MonitorState, now: Date = new Date()): Promise<void> {
  const { origin, saved, unsettled } = state;
  const open = unsettled.rounds > 0 || unsettled.heads.length > 0;
  if (saved === undefined && !open) throw new Error('assertion failed: a state file holds a checkpoint, or what a monitor left open');
  if (saved !== undefined && saved.origin !== origin) throw new Error('assertion failed: a state file is of one log');
  const file: StateFile = {
    version: open || saved === undefined ? 2 : 1,
    origin,
    ...(saved === undefined ? {} : { size: saved.size, rootHash: saved.rootHash.toString('base64'), checkpoint: saved.note }),
    ...(saved?.verifierKey === undefined ? {} : { verifierKey: saved.verifierKey }),
    ...(open ? { unsettled: { rounds: unsettled.rounds, heads: unsettled.heads.map((head) => ({ size: head.size, rootHash: head.rootHash.toString('base64'), checkpoint: head.note })) } } : {}),
    savedAt: now.toISOString(),
  };
  await writeStateText(path, `${JSON.stringify(file, null, 2)}\n`);
}

/** Refuses a state file saved for another log: comparing its sizes and roots with this log's would raise false alarms. */
export function assertStateOfLog(path: string, saved: Pick<SavedCheckpoint, 'origin'> | undefined, origin: string): void {
  if (saved === undefined || saved.origin === origin) return;
  throw new Failure(
    `the state file ${path} holds a checkpoint of the log ${JSON.stringify(saved.origin)}, not of ${JSON.stringify(origin)} (the log of the verifier key given); `
    + 'give this log its own state file (a new path starts afresh)',
    2,
  );
}

/**
 * Whether the saved note is a checkpoint of this size and root signed by the log key: then
 * a contradiction with it is proof against the log, not only against our file.
 */
export function savedNoteIsSigned(saved: SavedCheckpoint, verifier: NoteVerifier): boolean {
  try {
    const { checkpoint } = openCheckpoint(saved.note, verifier);
    return checkpoint.size === saved.size && checkpoint.rootHash.equals(saved.rootHash);
  } catch {
    return false;
  }
}
