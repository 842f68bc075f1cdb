/**
 * Counting in the process that does the work (a worker, or the master for the 451s it answers
 * itself): the counters of one beat, handed to the master as a delta.
 *
 * Owns: the StatsDelta shape that crosses the IPC channel (on the once-a-second `beat`) and
 * the recorder that fills it. Counting a message is a few increments of numbers in plain
 * objects that already exist after the first message of their kind in a beat: no per-message
 * allocation beyond the log fields that exist anyway. `take()` hands the delta over and starts
 * a fresh one (a worker with clamd servers reports their state on every beat), so the master sums what the workers report and nothing counted survives only in
 * a worker: a worker killed (SIGKILL) loses at most the counts of its last beat, about a second;
 * one that exits (retire, shutdown, a fault) sends its last delta first.
 * Inputs: the message's log fields and its verdict; engine results and times; clamd servers'
 * health as the engines report it. Outputs: deltas. Fails with nothing.
 */
import type { EngineResult, ServerHealth } from '../engines/engine.js';
import type { Verdict } from '../policy/verdict.js';
import type { LogFields } from './log.js';
import { CODE_SERIES_MAX, MESSAGE_BUCKETS, NAME_SERIES_MAX, OTHER, SCAN_BUCKETS } from './stats-metrics.js';

/** A histogram's counts per bucket (not cumulative; the last one is +Inf) and the sum of values. */
export interface Hist {
  b: number[];
  sum: number;
}

export interface EngineDelta {
  scans: number;
  detections: number;
  errors: Record<string, number>;
  time: Hist;
}

/**
 * One clamd server as the reporting worker sees it now (each worker's pool has its own view);
 * `failures`: failed attempts since that worker's previous report.
 */
export interface ServerReport {
  server: string;
  up: boolean;
  failures: number;
  lastError: string;
}

export interface StatsDelta {
  /** verdict → action → reply code → messages */
  messages: Record<string, Record<string, Record<string, number>>>;
  names: Record<string, number>;
  tempfails: Record<string, number>;
  limits: Record<string, number>;
  encrypted: Record<string, number>;
  duration: Hist;
  engines: Record<string, EngineDelta>;
  servers?: ServerReport[];
  /** Verdict-cache lookups since the last delta (only with a cache). */
  cache?: { hit: number; miss: number; skipped: number };
}

/** The verdict cache's own counters (scan/verdict-cache.ts), totals since the runtime started. */
export interface CacheSource {
  readonly hits: number;
  readonly misses: number;
  readonly skipped: number;
}

/** Records without a prototype: a key such as "__proto__" (a virus name) is a plain key. */
function table<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

export function emptyHist(buckets: readonly number[]): Hist {
  return { b: new Array<number>(buckets.length + 1).fill(0), sum: 0 };
}

export function observe(h: Hist, buckets: readonly number[], v: number): void {
  let i = 0;
  while (i < buckets.length && v > buckets[i]!) i++;
  h.b[i]!++;
  h.sum += v;
}

function emptyDelta(): StatsDelta {
  return { messages: table(), names: table(), tempfails: table(), limits: table(), encrypted: table(), duration: emptyHist(MESSAGE_BUCKETS), engines: table() };
}

/** Adds one to `t[key]`, keeping at most `max` keys: beyond them the count goes to "other". */
function bump(t: Record<string, number>, key: string, max: number, n = 1): void {
  const v = t[key];
  if (v !== undefined) t[key] = v + n;
  else if (Object.keys(t).length < max) t[key] = n;
  else t[OTHER] = (t[OTHER] ?? 0) + n;
}

/** A source of server health (a clamd engine); polled once per beat. */
export type HealthSource = () => readonly ServerHealth[];

export class StatsRecorder {
  private d = emptyDelta();
  private dirty = false;
  private readonly healthSources: HealthSource[] = [];
  /** Per server, the failures at the last report (sources count them since their own start). */
  private readonly failuresSeen = new Map<string, number>();
  private cacheSource: (() => CacheSource) | undefined;
  private cacheSeen: CacheSource = { hits: 0, misses: 0, skipped: 0 };

  /** One answered message, from its log fields (verdict, action, reply, code, ms) and verdict. */
  message(fields: LogFields, verdict?: Verdict): void {
    this.dirty = true;
    const v = typeof fields['verdict'] === 'string' ? fields['verdict'] : 'unknown';
    const a = typeof fields['action'] === 'string' ? fields['action'] : 'unknown';
    const reply = typeof fields['reply'] === 'number' ? fields['reply'] : 0;
    const byAction = (this.d.messages[v] ??= table());
    const byReply = (byAction[a] ??= table());
    byReply[reply] = (byReply[reply] ?? 0) + 1;
    if (reply >= 400 && reply < 500) {
      const code = typeof fields['code'] === 'string' ? fields['code'] : v;
      bump(this.d.tempfails, code, CODE_SERIES_MAX);
    }
    if (verdict !== undefined) {
      switch (verdict.kind) {
        case 'infected':
          for (const name of verdict.names) bump(this.d.names, name, NAME_SERIES_MAX);
          break;
        case 'limit':
          bump(this.d.limits, verdict.code, CODE_SERIES_MAX);
          break;
        case 'encrypted':
          bump(this.d.encrypted, verdict.format, CODE_SERIES_MAX);
          break;
        default:
          break;
      }
    }
    const ms = typeof fields['ms'] === 'number' ? fields['ms'] : 0;
    observe(this.d.duration, MESSAGE_BUCKETS, ms / 1000);
  }

  /** One engine scan of one item and its time. */
  scan(engine: string, r: EngineResult, seconds: number): void {
    this.dirty = true;
    let e = this.d.engines[engine];
    if (e === undefined) {
      e = { scans: 0, detections: 0, errors: table(), time: emptyHist(SCAN_BUCKETS) };
      this.d.engines[engine] = e;
    }
    e.scans++;
    if (r.status === 'infected') e.detections++;
    else if (r.status === 'error') bump(e.errors, r.code, CODE_SERIES_MAX);
    observe(e.time, SCAN_BUCKETS, seconds);
  }

  watchHealth(source: HealthSource): void {
    this.healthSources.push(source);
  }

  watchCache(source: () => CacheSource): void {
    this.cacheSource = source;
  }

  /** The counts since the last take (undefined when nothing happened), and a fresh start. */
  take(): StatsDelta | undefined {
    const servers = this.servers();
    const cache = this.cache();
    if (!this.dirty && servers === undefined && cache === undefined) return undefined;
    const out = this.d;
    if (servers !== undefined) out.servers = servers;
    if (cache !== undefined) out.cache = cache;
    this.d = emptyDelta();
    this.dirty = false;
    return out;
  }

  /** The cache's lookups since the last take, when there were any. */
  private cache(): StatsDelta['cache'] {
    const c = this.cacheSource?.();
    if (c === undefined) return undefined;
    const d = { hit: c.hits - this.cacheSeen.hits, miss: c.misses - this.cacheSeen.misses, skipped: c.skipped - this.cacheSeen.skipped };
    this.cacheSeen = { hits: c.hits, misses: c.misses, skipped: c.skipped };
    return d.hit > 0 || d.miss > 0 || d.skipped > 0 ? d : undefined;
  }

  /** Every server of every source, on every beat: the master needs each worker's current view. */
  private servers(): ServerReport[] | undefined {
    let out: ServerReport[] | undefined;
    for (const source of this.healthSources) {
      for (const h of source()) {
        const total = h.failures ?? 0;
        const seen = this.failuresSeen.get(h.server) ?? 0;
        this.failuresSeen.set(h.server, total);
        (out ??= []).push({ server: h.server, up: h.up, failures: Math.max(0, total - seen), lastError: h.lastError ?? '' });
      }
    }
    return out;
  }
}
