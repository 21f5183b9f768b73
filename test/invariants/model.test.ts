/**
 * Model-based test: random command sequences run against the real ledger (one fresh
 * database per run) and against the plain in-memory model in model/ledger-model.ts. After
 * every command both must give the same answer (accepted with the same ids and
 * numbers, or refused with the same error code and rule); at the end both must hold the
 * same balances, and the database's own re-check, ledger_violations(), must be empty.
 *
 * Agreeing proves little unless the runs reach every path: the random runs (not counting
 * the hand-written tour, which runs on its own) must reach each accepted command, each
 * refusal rule and each effect (a licence exhausted or expired, a booking expired at its
 * deadline or for a lapsed licence, a shipped shipment that cancel must refuse) a least
 * number of times, or the test fails; the tour must reach the rarer ones. The world has,
 * beside its large licences, one small enough to use up and one short enough to outlive in
 * a run.
 *
 * Units are followed across bookings: returned, reported lost, and listed again, a unit
 * that never shipped released by its booking's end (listed afresh, its GPU UUID let go),
 * one that shipped keeping its GPU UUID; the balances compare each unit's GPU UUID and
 * whether it has shipped. Licences are amended (units, validity).
 *
 * Two exporters book (the second to beta, under licences of its own: model/world.ts), each
 * shipping, cancelling and listing in its own shipments: a unit released by one's booking
 * is taken by the other, with its GPU UUID given afresh, and a unit that shipped, or is live
 * in the other's booking, is refused with rule unit-owner.
 *
 * Commands go in groups submitted at once (Promise.all), so batches hold several
 * commands, and a command may act on what an earlier one of its group made (its id is
 * predicted by the model). The sequencer keeps submission order; so does the model.
 *
 * Each group goes to one of two ledgers on the same database (two servers): a ledger must
 * see what the other wrote although it caches rows and applies batches ahead of its lock,
 * and a key one of them answered is replayed by the other.
 *
 * Reproduce a failure with MODEL_SEED=<seed> (and MODEL_PATH=<path>) from its report.
 *
 * The parts, in model/: the commands as data (commands.ts), their generators
 * (generators.ts), the tour (tour.ts), the world every run starts from (world.ts), one run
 * against the database (run-scenario.ts) and its commands checked against the model
 * (run.ts), and what the runs reached and must reach (coverage.ts).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Coverage, defaultRuns, randomMinimums } from './model/coverage.ts';
import { scenario } from './model/generators.ts';
import { runScenario } from './model/run-scenario.ts';
import { tour, tourReaches } from './model/tour.ts';
import { dropWorldTemplate } from './model/world.ts';
import { dropReplayTemplate } from '../support/replay.ts';

/** Batches of `defaultRuns` the coverage guard may take before it fails (see the random test). */
const guardBatchesMax = 2;
/** The most one batch may take, shrinking included (see the random test), about four times what it takes. */
const batchTimeLimitMs = 240_000;

describe('the ledger against a plain model', () => {
  const tourCoverage = new Coverage();
  const randomCoverage = new Coverage();
  afterAll(async () => {
    await dropWorldTemplate();
    await dropReplayTemplate();
    console.info(`model test: the tour reached ${tourCoverage}`);
    console.info(`model test: the random runs reached ${randomCoverage}`);
  });

  it('gives the same answers and balances on a tour of every path', async () => {
    await runScenario(tour, tourCoverage);
    const missed = tourReaches.filter((name) => tourCoverage.reached(name) === 0);
    expect(missed, 'paths the tour did not reach').toEqual([]);
  }, 30_000);

  it('gives the same answers and balances for random command sequences', async () => {
    // A new seed each run explores more over time; it is named in every message, so any
    // failure (the guard's too) is reproduced with MODEL_SEED.
    const seed = process.env.MODEL_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.MODEL_SEED);
    const runs = Number(process.env.MODEL_RUNS ?? defaultRuns);
    const reproduce = `seed ${seed}; MODEL_SEED=${seed} reproduces`;
    for (let batch = 0; ; batch++) {
      let made = 0;
      await fc.assert(fc.asyncProperty(scenario, (steps) => {
        made += 1;
        return runScenario(steps, randomCoverage);
      }), {
        numRuns: runs,
        // Each batch after the first has the next seed: MODEL_SEED alone replays them all.
        seed: (seed + batch) % 2 ** 31,
        ...(process.env.MODEL_PATH ? { path: process.env.MODEL_PATH } : {}),
        // Shrinking makes a database per attempt: bound it so a failure still reports in time.
        // The bound covers the runs too, and fast-check counts a run cut short by it as passed:
        // hence the count below. The bound must stay far above what a batch takes on a loaded
        // host, or a batch cut short fails that count with nothing wrong: 120 s was not (a batch
        // took 49-64 s on two loaded cores, and a slow CI host takes longer).
        interruptAfterTimeLimit: batchTimeLimitMs,
      });
      if (process.env.MODEL_PATH !== undefined) return;
      expect(made, `runs made within the time limit (batch ${batch + 1}, ${reproduce})`).toBe(runs);
      // The random runs alone must have reached every path, or agreeing with the model proves
      // little. Fewer runs than the minimums are set for prove nothing about coverage: no check then.
      if (runs < defaultRuns) return;
      // The counts add up over the batches, and so do the minimums (set for one batch): a path
      // that fell to a third of its rate stays short however many batches run.
      const short = randomMinimums
        .map(([pattern, least]) => ({ pattern, least: least * (batch + 1), reached: randomCoverage.reached(pattern) }))
        .filter((entry) => entry.reached < entry.least);
      if (short.length === 0) return;
      // A healthy generator falls short of the minimums about once in 5,500 batches; one that
      // degenerated stays short however many run. One more batch tells the two apart.
      if (batch + 1 < guardBatchesMax) continue;
      expect(short, `paths the random runs reached too rarely in ${guardBatchesMax} batches (${reproduce}; all: ${randomCoverage})`).toEqual([]);
    }
  }, guardBatchesMax * batchTimeLimitMs + 60_000);
});
