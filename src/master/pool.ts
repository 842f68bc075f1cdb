/**
 * The worker processes and the requests they hold: the master's only link to message work.
 *
 * Owns: starting a generation of workers for a config (each builds its runtime and says
 * `ready` or `failed`), handing each request to the least busy ready worker of the current
 * generation, replies back to their connections, and the workers' deaths. A reload is a new
 * generation: it takes new requests once all its workers are ready, and only then is the old
 * one retired (it finishes what it holds, then exits) — work in flight is never aborted by a
 * reload, and a generation that fails to start is killed while the old one goes on.
 * A worker that dies costs only the requests it held (answered 451 at once: the senders retry,
 * nothing is lost) and is replaced at once (backing off when it keeps dying); one that lets a
 * request's deadline pass by the skeleton's backstop is killed (its event loop is stuck); one
 * whose memory passes worker_memory_limit is replaced once its replacement is ready.
 * Inputs: configs (text + parsed), requests with their deadline. Outputs: replies, never a
 * rejection; log lines (the workers' own and pool events).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import type { Config } from '../config/load.js';
import type { CourierRequest } from '../courierfilter/request.js';
import { OVERDUE, TIMEOUT_REPLY, type Reply, type ServiceCall } from '../courierfilter/server.js';
import type { Logger } from '../ops/log.js';
import { isFromWorker, type FromWorker, type ToWorker } from '../worker/ipc.js';
import { sweepStale } from './tmp-sweep.js';

export const WORKER_FAILED_REPLY: Reply = { code: 451, text: '4.3.0 Virus filter worker failed, try again later' };

const WORKER_MODULE = new URL('../worker/main.js', import.meta.url);
/** A worker that does not say ready (engines loaded) within this is given up on. */
const READY_TIMEOUT_MS = 120_000;
/** Deaths within CRASH_WINDOW_MS beyond CRASH_FREE_RESTARTS make the next restart wait. */
const CRASH_WINDOW_MS = 10_000;
const CRASH_FREE_RESTARTS = 3;
const MAX_RESTART_DELAY_MS = 30_000;
const MEMORY_CHECK_MS = 5_000;
/** Longest line of a worker's stray output forwarded to the log. */
const MAX_OUTPUT_LINE = 500;

export interface PoolConfig {
  readonly config: Config;
  readonly text: string;
  readonly source: string;
}

interface Pending {
  readonly req: CourierRequest;
  readonly call: ServiceCall;
  /** Settles the dispatch once (later calls are ignored). */
  readonly resolve: (r: Reply) => void;
  /** While it waits in the master for a ready worker. */
  timer?: NodeJS.Timeout | undefined;
  /** Once handed to a worker: which one, under which id. */
  worker?: WorkerProc | undefined;
  id?: number | undefined;
}

type StartResult = { ok: true } | { ok: false; code: string; reason: string };

class WorkerProc {
  state: 'starting' | 'ready' | 'retiring' | 'exited' = 'starting';
  readonly requests = new Map<number, Pending>();
  /** Set once the master asked it to go (retire, kill): its exit is expected. */
  leaving = false;
  /** Killed for a fault (overdue, channel broken): expected, yet it must be replaced. */
  condemned = false;
  replacing = false;
  readyResult: Promise<StartResult>;
  settleReady!: (r: StartResult) => void;
  constructor(readonly n: number, readonly gen: Generation, readonly child: ChildProcess) {
    this.readyResult = new Promise((r) => { this.settleReady = r; });
  }
  send(m: ToWorker): boolean {
    try {
      if (!this.child.connected) return false;
      this.child.send(m);
      return true;
    } catch {
      return false;
    }
  }
}

class Generation {
  readonly workers: WorkerProc[] = [];
  readonly deaths: number[] = [];
  constructor(readonly id: number, readonly pc: PoolConfig, readonly size: number, readonly slots: number) {}
}

/**
 * Worker processes for a config. workers = 0: one per two cores, at most 4. The scanner (clamd)
 * and Courier itself want the other cores: on 2 cores one worker filtered more mail than two
 * (npm run bench, filter section); YARA scans run in threads of their own anyway.
 */
export function workerCount(c: Config): number {
  return c.workers > 0 ? c.workers : Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
}

export class WorkerPool {
  private current: Generation | undefined;
  private readonly generations = new Set<Generation>();
  private readonly queue: Pending[] = [];
  private seq = 0;
  private genSeq = 0;
  private workerSeq = 0;
  private stopping = false;
  private readonly memoryTimer: NodeJS.Timeout;

  constructor(private readonly log: Logger, private readonly writeLine: (line: string) => void) {
    this.memoryTimer = setInterval(() => this.checkMemory(), MEMORY_CHECK_MS);
    this.memoryTimer.unref();
  }

  get serving(): boolean {
    return this.current !== undefined;
  }

  /** Pids of the live workers (for tests and the log). */
  get pids(): number[] {
    return [...this.generations].flatMap((g) => g.workers.filter((w) => w.state !== 'exited').map((w) => w.child.pid!));
  }

  /**
   * Starts a generation for `pc` and, once all its workers are ready, makes it current and
   * retires the previous one. On failure the new workers are killed and nothing changes.
   */
  async start(pc: PoolConfig): Promise<StartResult> {
    // what the workers of a master that was killed left behind
    if (this.genSeq === 0) {
      const n = await sweepStale(pc.config.tmpdir);
      if (n > 0) this.log.event('tmp-swept', { entries: n, reason: 'left by workers that are gone' });
    }
    const size = workerCount(pc.config);
    const gen = new Generation(++this.genSeq, pc, size, Math.max(1, Math.ceil(pc.config.max_connections / size)));
    this.generations.add(gen);
    const started = Array.from({ length: size }, () => this.spawn(gen));
    const results = await Promise.all(started.map((w) => w.readyResult));
    const failed = results.find((r): r is Extract<StartResult, { ok: false }> => !r.ok);
    if (failed || this.stopping) {
      for (const w of gen.workers) this.kill(w);
      this.generations.delete(gen);
      return failed ?? { ok: false, code: 'ESHUTDOWN', reason: 'avfilter is stopping' };
    }
    const old = this.current;
    this.current = gen;
    if (old) for (const w of [...old.workers]) this.retire(w);
    this.flushQueue();
    return { ok: true };
  }

  /** Hands the request to a worker; resolves with its reply (or 451 when none can answer in time). */
  dispatch(req: CourierRequest, call: ServiceCall): Promise<Reply> {
    return new Promise<Reply>((resolve) => {
      let settled = false;
      const p: Pending = {
        req, call,
        resolve: (r) => {
          if (settled) return;
          settled = true;
          clearTimeout(p.timer);
          call.signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
      };
      const onAbort = (): void => {
        const i = this.queue.indexOf(p);
        if (i >= 0) this.queue.splice(i, 1);
        const w = p.worker;
        if (w && p.id !== undefined && w.requests.delete(p.id)) {
          if (call.signal.reason === OVERDUE) {
            this.log.event('worker-overdue', { worker: w.n, pid: w.child.pid ?? 0, data: req.dataPath, reason: 'no answer past the request deadline; killed' }, 'error');
            this.condemn(w);
          } else {
            w.send({ t: 'abort', id: p.id });
          }
        }
        p.resolve(TIMEOUT_REPLY);
      };
      call.signal.addEventListener('abort', onAbort, { once: true });
      if (this.place(p)) return;
      // No worker ready (all starting after a crash, or backing off): wait, within the deadline.
      p.timer = setTimeout(() => {
        const i = this.queue.indexOf(p);
        if (i >= 0) this.queue.splice(i, 1);
        this.log.event('request-timeout', { data: req.dataPath, reason: 'no worker available' }, 'warning');
        p.resolve(TIMEOUT_REPLY);
      }, Math.max(0, call.deadlineAt - Date.now()));
      this.queue.push(p);
    });
  }

  /** Retires every worker (they finish what they hold) and, after `graceMs`, kills the rest. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.memoryTimer);
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.resolve(TIMEOUT_REPLY);
    }
    const all = [...this.generations].flatMap((g) => g.workers);
    for (const w of all) this.retire(w);
    const until = Date.now() + graceMs;
    while (all.some((w) => w.state !== 'exited') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const w of all) this.kill(w);
    while (all.some((w) => w.state !== 'exited') && Date.now() < until + 2000) await new Promise((r) => setTimeout(r, 20));
  }

  /** Stop taking work and let the workers finish (shutdown starts with this). */
  retireAll(): void {
    this.stopping = true;
    for (const g of this.generations) for (const w of [...g.workers]) this.retire(w);
  }

  private place(p: Pending): boolean {
    const gen = this.current;
    if (!gen || this.stopping) return false;
    let best: WorkerProc | undefined;
    for (const w of gen.workers) {
      if (w.state !== 'ready') continue;
      if (!best || w.requests.size < best.requests.size) best = w;
    }
    if (!best) return false;
    const id = ++this.seq;
    best.requests.set(id, p);
    const sent = best.send({
      t: 'req', id, dataPath: p.req.dataPath, controlPaths: p.req.controlPaths,
      acceptedAt: p.call.acceptedAt, deadlineAt: p.call.deadlineAt,
    });
    if (!sent) {
      best.requests.delete(id);
      this.condemn(best);
      return this.place(p);
    }
    p.worker = best;
    p.id = id;
    return true;
  }

  private flushQueue(): void {
    while (this.queue.length > 0) {
      const p = this.queue[0]!;
      if (!this.place(p)) return;
      this.queue.shift();
      clearTimeout(p.timer);
    }
  }

  private spawn(gen: Generation): WorkerProc {
    const child = fork(WORKER_MODULE, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    const w = new WorkerProc(++this.workerSeq, gen, child);
    gen.workers.push(w);
    const readyTimer = setTimeout(() => {
      if (w.state === 'starting') {
        w.settleReady({ ok: false, code: 'EWORKER_START', reason: `worker did not load its engines within ${READY_TIMEOUT_MS / 1000} s` });
        this.kill(w);
      }
    }, READY_TIMEOUT_MS);
    readyTimer.unref();
    child.on('message', (m: unknown) => {
      if (isFromWorker(m)) this.onMessage(w, m);
    });
    child.on('error', (err) => this.log.event('worker-error', { worker: w.n, reason: err.message }, 'error'));
    child.on('exit', (code, signal) => {
      clearTimeout(readyTimer);
      this.onExit(w, code, signal);
    });
    if (child.stderr) {
      const rl = createInterface({ input: child.stderr });
      rl.on('line', (line) => this.log.event('worker-output', { worker: w.n, pid: child.pid ?? 0, text: line.slice(0, MAX_OUTPUT_LINE) }, 'warning'));
      child.stderr.on('error', () => undefined);
    }
    w.send({ t: 'init', configText: gen.pc.text, source: gen.pc.source, processes: gen.size, slots: gen.slots, worker: w.n });
    return w;
  }

  private onMessage(w: WorkerProc, m: FromWorker): void {
    switch (m.t) {
      case 'ready':
        if (w.state === 'starting') {
          w.state = 'ready';
          w.settleReady({ ok: true });
          if (w.gen === this.current) this.flushQueue();
        }
        return;
      case 'failed':
        w.settleReady({ ok: false, code: m.code, reason: m.reason });
        w.leaving = true;
        return;
      case 'reply': {
        for (const line of m.lines ?? []) this.writeLine(line);
        const p = w.requests.get(m.id);
        if (!p) return; // answered already (deadline, shutdown)
        w.requests.delete(m.id);
        p.resolve({ code: m.code, text: m.text });
        return;
      }
      case 'log':
        for (const line of m.lines) this.writeLine(line);
        return;
    }
  }

  private onExit(w: WorkerProc, code: number | null, signal: NodeJS.Signals | null): void {
    w.state = 'exited';
    w.settleReady({ ok: false, code: 'EWORKER_EXIT', reason: `worker exited (${signal ?? `status ${code}`}) before it was ready` });
    const lost = [...w.requests.values()];
    w.requests.clear();
    for (const p of lost) p.resolve(WORKER_FAILED_REPLY);
    const gen = w.gen;
    const i = gen.workers.indexOf(w);
    if (i >= 0) gen.workers.splice(i, 1);
    if (gen.workers.length === 0 && gen !== this.current) this.generations.delete(gen);
    const expected = w.leaving || this.stopping;
    if (!expected || lost.length > 0) {
      this.log.event('worker-exit', { worker: w.n, pid: w.child.pid ?? 0, status: code ?? '', signal: signal ?? '', unanswered: lost.length }, expected ? 'info' : 'error');
    }
    // a killed worker never removed its temp files
    void sweepStale(gen.pc.config.tmpdir).then((n) => {
      if (n > 0) this.log.event('tmp-swept', { entries: n, reason: `worker ${w.n} (pid ${w.child.pid ?? 0}) exited` });
    });
    if ((!expected || w.condemned) && gen === this.current) this.replace(gen);
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
      const w = this.spawn(gen);
      void w.readyResult.then((r) => {
        if (!r.ok) this.log.event('worker-start-failed', { worker: w.n, code: r.code, reason: r.reason }, 'error');
      });
    }, delay).unref();
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
    if (w.state === 'ready') w.state = 'retiring'; // no more work for it
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

  /** Replaces workers whose resident memory passed worker_memory_limit (their work finishes). */
  private checkMemory(): void {
    const gen = this.current;
    if (!gen || this.stopping) return;
    const limit = gen.pc.config.worker_memory_limit;
    for (const w of gen.workers) {
      if (w.state !== 'ready' || w.replacing) continue;
      const rss = residentBytes(w.child.pid);
      if (rss === undefined || rss <= limit) continue;
      w.replacing = true;
      this.log.event('worker-recycle', { worker: w.n, pid: w.child.pid ?? 0, rss, limit }, 'warning');
      const next = this.spawn(gen);
      void next.readyResult.then((r) => {
        if (r.ok) this.retire(w);
        else {
          w.replacing = false;
          this.log.event('worker-start-failed', { worker: next.n, code: r.code, reason: r.reason }, 'error');
        }
      });
    }
  }
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
