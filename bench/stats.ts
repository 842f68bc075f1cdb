/**
 * Small statistics for the benchmark: median, percentiles (nearest rank), formatting helpers.
 * Pure functions; an empty input gives NaN, which the report prints as "–".
 */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile, p in 0..100. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(rank, s.length) - 1]!;
}

/** A number with `digits` decimals, "–" for NaN / undefined. */
export function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

/** "a / b" as a ratio with two decimals. */
export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '–';
}
