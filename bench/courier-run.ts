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
