/**
 * The runtime's engines, each counted: scans, detections, errors by code and time per item go
 * to the worker's StatsRecorder; a clamd engine's server health is polled once per beat.
 *
 * Owns: the wrapper. A scan's result passes through untouched (the wrapper only looks), and a
 * throwing engine still throws as before (scan-message.ts treats that as a fault of ours).
 * Inputs: a Runtime. Outputs: a Runtime whose engines count. Fails with nothing of its own.
 */
import { performance } from 'node:perf_hooks';
import type { Engine } from '../engines/engine.js';
import type { Runtime } from '../app/runtime.js';
import type { StatsRecorder } from '../ops/stats.js';

export function countedRuntime(rt: Runtime, stats: StatsRecorder): Runtime {
  const engines = rt.engines.map((e) => counted(e, stats));
  return { ...rt, engines, close: () => rt.close() };
}

function counted(e: Engine, stats: StatsRecorder): Engine {
  const health = e.health;
  if (health !== undefined) stats.watchHealth(() => health.call(e));
  return {
    label: e.label,
    async scan(item, signal) {
      const t0 = performance.now();
      const r = await e.scan(item, signal);
      stats.scan(e.label, r, (performance.now() - t0) / 1000);
      return r;
    },
    version: (signal) => e.version(signal),
    close: () => e.close(),
    ...(health !== undefined ? { health: () => health.call(e) } : {}),
  };
}
