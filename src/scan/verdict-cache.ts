/**
 * The verdict cache: an engine's clean or infected answer for bytes it has seen, so that a wave of
 * one attachment (the same file to hundreds of recipients, or through several Courier hosts) is
 * scanned once.
 *
 * Owns: the key (engine label, the engine's signature version, SHA-256 of the bytes), the value
 * format and its check, and the wrapper that puts a cache in front of an engine.
 * Only "clean" and "infected" are kept, never an error; an engine that cannot tell its signature
 * version (signatureVersion() undefined) is never cached, and a new version is a new key, so a
 * signature update invalidates every old verdict at once. The store may be memory (an LRU bounded
 * by entries, with the TTL) or Redis (redis-store.ts, shared between hosts). A store that fails,
 * is slow (past `lookupMs`) or answers something that is not a value we wrote is a miss: the item
 * is scanned, and nothing is ever taken from it on doubt.
 * The raw message is never cached: no two are alike (each carries its own trace headers), so
 * hashing it could never pay, and what an engine makes of it depends on how the engine is set to
 * present it (clamd's raw_message), which the key does not hold.
 * Written by hand: the LRU is a Map in insertion order, smaller than a dependency.
 */
import { createHash } from 'node:crypto';
import type { Engine, EngineResult, ScanItem, ScanSource } from '../engines/engine.js';

export interface VerdictStore {
  /** The stored value, or undefined (a miss, a failure). Must not reject. */
  get(key: string): Promise<string | undefined>;
  /** Stores with a time to live; failures are swallowed. */
  set(key: string, value: string, ttlSeconds: number): void;
  close(): Promise<void>;
}

export interface CacheCounters {
  hits: number;
  misses: number;
  /** Lookups that failed, timed out or found a value we did not write. */
  skipped: number;
}

const KEY_PREFIX = 'avfilter:v1:';
/** Longest value accepted from a store (names of several findings). */
const MAX_VALUE = 4096;
const NAME = /^[\x21-\x7e][\x20-\x7e]{0,499}$/;

export function cacheKey(engine: string, signatures: string, digest: string): string {
  return `${KEY_PREFIX}${engine}:${createHash('sha256').update(signatures).digest('hex').slice(0, 16)}:${digest}`;
}

export function encodeVerdict(r: EngineResult): string | undefined {
  if (r.status === 'clean') return 'C';
  if (r.status === 'infected' && r.names.length > 0 && r.names.every((n) => NAME.test(n))) return `I:${r.names.join('\t')}`;
  return undefined;
}

/** A stored value back into a result; undefined for anything we would not have written. */
export function decodeVerdict(v: unknown): EngineResult | undefined {
  if (typeof v !== 'string' || v.length > MAX_VALUE) return undefined;
  if (v === 'C') return { status: 'clean' };
  if (!v.startsWith('I:')) return undefined;
  const names = v.slice(2).split('\t');
  if (names.length === 0 || !names.every((n) => NAME.test(n))) return undefined;
  return { status: 'infected', names };
}

/** SHA-256 of an item's bytes, once per source whatever the number of engines. */
const digests = new WeakMap<ScanSource, Promise<string>>();

export function digestOf(source: ScanSource): Promise<string> {
  let d = digests.get(source);
  if (d === undefined) {
    d = source.bytes !== undefined
      ? Promise.resolve(createHash('sha256').update(source.bytes).digest('hex'))
      : new Promise<string>((resolve, reject) => {
        const h = createHash('sha256');
        source.stream().on('data', (c: Buffer) => h.update(c)).on('error', reject).on('end', () => resolve(h.digest('hex')));
      });
    digests.set(source, d);
  }
  return d;
}

/** An LRU of at most `maxEntries`, each kept `ttlSeconds` at most. */
export class MemoryStore implements VerdictStore {
  private readonly map = new Map<string, { value: string; until: number }>();

  constructor(private readonly maxEntries: number) {}

  async get(key: string): Promise<string | undefined> {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    this.map.delete(key);
    if (e.until < Date.now()) return undefined;
    this.map.set(key, e); // most recently used last
    return e.value;
  }

  set(key: string, value: string, ttlSeconds: number): void {
    this.map.delete(key);
    this.map.set(key, { value, until: Date.now() + ttlSeconds * 1000 });
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value!);
  }

  get size(): number {
    return this.map.size;
  }

  async close(): Promise<void> {
    this.map.clear();
  }
}

export interface CacheOptions {
  readonly store: VerdictStore;
  readonly ttlSeconds: number;
  /** A lookup slower than this is a miss (the store must never hold up a message). */
  readonly lookupMs: number;
  readonly counters?: CacheCounters | undefined;
}

function timeout(ms: number): { promise: Promise<undefined>; cancel(): void } {
  let t: NodeJS.Timeout;
  const promise = new Promise<undefined>((resolve) => { t = setTimeout(() => resolve(undefined), ms); });
  return { promise, cancel: () => clearTimeout(t) };
}

/** `engine` with the cache in front of it; the engine's own methods otherwise unchanged. */
export function cachedEngine(engine: Engine, opts: CacheOptions): Engine {
  const counters = opts.counters ?? { hits: 0, misses: 0, skipped: 0 };
  const inFlight = new Map<string, Promise<EngineResult>>();
  const lookup = async (key: string): Promise<EngineResult | undefined> => {
    const t = timeout(opts.lookupMs);
    try {
      const raw = await Promise.race([opts.store.get(key).catch(() => undefined), t.promise]);
      if (raw === undefined) return undefined;
      const r = decodeVerdict(raw);
      if (r === undefined) counters.skipped++;
      return r;
    } finally {
      t.cancel();
    }
  };
  return {
    ...engine,
    label: engine.label,
    scan: async (item: ScanItem, signal: AbortSignal): Promise<EngineResult> => {
      const signatures = item.kind === 'raw' ? undefined : engine.signatureVersion?.();
      if (signatures === undefined) return engine.scan(item, signal);
      let key: string;
      try {
        key = cacheKey(engine.label, signatures, await digestOf(item.source));
      } catch {
        return engine.scan(item, signal); // the bytes could not be read here: let the engine say so
      }
      const hit = await lookup(key);
      if (hit !== undefined) {
        counters.hits++;
        return hit;
      }
      // The same bytes already being scanned here (a wave arriving at once): wait for that answer;
      // should it be an error, scan for ourselves.
      const running = inFlight.get(key);
      if (running !== undefined) {
        const shared = await running;
        if (shared.status !== 'error') {
          counters.hits++;
          return shared;
        }
      }
      counters.misses++;
      const scanning = engine.scan(item, signal);
      inFlight.set(key, scanning);
      let r: EngineResult;
      try {
        r = await scanning;
      } finally {
        if (inFlight.get(key) === scanning) inFlight.delete(key);
      }
      // stored only if the signatures did not change while it scanned
      const value = encodeVerdict(r);
      if (value !== undefined && engine.signatureVersion?.() === signatures) {
        try {
          opts.store.set(key, value, opts.ttlSeconds);
        } catch {
          // a store that breaks its promise not to throw still costs nothing but the entry
        }
      }
      return r;
    },
    version: (signal) => engine.version(signal),
    close: () => engine.close(),
  };
}
