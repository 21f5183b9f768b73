/**
 * One command whose write fails its batch must fail no one else: the sequencer runs the
 * batch again in halves down to that command, which alone is refused (a write the database
 * refused, a value over one of its size limits) or alone gets the 500 (a failure nobody
 * recognises). Never a batch whose COMMIT may have gone through: that one is answered as
 * it is, and nothing of it runs twice. Each command here shares its batch with other
 * organisations' bookings, as on a busy server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { failAfterCommitReply } from '../../test/support/commit-reply.ts';
import { systemActor } from './permissions.ts';
import { createPool, type PoolClient } from '../store/pool.ts';
import { Ledger, type Answer } from './ledger.ts';
import { toRefusal } from './refusals.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, made2) => {
  world = made;
  database = made2;
});

/** A ledger of its own on the world's database, its failures logged here. */
let opened: Ledger[] = [];
async function openLedger(pool = database.pool): Promise<{ ledger: Ledger; logged: string[] }> {
  const logged: string[] = [];
  const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: world.clock, onError: (error, context) => logged.push(`${context}: ${String(error)}`) });
  opened.push(ledger);
  return { ledger, logged };
}
afterEach(async () => {
  for (const ledger of opened.splice(0)) await ledger.close();
});

const booking = (recipient: 'alpha' | 'beta') => ({
  exportAllocationId: world.allocations[`${recipient}Export`], importAllocationId: world.allocations[`${recipient}Import`], productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
});

/** A text of `length` Chinese characters, three bytes each in UTF-8; seeded, so no two runs share it by chance. */
function chineseText(length: number, seed: number): string {
  let state = seed;
  let text = '';
  for (let index = 0; index < length; index += 1) {
    state = (state * 1_103_515_245 + 12_345) & 0x7fffffff;
    text += String.fromCodePoint(0x4e00 + (state % 20_000));
  }
  return text;
}

const parameters = { denseTops: 1979, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4800, memoryGb: 141, designedForDatacenter: true };

async function shipmentCount(): Promise<number> {
  return (await database.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM shipments')).rows[0]!.count;
}

/** Submits `middle` between two bookings of other recipients, at once: one batch. */
async function betweenBookings(ledger: Ledger, middle: () => Promise<Answer>): Promise<Array<PromiseSettledResult<Answer>>> {
  const failedBefore = ledger.sequencer.stats.failedBatches;
  const settled = await Promise.allSettled([
    ledger.submit('shipment.book', booking('alpha'), world.actors.exporter),
    middle(),
    ledger.submit('shipment.book', booking('beta'), world.actors.exporter),
  ]);
  // The three went in one batch, which failed first.
  expect(ledger.sequencer.stats.failedBatches).toBeGreaterThan(failedBefore);
  return settled;
}

function outcome(result: PromiseSettledResult<Answer>): string {
  if (result.status === 'rejected') return `rejected: ${String(result.reason)}`;
  return result.value.ok ? 'accepted' : `${result.value.error.code} (${result.value.error.rule})`;
}

describe('a product model of 2,000 Chinese characters (about 6 KB)', () => {
  it('registers, in a batch with other organisations\' bookings, and a second registration of it is refused as a duplicate', async () => {
    const { ledger } = await openLedger();
    const model = chineseText(2_000, 12_345);
    expect(Buffer.byteLength(model)).toBeGreaterThan(2_704);
    const register = (key: string) => ledger.submit('product.register', { model, vendor: 'X', parameters }, world.actors.bis, key);
    const settled = await Promise.allSettled([
      ledger.submit('shipment.book', booking('alpha'), world.actors.exporter),
      register('long-model'),
      ledger.submit('shipment.book', booking('beta'), world.actors.exporter),
    ]);
    expect(settled.map(outcome)).toEqual(['accepted', 'accepted', 'accepted']);
    const again = await register('long-model-again');
    expect(again.ok ? 'accepted' : { code: again.error.code, rule: again.error.rule }).toEqual({ code: 'conflict', rule: 'product-model' });
    expect(await ledger.violations()).toEqual([]);
  });
});

describe('a value over a btree index\'s row limit (54000, program_limit_exceeded)', () => {
  it('is refused alone, as too large and naming the index; the bookings in its batch commit, and a retry replays the refusal', async () => {
    // A btree index over a text the schema lets reach 2,000 characters, as products.model
    // had one before migration 026.
    await database.pool.query('CREATE INDEX test_organisations_address ON organisations (address)');
    try {
      const { ledger, logged } = await openLedger();
      const before = await shipmentCount();
      const input = { name: 'Long Address Co.', country: 'GB', roles: ['recipient' as const], address: chineseText(2_000, 777) };
      const register = () => ledger.submit('organisation.register', input, systemActor, 'long-address');
      const settled = await betweenBookings(ledger, register);
      expect(settled.map(outcome)).toEqual(['accepted', 'payload_too_large (database-value-size)', 'accepted']);
      const refused = (settled[1] as PromiseFulfilledResult<Answer>).value;
      expect(refused).toMatchObject({ ok: false, error: { details: { table: 'organisations', index: 'test_organisations_address' } } });
      expect(await shipmentCount()).toBe(before + 2);
      // A gap in the ledger's checks: said once, for the command alone.
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatch(/^organisation\.register \(organisation system, Idempotency-Key long-address\) was refused by the database, rule database-value-size \(answered payload_too_large\), which the ledger's checks let through: index row size \d+ exceeds btree version \d+ maximum 2704 for index "test_organisations_address"/);
      // Remembered under its key (invariant 6), as any refusal of the command's own rows.
      const retried = await register();
      expect(retried).toMatchObject({ ok: false, replayed: true, error: { code: 'payload_too_large', message: refused.ok ? '' : refused.error.message } });
      expect(await ledger.violations()).toEqual([]);
    } finally {
      await database.pool.query('DROP INDEX test_organisations_address');
    }
  });
});

describe('a write a trigger refuses, naming its constraint (the ledger\'s checks let it through)', () => {
  it('is answered alone in fixed words, and its trigger\'s text goes to the log once, without the row it quotes', async () => {
    await database.pool.query(`CREATE FUNCTION test_probe() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.name = 'Probe Co.' THEN
          RAISE EXCEPTION 'unit SN-1 is ORG-9''s (booking S-77)' USING ERRCODE = '23514', CONSTRAINT = 'test_probe_rule', DETAIL = 'row ' || NEW.address;
        END IF;
        RETURN NEW;
      END $$`);
    await database.pool.query('CREATE TRIGGER test_probe BEFORE INSERT ON organisations FOR EACH ROW EXECUTE FUNCTION test_probe()');
    try {
      const said: Array<{ error: unknown; context: string }> = [];
      const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, clock: world.clock, onError: (error, context) => said.push({ error, context }) });
      opened.push(ledger);
      const input = { name: 'Probe Co.', country: 'GB', roles: ['recipient' as const], address: '1 Private Lane' };
      const register = () => ledger.submit('organisation.register', input, systemActor, 'probe');
      const settled = await betweenBookings(ledger, register);
      expect(settled.map(outcome)).toEqual(['accepted', 'conflict (test_probe_rule)', 'accepted']);
      const refused = (settled[1] as PromiseFulfilledResult<Answer>).value;
      expect(JSON.stringify(refused)).not.toMatch(/SN-1|ORG-9|S-77|Private Lane/);
      expect(said.map(({ context }) => context)).toEqual([
        "organisation.register (organisation system, Idempotency-Key probe) was refused by the database, rule test_probe_rule (answered conflict), which the ledger's checks let through: unit SN-1 is ORG-9's (booking S-77)",
      ]);
      // The database's code and words, not its DETAIL (the row written) nor its stack.
      const error = said[0]!.error as Error & Record<string, unknown>;
      expect({ message: error.message, code: error.code, detail: error.detail, where: error.where, stack: error.stack }).toEqual({
        message: "unit SN-1 is ORG-9's (booking S-77)", code: '23514', detail: undefined, where: undefined, stack: "error: unit SN-1 is ORG-9's (booking S-77)",
      });
      // Its replay is the answer remembered, not a new refusal: nothing more is said.
      expect(await register()).toMatchObject({ ok: false, replayed: true, error: { rule: 'test_probe_rule' } });
      expect(said).toHaveLength(1);
      expect(await ledger.violations()).toEqual([]);
    } finally {
      await database.pool.query('DROP TRIGGER test_probe ON organisations');
    }
  });
});

describe('a failure the sequencer does not recognise (a bug, an error of the database\'s with no refusal)', () => {
  it('fails only the command that causes it (500 to its caller alone, logged); the bookings in its batch commit', async () => {
    await database.pool.query(`CREATE FUNCTION test_bug() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.name = 'Trigger a bug' THEN RAISE EXCEPTION 'injected internal error' USING ERRCODE = 'XX000'; END IF;
        RETURN NEW;
      END $$`);
    await database.pool.query('CREATE TRIGGER test_bug BEFORE INSERT ON organisations FOR EACH ROW EXECUTE FUNCTION test_bug()');
    try {
      const { ledger, logged } = await openLedger();
      const before = await shipmentCount();
      const input = { name: 'Trigger a bug', country: 'GB', roles: ['recipient' as const] };
      const settled = await betweenBookings(ledger, () => ledger.submit('organisation.register', input, systemActor, 'bug'));
      expect(settled.map(outcome)).toEqual(['accepted', 'rejected: error: injected internal error', 'accepted']);
      expect(await shipmentCount()).toBe(before + 2);
      // Logged when the batch split, and again for the command alone.
      expect(logged).toEqual([
        'a batch of 3 commands failed; running it again in halves to find the command that fails: error: injected internal error',
        'organisation.register (organisation system, Idempotency-Key bug) failed, alone in its batch: error: injected internal error',
      ]);
      expect(await ledger.violations()).toEqual([]);
    } finally {
      await database.pool.query('DROP TRIGGER test_bug ON organisations');
    }
  });

  it('is never run again when the batch\'s COMMIT may have gone through: every caller hears of it, and nothing is written twice', async () => {
    const pool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'batch-culprits-after-commit' });
    let failNextCommitReply = false;
    // The sequencer connects without a callback; pool.query (migrations, checks) with one.
    const connect = pool.connect.bind(pool) as (...args: unknown[]) => Promise<PoolClient> | undefined;
    (pool as { connect: (...args: unknown[]) => unknown }).connect = (...args: unknown[]) => {
      if (args.length > 0) return connect(...args);
      return connect()!.then((client) => {
        if (failNextCommitReply) {
          failNextCommitReply = false;
          failAfterCommit(client);
        }
        return client;
      });
    };
    try {
      const { ledger, logged } = await openLedger(pool);
      // Twice, so that the row cache holds the rows and the next batch is sent ahead.
      expectOk(await ledger.submit('shipment.book', booking('alpha'), world.actors.exporter));
      expectOk(await ledger.submit('shipment.book', booking('alpha'), world.actors.exporter));
      const before = await shipmentCount();
      failNextCommitReply = true;
      const settled = await Promise.allSettled([0, 1, 2].map((index) => ledger.submit('shipment.book', booking(index === 1 ? 'beta' : 'alpha'), world.actors.exporter)));
      expect(settled.map(outcome)).toEqual(Array(3).fill('rejected: TypeError: injected: the reply to COMMIT could not be read'));
      // It did commit, once: not again in halves.
      expect(await shipmentCount()).toBe(before + 3);
      expect(logged).toEqual(['a batch of 3 commands failed after its COMMIT was sent: TypeError: injected: the reply to COMMIT could not be read']);
      // The next batch reads the head again and follows the batch that committed.
      const next = expectOk(await ledger.submit('shipment.book', booking('alpha'), world.actors.exporter));
      expect(next.seq).toBe((await database.pool.query<{ size: number }>('SELECT size FROM log_head')).rows[0]!.size - 1);
      expect(await ledger.violations()).toEqual([]);
    } finally {
      for (const ledger of opened.splice(0)) await ledger.close();
      await pool.end();
    }
  });
});

describe('a failure before a batch\'s COMMIT joins its steps (the log\'s append of a big batch, which runs while its rows travel)', () => {
  // 300 bookings from 300 callers at once: one batch of 300 events, whose leaves the log
  // appends inside writeBatchAndCommit (from bulkRowsMin events). Its halves append 150 each.
  const callers = 300;
  it.each([
    ['the classic way (a ledger just opened)', false],
    ['sent ahead (the row cache warm)', true],
  ])('proves no commit, %s: the batch runs again in halves, and every caller is answered by the halves that commit', async (_way, warm) => {
    const { ledger, logged } = await openLedger();
    if (warm) {
      // The first two load the rows and find the head their last batch left; the third is sent ahead, as the big one then is.
      for (const recipient of ['alpha', 'beta', 'alpha'] as const) expectOk(await ledger.submit('shipment.book', booking(recipient), world.actors.exporter));
      expect(ledger.sequencer.stats.aheadBatches).toBe(1);
    }
    const append = ledger.log.append.bind(ledger.log);
    let failures = 0;
    ledger.log.append = async (client, head, leaves) => {
      if (leaves.length >= callers && failures === 0) {
        failures += 1;
        throw new Error('injected: the log could not append');
      }
      return append(client, head, leaves);
    };
    const before = await shipmentCount();
    const settled = await Promise.allSettled(Array.from({ length: callers }, (_, index) => ledger.submit('shipment.book', booking(index % 2 === 0 ? 'alpha' : 'beta'), world.actors.exporter)));
    expect(failures).toBe(1);
    expect(new Set(settled.map(outcome))).toEqual(new Set(['accepted']));
    expect(await shipmentCount()).toBe(before + callers);
    expect(logged).toEqual([`a batch of ${callers} commands failed; running it again in halves to find the command that fails: Error: injected: the log could not append`]);
    expect(await ledger.violations()).toEqual([]);
  });
});

/**
 * The client's next text that ends in COMMIT runs, and then fails in the client as a bug
 * would (a reply it cannot read): a failure that proves nothing about the COMMIT.
 */
function failAfterCommit(client: PoolClient): void {
  failAfterCommitReply(client, () => new TypeError('injected: the reply to COMMIT could not be read'));
}

describe('the uniqueness that holds invariant 4, as the database names it', () => {
  it('is answered with rule invariant-4 when they refuse a row (a GPU UUID with its own rule, unit-gpu-uuid)', async () => {
    expectOk(await world.ledger.submit('shipment.book', { ...booking('alpha'), serials: [{ serial: 'INV4-1', gpuUuid: 'GPU-14c40000-0000-0000-0000-000000000001' }] }, world.actors.exporter));
    const other = expectOk(await world.ledger.submit('shipment.book', booking('alpha'), world.actors.exporter));
    const client = await database.pool.connect();
    const refusedBy = async (sql: string): Promise<{ constraint: string; rule: string | undefined }> => {
      await client.query('SAVEPOINT attempt');
      try {
        await client.query(sql);
        return { constraint: '(none: the row was taken)', rule: undefined };
      } catch (error) {
        return { constraint: (error as { constraint: string }).constraint, rule: toRefusal(error).rule };
      } finally {
        await client.query('ROLLBACK TO SAVEPOINT attempt');
      }
    };
    try {
      await client.query('BEGIN');
      const copyOfUnit = (serial: string, gpuUuid: string) => `INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq)
        SELECT ${serial}, ${gpuUuid}, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq FROM units WHERE serial = 'INV4-1'`;
      expect([
        // Listed in a second shipment while the first is under way (migration 075's units_keep_identity).
        await refusedBy(`UPDATE units SET shipment_id = '${String(other.shipmentId)}' WHERE serial = 'INV4-1'`),
        await refusedBy(copyOfUnit(`'INV4-1'`, 'NULL')),
        await refusedBy(copyOfUnit(`'INV4-2'`, 'gpu_uuid')),
      ]).toEqual([
        { constraint: 'units_live_in_one_shipment', rule: 'invariant-4' },
        { constraint: 'units_pkey', rule: 'invariant-4' },
        { constraint: 'units_gpu_uuid_key', rule: 'unit-gpu-uuid' },
      ]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
