/**
 * Which queued commands form the sequencer's next batch: pure functions over its queue, given
 * the batch's bounds and which commands run alone or may be passed. The sequencer (sequencer.ts
 * takeBatch) keeps the state these read (culprits, commands passed once, whose turn it is) and
 * takes the chosen commands out of its queue (takeOut).
 */
import type { Pending } from './batch-apply.ts';

/** What the next batch is chosen by: its bounds, the organisations that run alone now, and the large commands not passed yet. */
export interface BatchChoiceRules {
  commandsMax: number;
  serialsMax: number;
  /** Whether an organisation's commands run alone now (Culprits, batch-failures.ts). */
  culprit: (organisationId: string) => boolean;
  /** Whether a command is large (limits.largeCommandSerialsMin) and no command passed it yet. */
  large: (pending: Pending) => boolean;
}

/** The next batch's places in the queue (ascending), the large commands it passed, and whether the batch after it is a command alone. */
export interface BatchChoice {
  places: number[];
  passed: Pending[];
  aloneTurn: boolean;
}

/**
 * Up to batchCommandsMax commands, and no more serials than one batch should write
 * (batchSerialsMax), taken out of the queue (chooseShared, firstAlone say which):
 * - Each organisation's commands in the order they came: once one of its commands is left in
 *   the queue, so are its later ones. Another organisation's command may pass it: a booking
 *   goes ahead of a large command (limits.largeCommandSerialsMin), once, in a batch without
 *   it, instead of waiting seconds for its commit; and ahead of a command that does not fit
 *   the batch's serials. The command passed leads the next batch. No command passed was
 *   answered, so either order is one the callers could have seen; the seqs, the events and
 *   the answers all follow the order committed.
 * - An organisation whose command failed its batch lately runs alone (Culprits): its commands
 *   are left out of the shared batches, and after a shared batch that left one out, the next
 *   batch is the first of them, alone. So a culprit that repeats costs the others one small
 *   transaction a batch, and itself its commands' sharing of batches.
 * - A sweep starts a batch, and no command passes it: it finds what is due as the batch is
 *   loaded (store/sweep-due.ts, loadDue), from the database as the batches before left it, so
 *   commands before it in its batch (a licence revoked, its bookings now due) would go unseen,
 *   and its answer would depend on how commands happened to be batched. It also ends its batch:
 *   it expires every due record its batch holds, and the commands after it would load more
 *   (a cancel of a booking past its deadline, say), past the limits.sweepRowsMax that loadDue
 *   takes, so what it expired would depend on the batching too, and a replay of the log
 *   (ledger/replay) would not make it again. Sweeps come every few seconds: the batch cuts
 *   cost nothing measurable.
 *
 * `aloneTurn`: the last batch passed a command that runs alone, so this one is the first such command.
 */
export function chooseBatch(queue: readonly Pending[], aloneTurn: boolean, rules: BatchChoiceRules): BatchChoice {
  // A sweep never runs alone: it is the ledger's own, and it starts its batch anyway.
  const runsAlone = (pending: Pending): boolean => pending.kind !== 'ledger.sweep' && rules.culprit(pending.actor.orgId);
  const alone = aloneTurn ? firstAlone(queue, runsAlone) : [];
  if (alone.length > 0) return { places: alone, passed: [], aloneTurn: false };
  const bounds = { commandsMax: rules.commandsMax, serialsMax: rules.serialsMax, runsAlone };
  let shared = chooseShared(queue, { ...bounds, mayPass: rules.large });
  // Nothing to go ahead of the large commands: they are taken as they come.
  if (shared.places.length === 0) shared = chooseShared(queue, { ...bounds, mayPass: () => false });
  const places = shared.places.length > 0 ? shared.places : firstAlone(queue, runsAlone);
  return { places, passed: shared.passed, aloneTurn: shared.places.length > 0 && shared.aloneLeft };
}

/** What a shared batch may hold, which organisations run alone (Culprits), and which commands others may pass. */
interface BatchRules {
  commandsMax: number;
  serialsMax: number;
  runsAlone: (pending: Pending) => boolean;
  mayPass: (pending: Pending) => boolean;
}

/**
 * The places in the queue of the commands the next shared batch takes (chooseBatch says the
 * rules), whether it left out a command that runs alone, and the commands it passed as large.
 * Empty when every command before the first sweep runs alone or may be passed. The scan stops
 * at batchCommandsMax taken or at a sweep; it may read the whole queue
 * (limits.sequencerQueueMax) when one organisation's commands fill it.
 */
function chooseShared(queue: readonly Pending[], rules: BatchRules): { places: number[]; aloneLeft: boolean; passed: Pending[] } {
  const places: number[] = [];
  const leftOut = new Set<string>();
  const passed: Pending[] = [];
  let serials = 0;
  let aloneLeft = false;
  for (let place = 0; place < queue.length && places.length < rules.commandsMax; place += 1) {
    const next = queue[place]!;
    if (place > 0 && next.kind === 'ledger.sweep') break;
    const organisation = next.actor.orgId;
    if (leftOut.has(organisation)) continue;
    const alone = rules.runsAlone(next);
    const passable = !alone && rules.mayPass(next);
    // The first command always fits: a manifest over the bound would otherwise never be taken.
    if (alone || passable || (places.length > 0 && serials + next.serials > rules.serialsMax)) {
      leftOut.add(organisation);
      aloneLeft ||= alone;
      if (passable) passed.push(next);
      continue;
    }
    places.push(place);
    serials += next.serials;
    if (next.kind === 'ledger.sweep') break;
  }
  return { places, aloneLeft, passed };
}

/** The place of the first command that runs alone, if one comes before any sweep; none: empty. */
function firstAlone(queue: readonly Pending[], runsAlone: (pending: Pending) => boolean): number[] {
  for (let place = 0; place < queue.length; place += 1) {
    if (queue[place]!.kind === 'ledger.sweep') return [];
    if (runsAlone(queue[place]!)) return [place];
  }
  return [];
}

/** Takes the commands at `places` (ascending) out of the queue, the others keeping their order. */
export function takeOut(queue: Pending[], places: number[]): Pending[] {
  if (places[places.length - 1] === places.length - 1) return queue.splice(0, places.length);
  const taken = places.map((place) => queue[place]!);
  let kept = 0;
  let next = 0;
  for (let place = 0; place < queue.length; place += 1) {
    if (place === places[next]) next += 1;
    else queue[kept++] = queue[place]!;
  }
  queue.length = kept;
  return taken;
}
