/**
 * /metrics in the Prometheus text format (0.0.4), written by hand: a request counter by
 * route, method and status, a latency histogram by route and method, the ledger
 * sequencer's counters, the pool's gauges and the checkpoint signer's. Routes are fastify's
 * templates ('/v1/shipments/:id'), so the label sets stay bounded.
 */
import { limits } from '../core/limits.ts';
import type { LogSeen } from '../ledger/log/checkpointer.ts';
import type { SequencerStats } from '../ledger/sequencer.ts';

export const latencyBucketsSeconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
export const metricSeriesMax = limits.metricSeriesMax;

interface Histogram {
  buckets: number[];
  count: number;
  sumSeconds: number;
}

export interface PoolStats {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  /** The pool's bound (pg's `max`): with connections at it, queries wait. */
  connectionsMax: number;
}

export class HttpMetrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const series = this.latency.size < metricSeriesMax || this.latency.has(`${method} ${route}`) ? route : 'other';
    const counterKey = `${method}\u0000${series}\u0000${status}`;
    this.requests.set(counterKey, (this.requests.get(counterKey) ?? 0) + 1);
    const histogramKey = `${method} ${series}`;
    let histogram = this.latency.get(histogramKey);
    if (histogram === undefined) {
      histogram = { buckets: latencyBucketsSeconds.map(() => 0), count: 0, sumSeconds: 0 };
      this.latency.set(histogramKey, histogram);
    }
    histogram.count += 1;
    histogram.sumSeconds += seconds;
    const index = latencyBucketsSeconds.findIndex((bound) => seconds <= bound);
    if (index >= 0) histogram.buckets[index]! += 1;
  }

  render(sequencer: SequencerStats, pool: PoolStats, extra: readonly ExtraMetric[] = []): string {
    const lines: string[] = [];
    lines.push('# HELP chipledger_http_requests_total HTTP requests answered, by route template, method and status.');
    lines.push('# TYPE chipledger_http_requests_total counter');
    for (const [key, count] of this.requests) {
      const [method, route, status] = key.split('\u0000');
      lines.push(`chipledger_http_requests_total{method="${label(method!)}",route="${label(route!)}",status="${status}"} ${count}`);
    }
    lines.push('# HELP chipledger_http_request_duration_seconds Time from request to response, by route template and method.');
    lines.push('# TYPE chipledger_http_request_duration_seconds histogram');
    for (const [key, histogram] of this.latency) {
      const space = key.indexOf(' ');
      const labels = `method="${label(key.slice(0, space))}",route="${label(key.slice(space + 1))}"`;
      let cumulative = 0;
      latencyBucketsSeconds.forEach((bound, index) => {
        cumulative += histogram.buckets[index]!;
        lines.push(`chipledger_http_request_duration_seconds_bucket{${labels},le="${bound}"} ${cumulative}`);
      });
      lines.push(`chipledger_http_request_duration_seconds_bucket{${labels},le="+Inf"} ${histogram.count}`);
      lines.push(`chipledger_http_request_duration_seconds_sum{${labels}} ${histogram.sumSeconds}`);
      lines.push(`chipledger_http_request_duration_seconds_count{${labels}} ${histogram.count}`);
    }
    const gauge = (name: string, help: string, value: number) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
    const counter = (name: string, help: string, value: number) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
    counter('chipledger_sequencer_batches_total', 'Batches committed by the ledger sequencer.', sequencer.batches);
    counter('chipledger_sequencer_commands_total', 'Commands run by the sequencer (accepted or refused).', sequencer.commands);
    counter('chipledger_sequencer_accepted_total', 'Commands accepted.', sequencer.accepted);
    counter('chipledger_sequencer_refused_total', 'Commands refused by a rule.', sequencer.refused);
    counter('chipledger_sequencer_replayed_total', 'Retries answered from an idempotency key.', sequencer.replayed);
    counter('chipledger_sequencer_failed_batches_total', 'Batches whose transaction failed.', sequencer.failedBatches);
    counter('chipledger_sequencer_cached_batches_total', 'Batches that read no rows: the row cache held them all.', sequencer.cachedBatches);
    counter('chipledger_sequencer_ahead_batches_total', 'Batches sent ahead that committed: applied to cached rows before their lock, written in one round trip at the head they expected.', sequencer.aheadBatches);
    counter('chipledger_sequencer_ahead_misses_total', 'Batches sent ahead that rolled back on a wrong guess (another writer moved the head, a key was stored before, a row was refused) and ran again the classic way.', sequencer.aheadMisses);
    counter('chipledger_sequencer_commit_seconds_total', 'Time spent committing batches.', sequencer.commitSecondsTotal);
    gauge('chipledger_sequencer_queue_depth', 'Commands waiting for the sequencer.', sequencer.queueDepth);
    gauge('chipledger_sequencer_last_batch_size', 'Commands in the last committed batch.', sequencer.lastBatchSize);
    gauge('chipledger_pool_connections', 'Database connections held by this process.', pool.totalCount);
    gauge('chipledger_pool_idle_connections', 'Database connections idle in the pool.', pool.idleCount);
    gauge('chipledger_pool_waiting_clients', 'Queries waiting for a database connection.', pool.waitingCount);
    gauge('chipledger_pool_connections_max', 'The bound on database connections this process holds; at it, queries wait (chipledger_pool_waiting_clients). Reads, the sequencer, the signer and /healthz share them.', pool.connectionsMax);
    for (const metric of extra) (metric.type === 'counter' ? counter : gauge)(metric.name, metric.help, metric.value);
    return `${lines.join('\n')}\n`;
  }
}

/** A metric of another part (the log, the checkpointer, the token cache), with its own help text. */
export interface ExtraMetric {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  value: number;
}

/**
 * When this process last signed a checkpoint, and how long ago: both absent until it first
 * signs (the Prometheus way to say "never"), since an age of 0 read as a checkpoint just
 * signed by a process that never signed, or whose every signing fails. `lastSignedAtMs` is 0
 * until then (checkpointer.ts).
 */
export function lastSigningMetrics(lastSignedAtMs: number): ExtraMetric[] {
  if (lastSignedAtMs === 0) return [];
  return [
    { name: 'chipledger_checkpoint_last_signed_timestamp_seconds', type: 'gauge', help: 'When this process last signed a checkpoint, in seconds since the Unix epoch; absent until it first signs.', value: lastSignedAtMs / 1000 },
    { name: 'chipledger_checkpoint_age_seconds', type: 'gauge', help: 'Seconds since this process last signed a checkpoint; absent until it first signs.', value: (Date.now() - lastSignedAtMs) / 1000 },
  ];
}

/**
 * The log's newest checkpoint, whichever process signed it, as this process's signer last
 * read it (about every second): the same on every server, so the lag is alerted on from these,
 * not from this process's own signing (chipledger_checkpoint_*), which a server that loses the
 * signing race to another never moves. With them, whether this signer held its signing then
 * (its published-checkpoint not written): the reason for a lag no database outage explains.
 * Absent until the signer first reads the log; the checkpoint's own gauges until the log has one.
 */
export function logSeenMetrics(seen: LogSeen | undefined): ExtraMetric[] {
  if (seen === undefined) return [];
  const uncovered: ExtraMetric = { name: 'chipledger_log_uncovered_events', type: 'gauge', help: 'Committed events no checkpoint covered yet, by any process, as this process last read the log (about every second). With a newest checkpoint older than a few seconds, signing is stalled (see chipledger_checkpoint_signing_held).', value: Math.max(0, seen.headSize - (seen.newest?.size ?? 0)) };
  const held: ExtraMetric = { name: 'chipledger_checkpoint_signing_held', type: 'gauge', help: 'Whether this process signs no new checkpoint because the newest it signed or saw is not written to its data dir\'s published-checkpoint (a full disk, a read-only file system): 1 while so (its guard against starting on a database that went back is behind meanwhile, and /healthz answers 503, rule published-checkpoint-unrecorded, naming the file and the error), 0 otherwise. As of the signer\'s last read of the log (about every second).', value: seen.signingHeld ? 1 : 0 };
  if (seen.newest === undefined) return [uncovered, held];
  return [
    { name: 'chipledger_log_checkpoint_newest_size', type: 'gauge', help: 'Size of the log\'s newest checkpoint, signed by any process, as this process last read it.', value: seen.newest.size },
    { name: 'chipledger_log_checkpoint_newest_age_seconds', type: 'gauge', help: 'Age of the log\'s newest checkpoint by the database\'s clock, signed by any process; it grows on an idle log, which signs nothing new.', value: (seen.newest.ageMs + performance.now() - seen.readAtMs) / 1000 },
    uncovered,
    held,
  ];
}

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
