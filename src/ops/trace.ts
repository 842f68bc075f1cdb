/**
 * A message's trace at log_level = "debug" (and so in `--foreground --debug` runs): one
 * `event=trace` line at each stage — read (request and control files), mime, unpack, engine (one
 * per item and engine), policy, reply — each with the data file path and the milliseconds
 * since the connection was accepted, so one message can be followed through a busy log.
 *
 * The cost when debug lines are off is one level check per message: `messageTrace` then
 * returns undefined and every stage's `trace?.(...)` builds no fields. Libraries (mime,
 * engines, unpack) do not log: the composition modules call the trace with what they return.
 *
 * Owns: the trace line's shape. Fails with nothing (the logger never throws).
 */
import type { LogFields, Logger } from './log.js';

export type TraceStage = 'read' | 'gates' | 'mime' | 'unpack' | 'banned' | 'engine' | 'policy' | 'reply';
export type Trace = (stage: TraceStage, fields: LogFields) => void;

/** The trace of one message, or undefined when debug lines are not written. */
export function messageTrace(log: Logger, data: string, acceptedAt: number): Trace | undefined {
  if (!log.enabled('debug')) return undefined;
  return (stage, fields) => log.event('trace', { data, stage, ms: Date.now() - acceptedAt, ...fields }, 'debug');
}
