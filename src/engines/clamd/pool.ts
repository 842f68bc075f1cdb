/**
 * Which clamd server scans an item, and how many scans each server gets: the server pool.
 *
 * Owns: per server, the scans in flight from this process (at most `maxScans`: the process's
 * share of max_scans_per_server), whether it is up, its background probe, and the size above
 * which it is known to refuse items. A scan goes to the up server with the fewest scans in
 * flight (ties: configuration order); when every up server is at its limit the scan waits in
 * order for a slot, within its deadline. A server that fails a transfer without a verdict
 * (connect refused or timed out, reset, no or garbled reply, scan timeout) is marked down at
 * once: no further scan is sent to it until a background `zPING` gets `PONG` (1 s, doubling to
 * 30 s), so a hung clamd costs the scans already on it one timeout each, not every message one. A
 * scan timeout on a server that answered other scans while this one waited is slowness, not a
 * hang: that item is retried elsewhere, the server stays up.
 * Such a scan is sent once more to another up server, never after a verdict (clean, infected or
 * clamd's own error reply). When no server is up the answer is an error at once (the message gets
 * 451), without waiting for a timeout.
 * An item refused as larger than the server's StreamMaxLength teaches the pool that no item of
 * that size or more is to be sent to that server for the next 10 minutes, or until it has been down
 * and back (a restarted clamd may have a new limit): such items are the size-limit outcome at once
 * (action.limit decides), without sending.
 * Going down and coming back are reported through `onEvent` (logged at warning severity).
 *
 * Written here rather than taken from a library: the rules (what is a failure without a verdict,
 * when a retry is allowed, what a size refusal teaches) are clamd's and ours.
 * Inputs: addresses, the limit, a probe and an attempt function. Outputs: the attempt's result,
 * or an error result (ECONNECT when no server is up, EABORTED when the deadline passed waiting).
 */
import { EngineErrorCode, type EngineResult } from '../engine.js';
import { formatServer, type ClamdAddress } from './address.js';

/** Failures that say nothing about the item: the server (or the way to it) failed. */
const NO_VERDICT: ReadonlySet<string> = new Set([
  EngineErrorCode.CONNECT, EngineErrorCode.CONNECT_TIMEOUT, EngineErrorCode.SCAN_TIMEOUT, EngineErrorCode.PROTOCOL,
]);
const PROBE_FIRST_MS = 1_000;
/** How long a size refusal is remembered (clamd's StreamMaxLength changes only with its config). */
const REFUSAL_MEMORY_MS = 10 * 60_000;
const PROBE_MAX_MS = 30_000;

export type PoolEvent =
  | { readonly event: 'clamd-down'; readonly server: string; readonly code: string; readonly reason: string }
  | { readonly event: 'clamd-up'; readonly server: string; readonly downMs: number };

export interface PoolOptions {
  readonly servers: readonly ClamdAddress[];
  /** Scans in flight to one server from this process. */
  readonly maxScans: number;
  /** PING: true on PONG. Must resolve (never reject) within its own time bound. */
  readonly probe: (addr: ClamdAddress) => Promise<boolean>;
  readonly onEvent?: ((e: PoolEvent) => void) | undefined;
}

export interface ServerHealth {
  readonly server: string;
  readonly up: boolean;
  readonly inFlight: number;
  /** Attempts that failed without a verdict since the pool started (the stats). */
  readonly failures: number;
  /** Items of this many bytes or more are not sent to it (it refused one that size). */
  readonly refusesFrom?: number | undefined;
  readonly lastError?: string | undefined;
}

interface Server {
  readonly addr: ClamdAddress;
  readonly name: string;
  inFlight: number;
  up: boolean;
  downSince: number;
  probeDelayMs: number;
  probeTimer: NodeJS.Timeout | undefined;
  refusesFrom: number;
  refusesUntil: number;
  lastError: string | undefined;
  /** When it last gave a verdict (clean, infected, its own error reply). */
  lastAnswer: number;
  failures: number;
}

interface Waiter {
  readonly exclude: Server | undefined;
  readonly size: number;
  readonly wake: () => void;
}

export function isNoVerdict(r: EngineResult): boolean {
  return r.status === 'error' && NO_VERDICT.has(r.code);
}

export class ClamdPool {
  private readonly servers: Server[];
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(private readonly opts: PoolOptions) {
    if (opts.servers.length === 0) throw new RangeError('ClamdPool needs at least one server');
    if (!Number.isInteger(opts.maxScans) || opts.maxScans < 1) throw new RangeError(`ClamdPool: maxScans must be a positive integer, got ${opts.maxScans}`);
    this.servers = opts.servers.map((addr) => ({
      addr, name: formatServer(addr), inFlight: 0, up: true, downSince: 0, probeDelayMs: PROBE_FIRST_MS,
      probeTimer: undefined, refusesFrom: Number.POSITIVE_INFINITY, refusesUntil: 0, lastError: undefined, lastAnswer: 0, failures: 0,
    }));
  }

  health(): ServerHealth[] {
    return this.servers.map((s) => ({
      server: s.name, up: s.up, inFlight: s.inFlight, failures: s.failures,
      ...(Number.isFinite(s.refusesFrom) ? { refusesFrom: s.refusesFrom } : {}),
      ...(s.lastError !== undefined ? { lastError: s.lastError } : {}),
    }));
  }

  /**
   * Runs `attempt` for an item of `size` bytes on a chosen server; once more on another server
   * when the first failed without a verdict.
   */
  async run(size: number, signal: AbortSignal, attempt: (addr: ClamdAddress) => Promise<EngineResult>): Promise<EngineResult> {
    let first: Server | undefined;
    let firstFailure: EngineResult | undefined;
    for (let round = 0; round < 2; round++) {
      const picked = await this.acquire(size, signal, first);
      if (picked.kind === 'none') return firstFailure ?? picked.result;
      const s = picked.server;
      const started = performance.now();
      let r: EngineResult;
      try {
        r = await attempt(s.addr);
      } finally {
        this.release(s);
      }
      if (!isNoVerdict(r) && !(r.status === 'error' && r.code === EngineErrorCode.ABORTED)) s.lastAnswer = performance.now();
      if (r.status === 'error' && r.code === EngineErrorCode.SIZE_LIMIT && /clamd: INSTREAM size limit exceeded/.test(r.message)) {
        s.refusesFrom = Math.min(this.refusal(s), size);
        s.refusesUntil = Date.now() + REFUSAL_MEMORY_MS;
        return r;
      }
      if (!isNoVerdict(r) || signal.aborted) return r;
      // A scan timeout on a server that gave other verdicts meanwhile is a slow server (a big
      // item, a loaded machine), not a hung one: the item is retried, the server stays up.
      const slowNotHung = r.status === 'error' && r.code === EngineErrorCode.SCAN_TIMEOUT && s.lastAnswer > started;
      s.failures++;
      if (!slowNotHung) this.markDown(s, r);
      if (first !== undefined && firstFailure?.status === 'error' && r.status === 'error') {
        return { status: 'error', code: r.code, message: `no clamd server gave a verdict: ${firstFailure.message}; ${r.message}` };
      }
      first = s;
      firstFailure = r;
    }
    return firstFailure!;
  }

  close(): void {
    this.closed = true;
    for (const s of this.servers) clearTimeout(s.probeTimer);
    for (const w of this.waiters.splice(0)) w.wake();
  }

  private candidates(size: number, exclude: Server | undefined): { free: Server | undefined; anyUp: boolean; tooBig: Server | undefined } {
    let free: Server | undefined;
    let anyUp = false;
    let tooBig: Server | undefined;
    for (const s of this.servers) {
      if (!s.up || s === exclude) continue;
      if (size >= this.refusal(s)) {
        tooBig ??= s;
        continue;
      }
      anyUp = true;
      if (s.inFlight < this.opts.maxScans && (free === undefined || s.inFlight < free.inFlight)) free = s;
    }
    return { free, anyUp, tooBig };
  }

  /** The size from which this server refuses items, while it is remembered. */
  private refusal(s: Server): number {
    if (s.refusesUntil < Date.now()) s.refusesFrom = Number.POSITIVE_INFINITY;
    return s.refusesFrom;
  }

  private async acquire(size: number, signal: AbortSignal, exclude: Server | undefined): Promise<
    { kind: 'server'; server: Server } | { kind: 'none'; result: EngineResult }
  > {
    for (;;) {
      if (this.closed) return { kind: 'none', result: { status: 'error', code: EngineErrorCode.ABORTED, message: 'clamd engine closed' } };
      if (signal.aborted) return { kind: 'none', result: { status: 'error', code: EngineErrorCode.ABORTED, message: 'deadline passed waiting for a clamd slot' } };
      const c = this.candidates(size, exclude);
      if (c.free) {
        c.free.inFlight++;
        return { kind: 'server', server: c.free };
      }
      if (!c.anyUp) {
        if (c.tooBig) {
          return { kind: 'none', result: { status: 'error', code: EngineErrorCode.SIZE_LIMIT, message: `${c.tooBig.name}: ${size} bytes: it refused an item of ${c.tooBig.refusesFrom} bytes as over its StreamMaxLength; not sent` } };
        }
        const down = this.servers.filter((s) => s !== exclude).map((s) => `${s.name}: ${s.lastError ?? 'down'}`);
        return { kind: 'none', result: { status: 'error', code: EngineErrorCode.CONNECT, message: exclude && down.length === 0 ? 'no other clamd server to try' : `no clamd server is up (${down.join('; ')})` } };
      }
      await new Promise<void>((resolve) => {
        const onAbort = (): void => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve();
        };
        const w: Waiter = {
          exclude, size, wake: () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        this.waiters.push(w);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  private release(s: Server): void {
    s.inFlight--;
    this.wakeAll();
  }

  /** Every waiter looks again (a slot freed, a server came back or went down). */
  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w.wake();
  }

  private markDown(s: Server, r: EngineResult): void {
    const code = r.status === 'error' ? r.code : 'EUNKNOWN';
    s.lastError = r.status === 'error' ? `${r.code}: ${r.message}` : 'failed';
    if (!s.up) return;
    s.up = false;
    s.downSince = Date.now();
    s.probeDelayMs = PROBE_FIRST_MS;
    this.opts.onEvent?.({ event: 'clamd-down', server: s.name, code, reason: s.lastError });
    this.scheduleProbe(s);
    // waiters for this server may now have to go elsewhere, or give up
    this.wakeAll();
  }

  private scheduleProbe(s: Server): void {
    if (this.closed) return;
    s.probeTimer = setTimeout(() => {
      s.probeTimer = undefined;
      void this.opts.probe(s.addr).then((ok) => {
        if (this.closed) return;
        if (ok) {
          s.up = true;
          s.refusesFrom = Number.POSITIVE_INFINITY;
          this.opts.onEvent?.({ event: 'clamd-up', server: s.name, downMs: Date.now() - s.downSince });
          this.wakeAll();
        } else {
          s.probeDelayMs = Math.min(PROBE_MAX_MS, s.probeDelayMs * 2);
          this.scheduleProbe(s);
        }
      }, () => this.scheduleProbe(s));
    }, s.probeDelayMs);
    s.probeTimer.unref();
  }
}
