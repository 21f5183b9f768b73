/**
 * Two ledgers on one database, as two server processes: one freezes (SIGSTOP, as a long GC
 * pause or a partition would look to PostgreSQL) right after its batch took the head lock.
 * Its session sits idle in transaction holding the lock; past limits.headLockIdleMsMax
 * PostgreSQL ends it, and the other ledger's batch, waiting for the lock, goes through.
 * When the frozen process wakes, its batch is answered 'unavailable' with nothing of it
 * committed, and its retry with the same key books once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { limits } from '../core/limits.ts';
import { createPool } from '../store/pool.ts';
import { Ledger } from './ledger.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, made2) => {
  world = made;
  database = made2;
});

const stalledName = 'chipledger-stalled-writer';

/**
 * The frozen writer: a Ledger in a child process whose next batch stops the whole process
 * (SIGSTOP to itself) as soon as its opening, which takes the head lock, has answered. No
 * row cache, so the batch goes the classic way: lock first, then reads and writes. It
 * prints a line when it stops, then the answers to its booking and to the retry.
 */
const childProgram = `
const [ledgerModule, poolModule, clockModule, url, name, configText] = process.argv.slice(1);
const { Ledger } = await import(ledgerModule);
const { createPool } = await import(poolModule);
const { ManualClock } = await import(clockModule);
const config = JSON.parse(configText);
const say = (line) => process.stdout.write(JSON.stringify(line) + '\\n');
const pool = createPool({ url, connectionsMax: 2, applicationName: name });
let freezeNext = false;
const connect = pool.connect.bind(pool);
pool.connect = (...args) => args.length > 0 ? connect(...args) : connect().then((client) => {
  const query = client.query.bind(client);
  client.query = (...queryArgs) => {
    const result = query(...queryArgs);
    if (!freezeNext || typeof queryArgs[0] !== 'string' || !queryArgs[0].includes('FOR UPDATE')) return result;
    freezeNext = false;
    return result.then((value) => {
      say({ type: 'frozen' });
      process.kill(process.pid, 'SIGSTOP');
      return value;
    });
  };
  return client;
});
const ledger = await Ledger.open({ logSealingKey: ${JSON.stringify(testSealingKey)}, pool, clock: new ManualClock(config.clock), rowCacheRows: 0 });
const answer = (a) => a.ok ? { ok: true, seq: a.body.seq, replayed: a.replayed } : { ok: false, code: a.error.code, replayed: a.replayed };
freezeNext = true;
say({ type: 'answer', ...answer(await ledger.submit('shipment.book', config.input, config.actor, 'frozen-key')) });
say({ type: 'answer', ...answer(await ledger.submit('shipment.book', config.input, config.actor, 'frozen-key')) });
await ledger.close();
await pool.end();
`;

interface Line {
  type: string;
  ok?: boolean;
  code?: string;
  seq?: number;
  replayed?: boolean;
}

function spawnWriter(input: Record<string, unknown>): { child: ChildProcess; next: () => Promise<Line>; stderr: () => string } {
  const modules = ['./ledger.ts', '../store/pool.ts', '../core/clock.ts'].map((path) => fileURLToPath(new URL(path, import.meta.url)));
  const config = { clock: world.clock.now().toISOString(), actor: world.actors.exporter, input };
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childProgram, ...modules, database.url, stalledName, JSON.stringify(config)], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  const waiting: Array<(line: Line) => void> = [];
  let buffered = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      const line = JSON.parse(buffered.slice(0, end)) as Line;
      buffered = buffered.slice(end + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const next = () => new Promise<Line>((resolve, reject) => {
    const line = lines.shift();
    if (line) return resolve(line);
    const timer = setTimeout(() => reject(new Error(`no line from the writer within 30 s: ${stderr.slice(-2_000)}`)), 30_000);
    waiting.push((arrived) => {
      clearTimeout(timer);
      resolve(arrived);
    });
  });
  return { child, next, stderr: () => stderr };
}

async function committed(): Promise<{ shipments: number; keys: number; size: number }> {
  return (await database.pool.query<{ shipments: number; keys: number; size: number }>(`SELECT
    (SELECT count(*)::int FROM shipments) AS shipments,
    (SELECT count(*)::int FROM idempotency_keys WHERE key = 'frozen-key') AS keys,
    (SELECT size FROM log_head) AS size`)).rows[0]!;
}

it('lets the other writer through once the frozen one has idled past the bound, and answers the frozen batch unavailable, nothing of it committed', async () => {
  const input = { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z' };
  const writer = spawnWriter(input);
  // The other ledger waits for the lock up to three times the idle bound: without the bound it would answer 'unavailable'.
  const pool = createPool({ url: database.url, connectionsMax: 4, applicationName: 'chipledger-other-writer' });
  const other = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: world.clock, headLockWaitMs: limits.headLockIdleMsMax * 3 });
  try {
    expect(await writer.next()).toEqual({ type: 'frozen' });
    const before = await committed();
    const holding = await database.pool.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'`, [stalledName]);
    expect(holding.rowCount).toBe(1);

    const started = performance.now();
    const booked = await other.submit('shipment.book', input, world.actors.exporter, 'other-key');
    const waitedMs = performance.now() - started;
    expect(expectOk(booked).seq).toBe(before.size);
    expect(waitedMs).toBeGreaterThan(limits.headLockIdleMsMax / 2);
    expect(waitedMs).toBeLessThan(limits.headLockIdleMsMax * 2);
    // PostgreSQL ended the frozen writer's session: nothing of its batch exists.
    const gone = await database.pool.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'`, [stalledName]);
    expect(gone.rowCount).toBe(0);
    expect(await committed()).toEqual({ shipments: before.shipments + 1, keys: 0, size: before.size + 1 });

    writer.child.kill('SIGCONT');
    expect(await writer.next()).toEqual({ type: 'answer', ok: false, code: 'unavailable', replayed: false });
    // The retry with the same key books once, after the other writer's booking.
    expect(await writer.next()).toEqual({ type: 'answer', ok: true, seq: before.size + 1, replayed: false });
    expect(await committed()).toEqual({ shipments: before.shipments + 2, keys: 1, size: before.size + 2 });
    expect(await other.violations()).toEqual([]);
  } finally {
    writer.child.kill('SIGKILL');
    writer.child.kill('SIGCONT');
    await other.close();
    await pool.end();
  }
}, 60_000);
