/**
 * The master's side of the stats, in one object master.ts holds: the sums (StatsStore), the
 * master's own counting (the 451s it answers itself), the metrics endpoint, and the plain-text
 * report for `avfilter_sig stats`.
 *
 * Owns: joining those. Inputs: the config's `metrics` key and clamd servers (start, reloads),
 * the pool's gauges. Outputs: report lines, Prometheus text over HTTP. Never throws.
 */
import type { Config } from '../config/load.js';
import { formatServer, parseServer } from '../config/address.js';
import type { Logger, LogFields } from './log.js';
import { MetricsServer } from './metrics-server.js';
import { renderPrometheus, renderStatsLines, type Gauges } from './stats-render.js';
import { StatsStore } from './stats-store.js';
import { StatsRecorder } from './stats.js';

export class MasterStats {
  readonly store = new StatsStore();
  private readonly own = new StatsRecorder();
  readonly metrics: MetricsServer;

  constructor(log: Logger, private readonly gauges: () => Gauges) {
    this.metrics = new MetricsServer(log, () => this.prometheus());
  }

  /** A message the master answered itself (no worker could). */
  message(fields: LogFields): void {
    this.own.message(fields);
    this.store.add(this.own.take());
  }

  /** The endpoint as the config says (start, and every reload that loads). */
  configure(cfg: Config | undefined): Promise<void> {
    return this.metrics.configure(cfg?.metrics ?? '');
  }

  /** A reload's outcome; one that loaded rebinds the endpoint when `metrics` changed. */
  async reloaded(ok: boolean, cfg?: Config): Promise<void> {
    this.store.reloaded(ok, cfg !== undefined ? clamdServers(cfg) : undefined);
    if (ok && cfg !== undefined) await this.configure(cfg);
  }

  prometheus(): string {
    return renderPrometheus(this.store, this.gauges());
  }

  /** The counters as plain lines (avfilter_sig stats, the log at stop). */
  report(): string[] {
    return renderStatsLines(this.store, this.gauges());
  }

  close(): Promise<void> {
    return this.metrics.close();
  }
}

function clamdServers(cfg: Config): string[] {
  return cfg.engine.flatMap((e) => (e.type === 'clamd' ? e.servers.map((s) => {
    try {
      return formatServer(parseServer(s));
    } catch {
      return s;
    }
  }) : []));
}
