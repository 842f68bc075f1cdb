/**
 * The master: the process that must never fail (Postfix's master). It owns what keeps Courier's
 * mail flowing — the socket, fd 3, the pid file, signals, reload, the degraded mode — and holds
 * no message data: worker processes (pool.ts) accept the connections on the socket themselves,
 * so no request passes through the master at all.
 *
 * Life cycle (courier-filter-protocol.md §1): fd3-check; signals handled from the first moment
 * (a HUP during start-up must not kill us); config read (parsing, and the default engine chosen, here); the socket
 * bound at DIR/.NAME; workers started and ready (their engines loaded), handed the socket and
 * accepting before it is renamed to DIR/NAME; pid file; fd 3 closed; supervise. The master keeps
 * a copy of the listening socket that it never polls (the first worker to listen sends it back),
 * for the workers it starts later. On stdin EOF / SIGTERM: the socket is removed, every worker
 * stops accepting and finishes its requests for up to shutdown_timeout (the rest get 451), pid
 * file removed, exit 0. HUP / USR1 / USR2 reload (reload.ts): a new generation of workers, the
 * old one finishes its work; the report goes to avfilter_sig's pipe. Watched edits (watch.ts)
 * reload like HUP; SIGWINCH writes the stats report (stats-report.ts) into the pipe.
 *
 * Degraded start: a config that does not parse, or workers that cannot load their engines, do
 * NOT stop the daemon before its socket exists — without a socket Courier would skip the filter
 * and deliver unscanned mail. The socket goes where the (partly readable) config says, and a
 * responder worker answers every message `451 avfilter is not configured: FILE:LINE: ...`,
 * logged at error severity at once and again every minute, until a reload that loads. Should not
 * even a responder start, the master answers so itself on its own copy of the socket.
 *
 * Returns the process exit status; it never calls process.exit itself.
 */
import { fstatSync } from 'node:fs';
import { ConnectionHandler, type Reply, type ServerOptions, type Service } from '../courierfilter/server.js';
import { bindFilterSocket, type FilterSocket } from '../courierfilter/socket.js';
import { releaseCourierfilter, startedByCourierfilter } from '../courierfilter/fd3.js';
import { removePidFile, writePidFile } from '../courierfilter/pidfile.js';
import { configPath, readConfigText, type Config, type ConfigText } from '../config/load.js';
import { resolveConfig } from '../app/default-engine.js';
import { noRealSignatures } from '../app/signatures.js';
import { rescueDaemonKeys, type DaemonKeys } from '../config/rescue.js';
import { TOP_KEYS } from '../config/schema.js';
import { createLogger, guardStderr, routeWarnings, type Level, type Logger } from '../ops/log.js';
import { LogWriter } from '../ops/log-writer.js';
import { logKeysOf, openLogOutput } from '../ops/log-output.js';
import { runKeys } from '../ops/debug-run.js';
import { RateLimiter } from '../ops/rate-limit.js';
import { messageOf } from '../errors.js';
import { WorkerPool, type ListenOptions } from './pool.js';
import { notConfigured as notConfiguredText, WORKER_FAILED_TEXT } from '../courierfilter/replies.js';
import { RELOAD_SIGNALS, mergeKinds, reload, watchTargets, type ReloadHost, type ReloadKind } from './reload.js';
import { answerStats, provideStats, STATS_SIGNAL } from './stats-report.js';
import { FileWatcher } from '../ops/watch.js';
import { MasterStats } from '../ops/master-stats.js';

export interface MasterOptions {
  readonly configFile?: string | undefined;
  readonly foreground: boolean;
  /** Filter name = socket name: the basename of the path avfilter was started as. */
  readonly name: string;
  /** Run as root anyway (by default the daemon refuses: it should run as Courier's user). */
  readonly allowRoot?: boolean;
  /** --debug: socket in the current directory, no pid file, log_level debug (ops/debug-run.ts). */
  readonly debug?: boolean;
}

/** How long past a request's deadline a worker may take before it is killed (its connections close: Courier retries). */
const BACKSTOP_MS = 2000;
/** While degraded, the reason is logged again this often. */
const DEGRADED_REMINDER_MS = 60_000;
/** No worker listening this long after start: the master publishes the socket and answers 451 itself. */
const FIRST_LISTENER_TIMEOUT_MS = 30_000;

const DEFAULT = (key: string): unknown => TOP_KEYS.find((k) => k.key === key)!.default;

export async function runMaster(opts: MasterOptions): Promise<number> {
  guardStderr();
  const writer = new LogWriter();
  const log: Logger = createLogger(writer.sink);
  const setLevel = (level: Level): void => log.setLevel?.(opts.debug ? 'debug' : level);
  routeWarnings(log);
  process.on('uncaughtException', (err) => log.event('master-fault', { reason: err.stack ?? err.message }, 'error'));
  process.on('unhandledRejection', (err) => log.event('master-fault', { reason: messageOf(err) }, 'error'));

  const fromCourierfilter = startedByCourierfilter();
  if (!opts.foreground && !fromCourierfilter) {
    process.stderr.write(
      'avfilter: not started by courierfilter (fd 3 is not its pipe), so it will not install itself as a filter.\n' +
      '  Install it with `filterctl start avfilter` (or a link in /etc/courier/filters/active/),\n' +
      '  run it under another supervisor with --foreground, or test with -t FILE... / --batch-test.\n',
    );
    return 2;
  }
  if (typeof process.geteuid === 'function' && process.geteuid() === 0 && !opts.allowRoot) {
    process.stderr.write(
      'avfilter: refusing to run as root: the filter reads mail and runs scanners, so it runs as\n' +
      "  Courier's user (courierfilter starts it so). Run it as that user, or pass --allow-root.\n",
    );
    return 2;
  }

  // the counters (summed from the workers' beats) and the metrics endpoint; `pool` is read only once it exists
  const stats = new MasterStats(log, () => ({ workers: pool.scanningWorkers, inFlight: pool.inFlight, degraded: problem !== undefined, blockedIps: pool.blockedIps }));

  // From here on, signals are ours: a reload or stop during start-up is remembered, not fatal.
  const signals = new SignalQueue();
  const startedAt = Date.now();

  // ---- config: parsing here (with no [[engine]], a PING to the distribution's clamd); engines are loaded by the workers
  let problem: string | undefined;
  let text: ConfigText | undefined;
  let cfg: Config | undefined;
  try {
    text = readConfigText(opts.configFile);
    cfg = await resolveConfig(text);
    setLevel(cfg.log_level);
  } catch (err) {
    problem = messageOf(err);
  }
  const keys: DaemonKeys = runKeys(cfg ?? rescueDaemonKeys(text?.text ?? ''), opts.debug);
  // log_to / log_format from here on (a config that does not load: the keys rescued from it)
  const output = openLogOutput(logKeysOf(keys), writer.sink, (t) => process.stderr.write(`${t}\n`), opts.debug ? 'debug' : undefined);
  log.setOutput?.(output.sink, output.style);
  setLevel(cfg?.log_level ?? 'info');

  // ---- the socket, bound where Courier does not look yet. Whatever the master accepts on it
  // itself (only when no worker ever took it over) is answered 451.
  const limiter = new RateLimiter();
  const serverOptions = (c: Config | undefined): ServerOptions => ({
    maxLineBytes: c?.max_request_line ?? (DEFAULT('max_request_line') as number),
    maxLines: c?.max_request_lines ?? (DEFAULT('max_request_lines') as number),
    readTimeoutMs: (c?.request_read_timeout ?? (DEFAULT('request_read_timeout') as number)) * 1000,
    requestTimeoutMs: (c?.request_timeout ?? (DEFAULT('request_timeout') as number)) * 1000,
    backstopMs: BACKSTOP_MS,
    onEvent: (event, detail, level) => limiter.event(log, event, detail, level),
  });
  const listenOptions = (c: Config | undefined): ListenOptions => {
    const { onEvent: _, ...rest } = serverOptions(c);
    return rest;
  };
  const notConfigured = (): string => notConfiguredText(problem ?? 'unknown reason');
  const masterService: Service = async (req, call) => {
    const code = problem !== undefined ? 'ENOT_CONFIGURED' : 'EWORKER';
    const fields = { data: req.dataPath, verdict: 'tempfail', action: 'tempfail', reply: 451, code, ms: Date.now() - call.acceptedAt };
    log.message(fields);
    stats.message(fields);
    return { code: 451, text: problem !== undefined ? notConfigured() : WORKER_FAILED_TEXT } satisfies Reply;
  };
  const handler = new ConnectionHandler(masterService, serverOptions(cfg));
  const [dir, otherDir] = keys.all_mode ? [keys.socket_dir_all, keys.socket_dir_optional] : [keys.socket_dir_optional, keys.socket_dir_all];
  let sock: FilterSocket;
  try {
    sock = await bindFilterSocket(dir, otherDir, opts.name, handler.handle);
  } catch (err) {
    process.stderr.write(`avfilter: cannot create the filter socket in ${dir}: ${messageOf(err)}\n`);
    return 1;
  }
  sock.server.on('error', (err) => log.event('socket-error', { reason: messageOf(err) }, 'error'));
  const pool = new WorkerPool(log, (line) => writer.sink(line, 'info'), cfg?.tmpdir, output.worker);
  pool.stats = stats.store;
  // The first worker to accept sends a copy of the socket back: the socket is put in place and
  // the master's own polled server is closed (it must not take connections from the workers).
  let markPublished!: () => void;
  const published = new Promise<void>((r) => { markPublished = r; });
  const serverHandle = (sock.server as unknown as { _handle: unknown })._handle;
  pool.setListener(serverHandle, true, () => {
    try {
      sock.publish();
      sock.server.close();
    } catch (err) {
      log.event('socket-error', { reason: `cannot put the socket in place: ${messageOf(err)}` }, 'error');
    }
    markPublished();
  });

  // ---- the workers: a generation for the config, or a responder (degraded)
  const respond = async (): Promise<void> => {
    const r = await pool.respond({ code: 'ENOT_CONFIGURED', text: notConfigured() }, listenOptions(cfg));
    if (!r.ok) log.event('responder-failed', { code: r.code, reason: r.reason }, 'error');
  };
  if (cfg && text) {
    const r = await pool.start({ config: cfg, text: text.text, source: text.source }, listenOptions(cfg));
    if (!r.ok) problem = r.reason;
  }
  if (problem !== undefined) await respond();
  const waited = await Promise.race([published.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), FIRST_LISTENER_TIMEOUT_MS).unref())]);
  if (!waited) {
    // no process of ours could take the socket: Courier must still find it and get 451s
    log.event('no-worker', { reason: `no worker accepted within ${FIRST_LISTENER_TIMEOUT_MS / 1000} s; the master answers 451`, answer: 451 }, 'error');
    try {
      sock.publish();
    } catch (err) {
      process.stderr.write(`avfilter: cannot create the filter socket in ${dir}: ${messageOf(err)}\n`);
      await pool.stop(0);
      return 1;
    }
  }

  try {
    if (!opts.debug) writePidFile(keys.pid_file);
  } catch (err) {
    log.event('pidfile-error', { path: keys.pid_file, reason: messageOf(err) }, 'error');
  }
  // Only now: courierfilter start returns once every filter closed fd 3.
  releaseCourierfilter();
  if (opts.debug) log.event('debug-run', { socket: sock.path, pid_file: 'none', log_level: 'debug' });
  log.event('started', {
    name: opts.name, socket: sock.path, pid: process.pid, config: text?.source ?? opts.configFile ?? '',
    workers: pool.scanningWorkers, courierfilter: fromCourierfilter,
  });

  await stats.configure(cfg);

  let reminder: NodeJS.Timeout | undefined;
  const degraded = (): void => {
    log.event('degraded', { reason: problem ?? '', answer: 451 }, 'error');
    reminder ??= setInterval(() => {
      if (problem !== undefined) log.event('degraded', { reason: problem, answer: 451 }, 'error');
    }, DEGRADED_REMINDER_MS);
  };
  if (problem !== undefined) degraded();
  const signatureCheck = (c: Config | undefined): void => {
    const none = c && noRealSignatures(c);
    if (none) log.event('no-real-signatures', { reason: none }, 'error');
  };
  if (problem === undefined) signatureCheck(cfg);

  // ---- reload (reload.ts), stats (stats-report.ts) and watched files (watch.ts)
  const host: ReloadHost = {
    configFile: opts.configFile, log, pool, fixed: keys, debug: opts.debug,
    current: () => ({ cfg, text, problem }),
    listenOptions,
    commit: (c, t) => {
      cfg = c;
      text = t;
      setLevel(c.log_level);
      handler.options = serverOptions(c);
      watcher.set(watchTargets(c, t.source, keys.watch));
      const wasDegraded = problem !== undefined;
      problem = undefined;
      void stats.reloaded(true, c).catch((err: unknown) => log.event('master-fault', { reason: messageOf(err) }, 'error'));
      return wasDegraded;
    },
    failed: async (reason) => {
      await stats.reloaded(false);
      if (problem === undefined) return 'previous configuration';
      problem = reason;
      await respond();
      return 'degraded: every message 451';
    },
    signatureCheck: (c) => signatureCheck(c),
  };
  provideStats({ startedAt, scanningWorkers: () => pool.scanningWorkers, generation: () => pool.generation, degraded: () => problem, counters: () => stats.report() });
  const watcher = new FileWatcher(log, (paths) => {
    log.event('watch-reload', { path: paths.join(',') });
    signals.request('all', 'watch');
  });
  watcher.set(watchTargets(cfg, text?.source ?? configPath(opts.configFile).path, keys.watch));

  const reason = await signals.serve({
    reload: (kind, sig) => {
      watcher.covered();
      return reload(kind, sig, host);
    },
    stats: () => answerStats(host),
  }, log);
  watcher.close();

  // ---- shutdown
  clearInterval(reminder);
  log.event('stopping', { reason });
  await sock.close();
  const graceMs = (cfg?.shutdown_timeout ?? (DEFAULT('shutdown_timeout') as number)) * 1000;
  const [stragglers] = await Promise.all([handler.drain(graceMs), pool.stop(graceMs)]);
  if (!opts.debug) removePidFile(keys.pid_file);
  await stats.close();
  // the counters since start, once, for whoever reads the log after the daemon is gone
  for (const line of stats.report()) log.event('stats', { text: line });
  const lost = writer.lost + output.lost() + pool.lostLogLines;
  log.event('stopped', { reason, ...(stragglers > 0 ? { unfinished: stragglers } : {}), ...(lost > 0 ? { log_lines_lost: lost } : {}) });
  await output.close();
  await writer.flush(2000);
  return 0;
}

/**
 * Signals and stdin, from the start: HUP / USR1 / USR2 ask for a reload (reload.ts: all,
 * config, virus; several while one runs make one more, of the union of their kinds), so does a
 * watched edit; STATS_SIGNAL asks for the stats report; SIGTERM / SIGINT / stdin EOF (only when
 * stdin is a pipe, as courierfilter gives it — a terminal or /dev/null under --foreground must
 * not stop the daemon) ask to stop.
 */
class SignalQueue {
  private stopReason: string | undefined;
  private wake: (() => void) | undefined;
  private kind: ReloadKind | undefined;
  private asked: string[] = [];
  private statsAsked = false;

  constructor() {
    const stop = (why: string): void => {
      this.stopReason ??= why;
      this.wake?.();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    for (const [s, kind] of Object.entries(RELOAD_SIGNALS)) process.on(s, () => this.request(kind, s));
    process.on(STATS_SIGNAL, () => {
      this.statsAsked = true;
      this.wake?.();
    });
    if (stdinIsPipe()) {
      process.stdin.on('data', () => undefined); // courierfilter sends nothing; discard anyway
      process.stdin.on('end', () => stop('stdin-eof'));
      process.stdin.on('close', () => stop('stdin-eof'));
      process.stdin.on('error', () => stop('stdin-error'));
      process.stdin.resume();
    }
  }

  /** A reload of `kind`, asked for by `why` (a signal's name, or `watch`). */
  request(kind: ReloadKind, why: string): void {
    this.kind = mergeKinds(this.kind, kind);
    this.asked.push(why);
    this.wake?.();
  }

  /** Runs reloads and stats reports one at a time until asked to stop; resolves with why. */
  async serve(handlers: { reload(kind: ReloadKind, sig: string): Promise<void>; stats(): Promise<void> }, log: Logger): Promise<string> {
    for (;;) {
      if (this.stopReason !== undefined) break;
      const kind = this.kind;
      if (kind !== undefined) {
        // Several requests queued while one reload ran: one more reload covers them all.
        const [first, ...more] = this.asked;
        this.kind = undefined;
        this.asked = [];
        try {
          await handlers.reload(kind, more.length > 0 ? `${first}+${more.length}` : first!);
        } catch (err) {
          log.event('reload-failed', { signal: first ?? '', reason: messageOf(err) }, 'error');
        }
        continue;
      }
      if (this.statsAsked) {
        this.statsAsked = false;
        try {
          await handlers.stats();
        } catch (err) {
          log.event('stats-failed', { reason: messageOf(err) }, 'error');
        }
        continue;
      }
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = undefined;
    }
    process.stdin.pause();
    return this.stopReason!;
  }
}

function stdinIsPipe(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}
