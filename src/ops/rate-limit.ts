/**
 * Event lines under attack: a connect storm, a slowloris or a flood of bad requests must not
 * become a flood of log lines (10,000 connections wrote 10,000 lines). Each event kind may
 * write MAX_PER_WINDOW lines per window; the rest are counted and reported in one line when the
 * window closes ("event=suppressed of=request-read-timeout count=N").
 *
 * Owns: the per-event counters. Inputs: events. Outputs: log lines. Fails with nothing.
 */
import type { Level, Logger, LogFields } from './log.js';
import type { EventName } from './events.js';

const WINDOW_MS = 60_000;
const MAX_PER_WINDOW = 20;
/** Events that always get their line: they are rare and each one matters. */
const ALWAYS: ReadonlySet<EventName> = new Set<EventName>(['request-overdue', 'internal-error', 'worker-overdue']);

export class RateLimiter {
  private readonly counts = new Map<EventName, { written: number; suppressed: number; level: Level }>();
  private timer: NodeJS.Timeout | undefined;
  private log: Logger | undefined;

  constructor(private readonly windowMs = WINDOW_MS, private readonly maxPerWindow = MAX_PER_WINDOW) {}

  /** `level`: one of those events.ts registers for `event` (the callers' own types check it). */
  event(log: Logger, event: EventName, fields: LogFields, level: Level): void {
    this.log = log;
    if (ALWAYS.has(event)) return log.event(event, fields, level as never);
    let c = this.counts.get(event);
    if (!c) {
      c = { written: 0, suppressed: 0, level };
      this.counts.set(event, c);
    }
    if (c.written < this.maxPerWindow) {
      c.written++;
      log.event(event, fields, level as never);
    } else {
      c.suppressed++;
    }
    this.timer ??= setTimeout(() => this.flush(), this.windowMs).unref();
  }

  /** Reports what was held back and starts a new window. */
  flush(): void {
    this.timer = undefined;
    for (const [event, c] of this.counts) {
      if (c.suppressed > 0) this.log?.event('suppressed', { of: event, count: c.suppressed, seconds: Math.round(this.windowMs / 1000) }, c.level as never);
    }
    this.counts.clear();
  }
}
