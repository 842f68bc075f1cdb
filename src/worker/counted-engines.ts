/**
 * The runtime as a worker scans with: every engine result and its time go to the worker's
 * StatsRecorder (scans, detections, errors by code, time per item); the engines' server health
 * (clamd) and the verdict cache's counters are read on the heartbeat.
 *
 * Owns: joining a Runtime to a StatsRecorder. The results are observed where the scan loop
 * already awaits them (scan-message.ts), so counting adds no promise or wrapper per item, and
 * it only looks: a result passes on untouched. Inputs: a Runtime. Outputs: a Runtime that
 * counts. Fails with nothing.
 */
import type { Runtime } from '../app/runtime.js';
import type { StatsRecorder } from '../ops/stats.js';

export function countedRuntime(rt: Runtime, stats: StatsRecorder): Runtime {
  const health = rt.health;
  if (health !== undefined) stats.watchHealth(() => health.call(rt));
  const cache = rt.cache;
  if (cache !== undefined) stats.watchCache(() => cache);
  return { ...rt, observe: (engine, r, seconds) => stats.scan(engine, r, seconds), close: () => rt.close() };
}
