/**
 * `chipledger log prove`: an event's C2SP tlog-proof, fetched and verified offline against
 * the event's bytes (from a file, the event API or its entry bundle), following any key the
 * log announced since the key given.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { leafHash, parseNote, parseTlogProof, tileWidth, verifyTlogProof } from '../../tlog/index.ts';
import { Failure } from '../output.ts';
import { LogFetchError, type LogClient } from './client.ts';
import { clientOf, defaultDeps, guard, keysFollowed, usage, verifierOf, wholeNumber, type KeyOptions, type LogCommandDeps, type ServerOptions } from './command-kit.ts';
import { openFollowingRotation, type Rotation } from './key-chain.ts';

/** The event's bytes: from a file, from GET /v1/events/:seq, or from its entry bundle. */
async function eventBytes(client: LogClient, seq: number, proofText: string, eventFile: string | undefined): Promise<Buffer> {
  if (eventFile !== undefined) {
    try {
      return await readFile(eventFile);
    } catch (error) {
      throw new Failure(`couldn't read the event file ${eventFile}: ${(error as Error).message}`);
    }
  }
  if (!client.hasToken) throw usage('give --token (to fetch the event) or --event-file FILE (its canonical bytes) to check the proof against the event');
  const listed = await client.event(seq);
  if (listed) return listed;
  const size = parseNoteSize(parseTlogProof(proofText).checkpointNote);
  const tileIndex = Math.floor(seq / tileWidth);
  try {
    const entries = await client.entries(tileIndex, Math.min(tileWidth, size - tileIndex * tileWidth));
    return entries[seq - tileIndex * tileWidth]!;
  } catch (error) {
    if (error instanceof LogFetchError && (error.status === 401 || error.status === 403)) {
      throw new Failure(`event ${seq} is not visible to this token (not among its events, and it may not read entry bundles)`);
    }
    throw error;
  }
}

function parseNoteSize(note: string): number {
  const lines = parseNote(note).text.split('\n');
  return Number(lines[1]);
}

export async function proveCommand(seqText: string, options: KeyOptions & ServerOptions & { out?: string; eventFile?: string }, deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    const seq = wholeNumber(seqText, 'EVENT_SEQ', undefined)!;
    const verifier = await verifierOf(options);
    const client = clientOf(options, deps);
    const text = await client.eventProof(seq);
    const event = await eventBytes(client, seq, text, options.eventFile);
    let verified;
    let rotations: readonly Rotation[] = [];
    try {
      verified = verifyTlogProof(text, leafHash(event), verifier);
    } catch (error) {
      // Signed by a key the log announced since the key given? Only then is it tried again.
      const opened = await openFollowingRotation(client, parseTlogProof(text).checkpointNote, verifier);
      if ('failure' in opened || opened.rotations.length === 0) throw new Failure(`the proof for event ${seq} does not verify: ${(error as Error).message}`);
      rotations = opened.rotations;
      try {
        verified = verifyTlogProof(text, leafHash(event), opened.verifier);
      } catch (again) {
        throw new Failure(`the proof for event ${seq} does not verify: ${(again as Error).message}`);
      }
    }
    if (verified.index !== seq) throw new Failure(`the server answered a proof for entry ${verified.index}, not event ${seq}`);
    const summary = `ok: event ${seq} is entry ${seq} of ${verified.checkpoint.origin} at size ${verified.checkpoint.size} (root ${verified.checkpoint.rootHash.toString('hex')}); the proof verifies offline with the log key${keysFollowed(rotations)}`;
    if (options.out) {
      try {
        await writeFile(options.out, text);
      } catch (error) {
        throw new Failure(`couldn't save the proof to ${options.out}: ${(error as Error).message}`);
      }
      deps.output.out(`${summary}; saved to ${options.out}`);
    } else {
      deps.output.out(text.trimEnd());
      deps.output.err(summary);
    }
    return 0;
  });
}
