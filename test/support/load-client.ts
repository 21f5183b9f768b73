/**
 * A load client in its own process, for tests that need a second writer or something to
 * kill: it books shipments (and ships them) in a loop from several concurrent workers,
 * and prints one JSON line on stdout for every answer it got back, after it got it.
 * A line on stdout is therefore an acknowledgement: the ledger answered that command.
 *
 *   node --import tsx test/support/load-client.ts <target> '<config JSON>'
 *
 * <target> is where commands go. A postgres:// URL opens a Ledger on that database in
 * this process (a second "server"); the HTTP server can be added as another target
 * (an http:// URL) without changing the lines this prints.
 *
 * Lines: {"type":"answer","worker":3,"kind":"shipment.book","key":"...","input":{...},
 * "ok":true,"body":{...}} or {...,"ok":false,"code":"insufficient_units"}; at the end
 * {"type":"done","answers":N}. Stdout to a pipe is synchronous on Linux, so a line
 * that was printed is in the pipe even if the process is killed right after.
 */
import { ManualClock } from '../../src/core/clock.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import type { Actor } from '../../src/ledger/permissions.ts';
import type { CommandKind } from '../../src/ledger/schemas.ts';
import { createPool } from '../../src/store/pool.ts';
import { testSealingKey } from './sealing-key.ts';

export interface LoadConfig {
  /** The ledger's clock stands still at this instant (licences in test worlds are valid then). */
  clock: string;
  exporter: Actor;
  productId: string;
  /** Bookings go round these export/import allocation pairs. */
  pairs: Array<{ exportAllocationId: string; importAllocationId: string }>;
  /** Concurrent loops. */
  workers: number;
  /** Bookings each worker makes, then the process exits. */
  bookingsPerWorker: number;
  /** Units of a booking cycle through 1..unitsMax. */
  unitsMax: number;
  /** Makes keys, serials and references unique to this process. */
  prefix: string;
  /** Book with a full manifest and ship each accepted booking. */
  ship: boolean;
  /** Every booking carries an idempotency key (ships always do). */
  keys: boolean;
}

export interface LoadAnswer {
  type: 'answer';
  worker: number;
  kind: CommandKind;
  key: string | null;
  input: Record<string, unknown>;
  ok: boolean;
  body?: Record<string, unknown>;
  code?: string;
}

interface Target {
  submit(kind: CommandKind, input: Record<string, unknown>, actor: Actor, key: string | undefined): Promise<{ ok: true; body: Record<string, unknown> } | { ok: false; code: string }>;
  close(): Promise<void>;
}

async function ledgerTarget(databaseUrl: string, config: LoadConfig): Promise<Target> {
  const pool = createPool({ url: databaseUrl, connectionsMax: 4, applicationName: `chipledger-load-${config.prefix}` });
  const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: new ManualClock(config.clock) });
  return {
    async submit(kind, input, actor, key) {
      const answer = await ledger.submit(kind, input as never, actor, key);
      return answer.ok ? { ok: true, body: answer.body } : { ok: false, code: answer.error.code };
    },
    async close() {
      await ledger.close();
      await pool.end();
    },
  };
}

async function openTarget(target: string, config: LoadConfig): Promise<Target> {
  if (/^postgres(ql)?:\/\//.test(target)) return ledgerTarget(target, config);
  throw new Error(`load-client: no target for ${target}; give a postgres:// URL`);
}

function print(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function worker(target: Target, config: LoadConfig, index: number): Promise<number> {
  let answers = 0;
  const deadline = new Date(Date.parse(config.clock) + 30 * 86_400_000).toISOString();
  for (let n = 0; n < config.bookingsPerWorker; n += 1) {
    const pair = config.pairs[(index + n) % config.pairs.length]!;
    const units = 1 + ((index + n) % config.unitsMax);
    const name = `${config.prefix}-${index}-${n}`;
    const serials = config.ship ? Array.from({ length: units }, (_, i) => `${name}-${i}`) : undefined;
    const input = { ...pair, productId: config.productId, units, deadline, reference: name, ...(serials ? { serials } : {}) };
    const bookKey = config.keys || config.ship ? `${name}-book` : undefined;
    const booked = await target.submit('shipment.book', input, config.exporter, bookKey);
    answers += 1;
    print({ type: 'answer', worker: index, kind: 'shipment.book', key: bookKey ?? null, input, ...booked });
    if (!booked.ok || !config.ship) continue;
    const shipInput = { shipmentId: String(booked.body.shipmentId) };
    const shipped = await target.submit('shipment.ship', shipInput, config.exporter, `${name}-ship`);
    answers += 1;
    print({ type: 'answer', worker: index, kind: 'shipment.ship', key: `${name}-ship`, input: shipInput, ...shipped });
  }
  return answers;
}

async function main(): Promise<void> {
  const [target, configText] = process.argv.slice(2);
  if (!target || !configText) throw new Error('usage: load-client.ts <target> <config JSON>');
  const config = JSON.parse(configText) as LoadConfig;
  const client = await openTarget(target, config);
  print({ type: 'ready' });
  const counts = await Promise.all(Array.from({ length: config.workers }, (_, index) => worker(client, config, index)));
  await client.close();
  print({ type: 'done', answers: counts.reduce((a, b) => a + b, 0) });
}

main().catch((error: unknown) => {
  process.stderr.write(`load-client failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
