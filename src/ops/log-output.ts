/**
 * Where the daemon's lines go (log_to, log_format, syslog_socket), decided once at start from the
 * config — or from the keys rescued from a config that does not load, so that a config error at
 * start reaches syslog at error severity too. The master writes its own lines through it, and
 * hands the same settings to every worker (WorkerLog), which opens its own syslog socket.
 *
 * Owns: the choice of sink and style, the notices on stderr when syslog cannot be used (once
 * each: the module cannot load — lines then go to stderr —, or the socket is missing at start —
 * lines are lost and counted until a syslog daemon creates it).
 * Fails with nothing.
 */
import type { Level, LogSink, LogStyle } from './log.js';
import { DEFAULT_SYSLOG_SOCKET, SyslogSink, syslogSocketProblem } from './syslog.js';

/** The log keys of the config. */
export interface LogKeys {
  readonly log_to: 'stderr' | 'syslog';
  readonly log_format: 'text' | 'json';
  readonly syslog_socket: string;
}

/** What the master tells each worker about logging (ipc.ts `init`). */
export interface WorkerLog {
  readonly style: LogStyle;
  readonly syslogSocket?: string | undefined;
  /** Overrides the config's log_level (--debug). */
  readonly level?: Level | undefined;
}

export interface LogOutput {
  readonly style: LogStyle;
  readonly sink: LogSink;
  readonly worker: WorkerLog;
  /** Lines lost by the syslog socket (the stderr writer counts its own). */
  lost(): number;
  close(): Promise<void>;
}

export function logKeysOf(c: Partial<LogKeys> | undefined): LogKeys {
  return {
    log_to: c?.log_to ?? 'stderr',
    log_format: c?.log_format ?? 'text',
    syslog_socket: c?.syslog_socket ?? DEFAULT_SYSLOG_SOCKET,
  };
}

/**
 * Opens the output for `keys`. `stderr` is the daemon's stderr writer; `notice` writes a plain
 * line on stderr (what an admin watching a --foreground run, or courierfilter's log, sees).
 */
export function openLogOutput(keys: LogKeys, stderr: LogSink, notice: (text: string) => void, level?: Level): LogOutput {
  const stderrOutput = (format: LogStyle['format']): LogOutput => {
    const style: LogStyle = { format, to: 'stderr' };
    return { style, sink: stderr, worker: { style, level }, lost: () => 0, close: async () => undefined };
  };
  if (keys.log_to !== 'syslog') return stderrOutput(keys.log_format);
  let syslog: SyslogSink;
  try {
    syslog = SyslogSink.open(keys.syslog_socket);
  } catch (err) {
    notice(`avfilter: log_to = "syslog" is not available here (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): logging to stderr`);
    return stderrOutput(keys.log_format);
  }
  const missing = syslogSocketProblem(keys.syslog_socket);
  if (missing !== undefined) {
    notice(`avfilter: log_to = "syslog": ${missing}: log lines are lost (and counted) until a syslog daemon listens there`);
  }
  const style: LogStyle = { format: keys.log_format, to: 'syslog' };
  return {
    style,
    sink: syslog.sink,
    worker: { style, syslogSocket: keys.syslog_socket, level },
    lost: () => syslog.lost,
    close: async () => {
      await syslog.flush(1000);
      syslog.close();
    },
  };
}

/** A worker's sink for `w`: its own syslog socket, or undefined (lines go to the daemon's stderr). */
export function workerSyslog(w: WorkerLog | undefined): SyslogSink | undefined {
  if (w?.style.to !== 'syslog' || w.syslogSocket === undefined) return undefined;
  try {
    return SyslogSink.open(w.syslogSocket);
  } catch {
    // the master could open one, so this should not happen; stderr then
    return undefined;
  }
}
