/**
 * A worker process: where the work of a message happens (reading, MIME, engines, actions), away
 * from the master that owns the socket. Started by the master (master/pool.ts) with
 * child_process.fork; talks to it only over the IPC channel (ipc.ts).
 *
 * Life: `init` (config text) → build the runtime (the one validation path, app/runtime.ts) →
 * `ready` or `failed` → requests → `retire` (finish what is in hand, exit 0). Crash-only: an
 * uncaught fault exits at once with status 70; the master answers this worker's requests 451
 * (nothing is lost: the senders retry) and starts another. When the master goes away (the
 * channel closes) the worker exits: its replies could reach no one.
 * Logs go to the master as finished lines; this process never writes to stderr itself.
 */
import { parseConfig, type Config } from '../config/load.js';
import { createRuntime, type Runtime } from '../app/runtime.js';
import { createLogger, routeWarnings, type LogSink } from '../ops/log.js';
import { codeOf, messageOf } from '../errors.js';
import { isToWorker, type FromWorker, type ToWorker } from './ipc.js';
import { RequestService } from './service.js';

/** Exit status of a worker that hit a fault it cannot vouch for (EX_SOFTWARE). */
const EXIT_FAULT = 70;

function send(m: FromWorker): void {
  try {
    if (process.connected) process.send!(m);
  } catch {
    // The master is gone; 'disconnect' ends this process.
  }
}

/**
 * Log lines wait for the next message to the master: a request's line travels with its reply
 * (one IPC message per request, not two); lines written outside a request go at the end of
 * the turn of the event loop.
 */
let lines: string[] = [];
const sink: LogSink = (line) => {
  if (lines.length === 0) setImmediate(flushLines);
  lines.push(line);
};
function flushLines(): void {
  if (lines.length > 0) send({ t: 'log', lines: lines.splice(0) });
}
function takeLines(): string[] | undefined {
  return lines.length > 0 ? lines.splice(0) : undefined;
}

let rt: Runtime | undefined;
let service: RequestService | undefined;
let retiring = false;
const stops = new Map<number, AbortController>();

let dying = false;

function fault(what: string, err: unknown): void {
  if (dying) return;
  dying = true;
  createLogger(sink).event('worker-fault', { pid: process.pid, what, reason: err instanceof Error ? err.stack ?? err.message : String(err) }, 'error');
  flushLines();
  // Give the IPC channel a moment to carry the line, then go: state after a fault is unknown.
  setTimeout(() => process.exit(EXIT_FAULT), 100);
}

process.on('uncaughtException', (err) => fault('uncaught exception', err));
process.on('unhandledRejection', (err) => fault('unhandled rejection', err));
process.on('disconnect', () => process.exit(0));
// Signals are the master's business: a worker is told what to do over the channel.
for (const s of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT'] as const) process.on(s, () => undefined);
process.on('SIGTERM', () => process.exit(0));

function maybeExit(): void {
  if (retiring && (service?.pending ?? 0) === 0) {
    void rt?.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  }
}

async function init(m: Extract<ToWorker, { t: 'init' }>): Promise<void> {
  let cfg: Config;
  try {
    cfg = parseConfig(m.configText, m.source);
    rt = createRuntime(cfg, { makeTmpdir: true, checkOwner: true, processes: m.processes });
  } catch (err) {
    send({ t: 'failed', code: codeOf(err) ?? 'ECONFIG', reason: messageOf(err) });
    setTimeout(() => process.exit(0), 50).unref();
    return;
  }
  const log = createLogger(sink, cfg.log_level);
  routeWarnings(log);
  service = new RequestService(rt, log, m.slots);
  send({ t: 'ready', engines: rt.engines.map((e) => e.label) });
}

process.on('message', (m: unknown) => {
  if (!isToWorker(m)) return;
  switch (m.t) {
    case 'init':
      void init(m);
      return;
    case 'req': {
      if (!service || dying) {
        send({ t: 'reply', id: m.id, code: 451, text: '4.3.0 Virus filter worker not ready, try again later' });
        return;
      }
      const stop = new AbortController();
      stops.set(m.id, stop);
      void service.serve({ dataPath: m.dataPath, controlPaths: [...m.controlPaths] }, m, stop.signal).then((r) => {
        stops.delete(m.id);
        send({ t: 'reply', id: m.id, code: r.code, text: r.text, lines: takeLines() });
        maybeExit();
      });
      return;
    }
    case 'abort':
      stops.get(m.id)?.abort();
      return;
    case 'retire':
      retiring = true;
      maybeExit();
      return;
  }
});
