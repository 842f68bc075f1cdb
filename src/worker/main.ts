/**
 * A worker process: where the work of a message happens, from the accepted connection to the
 * reply — reading the request, MIME, engines, actions — away from the master, which owns the
 * socket's life cycle and supervises. Started by the master (master/pool.ts) with
 * child_process.fork; talks to it only over the IPC channel (ipc.ts), and never about a request.
 *
 * Life: `init` → build the runtime (the one validation path, app/runtime.ts) → `ready` or
 * `failed` → `listen` (the listening socket's handle) → accept and serve → `retire` (stop
 * accepting, finish what is in hand, exit 0). A responder (`init` with a reply text) loads
 * nothing and answers every request 451 with that text: the daemon's degraded mode, and the
 * stand-in while no scanning worker is ready.
 *
 * Crash-only: an uncaught fault exits at once with status 70; the connections it held are closed
 * by the kernel, which Courier answers with a temporary failure (nothing is lost: the senders
 * retry), and the master starts another. A heartbeat once a second tells the master how many
 * requests it holds and the earliest deadline among them: a worker that lets a deadline pass by
 * the backstop, or whose heartbeat stops (its event loop is stuck), is killed. When the master
 * goes away (the channel closes) the worker stops accepting, finishes what it holds and exits.
 * Idle for IDLE_GC_AFTER_MS after a request, it collects its garbage once when it holds enough to
 * give back (worthCollecting: buffers or heap of a large message; memory that comes
 * back; the master replaces a worker that stays big, master/idle-recycle.ts). The heartbeat
 * also counts the requests answered, so the master knows an idle worker from a busy one.
 * Log lines go to the daemon's stderr (a descriptor the master hands over), whole lines at a
 * time; its own stderr is read by the master, so stray output is logged as an event.
 */
import { createServer, type Server } from 'node:net';
import { parseConfig, type Config } from '../config/load.js';
import { createRuntime, type Runtime } from '../app/runtime.js';
import { ConnectionHandler, type Service, type ServerOptions } from '../courierfilter/server.js';
import { createLogger, routeWarnings, STDERR_TEXT, type Level, type LogSink, type LogStyle, type Logger } from '../ops/log.js';
import { workerSyslog } from '../ops/log-output.js';
import type { SyslogSink } from '../ops/syslog.js';
import { RateLimiter } from '../ops/rate-limit.js';
import { codeOf, messageOf } from '../errors.js';
import { FdLog } from '../ops/fd-log.js';
import { isToWorker, type FromWorker, type ToWorker } from './ipc.js';
import { RequestService } from './service.js';
import { StatsRecorder } from '../ops/stats.js';
import { countedRuntime } from './counted-engines.js';
import { IDLE_GC_AFTER_MS, IDLE_GC_ROUNDS } from './idle-gc.js';

/** Exit status of a worker that hit a fault it cannot vouch for (EX_SOFTWARE). */
const EXIT_FAULT = 70;
const HEARTBEAT_MS = 1000;


function send(m: FromWorker, handle?: unknown): void {
  try {
    if (process.connected) process.send!(m, handle as never);
  } catch {
    // The master is gone; 'disconnect' ends this process.
  }
}

/**
 * Log lines go to the daemon's stderr directly (fd-log.ts) when the master handed this worker
 * its descriptor (`logFd`): a message's line then costs the master nothing. Until then (and
 * without one) they go to the master at the end of the turn of the event loop in which they
 * were written, one IPC message for every line of that turn.
 */
let direct: FdLog | undefined;
/** log_to = "syslog": this worker's own socket (the master says so in `init`). */
let syslog: SyslogSink | undefined;
let style: LogStyle = STDERR_TEXT;
let levelOverride: Level | undefined;
let lines: string[] = [];
const sink: LogSink = (line, level) => {
  if (syslog !== undefined) return syslog.sink(line, level);
  if (direct !== undefined) return direct.sink(line, level);
  if (lines.length === 0) setImmediate(flushLines);
  lines.push(line);
};
function flushLines(): void {
  if (lines.length > 0) send({ t: 'log', lines: lines.splice(0) });
  direct?.flushSync();
}

let rt: Runtime | undefined;
let log: Logger = createLogger(sink);
let service: Service | undefined;
let handler: ConnectionHandler | undefined;
let server: Server | undefined;
let leaving = false;
let dying = false;
let workerNo = 0;
/** The counters since the last beat; the master sums them (a SIGKILL loses at most one beat's). */
const stats = new StatsRecorder();

function fault(what: string, err: unknown): void {
  if (dying) return;
  dying = true;
  log.event('worker-fault', { pid: process.pid, what, reason: err instanceof Error ? err.stack ?? err.message : String(err) }, 'error');
  flushStats();
  flushLines();
  // Give the IPC channel a moment to carry the line, then go: state after a fault is unknown.
  setTimeout(() => process.exit(EXIT_FAULT), 100);
}

process.on('uncaughtException', (err) => fault('uncaught exception', err));
process.on('unhandledRejection', (err) => fault('unhandled rejection', err));
process.on('disconnect', () => void leave(undefined));
// Signals are the master's business: a worker is told what to do over the channel.
for (const s of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT'] as const) process.on(s, () => undefined);
process.on('SIGTERM', () => process.exit(0));

/** Requests answered since start, and when a request last ended (or this worker started). */
let served = 0;
let lastActive = Date.now();
/** Set once the garbage of the last requests has been collected (nothing to collect at start). */
let collected = true;

/** The largest resident size seen at a beat since the last idle collection (see worthCollecting). */
let peakRss = 0;

const heartbeat = setInterval(() => {
  const busy = handler?.pending ?? 0;
  if (busy > 0) {
    lastActive = Date.now();
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  } else if (!collected && Date.now() - lastActive >= IDLE_GC_AFTER_MS) {
    collected = true;
    collectGarbage(peakRss);
    peakRss = 0;
  }
  send({ t: 'beat', busy, oldestDeadline: handler?.oldestDeadline ?? 0, served, ...(lostLines() > 0 ? { lostLines: lostLines() } : {}), stats: stats.take() });
}, HEARTBEAT_MS);

function lostLines(): number {
  return (direct?.lost ?? 0) + (syslog?.lost ?? 0);
}

/** The last counts before this worker goes (a beat of their own, so the master keeps them). */
function flushStats(): void {
  const d = stats.take();
  if (d !== undefined) send({ t: 'beat', busy: handler?.pending ?? 0, oldestDeadline: handler?.oldestDeadline ?? 0, served, stats: d });
}

/**
 * Idle: a full collection now frees what the last messages left (large buffers are outside the
 * JS heap and freed only when their objects are collected, which an idle heap may not do for a
 * long time); the allocator then gives the pages back. Needs --expose-gc (the master starts
 * workers with it); without it, nothing is done.
 */
function collectGarbage(peak: number): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return;
  if (!worthCollecting(process.memoryUsage(), peak, rt?.config.worker_idle_memory_limit ?? 0)) return;
  // more than one round: objects freed by one round's finalizers are collected by the next
  for (let i = 0; i < IDLE_GC_ROUNDS; i++) gc();
}

/**
 * Buffers (their memory is outside the JS heap) and JS heap in use above these: the idle
 * collection has memory to give back. Below them it is not worth what it costs: forced full
 * collections leave the worker slower for its next messages (measured on the bench mix, 300
 * messages after each idle pause of 5 s: 2.9-3.1 ms of CPU per message with a collection at
 * every pause, 2.1-2.2 without), and ordinary traffic leaves some 20 MiB of buffers and 10-20
 * MiB of heap behind, which the next messages' own collections free anyway. A worker that is,
 * or was while it worked (`peak`, the largest resident size seen at a beat), above
 * worker_idle_memory_limit (`limit`, 0: none) is collected whatever it holds now: large
 * messages came through (8 of 30 MB at once leave a worker at ~93 MiB without a collection,
 * ~70 with one), and above the limit the master would replace it (master/idle-recycle.ts), a
 * fresh worker's start-up and warm-up. Small messages keep it below (83-93 MB on the mix).
 */
const IDLE_GC_BUFFER_BYTES = 48 * 1024 * 1024;
const IDLE_GC_HEAP_BYTES = 64 * 1024 * 1024;

function worthCollecting(m: NodeJS.MemoryUsage, peak: number, limit: number): boolean {
  return m.arrayBuffers > IDLE_GC_BUFFER_BYTES || m.external > IDLE_GC_BUFFER_BYTES || m.heapUsed > IDLE_GC_HEAP_BYTES
    || (limit > 0 && Math.max(m.rss, peak) > limit);
}

function scanningService(runtime: Runtime, slots: number): Service {
  const requests = new RequestService(runtime, log, slots, stats);
  return async (req, call) => {
    collected = false;
    lastActive = Date.now();
    try {
      return await requests.serve(req, call, call.signal);
    } finally {
      served++;
      lastActive = Date.now();
    }
  };
}

function responderService(reply: { code: string; text: string }): Service {
  return async (req, call) => {
    const fields = { data: req.dataPath, verdict: 'tempfail', action: 'tempfail', reply: 451, code: reply.code, ms: Date.now() - call.acceptedAt };
    log.message(fields);
    stats.message(fields);
    return { code: 451, text: reply.text };
  };
}

function init(m: Extract<ToWorker, { t: 'init' }>): void {
  workerNo = m.worker;
  if (m.logFd !== undefined) {
    flushLines();
    direct = new FdLog(m.logFd);
  }
  syslog = workerSyslog(m.log);
  // the master's style, but stderr's when this worker could not open a syslog socket of its own
  if (m.log !== undefined) style = syslog !== undefined ? m.log.style : { format: m.log.style.format, to: 'stderr' };
  levelOverride = m.log?.level;
  if ('responder' in m) {
    log = createLogger(sink, levelOverride ?? (m.logLevel as Level), style);
    service = responderService(m.responder);
    send({ t: 'ready', engines: [] });
    return;
  }
  let cfg: Config;
  try {
    cfg = parseConfig(m.configText, m.source, m.parse); // the master's choice of default engine
    rt = countedRuntime(createRuntime(cfg, {
      makeTmpdir: true, checkOwner: true, processes: m.processes,
      // a block this worker sets goes to the master, which tells every other worker
      shareBlock: (ip, until) => send({ t: 'block', ip, until }),
      engineEvent: (event, fields) => log.event(event, { worker: workerNo, ...fields }, 'warning'),
    }), stats);
  } catch (err) {
    send({ t: 'failed', code: codeOf(err) ?? 'ECONFIG', reason: messageOf(err) });
    setTimeout(() => process.exit(0), 50).unref();
    return;
  }
  log = createLogger(sink, levelOverride ?? cfg.log_level, style);
  routeWarnings(log);
  service = scanningService(rt, m.slots);
  send({ t: 'ready', engines: rt.engines.map((e) => e.label) });
}

function listen(m: Extract<ToWorker, { t: 'listen' }>, handle: unknown): void {
  if (service === undefined || server !== undefined || leaving || handle === undefined || handle === null) return;
  const limiter = new RateLimiter();
  const opts: ServerOptions = {
    maxLineBytes: m.maxLineBytes, maxLines: m.maxLines, readTimeoutMs: m.readTimeoutMs,
    requestTimeoutMs: m.requestTimeoutMs, backstopMs: m.backstopMs,
    onEvent: (event, detail, level) => limiter.event(log, event, detail, level),
  };
  handler = new ConnectionHandler(service, opts);
  server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, handler.handle);
  server.on('error', (err) => fault('listening socket', err));
  // the handle is the master's listening socket (a dup of its descriptor): accept on it
  server.listen({ _handle: handle } as never, () => {
    send({ t: 'listening' }, m.echo ? handle : undefined);
  });
}

/** Stop accepting, finish (or, after graceMs, answer 451) what is in hand, release, exit 0. */
async function leave(graceMs: number | undefined): Promise<void> {
  if (leaving) return;
  leaving = true;
  server?.close();
  if (handler !== undefined) {
    if (graceMs !== undefined) {
      // shutdown: what is still unanswered after graceMs is answered 451 (and counted)
      const unfinished = await handler.drain(graceMs);
      if (unfinished > 0) log.event('drained', { worker: workerNo, unfinished });
    } else {
      while (handler.pending > 0) await new Promise((r) => setTimeout(r, 20));
    }
  }
  clearInterval(heartbeat);
  flushStats();
  flushLines();
  await direct?.drain(1000);
  await syslog?.flush(1000);
  setTimeout(() => process.exit(0), 2000).unref();
  await rt?.close().catch(() => undefined);
  // the last lines need a turn of the loop to leave
  setImmediate(() => process.exit(0));
}

process.on('message', (m: unknown, handle: unknown) => {
  if (!isToWorker(m)) return;
  switch (m.t) {
    case 'init':
      init(m);
      return;
    case 'listen':
      listen(m, handle);
      return;
    case 'retire':
      void leave(m.graceMs);
      return;
    case 'blocks':
      rt?.blocks?.apply(m.entries);
      return;
  }
});
