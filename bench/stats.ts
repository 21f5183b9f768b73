/** Small numeric helpers the benchmarks share: seeded randomness, percentiles, medians. */

export { seededRandom } from '../src/core/random.ts';

/** The p-th percentile (0..100) by nearest rank of values already sorted ascending. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: number[]): number {
  return percentile(Float64Array.from(values).sort(), 50);
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
