/**
 * The runtime as a worker scans with: every engine result and its time go to the worker's
 * StatsRecorder (scans, detections, errors by code, time per item), and each engine that
 * reports server health (clamd) is polled on the heartbeat.
 *
 * Owns: joining a Runtime to a StatsRecorder. The results are observed where the scan loop
 * already awaits them (scan-message.ts), so counting adds no promise or wrapper per item, and
 * it only looks: a result passes on untouched. Inputs: a Runtime. Outputs: a Runtime that
 * counts. Fails with nothing.
 */
import type { Runtime } from '../app/runtime.js';
import type { StatsRecorder } from '../ops/stats.js';

export function countedRuntime(rt: Runtime, stats: StatsRecorder): Runtime {
  for (const e of rt.engines) {
    const health = e.health;
    if (health !== undefined) stats.watchHealth(() => health.call(e));
  }
  return { ...rt, observe: (engine, r, seconds) => stats.scan(engine, r, seconds), close: () => rt.close() };
}
