/**
 * The master's sums: what the workers report (StatsDelta, on their heartbeats) and what the
 * master counts itself (worker restarts, reloads, the 451s it answers), since start and since
 * the last successful reload.
 *
 * Owns: the totals and their bounds. A delta comes over the IPC channel from a process that
 * handles mail, so it is read defensively: only finite, non-negative numbers are added, and
 * every label set is bounded (stats-metrics.ts): virus names beyond NAME_SERIES_MAX evict the
 * least-counted name (its count moves to "other"), other codes beyond CODE_SERIES_MAX go to
 * "other" directly. Inputs: deltas, events. Outputs: Totals for the renderers.
 * Fails with nothing: a malformed delta adds what is well-formed in it and nothing else.
 */
import { CODE_SERIES_MAX, MESSAGE_BUCKETS, NAME_SERIES_MAX, OTHER, SCAN_BUCKETS } from './stats-metrics.js';
import type { Hist, StatsDelta } from './stats.js';

/** Counts by label value, at most `max` values; `evict`: the least counted makes room for a new one. */
export class BoundedCounts {
  private readonly m = new Map<string, { n: number; at: number }>();
  private seq = 0;
  other = 0;
  constructor(private readonly max: number, private readonly evict: boolean) {}

  add(key: string, n: number): void {
    const e = this.m.get(key);
    if (e !== undefined) {
      e.n += n;
      e.at = ++this.seq;
      return;
    }
    if (key === OTHER) {
      this.other += n;
      return;
    }
    if (this.m.size >= this.max) {
      if (!this.evict) {
        this.other += n;
        return;
      }
      // the least counted, the longest untouched among equals, gives its place up
      let victim: string | undefined;
      let low: { n: number; at: number } | undefined;
      for (const [k, v] of this.m) {
        if (low === undefined || v.n < low.n || (v.n === low.n && v.at < low.at)) {
          victim = k;
          low = v;
        }
      }
      this.m.delete(victim!);
      this.other += low!.n;
    }
    this.m.set(key, { n, at: ++this.seq });
  }

  /** [value, count] pairs, most counted first, "other" last when it has any. */
  entries(): [string, number][] {
    const out = [...this.m].map(([k, v]): [string, number] => [k, v.n]).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (this.other > 0) out.push([OTHER, this.other]);
    return out;
  }

  get(key: string): number {
    return key === OTHER ? this.other : this.m.get(key)?.n ?? 0;
  }
}

export interface EngineTotals {
  scans: number;
  detections: number;
  readonly errors: BoundedCounts;
  readonly time: Hist;
}

/** Everything counted over one period (since start, or since the last reload). */
export class Totals {
  /** "verdict\0action\0reply" → messages (our own value sets; bounded anyway) */
  readonly messages = new BoundedCounts(CODE_SERIES_MAX * 4, false);
  readonly names = new BoundedCounts(NAME_SERIES_MAX, true);
  readonly tempfails = new BoundedCounts(CODE_SERIES_MAX, false);
  readonly limits = new BoundedCounts(CODE_SERIES_MAX, false);
  readonly encrypted = new BoundedCounts(CODE_SERIES_MAX, false);
  readonly duration: Hist = { b: new Array<number>(MESSAGE_BUCKETS.length + 1).fill(0), sum: 0 };
  readonly engines = new Map<string, EngineTotals>();
  readonly serverFailures = new BoundedCounts(CODE_SERIES_MAX, false);
  /** Verdict-cache lookups: hit, miss, skipped (undefined until a worker with a cache reports). */
  cache: { hit: number; miss: number; skipped: number } | undefined;
  restarts = 0;
  reloadsOk = 0;
  reloadsFailed = 0;

  add(d: StatsDelta): void {
    for (const [v, byAction] of records(d.messages)) {
      for (const [a, byReply] of records(byAction)) {
        for (const [r, n] of counts(byReply)) this.messages.add(`${v}\0${a}\0${r}`, n);
      }
    }
    for (const [k, n] of counts(d.names)) this.names.add(k, n);
    for (const [k, n] of counts(d.tempfails)) this.tempfails.add(k, n);
    for (const [k, n] of counts(d.limits)) this.limits.add(k, n);
    for (const [k, n] of counts(d.encrypted)) this.encrypted.add(k, n);
    addHist(this.duration, d.duration);
    const c = d.cache as Partial<Record<'hit' | 'miss' | 'skipped', unknown>> | undefined;
    if (typeof c === 'object' && c !== null) {
      const t = (this.cache ??= { hit: 0, miss: 0, skipped: 0 });
      t.hit += num(c.hit);
      t.miss += num(c.miss);
      t.skipped += num(c.skipped);
    }
    let engines = 0;
    for (const [label, e] of records(d.engines)) {
      let t = this.engines.get(label);
      if (t === undefined) {
        // engine labels are our own ("clamd", "yara"); a bound anyway
        if (engines++ >= CODE_SERIES_MAX || this.engines.size >= CODE_SERIES_MAX) continue;
        t = { scans: 0, detections: 0, errors: new BoundedCounts(CODE_SERIES_MAX, false), time: { b: new Array<number>(SCAN_BUCKETS.length + 1).fill(0), sum: 0 } };
        this.engines.set(label, t);
      }
      t.scans += num((e as { scans?: unknown }).scans);
      t.detections += num((e as { detections?: unknown }).detections);
      for (const [k, n] of counts((e as { errors?: unknown }).errors)) t.errors.add(k, n);
      addHist(t.time, (e as { time?: unknown }).time);
    }
  }
}

/**
 * A worker whose last report on a server is older than this no longer counts for its state
 * (it exited, or its generation retired): workers report every second.
 */
export const SERVER_REPORT_STALE_MS = 10_000;

/**
 * A clamd server: each worker's current view of it (its own pool marks it down), and its last
 * error. It is up when every worker that reported on it lately sees it up: one worker that could
 * not reach it is worth a look.
 */
export class ServerState {
  readonly views = new Map<number, { up: boolean; at: number }>();
  lastError = '';
  lastErrorAt = 0;

  /** undefined: no worker reported on it lately. */
  up(now = Date.now()): boolean | undefined {
    let up: boolean | undefined;
    for (const [k, v] of this.views) {
      if (now - v.at > SERVER_REPORT_STALE_MS) this.views.delete(k);
      else up = (up ?? true) && v.up;
    }
    return up;
  }
}

export class StatsStore {
  readonly startedAt = Date.now();
  lastReloadAt = this.startedAt;
  sinceStart = new Totals();
  sinceReload = new Totals();
  readonly servers = new Map<string, ServerState>();

  /** A delta from a worker (`reporter`: its number; 0: the master's own recorder). Never throws. */
  add(d: StatsDelta | undefined, reporter = 0): void {
    if (d === undefined || typeof d !== 'object' || d === null) return;
    try {
      this.sinceStart.add(d);
      this.sinceReload.add(d);
      if (Array.isArray(d.servers)) for (const s of d.servers) this.server(s, reporter);
    } catch {
      // a malformed delta: what was added stays, the rest is ignored
    }
  }

  workerRestarted(): void {
    this.sinceStart.restarts++;
    this.sinceReload.restarts++;
  }

  /** A reload: ok starts a new "since reload" period; `servers` (ok only): the clamd servers the new config names. */
  reloaded(ok: boolean, servers?: readonly string[]): void {
    if (!ok) {
      this.sinceStart.reloadsFailed++;
      this.sinceReload.reloadsFailed++;
      return;
    }
    this.sinceStart.reloadsOk++;
    this.lastReloadAt = Date.now();
    this.sinceReload = new Totals();
    this.sinceReload.reloadsOk++;
    if (servers !== undefined) for (const k of [...this.servers.keys()]) if (!servers.includes(k)) this.servers.delete(k);
  }

  private server(s: unknown, reporter: number): void {
    const r = s as Partial<Record<'server' | 'up' | 'failures' | 'lastError', unknown>>;
    if (typeof r.server !== 'string') return;
    let state = this.servers.get(r.server);
    if (state === undefined) {
      if (this.servers.size >= CODE_SERIES_MAX) return;
      this.servers.set(r.server, (state = new ServerState()));
    }
    const now = Date.now();
    state.views.set(reporter, { up: r.up === true, at: now });
    const n = num(r.failures);
    if (n > 0) {
      this.sinceStart.serverFailures.add(r.server, n);
      this.sinceReload.serverFailures.add(r.server, n);
    }
    if (typeof r.lastError === 'string' && r.lastError !== '' && (n > 0 || state.lastError === '')) {
      state.lastError = r.lastError;
      state.lastErrorAt = now;
    }
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

function records(v: unknown): [string, unknown][] {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.entries(v) : [];
}

function counts(v: unknown): [string, number][] {
  return records(v).flatMap(([k, n]): [string, number][] => (num(n) > 0 ? [[k, num(n)]] : []));
}

function addHist(into: Hist, h: unknown): void {
  const b = (h as { b?: unknown } | null)?.b;
  if (!Array.isArray(b) || b.length !== into.b.length) return;
  for (let i = 0; i < b.length; i++) into.b[i]! += num(b[i]);
  into.sum += num((h as { sum?: unknown }).sum);
}
