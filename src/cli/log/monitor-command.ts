/**
 * `chipledger log monitor`: follows the log's checkpoint round by round, holds every new one
 * to the last consistent one (and to signed heads not yet settled), saves it, and alerts on
 * a bad signature, an inconsistency, a truncation, a fork, or a log that keeps serving what
 * it cannot settle.
 */
import { Failure, printable, type Output } from '../output.ts';
import { clientOf, defaultDeps, guard, startingKey, verifierOf, wholeNumber, type KeyOptions, type LogCommandDeps, type ServerOptions } from './command-kit.ts';
import { followStep, type HeldHead } from './follow.ts';
import { describeKey } from './key-chain.ts';
import { assertStateOfLog, assertStateWritable, readMonitorState, savedFrom, verifierKeyText, writeMonitorState, type PendingHead } from './state.ts';

/** Default pause between two checkpoint fetches of `log monitor`. */
export const monitorIntervalMsDefault = 5_000;
/**
 * The longest pause between two fetches of `log monitor`: one day. (A timer cannot wait past
 * 2^31 - 1 ms, about 24.8 days: node would fire it after 1 ms, and the monitor would hammer
 * the log it watches.)
 */
export const monitorIntervalMsMax = 86_400_000;
/**
 * Rounds since the monitor's state last moved in which the log served a checkpoint but not
 * what settles it (its consistency proof, or the key list that explains its signature),
 * before that is an alert: a log can be down for a round or two, but one that serves
 * checkpoints and fails only there, even every other round, is dodging the check.
 */
export const monitorUnprovenRoundsMax = 3;
/** Unsettled signed heads the monitor keeps to hold later rounds to (the newest). */
export const monitorPendingHeadsMax = 4;

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
    const intervalMs = wholeNumber(options.intervalMs, '--interval-ms', monitorIntervalMsDefault, 1, monitorIntervalMsMax)!;
    const maxRounds = wholeNumber(options.maxRounds, '--max-rounds', undefined, 1);
    await assertStateWritable(options.state);
    const loaded = await readMonitorState(options.state);
    assertStateOfLog(options.state, loaded, given.name);
    let last = loaded?.saved;
    let verifier = await startingKey(client, given, last, options.state);
    let alerts = 0;
    let reached = 0;
    // Rounds left unsettled since everything served was last settled; only a settled round
    // resets it, so a log that alternates an unsettled round with an old checkpoint is
    // counted all the same. The signed heads no proof has tied in yet stay pending, and every
    // later round is held to them: moving on does not make a fork forgotten. Both are kept in
    // the state file, so that a bounded run (cron) holds the next run to them as one long run
    // holds its later rounds.
    let unsettledRounds = loaded?.unsettled.rounds ?? 0;
    let pending: HeldHead[] = (loaded?.unsettled.heads ?? []).map(heldOfPending).slice(-monitorPendingHeadsMax);
    const save = () => writeMonitorState(options.state, { origin: last?.origin ?? given.name, saved: last, unsettled: { rounds: unsettledRounds, heads: pending.flatMap(pendingOfHeld) } });
    // Runs until interrupted, or for --max-rounds checkpoint fetches.
    // The wait before the next round: the interval, or longer when the log asked for longer.
    let waitMs = intervalMs;
    for (let round = 0; maxRounds === undefined || round < maxRounds; round += 1) {
      if (round > 0) await deps.sleep(waitMs);
      waitMs = intervalMs;
      let step = await followStep(client, verifier, last, pending);
      const [roundsBefore, pendingBefore] = [unsettledRounds, pending];
      if (step.kind === 'unreachable' && step.unsettled !== undefined) {
        unsettledRounds += 1;
        const head = step.unsettled.head;
        if (head && !pending.some((held) => held.size === head.size && held.rootHash.equals(head.rootHash))) {
          pending = [...pending, head].slice(-monitorPendingHeadsMax);
          reportPending(deps.output, head, options.state);
        }
        if (unsettledRounds >= monitorUnprovenRoundsMax) {
          step = { kind: 'alert', failure: { kind: step.unsettled.kind, message: `unsettled: in ${unsettledRounds} rounds since all it served was last settled, the log served ${step.unsettled.what} (last: ${step.message})` } };
          unsettledRounds = 0;
        }
      } else if (step.kind === 'ok') {
        // Every pending head was just held to the rest and found consistent.
        unsettledRounds = 0;
        // Replaced only when something was pending: a new empty list every round read as a change,
        // and rewrote the state file (with its fsyncs) every quiet round.
        if (pending.length > 0) pending = [];
      }
      const moved = step.kind === 'ok' && (step.change !== 'same' || step.rotations.length > 0 || last?.verifierKey !== verifierKeyText(step.verifier));
      // Saved before anything is said of the round, an alert included: a run stopped on it must
      // leave the next run holding what this one held.
      if (!moved && (unsettledRounds !== roundsBefore || pending !== pendingBefore)) await save();
      if (step.kind === 'unreachable') {
        const again = maxRounds === undefined || round + 1 < maxRounds;
        waitMs = waitAfter(intervalMs, step.retryAfterMs);
        const asked = step.retryAfterMs === undefined || step.retryAfterMs <= intervalMs ? ''
          : step.retryAfterMs > monitorIntervalMsMax ? `, the longest it waits (the log asked for ${step.retryAfterMs} ms)` : ', as the log asked';
        deps.output.err(`warning: ${printable(step.message)}${again ? `; trying again in ${waitMs} ms${asked}` : ''}`);
        continue;
      }
      reached += 1;
      if (step.kind === 'alert') {
        alerts += 1;
        deps.output.err(`ALERT [${step.failure.kind}] ${client.description}: ${printable(step.failure.message)}`);
        if (!options.keepGoing) {
          throw new Failure(`log monitor stopped on an alert; ${last === undefined ? `no checkpoint was saved to ${options.state}` : `${options.state} still holds the last consistent checkpoint (size ${last.size})`}`);
        }
      } else if (moved) {
        for (const rotation of step.rotations) deps.output.out(`${new Date(deps.now()).toISOString()} key rotation: ${describeKey(rotation.verifier)} announced at size ${rotation.announcement.size}, signed by the key before it; following it`);
        verifier = step.verifier;
        last = savedFrom(step.checkpoint, step.note, step.verifier);
        await save();
        deps.output.out(`${new Date(deps.now()).toISOString()} ${step.change === 'first' ? 'first checkpoint' : 'consistent'}: size ${step.checkpoint.size} root ${step.checkpoint.rootHash.toString('hex')}`);
      }
    }
    if (alerts > 0) throw new Failure(`log monitor raised ${alerts} alert(s)`);
    // A bounded run (cron) that never reached the log checked nothing: that is no success.
    if (reached === 0) throw new Failure(`log monitor couldn't reach the log at ${client.description} in any of its ${maxRounds} round(s); nothing was checked`);
    return 0;
  });
}

/**
 * The pause before the next round: the interval, or what the log asked for when longer, but
 * never past monitorIntervalMsMax (a Retry-After of a month overflows the timer, which then
 * fires after 1 ms: the monitor would hammer the log that asked it to back off).
 */
export function waitAfter(intervalMs: number, retryAfterMs: number | undefined): number {
  return Math.min(monitorIntervalMsMax, Math.max(intervalMs, retryAfterMs ?? 0));
}

/** A pending head as the state file keeps it; named as the round that left it open named it. */
function heldOfPending(head: PendingHead): HeldHead {
  return { size: head.size, rootHash: head.rootHash, note: head.note, what: `the checkpoint of size ${head.size} served earlier` };
}

/** What the state file keeps of a pending head: a checkpoint served, with its note (an announcement is read again from the key list each run). */
function pendingOfHeld(head: HeldHead): PendingHead[] {
  return head.note === undefined ? [] : [{ size: head.size, rootHash: head.rootHash, note: head.note }];
}

/**
 * A signed head the log left unproven, said when first seen, with its note: if it turns out
 * to be a fork, the evidence is in the monitor's own output as well as in its state file.
 */
function reportPending(output: Output, head: HeldHead, state: string): void {
  output.err(`warning: the log signed ${head.what.replace(/ served earlier$/, '')} (root ${head.rootHash.toString('hex')}) without a proof that it extends the others; ${state} keeps it, and later rounds are held to it${head.note === undefined ? '' : '. Its note as served:'}`);
  for (const line of head.note?.trimEnd().split('\n') ?? []) output.err(`  ${printable(line)}`);
}
