/**
 * Profiling aid: times every statement a pool's clients run, grouped by statement shape,
 * so a benchmark can say how much of a batch is PostgreSQL and how much is JavaScript.
 * The time of a statement is from send to reply: it includes the round trip and any wait
 * for the event loop, which is busy with other callers meanwhile.
 */
import type { Pool, PoolClient } from '../src/store/pool.ts';

export interface StatementTiming {
  statement: string;
  calls: number;
  totalMs: number;
}

export class QueryTimer {
  private readonly timings = new Map<string, StatementTiming>();

  /** Wraps the query method of every client the pool makes from now on. */
  attach(pool: Pool): void {
    pool.on('connect', (client: PoolClient) => this.wrap(client));
  }

  reset(): void {
    this.timings.clear();
  }

  report(): StatementTiming[] {
    return [...this.timings.values()].sort((a, b) => b.totalMs - a.totalMs);
  }

  totalMs(): number {
    let total = 0;
    for (const timing of this.timings.values()) total += timing.totalMs;
    return total;
  }

  private wrap(client: PoolClient): void {
    const original = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const started = performance.now();
      const result = original(...args);
      const label = shapeOf(args[0]);
      const done = () => this.note(label, performance.now() - started);
      if (result instanceof Promise) result.then(done, done);
      // COPY … FROM STDIN: a stream that finishes when PostgreSQL has taken every row.
      else if (typeof (result as { once?: unknown })?.once === 'function') {
        (result as NodeJS.EventEmitter).once('finish', done).once('error', done);
      }
      return result;
    };
  }

  private note(statement: string, ms: number): void {
    const timing = this.timings.get(statement) ?? { statement, calls: 0, totalMs: 0 };
    timing.calls += 1;
    timing.totalMs += ms;
    this.timings.set(statement, timing);
  }
}

function shapeOf(query: unknown): string {
  const text = typeof query === 'string' ? query : String((query as { text?: unknown })?.text ?? '?');
  return text.replace(/\s+/g, ' ').trim().slice(0, 72);
}
