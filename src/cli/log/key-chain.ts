/**
 * Following a key rotation from the outside. The log announces a new signing key with a
 * checkpoint that the key before it and the new key both sign, whose only extension line
 * names the new verifier key (ledger/log/keys.ts), and lists every key with its
 * announcement at GET /v1/log/keys. A verifier that trusts one key follows those
 * announcements, in order, to the key that signs now, and nothing else moves its trust:
 * a key list that does not lead from the trusted key, or an announcement short of a
 * signature, is a signature failure. Each announcement is also a checkpoint of the log, so
 * the callers hold it to the other checkpoints they have (consistency) as well.
 */
import { formatKeyId, keyRotationExtension, openCheckpoint, parseVerifierKey, type Checkpoint, type Ed25519NoteVerifier } from '../../tlog/index.ts';
import { LogFetchError, type LogSource } from './client.ts';
import type { VerifyFailure } from './tiles.ts';

/** A key the log moved to, and the checkpoint that announced it. */
export interface Rotation {
  readonly verifier: Ed25519NoteVerifier;
  readonly verifierKey: string;
  readonly announcement: Checkpoint;
}

/** The served checkpoint opened, with the key that signed it and the rotations followed to reach that key. */
export interface OpenedServed {
  readonly checkpoint: Checkpoint;
  readonly verifier: Ed25519NoteVerifier;
  readonly rotations: readonly Rotation[];
}

export const describeKey = (key: Ed25519NoteVerifier): string => `${key.name}+${formatKeyId(key.keyId)}`;

export const sameKey = (a: Ed25519NoteVerifier, b: Ed25519NoteVerifier): boolean => a.name === b.name && a.keyId === b.keyId && a.publicKey.equals(b.publicKey);

const signatureFailure = (message: string): { failure: VerifyFailure } => ({ failure: { kind: 'signature', message } });

/** Step 1: the checkpoint is signed by the key given, or the failure that stops everything. */
export function openServedCheckpoint(note: string, verifier: Ed25519NoteVerifier): { checkpoint: Checkpoint } | { failure: VerifyFailure } {
  try {
    return { checkpoint: openCheckpoint(note, verifier).checkpoint };
  } catch (error) {
    return signatureFailure(`the checkpoint does not verify with the log key ${verifier.name}: ${(error as Error).message}`);
  }
}

/**
 * The rotations from `trusted` to the log's newest key, each announcement checked: signed
 * by the key before it and by the new one (of the same log name), its one extension naming
 * the new key, at a size no smaller than the announcement before. Empty when `trusted` is
 * the newest key.
 */
export async function followKeyChain(source: LogSource, trusted: Ed25519NoteVerifier): Promise<{ rotations: Rotation[] } | { failure: VerifyFailure }> {
  let keys;
  try {
    keys = await source.keys();
  } catch (error) {
    if (!(error instanceof LogFetchError)) throw error;
    // A 200 that is no key list, or a refused request, is the log's own answer; the rest (the
    // network, 5xx, a 404 from a server without the route) leaves the question open.
    if (error.status === 200 || error.status === 400) return signatureFailure(`the log's key list is not one: ${error.message}`);
    return { failure: { kind: 'fetch', message: `couldn't fetch the log's keys: ${error.message}` } };
  }
  const parsed: Ed25519NoteVerifier[] = [];
  for (const key of keys) {
    try {
      parsed.push(parseVerifierKey(key.verifierKey));
    } catch (error) {
      return signatureFailure(`the log lists a key that is not a verifier key (${JSON.stringify(key.verifierKey.slice(0, 80))}): ${(error as Error).message}`);
    }
  }
  const start = parsed.findIndex((key) => sameKey(key, trusted));
  if (start < 0) return signatureFailure(`the log's key list does not include the key trusted here, ${describeKey(trusted)}`);
  const rotations: Rotation[] = [];
  let previous = trusted;
  for (let at = start + 1; at < keys.length; at += 1) {
    const next = parsed[at]!;
    const { verifierKey, announcement: note } = keys[at]!;
    const what = `the announcement of key ${describeKey(next)}`;
    if (next.name !== trusted.name) return signatureFailure(`${what}: a key named ${next.name} cannot sign the log ${trusted.name}`);
    if (note === null) return signatureFailure(`${what} is missing from the log's key list`);
    let announcement: Checkpoint;
    try {
      announcement = openCheckpoint(note, previous).checkpoint;
      openCheckpoint(note, next);
    } catch (error) {
      return signatureFailure(`${what} is not signed by both the key before it (${describeKey(previous)}) and the new key: ${(error as Error).message}`);
    }
    if (announcement.extensions.length !== 1 || announcement.extensions[0] !== `${keyRotationExtension} ${verifierKey}`) {
      return signatureFailure(`${what} (size ${announcement.size}) does not name the new key in its one extension line ${keyRotationExtension}`);
    }
    const before = rotations.at(-1)?.announcement.size ?? 0;
    if (announcement.size < before) return signatureFailure(`${what} is at size ${announcement.size}, before the announcement of the key before it (size ${before})`);
    rotations.push({ verifier: next, verifierKey, announcement });
    previous = next;
  }
  return { rotations };
}

/**
 * The served checkpoint, opened with the key given or, when that key no longer signs it,
 * with the newest key the announcements lead to from it. Either way the key list is read:
 * a checkpoint signed by a key the log retired, at a size past the announcement of its
 * successor, is refused (whoever still holds a retired key, perhaps because it leaked, must
 * not be believed), and so is one smaller than the last announcement followed.
 */
export async function openFollowingRotation(source: LogSource, note: string, verifier: Ed25519NoteVerifier): Promise<OpenedServed | { failure: VerifyFailure }> {
  const direct = openServedCheckpoint(note, verifier);
  const chain = await followKeyChain(source, verifier);
  if (!('failure' in direct)) {
    if ('failure' in chain) {
      if (chain.failure.kind === 'fetch') return { failure: { kind: 'fetch', message: `the checkpoint is signed by ${describeKey(verifier)}, but whether the log retired that key is unknown: ${chain.failure.message}` } };
      return chain;
    }
    const successor = chain.rotations[0];
    if (successor !== undefined && direct.checkpoint.size > successor.announcement.size) {
      return signatureFailure(`the checkpoint of size ${direct.checkpoint.size} is signed by ${describeKey(verifier)}, which the log retired at size ${successor.announcement.size} (announcing ${describeKey(successor.verifier)}): a retired key signs nothing after its successor's announcement`);
    }
    return { checkpoint: direct.checkpoint, verifier, rotations: [] };
  }
  // Not signed by the key held: perhaps the log moved to a key it announced.
  if ('failure' in chain) {
    // A key list that did not come leaves the signature unknown, not bad: said as a fetch.
    const kind = chain.failure.kind === 'fetch' ? 'fetch' : 'signature';
    return { failure: { kind, message: `${direct.failure.message}; no announced key ${kind === 'fetch' ? 'could be looked for' : 'leads from it to one that does'} (${chain.failure.message})` } };
  }
  const newest = chain.rotations.at(-1);
  if (newest === undefined) return direct;
  const opened = openServedCheckpoint(note, newest.verifier);
  if ('failure' in opened) return signatureFailure(`${direct.failure.message}; nor with the log's newest key ${describeKey(newest.verifier)}, announced at size ${newest.announcement.size}`);
  if (opened.checkpoint.size < newest.announcement.size) {
    return { failure: { kind: 'truncation', message: `truncation: the checkpoint of size ${opened.checkpoint.size} by ${describeKey(newest.verifier)} is smaller than that key's announcement at size ${newest.announcement.size}; a log never shrinks` } };
  }
  return { checkpoint: opened.checkpoint, verifier: newest.verifier, rotations: chain.rotations };
}
