/**
 * `avfilter_sig stats`: what the daemon writes into avfilter_sig's pipe when asked (SIGWINCH,
 * see stats-request in master.ts): uptime, reloads, workers and generation, read from the master's
 * own state, then the counters the master sums from its workers (ops/master-stats.ts).
 *
 * Owns: the lines (`key: value`, one per line; the pipe protocol adds the status line).
 * Inputs: the source the master registers. Outputs: lines. Fails with nothing.
 */
import { STATUS_OK } from '../ops/sig-pipe.js';
import { openReport, reloadCounts, type ReloadHost } from './reload.js';

/**
 * The signal that asks for the report: one whose default action is to do nothing, so that a
 * daemon too old to answer it (or any process it reaches by mistake) is not killed.
 */
export const STATS_SIGNAL = 'SIGWINCH';

export interface StatsSource {
  readonly startedAt: number;
  scanningWorkers(): number;
  generation(): number;
  /** The reason every message is answered 451, or undefined when the daemon serves. */
  degraded(): string | undefined;
  /** The counters (ops/master-stats.ts): messages, verdicts, engines, clamd servers... */
  counters?(): string[];
}

let source: StatsSource | undefined;

/** The master says where its numbers are (once, at start). */
export function provideStats(s: StatsSource): void {
  source = s;
}

export function statsReport(): string[] {
  const s = source;
  if (!s) return ['stats: not available yet (the daemon is starting)'];
  const problem = s.degraded();
  return [
    `pid: ${process.pid}`,
    `uptime_seconds: ${Math.round((Date.now() - s.startedAt) / 1000)}`,
    `service: ${problem === undefined ? 'scanning' : `degraded (every message 451: ${problem})`}`,
    `workers: ${s.scanningWorkers()}`,
    `generation: ${s.generation()}`,
    `reloads_done: ${reloadCounts.done}`,
    `reloads_failed: ${reloadCounts.failed}`,
    ...(reloadCounts.lastAt > 0 ? [`last_reload: ${new Date(reloadCounts.lastAt).toISOString()}`] : []),
    ...(s.counters?.() ?? []),
  ];
}

/** Writes the report into avfilter_sig's pipe; no pipe (a stray SIGWINCH, a terminal resized) writes nothing. */
export async function answerStats(host: ReloadHost): Promise<void> {
  const pipe = openReport(host);
  if (!pipe) {
    host.log.event('stats-request', { reason: 'no reader on the pipe: nothing written' }, 'debug');
    return;
  }
  for (const line of statsReport()) pipe.line(line);
  await pipe.end(STATUS_OK);
}
