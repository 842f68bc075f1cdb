/**
 * The worker processes: the master's only link to message work.
 *
 * Owns: starting a generation of workers for a config (each builds its runtime and says
 * `ready` or `failed`), handing every worker of the serving generation the listening socket
 * (a raw handle: the master itself never accepts on it), the workers' heartbeats and deaths.
 * Workers accept their connections themselves, so no request and no message byte passes through
 * the master. A reload is a new generation: once all its workers are ready they start accepting,
 * and only then is the old one retired (it stops accepting, finishes what it holds, exits) —
 * work in flight is never aborted by a reload, and a generation that fails to start is killed
 * while the old one goes on. The degraded mode is a generation too: one responder that answers
 * every request 451 with the reason.
 *
 * A worker that dies costs only the connections it held: the kernel closes them and Courier
 * answers those messages with a temporary failure (the senders retry, nothing is lost); it is
 * replaced at once, backing off when they keep dying, and while no scanning worker accepts for
 * FALLBACK_AFTER_MS a responder answers 451 instead of letting connections wait in the backlog.
 * A worker whose heartbeat reports a deadline passed by the backstop, or whose heartbeat stops
 * (its event loop is stuck), is killed; one whose memory passes worker_memory_limit is replaced
 * once its replacement accepts, and so is one idle for a while that did not give back what its
 * last messages took (worker_idle_memory_limit, idle-recycle.ts). Workers run with glibc malloc
 * settings that give memory back (workerEnv) and with --expose-gc (they collect when idle).
 * The master also keeps the table of client IPs blocked after a virus (action.block_ip_seconds):
 * a worker reports a block, the table takes it (bounded by action.block_ip_max) and every other
 * worker gets it; a worker that says ready gets every block in force; a reload keeps the table.
 * Inputs: configs (text + parsed), the listening handle. Outputs: log lines (the workers' own and
 * pool events); start() never rejects.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { parseOptionsOf, type Config } from '../config/load.js';
import type { Logger } from '../ops/log.js';
import type { WorkerLog } from '../ops/log-output.js';
import { isFromWorker, type FromWorker, type ToWorker } from '../worker/ipc.js';
import { IDLE_RECYCLE_AFTER_MS, shouldRecycleIdle } from './idle-recycle.js';
import { sweepStale } from './tmp-sweep.js';
import { WORKER_FAILED_TEXT } from '../courierfilter/replies.js';
import type { StatsStore } from '../ops/stats-store.js';
import { BlockTable, DEFAULT_BLOCK_MAX } from '../policy/ip-blocks.js';

const WORKER_MODULE = new URL('../worker/main.js', import.meta.url);
/** The daemon's stderr, shared with every worker as its fd LOG_FD_CHILD for its log lines. */
const LOG_FD_PARENT = 2;
const LOG_FD_CHILD = 4;
/** A worker that does not say ready (engines loaded) within this is given up on. */
const READY_TIMEOUT_MS = 120_000;
/** Deaths within CRASH_WINDOW_MS beyond CRASH_FREE_RESTARTS make the next restart wait. */
const CRASH_WINDOW_MS = 10_000;
const CRASH_FREE_RESTARTS = 3;
const MAX_RESTART_DELAY_MS = 30_000;
/** Heartbeats, deadlines, the fallback and memory are checked this often. */
const CHECK_MS = 1000;
const MEMORY_CHECK_MS = 5_000;
/** A replacement that failed to start: an idle recycle of the same worker waits this long. */
const IDLE_RECYCLE_RETRY_MS = 60_000;
/** No scanning worker accepting for this long: a responder answers 451 meanwhile. */
const FALLBACK_AFTER_MS = 3_000;
/**
 * glibc malloc settings for the workers, unless the environment sets them: few arenas (each
 * thread arena keeps its own free memory), large blocks mapped on their own (given back at
 * free) and a low trim threshold (free memory at the top of the heap goes back to the system).
 */
const WORKER_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};
/** Blocks per IPC message to a starting worker: block_ip_max may be 1,000,000 (40 MB as one JSON message). */
const BLOCKS_PER_MESSAGE = 5_000;
/** Longest block a worker may ask for: the schema's bound on block_ip_seconds (30 days). */
const MAX_BLOCK_MS = 30 * 24 * 3600 * 1000;
/** Longest line of a worker's stray output forwarded to the log. */
const MAX_OUTPUT_LINE = 500;


export interface PoolConfig {
  readonly config: Config;
  readonly text: string;
  readonly source: string;
}

/** What a responder answers (451 with `text`) and logs (`code`). */
export interface ResponderReply {
  readonly code: string;
  readonly text: string;
}

/** The socket options a worker serves with (from the generation's config, or the defaults). */
export type ListenOptions = Omit<Extract<ToWorker, { t: 'listen' }>, 't' | 'echo'>;

type StartResult = { ok: true } | { ok: false; code: string; reason: string };

class WorkerProc {
  state: 'starting' | 'ready' | 'listening' | 'retiring' | 'exited' = 'starting';
  /** Set once the master asked it to go (retire, kill): its exit is expected. */
  leaving = false;
  /** Killed for a fault (overdue, stalled, channel broken): expected, yet it must be replaced. */
  condemned = false;
  replacing = false;
  lastBeat = Date.now();
  busy = 0;
  /** Requests answered (from its heartbeat), and when it last held or answered one. */
  served = 0;
  activeAt = Date.now();
  /** Resident bytes when it said ready. */
  readyRss: number | undefined;
  /** A replacement for it failed to start: no idle recycle before this (epoch ms). */
  idleRecycleAfter = 0;
  /** Log lines the worker could not write (its last report). */
  lostLines = 0;
  oldestDeadline = 0;
  readyResult: Promise<StartResult>;
  settleReady!: (r: StartResult) => void;
  constructor(readonly n: number, readonly gen: Generation, readonly child: ChildProcess) {
    this.readyResult = new Promise((r) => { this.settleReady = r; });
  }
  send(m: ToWorker, handle?: unknown): boolean {
    try {
      if (!this.child.connected) return false;
      this.child.send(m, handle as never);
      return true;
    } catch {
      return false;
    }
  }
}

class Generation {
  readonly workers: WorkerProc[] = [];
  readonly deaths: number[] = [];
  serving = false;
  constructor(
    readonly id: number,
    readonly size: number,
    readonly listen: ListenOptions,
    readonly pc?: PoolConfig | undefined,
    readonly responder?: ResponderReply | undefined,
    readonly slots = 1,
  ) {}
  get tmpdir(): string | undefined {
    return this.pc?.config.tmpdir;
  }
}

/**
 * Worker processes for a config. workers = 0: one per two cores, at most 4. The scanner (clamd)
 * and Courier itself want the other cores: on 2 cores one worker filtered more mail than two
 * (npm run bench, filter section); YARA scans run in threads of their own anyway.
 */
export function workerCount(c: Config): number {
  return c.workers > 0 ? c.workers : Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
}

/**
 * V8 flags of every worker process:
 * - `--expose-gc`: an idle worker collects its garbage itself (worker/main.ts).
 * - `--single-threaded-gc`: a worker's heap is small (tens of MB) and its messages short, so
 *   the collector's helper threads (concurrent marking and sweeping, parallel scavenges) cost
 *   more CPU coordinating than they save.
 * - `--initial-old-space-size=64`: what a message leaves on the heap is short-lived, and a
 *   worker keeps ~12 MB alive. V8 sizes the old generation's limit at about three times that
 *   (~35 MB), so a full collection ran every ~50 messages of the bench mix, ~12 ms each, and
 *   a worker runs slower for a while after each one (see collectGarbage in worker/main.ts).
 *   Starting the limit at 64 MB makes them rare; 32 MB (below V8's own limit) changed nothing.
 *   An idle worker still collects and gives the pages back.
 * - `--max-semi-space-size=8`: with full collections rare, the young generation grew to V8's
 *   16 MB semi-spaces and stayed committed once idle (the daemon's resident size 30 s after 8
 *   messages of 30 MB rose from ~131 to ~155 MiB); 8 MB keeps it where it was, at the same CPU.
 * Measured in `npm run bench`'s filter section, each against the flags before it: the
 * single-threaded collector saves 7–15% of the worker's CPU per message, the 64 MB start
 * 16–17% more, the smaller semi-spaces nothing either way.
 */
export const WORKER_V8_FLAGS: readonly string[] = ['--expose-gc', '--single-threaded-gc', '--initial-old-space-size=64', '--max-semi-space-size=8'];

export class WorkerPool {
  private current: Generation | undefined;
  private readonly generations = new Set<Generation>();
  private fallback: WorkerProc | undefined;
  /** Since when no scanning worker of the current generation accepts (0: one does). */
  private unservedSince = 0;
  private genSeq = 0;
  private workerSeq = 0;
  private stopping = false;
  private lastMemoryCheck = 0;
  private readonly timer: NodeJS.Timeout;
  /**
   * The listening socket as handed to workers. Until the master holds a copy of its own that it
   * does not poll (the first worker to listen sends one back), `needEcho` is set.
   */
  private handle: unknown;
  private needEcho = false;
  private onOwnHandle: ((h: unknown) => void) | undefined;
  /** Where the workers' counters (on their beats) and the restarts are summed. */
  stats: StatsStore | undefined;

  /** Log lines lost by workers that are gone (the live ones report theirs in their heartbeat). */
  private lostByGone = 0;

  /**
   * The client IPs blocked after a virus (action.block_ip_seconds): the one table that counts,
   * kept across reloads; every worker has a copy (the blocks in force when it is ready, then
   * each new one as any worker reports it).
   */
  private readonly blocks = new BlockTable(DEFAULT_BLOCK_MAX);

  constructor(
    private readonly log: Logger, private readonly writeLine: (line: string) => void, private tmpdirForSweep: string | undefined,
    /** How workers log (log_to, log_format, --debug's level), the same for every generation. */
    private readonly workerLog?: WorkerLog,
  ) {
    this.timer = setInterval(() => this.check(), CHECK_MS);
    this.timer.unref();
  }

  /**
   * The listening socket. `echo`: the handle is the master's own polled server's, so the first
   * worker that listens sends a copy back, given to `onOwn` (the master then closes its server).
   */
  setListener(handle: unknown, echo: boolean, onOwn?: (h: unknown) => void): void {
    this.handle = handle;
    this.needEcho = echo;
    this.onOwnHandle = onOwn;
    for (const g of this.generations) if (g.serving) for (const w of g.workers) this.startListening(w);
    if (this.fallback) this.startListening(this.fallback);
  }

  /** A generation serves (its workers accept on the socket). */
  get serving(): boolean {
    return this.current?.serving ?? false;
  }

  /** Pids of the live workers (for tests and the log). */
  get pids(): number[] {
    const all = [...this.generations].flatMap((g) => g.workers);
    if (this.fallback) all.push(this.fallback);
    return all.filter((w) => w.state !== 'exited').map((w) => w.child.pid!);
  }

  /** Log lines the workers could not write, live and gone. */
  get lostLogLines(): number {
    return this.lostByGone + [...this.generations].flatMap((g) => g.workers).reduce((n, w) => n + w.lostLines, 0) + (this.fallback?.lostLines ?? 0);
  }

  /** The number of the generation that serves (0 before the first). */
  get generation(): number {
    return this.current?.id ?? 0;
  }

  /** Client IPs blocked now (action.block_ip_seconds). */
  get blockedIps(): number {
    return this.blocks.live(Date.now());
  }

    /** Requests the live workers hold, as of their last heartbeats. */
  get inFlight(): number {
    let n = 0;
    for (const g of this.generations) for (const w of g.workers) if (w.state !== 'exited') n += w.busy;
    return n + (this.fallback !== undefined && this.fallback.state !== 'exited' ? this.fallback.busy : 0);
  }

  /** Scanning workers of the generation that serves. */
  get scanningWorkers(): number {
    const g = this.current;
    return g?.pc ? g.workers.filter((w) => !w.leaving).length : 0;
  }

  /**
   * Starts a generation for `pc` and, once all its workers are ready, makes it serve and retires
   * the previous one. On failure the new workers are killed and nothing changes.
   */
  async start(pc: PoolConfig, listen: ListenOptions): Promise<StartResult> {
    // what the workers of a master that was killed left behind
    if (this.genSeq === 0) {
      const n = await sweepStale(pc.config.tmpdir);
      if (n > 0) this.log.event('tmp-swept', { entries: n, reason: 'left by workers that are gone' });
    }
    this.tmpdirForSweep = pc.config.tmpdir;
    const size = workerCount(pc.config);
    const gen = new Generation(++this.genSeq, size, listen, pc, undefined, Math.max(1, Math.ceil(pc.config.max_connections / size)));
    const r = await this.bringUp(gen);
    if (r.ok) {
      // the config that serves now bounds the table; turned off, the blocks are lifted
      this.blocks.resize(pc.config.action.block_ip_max);
      if (pc.config.action.block_ip_seconds === 0) this.blocks.clear();
    }
    return r;
  }

  /**
   * Serve with a responder: every request is answered 451 with `reply.text` (the degraded mode).
   * Replaces the generation that serves, once the responder accepts.
   */
  async respond(reply: ResponderReply, listen: ListenOptions): Promise<StartResult> {
    return this.bringUp(new Generation(++this.genSeq, 1, listen, undefined, reply));
  }

  private async bringUp(gen: Generation): Promise<StartResult> {
    this.generations.add(gen);
    const started = Array.from({ length: gen.size }, () => this.spawn(gen));
    const results = await Promise.all(started.map((w) => w.readyResult));
    const failed = results.find((r): r is Extract<StartResult, { ok: false }> => !r.ok);
    if (failed || this.stopping) {
      for (const w of gen.workers) this.kill(w);
      this.generations.delete(gen);
      return failed ?? { ok: false, code: 'ESHUTDOWN', reason: 'avfilter is stopping' };
    }
    const old = this.current;
    this.current = gen;
    gen.serving = true;
    this.unservedSince = gen.pc ? Date.now() : 0;
    for (const w of gen.workers) this.startListening(w);
    // A worker that died after it said ready, while its siblings were still loading, was not
    // replaced (its generation did not serve yet): replace it now, or the generation would
    // serve short-handed for good.
    if (gen.pc) for (let i = gen.workers.length; i < gen.size; i++) this.replace(gen);
    if (old) for (const w of [...old.workers]) this.retire(w);
    return { ok: true };
  }

  /**
   * Shutdown: every worker stops accepting and answers what it still holds after `graceMs` 451;
   * resolves once all are gone (those still there 2 s after that are killed).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    const all = [...this.generations].flatMap((g) => g.workers);
    if (this.fallback) all.push(this.fallback);
    for (const w of all) {
      if (w.state === 'exited') continue;
      w.leaving = true;
      if (w.state === 'starting' || !w.send({ t: 'retire', graceMs })) this.kill(w);
      else w.state = 'retiring';
    }
    const until = Date.now() + graceMs + 2000;
    while (all.some((w) => w.state !== 'exited') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const w of all) this.kill(w);
    while (all.some((w) => w.state !== 'exited') && Date.now() < until + 2000) await new Promise((r) => setTimeout(r, 20));
  }

  private startListening(w: WorkerProc): void {
    if (this.handle === undefined || w.state !== 'ready' || w.leaving || this.stopping) return;
    const echo = this.needEcho;
    if (echo) this.needEcho = false; // one copy is enough; the next one asked only if it fails
    const listen = w === this.fallback ? this.current?.listen ?? w.gen.listen : w.gen.listen;
    if (w.send({ t: 'listen', echo, ...listen }, this.handle)) {
      w.state = 'listening';
    } else {
      if (echo) this.needEcho = true;
      this.condemn(w);
    }
  }

  private spawn(gen: Generation, asFallback = false): WorkerProc {
    // fd 4: the daemon's own stderr, where the worker writes its log lines itself
    const child = fork(WORKER_MODULE, [], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc', LOG_FD_PARENT], serialization: 'json',
      env: workerEnv(process.env), execArgv: [...process.execArgv, ...WORKER_V8_FLAGS],
    });
    const w = new WorkerProc(++this.workerSeq, gen, child);
    if (!asFallback) gen.workers.push(w);
    const readyTimer = setTimeout(() => {
      if (w.state === 'starting') {
        w.settleReady({ ok: false, code: 'EWORKER_START', reason: `worker did not load its engines within ${READY_TIMEOUT_MS / 1000} s` });
        this.kill(w);
      }
    }, READY_TIMEOUT_MS);
    readyTimer.unref();
    child.on('message', (m: unknown, handle: unknown) => {
      if (isFromWorker(m)) this.onMessage(w, m, handle);
    });
    child.on('error', (err) => this.log.event('worker-error', { worker: w.n, reason: err.message }, 'error'));
    child.on('exit', (code, signal) => {
      clearTimeout(readyTimer);
      this.onExit(w, code, signal, asFallback);
    });
    if (child.stderr) {
      const rl = createInterface({ input: child.stderr });
      rl.on('line', (line) => this.log.event('worker-output', { worker: w.n, pid: child.pid ?? 0, text: line.slice(0, MAX_OUTPUT_LINE) }, 'warning'));
      child.stderr.on('error', () => undefined);
    }
    if (gen.responder !== undefined) {
      w.send({ t: 'init', responder: gen.responder, worker: w.n, logLevel: this.current?.pc?.config.log_level ?? gen.pc?.config.log_level ?? 'info', logFd: LOG_FD_CHILD, log: this.workerLog });
    } else {
      const pc = gen.pc!;
      w.send({ t: 'init', configText: pc.text, source: pc.source, parse: parseOptionsOf(pc.config), processes: gen.size, slots: gen.slots, worker: w.n, logFd: LOG_FD_CHILD, log: this.workerLog });
    }
    return w;
  }

  private onMessage(w: WorkerProc, m: FromWorker, handle: unknown): void {
    switch (m.t) {
      case 'ready':
        if (w.state === 'starting') {
          w.state = 'ready';
          w.lastBeat = Date.now();
          w.activeAt = Date.now();
          w.readyRss = residentBytes(w.child.pid);
          const blocks = (w.gen.pc?.config.action.block_ip_seconds ?? 0) > 0 ? this.blocks.snapshot(Date.now()) : [];
          for (let i = 0; i < blocks.length; i += BLOCKS_PER_MESSAGE) w.send({ t: 'blocks', entries: blocks.slice(i, i + BLOCKS_PER_MESSAGE) });
          w.settleReady({ ok: true });
          // a replacement (or a fallback) in a generation that serves starts accepting at once
          if ((w.gen.serving && w.gen === this.current) || w === this.fallback) this.startListening(w);
        }
        return;
      case 'failed':
        w.settleReady({ ok: false, code: m.code, reason: m.reason });
        w.leaving = true;
        return;
      case 'listening':
        if (handle !== undefined && handle !== null && this.onOwnHandle !== undefined) {
          const own = this.onOwnHandle;
          this.onOwnHandle = undefined;
          this.handle = handle;
          own(handle);
        }
        if (w.gen === this.current && w.gen.pc !== undefined) this.served();
        return;
      case 'beat':
        w.lastBeat = Date.now();
        if (m.busy > 0 || (m.served !== undefined && m.served !== w.served)) w.activeAt = Date.now();
        w.busy = m.busy;
        if (m.served !== undefined) w.served = m.served;
        w.oldestDeadline = m.oldestDeadline;
        if (m.lostLines !== undefined) w.lostLines = m.lostLines;
        if (m.stats !== undefined) this.stats?.add(m.stats, w.n);
        return;
      case 'log':
        for (const line of m.lines) this.writeLine(line);
        return;
      case 'block':
        this.block(w, m.ip, m.until);
        return;
    }
  }

  /** A worker saw a virus from `ip`: the table takes it and every other worker is told. */
  private block(from: WorkerProc, ip: unknown, until: unknown): void {
    const now = Date.now();
    if (typeof ip !== 'string' || typeof until !== 'number') return;
    const end = Math.min(until, now + MAX_BLOCK_MS);
    const key = this.blocks.add(ip, end, now);
    if (key === undefined) return; // not blockable, or blocked as long already
    const all = [...this.generations].flatMap((g) => g.workers);
    for (const w of all) {
      if (w !== from && (w.state === 'ready' || w.state === 'listening' || w.state === 'retiring')) w.send({ t: 'blocks', entries: [[key, end]] });
    }
    this.log.event('ip-blocked', { ip: key, seconds: Math.round((end - now) / 1000), until: new Date(end).toISOString(), worker: from.n, pid: from.child.pid ?? 0, blocked: this.blocks.size });
  }

  /** A scanning worker of the current generation accepts: the fallback is no longer needed. */
  private served(): void {
    this.unservedSince = 0;
    const f = this.fallback;
    if (f !== undefined) {
      this.fallback = undefined;
      this.retire(f);
    }
  }

  private onExit(w: WorkerProc, code: number | null, signal: NodeJS.Signals | null, asFallback: boolean): void {
    const wasListening = w.state === 'listening' || w.state === 'retiring';
    w.state = 'exited';
    this.lostByGone += w.lostLines;
    w.settleReady({ ok: false, code: 'EWORKER_EXIT', reason: `worker exited (${signal ?? `status ${code}`}) before it was ready` });
    const gen = w.gen;
    if (asFallback) {
      if (this.fallback === w) this.fallback = undefined;
    } else {
      const i = gen.workers.indexOf(w);
      if (i >= 0) gen.workers.splice(i, 1);
      if (gen.workers.length === 0 && gen !== this.current) this.generations.delete(gen);
    }
    const expected = w.leaving || this.stopping;
    // A worker that was asked to go and exits 0 has answered everything it held (retired: it
    // finished; shut down: it answered the rest 451 and logged `drained`): its last heartbeat's
    // count is stale, and logging it as held after every reload would cry wolf.
    if (expected && code === 0) w.busy = 0;
    if (!expected || w.busy > 0) {
      this.log.event('worker-exit', {
        worker: w.n, pid: w.child.pid ?? 0, status: code ?? '', signal: signal ?? '',
        ...(w.busy > 0 ? { held: w.busy } : {}),
      }, expected ? 'info' : 'error');
    }
    // a killed worker never removed its temp files and its control-file locks
    const tmpdir = gen.tmpdir ?? this.tmpdirForSweep;
    if (tmpdir !== undefined) {
      void sweepStale(tmpdir).then((n) => {
        if (n > 0) this.log.event('tmp-swept', { entries: n, reason: `worker ${w.n} (pid ${w.child.pid ?? 0}) exited` });
      });
    }
    if (gen === this.current && gen.pc !== undefined && wasListening && !gen.workers.some((x) => x.state === 'listening')) {
      this.unservedSince ||= Date.now();
    }
    if (!asFallback && (!expected || w.condemned) && gen === this.current) this.replace(gen);
    if (asFallback && !expected && this.unservedSince > 0) this.startFallback();
  }

  /** Starts a worker in place of one that died; backs off when they keep dying. */
  private replace(gen: Generation): void {
    if (this.stopping || gen !== this.current) return;
    const now = Date.now();
    gen.deaths.push(now);
    while (gen.deaths.length > 0 && gen.deaths[0]! < now - CRASH_WINDOW_MS) gen.deaths.shift();
    const excess = gen.deaths.length - CRASH_FREE_RESTARTS;
    const delay = excess > 0 ? Math.min(MAX_RESTART_DELAY_MS, 1000 * 2 ** (excess - 1)) : 0;
    if (delay > 0) this.log.event('worker-restart-delayed', { ms: delay, deaths: gen.deaths.length }, 'warning');
    setTimeout(() => {
      if (this.stopping || gen !== this.current || gen.workers.filter((x) => !x.leaving).length >= gen.size) return;
      this.stats?.workerRestarted();
      const w = this.spawn(gen);
      void w.readyResult.then((r) => {
        if (!r.ok) this.log.event('worker-start-failed', { worker: w.n, code: r.code, reason: r.reason }, 'error');
      });
    }, delay).unref();
  }

  /** A responder in front while no scanning worker of the current generation accepts. */
  private startFallback(): void {
    const gen = this.current;
    if (this.stopping || this.fallback !== undefined || gen?.pc === undefined) return;
    this.log.event('worker-fallback', { reason: `no worker has accepted for ${FALLBACK_AFTER_MS} ms`, answer: 451 }, 'warning');
    const responder = new Generation(0, 1, gen.listen, undefined, { code: 'EWORKER', text: WORKER_FAILED_TEXT });
    this.fallback = this.spawn(responder, true);
  }

  private retire(w: WorkerProc): void {
    if (w.state === 'exited' || w.leaving) return;
    w.leaving = true;
    if (w.state === 'starting') return this.kill(w);
    w.state = 'retiring';
    if (!w.send({ t: 'retire' })) this.kill(w);
  }

  /** A worker that failed us: killed and, in the current generation, replaced. */
  private condemn(w: WorkerProc): void {
    if (w.state === 'exited' || w.condemned) return;
    w.condemned = true;
    this.kill(w);
  }

  private kill(w: WorkerProc): void {
    w.leaving = true;
    if (w.state === 'exited') return;
    try {
      w.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  private check(): void {
    if (this.stopping) return;
    const now = Date.now();
    const all = [...this.generations].flatMap((g) => g.workers);
    if (this.fallback) all.push(this.fallback);
    for (const w of all) {
      if (w.state !== 'listening' && w.state !== 'retiring') continue;
      const backstop = w.gen.listen.backstopMs;
      if (w.oldestDeadline > 0 && now > w.oldestDeadline + backstop) {
        this.log.event('worker-overdue', { worker: w.n, pid: w.child.pid ?? 0, held: w.busy, reason: 'a request past its deadline; killed' }, 'error');
        this.condemn(w);
      } else if (now - w.lastBeat > w.gen.listen.requestTimeoutMs + backstop) {
        this.log.event('worker-overdue', { worker: w.n, pid: w.child.pid ?? 0, reason: `no heartbeat for ${Math.round((now - w.lastBeat) / 1000)} s; killed` }, 'error');
        this.condemn(w);
      }
    }
    if (this.unservedSince > 0 && now - this.unservedSince >= FALLBACK_AFTER_MS) this.startFallback();
    if (now - this.lastMemoryCheck >= MEMORY_CHECK_MS) {
      this.lastMemoryCheck = now;
      this.checkMemory();
    }
    this.checkIdleMemory(now);
  }

  /**
   * Replaces idle workers that kept what their last messages took (idle-recycle.ts): the
   * replacement accepts first, then the old one stops accepting and ends once it holds nothing.
   */
  private checkIdleMemory(now: number): void {
    const gen = this.current;
    if (!gen?.pc) return;
    const limit = gen.pc.config.worker_idle_memory_limit;
    if (!(limit > 0)) return;
    for (const w of [...gen.workers]) {
      if (w.state !== 'listening' || w.replacing || w.leaving) continue;
      // /proc is read only for a worker that could qualify
      if (w.served < 1 || w.busy > 0 || now - w.activeAt < IDLE_RECYCLE_AFTER_MS || now < w.idleRecycleAfter) continue;
      const rss = residentBytes(w.child.pid);
      if (rss === undefined) continue;
      if (!shouldRecycleIdle({ rss, readyRss: w.readyRss, idleMs: now - w.activeAt, served: w.served, busy: w.busy }, limit)) continue;
      this.log.event('worker-recycle', { worker: w.n, pid: w.child.pid ?? 0, reason: 'idle', rss, ready_rss: w.readyRss ?? 0, limit });
      this.recycle(gen, w);
    }
  }

  /** Replaces workers whose resident memory passed worker_memory_limit (their work finishes). */
  private checkMemory(): void {
    const gen = this.current;
    if (!gen?.pc) return;
    const limit = gen.pc.config.worker_memory_limit;
    for (const w of gen.workers) {
      if (w.state !== 'listening' || w.replacing) continue;
      const rss = residentBytes(w.child.pid);
      if (rss === undefined || rss <= limit) continue;
      this.log.event('worker-recycle', { worker: w.n, pid: w.child.pid ?? 0, rss, limit }, 'warning');
      this.recycle(gen, w);
    }
  }

  /** Starts a worker in place of `w`; `w` retires once its replacement is ready. */
  private recycle(gen: Generation, w: WorkerProc): void {
    w.replacing = true;
    const next = this.spawn(gen);
    void next.readyResult.then((r) => {
      if (r.ok) this.retire(w);
      else {
        w.replacing = false;
        w.idleRecycleAfter = Date.now() + IDLE_RECYCLE_RETRY_MS;
        this.log.event('worker-start-failed', { worker: next.n, code: r.code, reason: r.reason }, 'error');
      }
    });
  }
}

/** The environment of a worker: the daemon's, with WORKER_MALLOC_ENV where it sets nothing. */
export function workerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const [k, v] of Object.entries(WORKER_MALLOC_ENV)) if (out[k] === undefined || out[k] === '') out[k] = v;
  return out;
}

function residentBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
