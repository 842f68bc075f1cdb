/**
 * The master's counters as text: Prometheus' text exposition format (version 0.0.4) for GET
 * /metrics, and plain lines for `avfilter_sig stats` and the log at stop.
 *
 * Written by hand rather than with prom-client: the numbers are sums the master merges from the
 * workers' deltas (histogram buckets included), which prom-client's objects cannot take in
 * (its histograms only observe() single values); its registry would be one more copy of the
 * same totals plus a custom collector. The format is a few lines: HELP/TYPE, samples, label
 * values escaped (\, ", newline).
 * Owns: both formats. Inputs: a StatsStore and the master's gauges. Outputs: text. Fails with nothing.
 */
import { quote } from './log.js';
import { MESSAGE_BUCKETS, METRICS, SCAN_BUCKETS, type MetricSpec } from './stats-metrics.js';
import type { Hist } from './stats.js';
import type { StatsStore } from './stats-store.js';

/** What the master knows now (not counted: read at scrape time). */
export interface Gauges {
  readonly workers: number;
  readonly inFlight: number;
  readonly degraded: boolean;
  /** Client IPs blocked now (action.block_ip_seconds); absent: none. */
  readonly blockedIps?: number | undefined;
}

type Labels = readonly (readonly [string, string])[];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function sample(out: string[], name: string, labels: Labels, value: number): void {
  const l = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
  out.push(`${name}${l} ${Number.isFinite(value) ? String(value) : '0'}`);
}

function histogram(out: string[], name: string, labels: Labels, bounds: readonly number[], h: Hist): void {
  let cum = 0;
  for (let i = 0; i < bounds.length; i++) {
    cum += h.b[i]!;
    sample(out, `${name}_bucket`, [...labels, ['le', String(bounds[i])]], cum);
  }
  cum += h.b[bounds.length]!;
  sample(out, `${name}_bucket`, [...labels, ['le', '+Inf']], cum);
  sample(out, `${name}_sum`, labels, h.sum);
  sample(out, `${name}_count`, labels, cum);
}

/** The samples of one metric, from the totals since start. */
function samples(out: string[], m: MetricSpec, s: StatsStore, g: Gauges): void {
  const t = s.sinceStart;
  switch (m.name) {
    case 'avfilter_messages_total':
      for (const [k, n] of t.messages.entries()) {
        const [verdict = k, action = '', reply = ''] = k.split('\0');
        sample(out, m.name, [['verdict', verdict], ['action', action], ['reply', reply]], n);
      }
      return;
    case 'avfilter_infected_total':
      for (const [k, n] of t.names.entries()) sample(out, m.name, [['name', k]], n);
      return;
    case 'avfilter_tempfails_total':
      for (const [k, n] of t.tempfails.entries()) sample(out, m.name, [['code', k]], n);
      return;
    case 'avfilter_limits_total':
      for (const [k, n] of t.limits.entries()) sample(out, m.name, [['kind', k]], n);
      return;
    case 'avfilter_encrypted_total':
      for (const [k, n] of t.encrypted.entries()) sample(out, m.name, [['format', k]], n);
      return;
    case 'avfilter_message_duration_seconds':
      histogram(out, m.name, [], MESSAGE_BUCKETS, t.duration);
      return;
    case 'avfilter_engine_scans_total':
      for (const [e, v] of t.engines) sample(out, m.name, [['engine', e]], v.scans);
      return;
    case 'avfilter_engine_detections_total':
      for (const [e, v] of t.engines) sample(out, m.name, [['engine', e]], v.detections);
      return;
    case 'avfilter_engine_errors_total':
      for (const [e, v] of t.engines) for (const [k, n] of v.errors.entries()) sample(out, m.name, [['engine', e], ['code', k]], n);
      return;
    case 'avfilter_engine_scan_duration_seconds':
      for (const [e, v] of t.engines) histogram(out, m.name, [['engine', e]], SCAN_BUCKETS, v.time);
      return;
    case 'avfilter_cache_lookups_total':
      if (t.cache !== undefined) {
        sample(out, m.name, [['result', 'hit']], t.cache.hit);
        sample(out, m.name, [['result', 'miss']], t.cache.miss);
        sample(out, m.name, [['result', 'skipped']], t.cache.skipped);
      }
      return;
    case 'avfilter_clamd_server_up':
      for (const [k, v] of s.servers) {
        const up = v.up();
        if (up !== undefined) sample(out, m.name, [['server', k]], up ? 1 : 0);
      }
      return;
    case 'avfilter_clamd_server_failures_total':
      for (const k of s.servers.keys()) sample(out, m.name, [['server', k]], t.serverFailures.get(k));
      return;
    case 'avfilter_worker_restarts_total':
      sample(out, m.name, [], t.restarts);
      return;
    case 'avfilter_reloads_total':
      sample(out, m.name, [['result', 'ok']], t.reloadsOk);
      sample(out, m.name, [['result', 'failed']], t.reloadsFailed);
      return;
    case 'avfilter_workers':
      sample(out, m.name, [], g.workers);
      return;
    case 'avfilter_requests_in_flight':
      sample(out, m.name, [], g.inFlight);
      return;
    case 'avfilter_degraded':
      sample(out, m.name, [], g.degraded ? 1 : 0);
      return;
    case 'avfilter_blocked_ips':
      sample(out, m.name, [], g.blockedIps ?? 0);
      return;
    case 'avfilter_start_time_seconds':
      sample(out, m.name, [], s.startedAt / 1000);
      return;
    case 'avfilter_last_reload_time_seconds':
      sample(out, m.name, [], s.lastReloadAt / 1000);
      return;
  }
}

/** The Prometheus text of every metric in METRICS (HELP and TYPE even when it has no sample yet). */
export function renderPrometheus(s: StatsStore, g: Gauges): string {
  const out: string[] = [];
  for (const m of METRICS) {
    out.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
    samples(out, m, s, g);
  }
  return out.join('\n') + '\n';
}

// ---- plain lines

/** A histogram in a few words: count, mean and the bucket bound 95% of values are under. */
function histText(bounds: readonly number[], h: Hist): string {
  const n = h.b.reduce((a, b) => a + b, 0);
  if (n === 0) return 'none';
  let cum = 0;
  let p95 = '> ' + ms(bounds[bounds.length - 1]!);
  for (let i = 0; i < bounds.length; i++) {
    cum += h.b[i]!;
    if (cum >= 0.95 * n) {
      p95 = `<= ${ms(bounds[i]!)}`;
      break;
    }
  }
  return `${n}, mean ${ms(h.sum / n)}, 95% ${p95}`;
}

function ms(seconds: number): string {
  return `${Math.round(seconds * 10000) / 10} ms`;
}

function iso(t: number): string {
  return new Date(t).toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * The counters as plain lines for `avfilter_sig stats`: one counter a line, `WHAT: N` since
 * start, then `(N since reload)`. Label values pass through the log's quoting, so a name with
 * controls or spaces cannot forge or break a line.
 */
export function renderStatsLines(s: StatsStore, g: Gauges, now = Date.now()): string[] {
  const a = s.sinceStart;
  const r = s.sinceReload;
  const out: string[] = [
    `avfilter stats at ${iso(now)}: started ${iso(s.startedAt)}, last reload ${s.lastReloadAt === s.startedAt ? 'none' : iso(s.lastReloadAt)}`,
    `workers: ${g.workers}, requests in flight: ${g.inFlight}${g.blockedIps ? `, client IPs blocked: ${g.blockedIps}` : ''}${g.degraded ? ', DEGRADED: every message is answered 451' : ''}`,
    'counts: since start (since the last reload)',
  ];
  const line = (what: string, n: number, m: number): void => {
    out.push(`${what}: ${n} (${m})`);
  };
  let total = 0;
  let totalR = 0;
  for (const [, n] of a.messages.entries()) total += n;
  for (const [, n] of r.messages.entries()) totalR += n;
  line('messages', total, totalR);
  for (const [k, n] of a.messages.entries()) {
    const [verdict = k, action = '', reply = ''] = k.split('\0');
    line(`messages verdict=${quote(verdict)} action=${quote(action)} reply=${quote(reply)}`, n, r.messages.get(k));
  }
  for (const [k, n] of a.names.entries()) line(`infected name=${quote(k)}`, n, r.names.get(k));
  for (const [k, n] of a.tempfails.entries()) line(`tempfails code=${quote(k)}`, n, r.tempfails.get(k));
  for (const [k, n] of a.limits.entries()) line(`limits kind=${quote(k)}`, n, r.limits.get(k));
  for (const [k, n] of a.encrypted.entries()) line(`encrypted format=${quote(k)}`, n, r.encrypted.get(k));
  out.push(`message time: ${histText(MESSAGE_BUCKETS, a.duration)} (${histText(MESSAGE_BUCKETS, r.duration)})`);
  for (const [e, v] of a.engines) {
    const vr = r.engines.get(e);
    line(`engine ${quote(e)} scans`, v.scans, vr?.scans ?? 0);
    line(`engine ${quote(e)} detections`, v.detections, vr?.detections ?? 0);
    for (const [k, n] of v.errors.entries()) line(`engine ${quote(e)} errors code=${quote(k)}`, n, vr?.errors.get(k) ?? 0);
    out.push(`engine ${quote(e)} scan time: ${histText(SCAN_BUCKETS, v.time)}${vr ? ` (${histText(SCAN_BUCKETS, vr.time)})` : ''}`);
  }
  if (a.cache !== undefined) {
    const rc = r.cache ?? { hit: 0, miss: 0, skipped: 0 };
    line('cache hits', a.cache.hit, rc.hit);
    line('cache misses', a.cache.miss, rc.miss);
    line('cache lookups skipped', a.cache.skipped, rc.skipped);
  }
  for (const [k, v] of s.servers) {
    const last = v.lastErrorAt > 0 ? `last error seen ${iso(v.lastErrorAt)}: ${quote(v.lastError)}` : 'no error';
    const up = v.up();
    out.push(`clamd server ${quote(k)}: ${up === undefined ? 'no recent report' : up ? 'up' : 'DOWN'}, failures ${a.serverFailures.get(k)} (${r.serverFailures.get(k)}), ${last}`);
  }
  line('worker restarts', a.restarts, r.restarts);
  line('reloads ok', a.reloadsOk, r.reloadsOk);
  line('reloads failed', a.reloadsFailed, r.reloadsFailed);
  return out;
}

