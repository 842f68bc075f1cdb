/**
 * Targets judged against noisy measurements: the headline's "met / missed / inside the noise".
 *
 * A figure is measured once per round (modes are interleaved, so a ratio is computed within its
 * round, where the machine's load was the same for both sides). Its uncertainty is the interval
 * [lo, hi] = the range of the per-round values, widened to median ± `noise` when an outside noise
 * estimate is larger (e.g. how much Courier alone varied across the same rounds). A target is met
 * when the whole interval is on its side, missed when the whole interval is on the other side,
 * and "inside the noise" when the interval straddles it. One round gives a point interval: the
 * verdict then says so.
 *
 * Pure functions: numbers in, a Judgement out; no data gives the verdict "no data".
 */
import { median } from './stats.js';

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median and range of the finite values (NaN fields and n = 0 when there are none). */
export function spread(xs: readonly number[]): Spread {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** (max − min) / median: how much a quantity varied across rounds, as a fraction of itself. */
export function relativeRange(xs: readonly number[]): number {
  const s = spread(xs);
  return s.n >= 2 && s.median > 0 ? (s.max - s.min) / s.median : NaN;
}

export type Verdict = 'met' | 'missed' | 'inside the noise' | 'no data';

export interface Judgement {
  verdict: Verdict;
  /** the interval judged */
  lo: number;
  hi: number;
  /** per-round values behind it */
  rounds: Spread;
  /** the verdict as printed, with "(1 round: no spread)" when there was only one value */
  text: string;
}

function interval(values: readonly number[], noise: number): { s: Spread; lo: number; hi: number } {
  const s = spread(values);
  const n = Number.isFinite(noise) && noise > 0 ? noise : 0;
  return { s, lo: Math.min(s.min, s.median - n), hi: Math.max(s.max, s.median + n) };
}

function judged(verdict: Verdict, lo: number, hi: number, s: Spread, noise: number): Judgement {
  const single = s.n === 1 && !(Number.isFinite(noise) && noise > 0);
  return { verdict, lo, hi, rounds: s, text: verdict === 'no data' ? 'no data' : single ? `${verdict} (1 round: no spread to judge the noise)` : verdict };
}

/** Target "value ≤ target" (lower is better). `noise`: an outside noise estimate, in the values' unit. */
export function atMost(values: readonly number[], target: number, noise = 0): Judgement {
  const { s, lo, hi } = interval(values, noise);
  if (s.n === 0) return judged('no data', NaN, NaN, s, noise);
  return judged(hi <= target ? 'met' : lo > target ? 'missed' : 'inside the noise', lo, hi, s, noise);
}

/** Target "value ≥ target" (higher is better). */
export function atLeast(values: readonly number[], target: number, noise = 0): Judgement {
  const { s, lo, hi } = interval(values, noise);
  if (s.n === 0) return judged('no data', NaN, NaN, s, noise);
  return judged(lo >= target ? 'met' : hi < target ? 'missed' : 'inside the noise', lo, hi, s, noise);
}

/**
 * Whether a measured ratio differs from `neutral` (1 for a ratio, 0 for a difference) beyond the
 * noise: "higher", "lower", or "inside the noise"; "one round" when a single value and no noise
 * estimate leave nothing to judge it by.
 */
export function versus(values: readonly number[], neutral: number, noise = 0): 'higher' | 'lower' | 'inside the noise' | 'one round' | 'no data' {
  const { s, lo, hi } = interval(values, noise);
  if (s.n === 0) return 'no data';
  if (s.n === 1 && !(Number.isFinite(noise) && noise > 0)) return 'one round';
  return lo > neutral ? 'higher' : hi < neutral ? 'lower' : 'inside the noise';
}

/** "0.63 (0.58–0.70)": median and range ("-1.2 (-4.0 to 3.4)" when negative), or just the value for one round. */
export function fmtSpread(s: Spread, digits = 2): string {
  if (s.n === 0) return '–';
  if (s.n === 1 || s.min === s.max) return s.median.toFixed(digits);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}${s.min < 0 ? ' to ' : '–'}${s.max.toFixed(digits)})`;
}
