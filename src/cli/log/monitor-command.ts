/**
 * `chipledger log monitor`: follows the log's checkpoint round by round, holds every new one
 * to the last consistent one (and to signed heads not yet settled), saves it, and alerts on
 * a bad signature, an inconsistency, a truncation, a fork, or a log that keeps serving what
 * it cannot settle.
 */
import { limits } from '../../core/limits.ts';
import type { Ed25519NoteVerifier } from '../../tlog/index.ts';
import { Failure, printable, type Output } from '../output.ts';
import type { LogClient } from './client.ts';
import { clientOf, defaultDeps, guard, sayNote, startingKey, verifierOf, wholeNumber, type KeyOptions, type LogCommandDeps, type ServerOptions } from './command-kit.ts';
import { followStep, heldOfPending, holdsHead, pendingOfHeld, sameHead, type FollowStep, type HeldHead } from './follow.ts';
import { describeKey } from './key-chain.ts';
import { assertStateWritable } from './state-file.ts';
import { assertStateOfLog, readMonitorState, savedFrom, verifierKeyText, writeMonitorState, type SavedCheckpoint } from './state.ts';

export interface MonitorOptions extends KeyOptions, ServerOptions {
  state: string;
  intervalMs?: string;
  maxRounds?: string;
  keepGoing?: boolean;
}

export async function monitorCommand(options: MonitorOptions, deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    const given = await verifierOf(options);
    const client = clientOf(options, deps);
    const intervalMs = wholeNumber(options.intervalMs, '--interval-ms', limits.monitorIntervalMsDefault, 1, limits.monitorIntervalMsMax)!;
    const maxRounds = wholeNumber(options.maxRounds, '--max-rounds', undefined, 1);
    const held = await loadHeld(options.state, client, given);
    const save = () => writeMonitorState(options.state, { origin: held.last?.origin ?? given.name, saved: held.last, unsettled: { rounds: held.unsettledRounds, heads: held.pending.flatMap(pendingOfHeld) } });
    let alerts = 0;
    let reached = 0;
    // Runs until interrupted, or for --max-rounds checkpoint fetches.
    // The wait before the next round: the interval, or longer when the log asked for longer.
    let waitMs = intervalMs;
    for (let round = 0; maxRounds === undefined || round < maxRounds; round += 1) {
      if (round > 0) await deps.sleep(waitMs);
      waitMs = intervalMs;
      const followed = await followStep(client, held.verifier, held.last, held.pending);
      const [roundsBefore, pendingBefore] = [held.unsettledRounds, held.pending];
      const step = settle(followed, held, deps.output, options.state);
      const moved = step.kind === 'ok' && (step.change !== 'same' || step.rotations.length > 0 || held.last?.verifierKey !== verifierKeyText(step.verifier));
      // Saved before anything is said of the round, an alert included: a run stopped on it must
      // leave the next run holding what this one held.
      if (!moved && (held.unsettledRounds !== roundsBefore || held.pending !== pendingBefore)) await save();
      if (step.kind === 'unreachable') {
        const again = maxRounds === undefined || round + 1 < maxRounds;
        waitMs = waitAfter(intervalMs, step.retryAfterMs);
        warnUnreachable(deps.output, step, { intervalMs, waitMs, again });
        continue;
      }
      reached += 1;
      if (step.kind === 'alert') {
        alerts += 1;
        deps.output.err(`ALERT [${step.failure.kind}] ${client.description}: ${printable(step.failure.message)}`);
        if (!options.keepGoing) {
          throw new Failure(`log monitor stopped on an alert; ${held.last === undefined ? `no checkpoint was saved to ${options.state}` : `${options.state} still holds the last consistent checkpoint (size ${held.last.size})`}`);
        }
      } else if (moved) {
        await moveOn(held, step, save, deps);
      }
    }
    if (alerts > 0) throw new Failure(`log monitor raised ${alerts} alert(s)`);
    // A bounded run (cron) that never reached the log checked nothing: that is no success.
    if (reached === 0) throw new Failure(`log monitor couldn't reach the log at ${client.description} in any of its ${maxRounds} round(s); nothing was checked`);
    return 0;
  });
}

/** What a run holds from round to round; the state file keeps all of it. */
interface Held {
  /** The last consistent checkpoint. */
  last: SavedCheckpoint | undefined;
  /** The key the log signs with, as followed so far. */
  verifier: Ed25519NoteVerifier;
  unsettledRounds: number;
  pending: HeldHead[];
}

/** The state file checked (writable, of this log) and read: what the run starts holding. */
async function loadHeld(state: string, client: LogClient, given: Ed25519NoteVerifier): Promise<Held> {
  await assertStateWritable(state);
  const loaded = await readMonitorState(state);
  assertStateOfLog(state, loaded, given.name);
  const last = loaded?.saved;
  return {
    last,
    verifier: await startingKey(client, given, last, state),
    // Rounds left unsettled since everything served was last settled; only a settled round
    // resets it, so a log that alternates an unsettled round with an old checkpoint is
    // counted all the same. The signed heads no proof has tied in yet stay pending, and every
    // later round is held to them: moving on does not make a fork forgotten. Both are kept in
    // the state file, so that a bounded run (cron) holds the next run to them as one long run
    // holds its later rounds.
    unsettledRounds: loaded?.unsettled.rounds ?? 0,
    pending: (loaded?.unsettled.heads ?? []).map(heldOfPending).slice(-limits.monitorPendingHeadsMax),
  };
}

/**
 * The round's part in what stays unsettled: an unsettled round counts, and its signed head,
 * when new, is pending (and said); a settled round clears both. The step as followed, or, once
 * limits.monitorUnprovenRoundsMax rounds in a row were unsettled, an alert in its place.
 */
function settle(step: FollowStep, held: Held, output: Output, state: string): FollowStep {
  if (step.kind === 'unreachable' && step.unsettled !== undefined) {
    held.unsettledRounds += 1;
    const head = step.unsettled.head;
    if (head && !held.pending.some((pending) => sameHead(pending, head))) {
      held.pending = [...held.pending, head].slice(-limits.monitorPendingHeadsMax);
      reportPending(output, head, state);
    }
    if (held.unsettledRounds >= limits.monitorUnprovenRoundsMax) {
      const alert: FollowStep = { kind: 'alert', failure: { kind: step.unsettled.kind, message: `unsettled: in ${held.unsettledRounds} rounds since all it served was last settled, the log served ${step.unsettled.what} (last: ${step.message})` } };
      held.unsettledRounds = 0;
      return alert;
    }
  } else if (step.kind === 'alert' && step.served !== undefined) {
    // The signed checkpoint that contradicts what the monitor holds is the evidence: kept with
    // the pending heads, it holds every later round and run to it, so a log that goes back to
    // the honest view after one alert is alerted on again (README), and said with its note.
    const served = step.served;
    if (!holdsHead(served, held.last, held.pending)) {
      held.pending = [...held.pending, served].slice(-limits.monitorPendingHeadsMax);
      sayNote(output, `the log signed the checkpoint of size ${served.size} (root ${served.rootHash.toString('hex')}), which contradicts what this monitor holds; ${state} keeps it as evidence, and later rounds are held to it`, served.note);
    }
  } else if (step.kind === 'ok') {
    // Every pending head was just held to the rest and found consistent.
    held.unsettledRounds = 0;
    // Replaced only when something was pending: a new empty list every round read as a change,
    // and rewrote the state file (with its fsyncs) every quiet round.
    if (held.pending.length > 0) held.pending = [];
  }
  return step;
}

/** A round that did not reach the log, said as a warning with the wait before the next (if any). */
function warnUnreachable(output: Output, step: Extract<FollowStep, { kind: 'unreachable' }>, wait: { intervalMs: number; waitMs: number; again: boolean }): void {
  const { intervalMs, waitMs, again } = wait;
  const asked = step.retryAfterMs === undefined || step.retryAfterMs <= intervalMs ? ''
    : step.retryAfterMs > limits.monitorIntervalMsMax ? `, the longest it waits (the log asked for ${step.retryAfterMs} ms)` : ', as the log asked';
  output.err(`warning: ${printable(step.message)}${again ? `; trying again in ${waitMs} ms${asked}` : ''}`);
}

/** A checkpoint that moved the log on: the rotations followed, said; then it is held, saved, and said. */
async function moveOn(held: Held, step: Extract<FollowStep, { kind: 'ok' }>, save: () => Promise<void>, deps: LogCommandDeps): Promise<void> {
  for (const rotation of step.rotations) deps.output.out(`${new Date(deps.now()).toISOString()} key rotation: ${describeKey(rotation.verifier)} announced at size ${rotation.announcement.size}, signed by the key before it; following it`);
  held.verifier = step.verifier;
  held.last = savedFrom(step.checkpoint, step.note, step.verifier);
  await save();
  deps.output.out(`${new Date(deps.now()).toISOString()} ${step.change === 'first' ? 'first checkpoint' : 'consistent'}: size ${step.checkpoint.size} root ${step.checkpoint.rootHash.toString('hex')}`);
}

/**
 * The pause before the next round: the interval, or what the log asked for when longer, but
 * never past limits.monitorIntervalMsMax (a Retry-After of a month overflows the timer, which then
 * fires after 1 ms: the monitor would hammer the log that asked it to back off).
 */
export function waitAfter(intervalMs: number, retryAfterMs: number | undefined): number {
  return Math.min(limits.monitorIntervalMsMax, Math.max(intervalMs, retryAfterMs ?? 0));
}

/**
 * A signed head the log left unproven, said when first seen, with its note: if it turns out
 * to be a fork, the evidence is in the monitor's own output as well as in its state file.
 */
function reportPending(output: Output, head: HeldHead, state: string): void {
  sayNote(output, `warning: the log signed ${head.what.replace(/ served earlier$/, '')} (root ${head.rootHash.toString('hex')}) without a proof that it extends the others; ${state} keeps it, and later rounds are held to it`, head.note);
}
