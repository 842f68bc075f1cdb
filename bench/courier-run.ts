/**
 * What one run of the Courier section measured (one mode, one concurrency, one round), shared by
 * the section that runs it, its report and its headline. Data only.
 */
import type { MessageKind } from './mix.js';

/** SMTP sessions at a time; the headline is judged at 4. */
export const CONCURRENCIES = [1, 4, 16] as const;

/**
 * Sessions of the first pass: after a mode is installed (a filter just started) the mix is sent
 * once, unmeasured by the tables and the headline, before the measured concurrencies. A filter on
 * a mail host runs for days: the measured runs are of a filter that has seen mail, as in
 * production, for every mode alike (the peer too). The first pass is reported on its own (cold).
 */
export const FIRST_PASS_SESSIONS = 4;

/**
 * Messages each filter gets after its first pass and before the measured runs (`--warm`), in
 * whole passes of the mix at FIRST_PASS_SESSIONS; Courier alone gets none. A JIT-compiled filter
 * keeps getting cheaper for thousands of messages after a start (V8 optimizes a function once it
 * has run enough of its bytecode, and much of the per-message code runs once per message):
 * avfilter with the clamd engine, fed the mix at full speed, spent 2.3, 1.8, 1.3, 1.3, 1.1, 1.0,
 * 1.0, 0.9 ms per message in its first eight passes of 300 and 0.8 from there on; the Perl
 * filter's cost is flat after its first pass. The warm-up passes are reported with the first.
 */
export const DEFAULT_WARM_MESSAGES = 2400;

export interface CpuReading {
  filter: number;
  clamd: number;
  courier: number;
}

export interface CourierRun {
  /** the CourierMode's id */
  mode: string;
  sessions: number;
  /** 0 = warm-up */
  round: number;
  /** The first pass after the mode was installed (FIRST_PASS_SESSIONS): cold, reported on its own. */
  first?: boolean;
  /** A warm-up pass after the first (1, 2, ...; DEFAULT_WARM_MESSAGES): unmeasured, reported with the first. */
  warm?: number;
  messages: number;
  msgPerS: number;
  p50: number;
  p95: number;
  kind: Record<MessageKind, { p50: number; p95: number }>;
  /** CPU ms per message */
  cpu: CpuReading;
  errors: number;
  timeouts: number;
  wrong: number;
  problems: string[];
}

/** A run of the tables and the headline: not the first pass, not a warm-up pass. */
export function isMeasured(r: CourierRun): boolean {
  return r.first !== true && r.warm === undefined;
}
