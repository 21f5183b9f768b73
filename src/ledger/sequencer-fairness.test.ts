/**
 * One organisation's heavy or failing commands must not hold up another's (the fairness
 * review, session 20): the sequencer bounds the serials one organisation holds in its queue
 * (limits.sequencerQueueSerialsPerOrganisationMax), lets another organisation's command that
 * fits pass a manifest that does not, and runs an organisation whose command failed its batch
 * alone for a while (limits.culpritAloneMs). Each organisation's own commands keep their
 * order, and every command still gets its own answer.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { worldPerFile, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import type { Answer } from './batch-apply.ts';
import { systemActor, type Actor } from './permissions.ts';
import { Sequencer, type SequencerOptions } from './sequencer.ts';
import { TransparencyLog } from './log/transparency-log.ts';
import { commandSchemas } from './schemas.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, made2) => {
  world = made;
  database = made2;
});

let opened: Sequencer[] = [];
function sequencerWith(options: Partial<SequencerOptions>): Sequencer {
  const sequencer = new Sequencer({ pool: database.pool, clock: world.clock, logAppender: new TransparencyLog(database.pool), ...options });
  opened.push(sequencer);
  return sequencer;
}
afterEach(async () => {
  for (const sequencer of opened.splice(0)) await sequencer.close();
});

/** The exporter's booking carrying `serials` (fresh unless given; none: a booking without a manifest), under a fresh Idempotency-Key unless given. */
function book(sequencer: Sequencer, count: number, serials = Array.from({ length: count }, () => `F-${randomUUID().toUpperCase()}`), idempotencyKey = `fair-${randomUUID()}`): Promise<Answer> {
  const input = {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
    units: Math.max(1, serials.length), deadline: '2026-06-01T00:00:00Z', ...(serials.length === 0 ? {} : { serials }),
  };
  return sequencer.submit('shipment.book', input, world.actors.exporter, idempotencyKey);
}

/** A site of recipient alpha's: another organisation's command, without serials. */
function registerSite(sequencer: Sequencer): Promise<Answer> {
  const input = { name: `Site ${randomUUID()}`, province: 'Beijing', city: 'Beijing', latitude: 39.9, longitude: 116.4, capacityUnits: 100 };
  return sequencer.submit('site.register', input, world.actors.alpha);
}

/** A sequencer's answer, or a failure after `ms`: a command never taken fails its test instead of hanging it. */
function within<T>(answered: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: the command was never taken into a batch`)), ms);
  });
  return Promise.race([answered, late]).finally(() => clearTimeout(timer));
}

const outcome = (answer: Answer) => (answer.ok ? 'accepted' : answer.error.rule === undefined ? answer.error.code : `${answer.error.code} (${answer.error.rule})`);
function seqOf(answer: Answer): number {
  if (!answer.ok) expect.fail(`expected the command to be accepted, got ${answer.error.code}: ${answer.error.message}`);
  return answer.seq;
}

describe('one organisation\'s share of the queue\'s serials', () => {
  it('refuses at once a command whose serials do not fit beside its organisation\'s, not another organisation\'s', async () => {
    // The global bound is far off: only the organisation's share refuses.
    const sequencer = sequencerWith({ queueSerialsPerOrganisationMax: 5, queueSerialsMax: 1_000 });
    // Submitted in one turn: none is taken off the queue before the last is queued.
    const [first, second, withoutSerials, fitting] = [book(sequencer, 3), book(sequencer, 3), book(sequencer, 0), book(sequencer, 2)];
    // Alpha's serials are its own: refused by the ledger for what they are (alpha holds no
    // such units), never for the exporter's share.
    const alphas = sequencer.submit('units.decommission', { serials: ['F-ALPHA-1', 'F-ALPHA-2', 'F-ALPHA-3'], reason: 'End of life' }, world.actors.alpha);
    const refused = await second;
    expect(outcome(refused)).toBe('too_many_requests (sequencer-queue-serials-organisation)');
    if (refused.ok) return;
    expect(refused.error.message).toMatch(/^organisation \S+ has 3 serials waiting or being committed, and one organisation may have 5; this shipment\.book carries 3/);
    expect(refused.error.details).toEqual({ organisationSerials: 3, organisationSerialsMax: 5, serials: 3 });
    expect((await Promise.all([first, withoutSerials, fitting])).map(outcome)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(outcome(await alphas)).not.toMatch(/^too_many_requests/);
  });

  it('counts an organisation\'s serials until they are answered, not only while they wait, and counts them out however they are answered', async () => {
    const sequencer = sequencerWith({ queueSerialsPerOrganisationMax: 5, queueSerialsMax: 1_000 });
    const serials = [`F-${randomUUID().toUpperCase()}`, `F-${randomUUID().toUpperCase()}`, `F-${randomUUID().toUpperCase()}`];
    const first = book(sequencer, 3, serials);
    let answered = false;
    void first.then(() => {
      answered = true;
    });
    // A turn of the event loop: the batch has taken it and is on its way to the database.
    await new Promise((resolve) => setImmediate(resolve));
    expect({ queued: sequencer.stats.queueDepth, answered }).toEqual({ queued: 0, answered: false });
    expect(outcome(await book(sequencer, 3))).toBe('too_many_requests (sequencer-queue-serials-organisation)');
    expect(outcome(await first)).toBe('accepted');
    // Refused by the ledger (the serials are listed live already): counted out all the same.
    expect(outcome(await book(sequencer, 3, serials))).toMatch(/^conflict/);
    expect(outcome(await book(sequencer, 3))).toBe('accepted');
  });

  it('refuses before the input is parsed: a refused 100,000-serial upload costs no parse of its serials', async () => {
    const sequencer = sequencerWith({ queueSerialsPerOrganisationMax: 5, queueSerialsMax: 1_000 });
    const parse = vi.spyOn(commandSchemas['shipment.book'], 'safeParse');
    try {
      const [first, second] = [book(sequencer, 3), book(sequencer, 3)];
      expect((await Promise.all([first, second])).map(outcome)).toEqual(['accepted', 'too_many_requests (sequencer-queue-serials-organisation)']);
      expect(parse).toHaveBeenCalledTimes(1);
    } finally {
      parse.mockRestore();
    }
  });

  it('answers the organisation\'s share (429, its own), not the queue\'s bound (503, the server\'s), when both would refuse', async () => {
    // After the exporter's 3 serials and alpha's 3, the queue is full (6) and the exporter's share (5) too.
    const sequencer = sequencerWith({ queueSerialsPerOrganisationMax: 5, queueSerialsMax: 6 });
    const [first, alphas, third] = [book(sequencer, 3), sequencer.submit('units.decommission', { serials: ['F-ALPHA-1', 'F-ALPHA-2', 'F-ALPHA-3'], reason: 'End of life' }, world.actors.alpha), book(sequencer, 3)];
    expect(outcome(await third)).toBe('too_many_requests (sequencer-queue-serials-organisation)');
    expect(outcome(await first)).toBe('accepted');
    await alphas;
  });

  it('takes a command larger than the share when its organisation holds no serials', async () => {
    const sequencer = sequencerWith({ queueSerialsPerOrganisationMax: 2, queueSerialsMax: 1_000 });
    expect(outcome(await book(sequencer, 4))).toBe('accepted');
  });
});

describe('a command of another organisation that fits, behind a manifest that does not', () => {
  it('joins the batch ahead of the manifest, while the manifest\'s organisation keeps its own order', async () => {
    // A batch writes 4 serials at most: the second manifest does not fit beside the first.
    const sequencer = sequencerWith({ batchSerialsMax: 4 });
    const batchesBefore = sequencer.stats.batches;
    const [firstManifest, secondManifest, exportersBooking, alphasSite] = [book(sequencer, 3), book(sequencer, 3), book(sequencer, 0), registerSite(sequencer)];
    const seqs = {
      firstManifest: seqOf(await firstManifest), secondManifest: seqOf(await secondManifest), exportersBooking: seqOf(await exportersBooking), alphasSite: seqOf(await alphasSite),
    };
    // Alpha's site passed the manifest that did not fit; the exporter's booking without serials did not pass its own manifest.
    expect(Object.entries(seqs).sort(([, a], [, b]) => a - b).map(([name]) => name)).toEqual(['firstManifest', 'alphasSite', 'secondManifest', 'exportersBooking']);
    expect(sequencer.stats.batches - batchesBefore).toBe(2);
  });

  it('goes ahead of a large command, once, in a batch without it; the large command then leads the next batch', async () => {
    // Commands of 3 serials or more are large here.
    const sequencer = sequencerWith({ largeCommandSerialsMin: 3 });
    const batchesBefore = sequencer.stats.batches;
    const [manifest, exportersBooking, alphasSite] = [book(sequencer, 3), book(sequencer, 0), registerSite(sequencer)];
    // Queued while the first batch commits: it finds the manifest passed once already, and does not pass it again.
    await new Promise((resolve) => setImmediate(resolve));
    const laterSite = registerSite(sequencer);
    const seqs = { manifest: seqOf(await manifest), exportersBooking: seqOf(await exportersBooking), alphasSite: seqOf(await alphasSite), laterSite: seqOf(await laterSite) };
    expect(Object.entries(seqs).sort(([, a], [, b]) => a - b).map(([name]) => name)).toEqual(['alphasSite', 'manifest', 'exportersBooking', 'laterSite']);
    // Alpha's site alone, then the manifest with what came after it.
    expect(sequencer.stats.batches - batchesBefore).toBe(2);
    // With nothing to go ahead of it, a large command is taken at once.
    expect(outcome(await book(sequencer, 3))).toBe('accepted');
  });

  it('takes a first command with more serials than a batch should write, alone: it fits no batch, and must not wait for one', async () => {
    const sequencer = sequencerWith({ batchSerialsMax: 2 });
    const answer = await within(book(sequencer, 3), 5_000).catch((error: unknown) => {
      // Never taken, it would keep close() waiting for ever too: left open, so the test fails now instead of at the hook's timeout.
      opened = opened.filter((each) => each !== sequencer);
      throw error;
    });
    expect(outcome(answer)).toBe('accepted');
  });

  it('never passes a sweep: the sweep starts its batch, after everything queued before it', async () => {
    const sequencer = sequencerWith({ batchSerialsMax: 4 });
    const [firstManifest, secondManifest, sweep, alphasSite] = [book(sequencer, 3), book(sequencer, 3), sequencer.submit('ledger.sweep', {}, systemActor), registerSite(sequencer)];
    // Nothing is due: refused, but in its place all the same.
    expect(outcome(await sweep)).toBe('conflict (sweep-nothing-due)');
    const seqs = [seqOf(await firstManifest), seqOf(await secondManifest), seqOf(await alphasSite)];
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it('never lets a command join a sweep: the sweep is its batch alone, and what comes after it goes in the next', async () => {
    const sequencer = sequencerWith({});
    const before = sequencer.stats.batches;
    const [sweep, first, second] = [sequencer.submit('ledger.sweep', {}, systemActor), registerSite(sequencer), registerSite(sequencer)];
    expect(outcome(await sweep)).toBe('conflict (sweep-nothing-due)');
    expect([outcome(await first), outcome(await second)]).toEqual(['accepted', 'accepted']);
    expect(sequencer.stats.batches - before).toBe(2);
  });
});

describe('an organisation whose command failed its batch', () => {
  /** A product model the database refuses (as it would a GPU UUID another unit holds): only the whole batch's transaction meets it. */
  const refusedModel = 'Refused by the database';
  const parameters = { denseTops: 1979, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4800, memoryGb: 141, designedForDatacenter: true };
  const register = (sequencer: Sequencer, model: string, actor: Actor = world.actors.bis) => sequencer.submit('product.register', { model, vendor: 'X', parameters }, actor);

  beforeAll(async () => {
    await database.pool.query(`CREATE FUNCTION test_refused_model() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.model = '${refusedModel}' THEN RAISE EXCEPTION 'injected refusal' USING ERRCODE = 'check_violation'; END IF;
        RETURN NEW;
      END $$`);
    await database.pool.query('CREATE TRIGGER test_refused_model BEFORE INSERT ON products FOR EACH ROW EXECUTE FUNCTION test_refused_model()');
  });
  afterAll(async () => {
    await database.pool.query('DROP TRIGGER IF EXISTS test_refused_model ON products');
    await database.pool.query('DROP FUNCTION IF EXISTS test_refused_model()');
  });

  it('runs alone for culpritAloneMs after its last failure: its repeats fail no other organisation\'s batch, and every command keeps its answer', async () => {
    let nowMs = 1_000;
    const sequencer = sequencerWith({ culpritAloneMs: 5_000, monotonicMs: () => nowMs });
    /** One turn of commands (one batch, unless some run alone): their answers, and the failed transactions they cost. */
    const round = async (commands: Array<() => Promise<Answer>>) => {
      const failedBefore = sequencer.stats.failedBatches;
      const answers = await Promise.all(commands.map((command) => command()));
      return { outcomes: answers.map(outcome), failed: sequencer.stats.failedBatches - failedBefore, answers };
    };
    const refused = 'conflict (database-constraint)';

    // The first time, the batch fails and is split down to the authority's command: 3 failed transactions.
    const first = await round([() => book(sequencer, 0), () => register(sequencer, refusedModel), () => book(sequencer, 0)]);
    expect({ outcomes: first.outcomes, failed: first.failed }).toEqual({ outcomes: ['accepted', refused, 'accepted'], failed: 3 });

    // Within the period its commands run alone: the repeat fails its own transaction only,
    // and its next command, alone too, still comes after it.
    nowMs += 1_000;
    const model = `Accepted ${randomUUID()}`;
    const repeated = await round([() => book(sequencer, 0), () => register(sequencer, refusedModel), () => book(sequencer, 0), () => register(sequencer, model)]);
    expect({ outcomes: repeated.outcomes, failed: repeated.failed }).toEqual({ outcomes: ['accepted', refused, 'accepted', 'accepted'], failed: 1 });
    const [, , lastBooking, registered] = repeated.answers.map((answer) => (answer.ok ? answer.seq : -1));
    expect(registered).toBeGreaterThan(lastBooking!);

    // The repeat started the period again (at 2,000): at 6,500 it still runs alone; past 7,000 it shares batches again.
    nowMs = 6_500;
    expect((await round([() => book(sequencer, 0), () => register(sequencer, refusedModel), () => book(sequencer, 0)])).failed).toBe(1);
    nowMs = 11_501;
    expect((await round([() => book(sequencer, 0), () => register(sequencer, refusedModel), () => book(sequencer, 0)])).failed).toBe(3);
  });

  it('makes a culprit only of the organisation its failed batch came down to, never of one that shared the batch', async () => {
    let nowMs = 1_000;
    const sequencer = sequencerWith({ culpritAloneMs: 5_000, monotonicMs: () => nowMs });
    // The exporter's booking leads the batch that fails; the batch comes down to the authority's command.
    const failed = await Promise.all([book(sequencer, 0), register(sequencer, refusedModel), book(sequencer, 0)]);
    expect(failed.map(outcome)).toEqual(['accepted', 'conflict (database-constraint)', 'accepted']);
    // Within the period, the exporter still shares its batches: two bookings and alpha's site, one transaction.
    nowMs += 1_000;
    const batchesBefore = sequencer.stats.batches;
    expect((await Promise.all([book(sequencer, 0), book(sequencer, 0), registerSite(sequencer)])).map(outcome)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(sequencer.stats.batches - batchesBefore).toBe(1);
  });

  it('gives a culprit\'s command left out of a shared batch the next batch, ahead of commands queued since', async () => {
    let nowMs = 1_000;
    const sequencer = sequencerWith({ culpritAloneMs: 5_000, monotonicMs: () => nowMs });
    // Alone in its batch, the authority's command fails of its own doing: the authority runs alone from now.
    expect(outcome(await register(sequencer, refusedModel))).toBe('conflict (database-constraint)');
    // Idle again: the next batch is taken as soon as the commands below are queued, without waiting to fill.
    await sequencer.flush();
    nowMs += 1_000;
    const [leading, registered, trailing] = [book(sequencer, 0), register(sequencer, `Accepted ${randomUUID()}`), book(sequencer, 0)];
    // A turn of the event loop: the two bookings are one batch on its way to the database, the authority's command left in the queue.
    await new Promise((resolve) => setImmediate(resolve));
    const later = [book(sequencer, 0), book(sequencer, 0)];
    const registeredSeq = seqOf(await registered);
    for (const seq of (await Promise.all(later)).map(seqOf)) expect(seq).toBeGreaterThan(registeredSeq);
    expect((await Promise.all([leading, trailing])).map(outcome)).toEqual(['accepted', 'accepted']);
  });

  it('makes no culprit of an organisation whose command met a refusal of the write path\'s bookkeeping (another writer\'s), not of its own rows', async () => {
    const raced = `raced-${randomUUID()}`;
    // Another server stored the same key between this one's look-up and its write: the database refuses the key's row.
    await database.pool.query(`CREATE FUNCTION test_key_taken() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.key = '${raced}' THEN
          RAISE EXCEPTION 'duplicate key value violates unique constraint "idempotency_keys_pkey"'
            USING ERRCODE = 'unique_violation', TABLE = 'idempotency_keys', CONSTRAINT = 'idempotency_keys_pkey';
        END IF;
        RETURN NEW;
      END $$`);
    await database.pool.query('CREATE TRIGGER test_key_taken BEFORE INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION test_key_taken()');
    try {
      let nowMs = 1_000;
      const sequencer = sequencerWith({ culpritAloneMs: 5_000, monotonicMs: () => nowMs });
      const failedBefore = sequencer.stats.failedBatches;
      expect(outcome(await book(sequencer, 0, [], raced))).toMatch(/^conflict/);
      expect(sequencer.stats.failedBatches - failedBefore).toBe(1);
      // Within what would be its period, the exporter still shares its batches.
      nowMs += 1_000;
      const batchesBefore = sequencer.stats.batches;
      expect((await Promise.all([book(sequencer, 0), book(sequencer, 0), registerSite(sequencer)])).map(outcome)).toEqual(['accepted', 'accepted', 'accepted']);
      expect(sequencer.stats.batches - batchesBefore).toBe(1);
    } finally {
      await database.pool.query('DROP TRIGGER IF EXISTS test_key_taken ON idempotency_keys');
      await database.pool.query('DROP FUNCTION IF EXISTS test_key_taken()');
    }
  });
});
