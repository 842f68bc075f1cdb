/**
 * What one run of the Courier section measured (one mode, one concurrency, one round), shared by
 * the section that runs it, its report and its headline. Data only.
 */
import type { MessageKind } from './mix.js';

/** SMTP sessions at a time; the headline is judged at 4. */
export const CONCURRENCIES = [1, 4, 16] as const;

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
