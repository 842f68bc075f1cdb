/**
 * The filter daemon's life cycle (courier-filter-protocol.md §1): fd3-check, config and engines
 * loaded before the socket appears, socket in allfilters (or filters), pid file, fd 3 closed,
 * serve, and on stdin EOF / SIGTERM: stop accepting, drain, remove socket and pid file, exit 0.
 *
 * Returns the process exit status; it never calls process.exit itself.
 */
import { fstatSync } from 'node:fs';
import { createFilterSocket, type FilterSocket } from '../courierfilter/socket.js';
import { ConnectionHandler } from '../courierfilter/server.js';
import { releaseCourierfilter, startedByCourierfilter } from '../courierfilter/fd3.js';
import { removePidFile, writePidFile } from '../courierfilter/pidfile.js';
import { loadConfig, type Config } from '../config/load.js';
import { handleRequest } from './handle-request.js';
import { stderrLogger, type Logger } from './log.js';
import { createRuntime, type Runtime } from './runtime.js';

/** How long engines get to release their resources at exit. */
const ENGINE_CLOSE_WAIT_MS = 2000;

export interface DaemonOptions {
  readonly configFile?: string | undefined;
  readonly foreground: boolean;
  /** Filter name = socket name: the basename of the path avfilter was started as. */
  readonly name: string;
  readonly logger?: Logger;
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const log = opts.logger ?? stderrLogger();
  const fromCourierfilter = startedByCourierfilter();
  if (!opts.foreground && !fromCourierfilter) {
    process.stderr.write(
      'avfilter: not started by courierfilter (fd 3 is not its pipe), so it will not install itself as a filter.\n' +
      '  Install it with `filterctl start avfilter` (or a link in /etc/courier/filters/active/),\n' +
      '  run it under another supervisor with --foreground, or test with -t FILE... / --batch-test.\n',
    );
    return 2;
  }

  let rt: Runtime;
  try {
    rt = createRuntime(loadConfig(opts.configFile));
  } catch (err) {
    process.stderr.write(`avfilter: ${messageOf(err)}\n`);
    return 2;
  }
  const cfg = rt.config;
  const handler = new ConnectionHandler(
    async (req, signal) => (await handleRequest(req, rt, log, signal)).reply,
    {
      maxLineBytes: cfg.max_request_line,
      maxLines: cfg.max_request_lines,
      readTimeoutMs: cfg.request_read_timeout * 1000,
      requestTimeoutMs: cfg.request_timeout * 1000,
      maxConcurrent: cfg.max_connections,
      onEvent: (event, detail) => log.event(event, detail),
    },
  );

  const [dir, otherDir] = cfg.all_mode ? [cfg.socket_dir_all, cfg.socket_dir_optional] : [cfg.socket_dir_optional, cfg.socket_dir_all];
  let sock: FilterSocket;
  try {
    sock = await createFilterSocket(dir, otherDir, opts.name, handler.handle);
  } catch (err) {
    process.stderr.write(`avfilter: cannot create the filter socket in ${dir}: ${messageOf(err)}\n`);
    await rt.close();
    return 1;
  }
  sock.server.on('error', (err) => log.event('socket-error', { reason: messageOf(err) }));
  try {
    writePidFile(cfg.pid_file);
  } catch (err) {
    log.event('pidfile-error', { path: cfg.pid_file, reason: messageOf(err) });
  }
  // Only now: courierfilter start returns once every filter closed fd 3.
  releaseCourierfilter();
  log.event('started', {
    name: opts.name, socket: sock.path, pid: process.pid, config: cfg.source,
    engines: rt.engines.map((e) => e.label), courierfilter: fromCourierfilter,
  });

  const reason = await waitForShutdown(log, () => rt, (next) => {
    const old = rt;
    rt = next;
    void old.close();
  }, opts.configFile);

  log.event('stopping', { reason, pending: handler.pending });
  await sock.close();
  const stragglers = await handler.drain(cfg.shutdown_timeout * 1000);
  removePidFile(cfg.pid_file);
  // Engines may hold unref'd resources (idle worker threads) whose release alone would not keep
  // the event loop alive: bound the wait with a timer that does.
  await Promise.race([rt.close(), new Promise((r) => setTimeout(r, ENGINE_CLOSE_WAIT_MS))]);
  log.event('stopped', { reason, unfinished: stragglers });
  return 0;
}

/**
 * Resolves when it is time to go: stdin EOF (only when stdin is a pipe, as courierfilter gives
 * it — a terminal or /dev/null under --foreground must not stop the daemon), SIGTERM or SIGINT.
 * HUP / USR1 / USR2 reload the config and engines; a failed reload keeps the old ones.
 */
function waitForShutdown(log: Logger, current: () => Runtime, swap: (rt: Runtime) => void, configFile: string | undefined): Promise<string> {
  return new Promise((resolve) => {
    let done = false;
    const stop = (why: string) => {
      if (done) return;
      done = true;
      for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.removeAllListeners(s);
      process.stdin.pause();
      resolve(why);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const reload = (sig: string) => {
      try {
        const cfg: Config = loadConfig(configFile);
        const prev = current().config;
        for (const key of ['all_mode', 'socket_dir_all', 'socket_dir_optional', 'pid_file'] as const) {
          if (cfg[key] !== prev[key]) log.event('reload-warning', { key, reason: 'takes effect only after a restart' });
        }
        swap(createRuntime(cfg));
        log.event('reloaded', { signal: sig, config: cfg.source });
      } catch (err) {
        log.event('reload-failed', { signal: sig, reason: messageOf(err), kept: 'previous configuration' });
      }
    };
    for (const s of ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(s, () => reload(s));
    if (stdinIsPipe()) {
      process.stdin.on('data', () => undefined); // courierfilter sends nothing; discard anyway
      process.stdin.on('end', () => stop('stdin-eof'));
      process.stdin.on('close', () => stop('stdin-eof'));
      process.stdin.on('error', () => stop('stdin-error'));
      process.stdin.resume();
    }
  });
}

function stdinIsPipe(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
