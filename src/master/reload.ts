/**
 * Reloads an admin can trust: what each kind of reload does, the report written into
 * avfilter_sig's pipe, and keeping the old state when the new one does not load.
 *
 * Kinds (the signal, avfilter_sig's argument):
 *   all    SIGHUP,  `reload`         the config file is read again, a new generation of workers
 *                                    loads it (the YARA rules are compiled again from their
 *                                    files), and clamd is asked to reload (reload_clamd = true)
 *   config SIGUSR1, `reload config`  the config file is read again and a new generation loads it;
 *                                    clamd is not asked
 *   virus  SIGUSR2, `reload virus`   the config in force is kept (the file is NOT read again, so a
 *                                    half-edited file cannot slip in with freshclam's update); a new
 *                                    generation compiles the YARA rules again; clamd is asked to
 *                                    reload (reload_clamd = true)
 * A worker process cannot take over another's compiled rules, so every generation compiles the
 * rules it is configured with: a config reload picks up edited rule files too. Requests queued
 * while a reload runs are merged into one more reload of the union of their kinds.
 *
 * A reload that does not load (config, engines, workers) changes nothing: the old generation
 * keeps serving (or the degraded responder keeps answering 451) and the reason is reported. Keys
 * read only at start (socket directories, all_mode, pid_file) are reported as needing a restart;
 * so is the filter name, which is the program's name and not a key at all.
 *
 * Inputs: the master's state and its worker pool (ReloadHost). Outputs: log events
 * (`reloaded`, `reload-failed`, `reload-warning`, `clamd-reload`) and the pipe report. Never
 * rejects: every failure is reported.
 */
import { BUILT_IN, readConfigText, type Config, type ConfigText } from '../config/load.js';
import { resolveConfig } from '../app/default-engine.js';
import { signatureLines } from '../app/signatures.js';
import { rescueDaemonKeys, type DaemonKeys } from '../config/rescue.js';
import { formatServer, parseServer } from '../engines/clamd/address.js';
import { reload as clamdReload } from '../engines/clamd/client.js';
import { DEFAULT_RULES_DIR } from '../engines/yara/rules.js';
import type { Logger } from '../ops/log.js';
import type { WatchTargets } from '../ops/watch.js';
import { openReportPipe, STATUS_OK, statusError, type ReportPipe } from '../ops/sig-pipe.js';
import { messageOf } from '../errors.js';
import type { ListenOptions, WorkerPool } from './pool.js';

export type ReloadKind = 'all' | 'config' | 'virus';

/** The signals that ask for a reload, and what each asks for. */
export const RELOAD_SIGNALS: Readonly<Record<'SIGHUP' | 'SIGUSR1' | 'SIGUSR2', ReloadKind>> = {
  SIGHUP: 'all',
  SIGUSR1: 'config',
  SIGUSR2: 'virus',
};

/** The union of two requests: config + virus is all. */
export function mergeKinds(a: ReloadKind | undefined, b: ReloadKind): ReloadKind {
  if (a === undefined || a === b) return b;
  return 'all';
}

const WHAT: Record<ReloadKind, string> = {
  all: 'config and signatures',
  config: 'config only',
  virus: 'signatures only',
};

/** Keys the daemon reads only at start. */
const RESTART_KEYS = ['all_mode', 'socket_dir_all', 'socket_dir_optional', 'pid_file', 'log_to', 'log_format', 'syslog_socket'] as const;

/** RELOAD's own bound: clamd answers at once and loads in the background. */
const CLAMD_RELOAD_REPLY_MS = 10_000;
/** VERSION of each clamd for the report. */
const VERSION_TIMEOUT_MS = 5_000;

/** What the master holds and lets a reload change. */
export interface ReloadHost {
  readonly configFile: string | undefined;
  readonly log: Logger;
  readonly pool: WorkerPool;
  /** Keys in effect since start (the socket's place, the pid file, where the log goes). */
  readonly fixed: DaemonKeys;
  /** --debug: the socket's place and the pid file are the debug run's, whatever the config says. */
  readonly debug?: boolean | undefined;
  /** The config and text serving now (undefined while degraded), and the degraded reason. */
  current(): { cfg: Config | undefined; text: ConfigText | undefined; problem: string | undefined };
  listenOptions(c: Config): ListenOptions;
  /** The new generation serves: the master takes the config; true when it left degraded mode. */
  commit(cfg: Config, text: ConfigText): boolean;
  /** The reload did not load: the master keeps what it had and says what that is. */
  failed(reason: string): Promise<string>;
  /** Logs no-real-signatures when the engines know only test signatures. */
  signatureCheck(c: Config): void;
}

/** Counts for the stats report. */
export const reloadCounts = { done: 0, failed: 0, lastAt: 0 };

/** Where avfilter_sig waits: the `pipe` key of the file as it is now, read as avfilter_sig reads it. */
export function pipePath(host: ReloadHost): string {
  try {
    return rescueDaemonKeys(readConfigText(host.configFile).text).pipe;
  } catch {
    return host.current().cfg?.pipe ?? host.fixed.pipe;
  }
}

/** Opens the report pipe when avfilter_sig waits on it; logs a pipe refused (a symlink, not a FIFO). */
export function openReport(host: ReloadHost): ReportPipe | undefined {
  const path = pipePath(host);
  const r = openReportPipe(path);
  if (r.refused !== undefined) host.log.event('pipe-refused', { path, reason: r.refused }, 'warning');
  return r.pipe;
}

/** One reload; `sig` says what asked for it (a signal, several merged, or `watch`). */
export async function reload(kind: ReloadKind, sig: string, host: ReloadHost): Promise<void> {
  const report = openReport(host);
  const say = (line: string): void => report?.line(line);
  say(`reload: ${WHAT[kind]} (${sig})`);
  const finish = async (status: string): Promise<void> => {
    if (report) await report.end(status);
  };

  const now = host.current();
  let cfg: Config;
  let text: ConfigText;
  try {
    if (kind === 'virus' && now.cfg && now.text) {
      cfg = now.cfg;
      text = now.text;
      say(`config: kept in force from ${text.source} (not read again)`);
    } else {
      text = readConfigText(host.configFile);
      cfg = await resolveConfig(text);
      say(`config: read ${text.source}`);
    }
  } catch (err) {
    return fail(host, kind, sig, messageOf(err), say, finish);
  }

  const clamdErrors = kind === 'config' ? [] : await reloadClamd(cfg, host, say);

  const r = await host.pool.start({ config: cfg, text: text.text, source: text.source }, host.listenOptions(cfg));
  if (!r.ok) return fail(host, kind, sig, r.reason, say, finish);
  const restored = host.commit(cfg, text);
  reloadCounts.done++;
  reloadCounts.lastAt = Date.now();
  say(`workers: ${host.pool.scanningWorkers} in generation ${host.pool.generation}${restored ? ' (service restored: no longer answering 451)' : ''}; the previous generation finishes its requests`);
  for (const key of RESTART_KEYS) {
    if (!host.debug && cfg[key] !== host.fixed[key]) {
      host.log.event('reload-warning', { key, reason: 'takes effect only after a restart' }, 'warning');
      say(`restart needed: ${key} = ${JSON.stringify(cfg[key])} takes effect only after a restart (in effect: ${JSON.stringify(host.fixed[key])})`);
    }
  }
  host.log.event('reloaded', {
    signal: sig, kind, config: cfg.source, workers: host.pool.scanningWorkers, generation: host.pool.generation,
    ...(restored ? { service: 'restored' } : {}),
  });
  host.signatureCheck(cfg);
  if (report) {
    for (const line of await signatureLines(cfg, VERSION_TIMEOUT_MS)) say(line.replace(/^# /, ''));
  }
  await finish(clamdErrors.length > 0 ? statusError(`avfilter reloaded, but ${clamdErrors.join('; ')}`) : STATUS_OK);
}

async function fail(host: ReloadHost, kind: ReloadKind, sig: string, reason: string, say: (l: string) => void, finish: (s: string) => Promise<void>): Promise<void> {
  reloadCounts.failed++;
  const kept = await host.failed(reason);
  host.log.event('reload-failed', { signal: sig, kind, reason, kept }, 'error');
  say(`error: ${reason}`);
  say(`kept: ${kept}`);
  await finish(statusError(`${reason} (kept: ${kept})`));
}

/** RELOAD to every server of each clamd engine with reload_clamd; returns what failed. */
async function reloadClamd(cfg: Config, host: ReloadHost, say: (l: string) => void): Promise<string[]> {
  const errors: string[] = [];
  for (const e of cfg.engine) {
    if (e.type !== 'clamd') continue;
    if (!e.reload_clamd) {
      say(`clamd at ${e.servers.join(', ')}: not asked to reload (reload_clamd = false: freshclam's NotifyClamd or clamd's SelfCheck reloads it)`);
      continue;
    }
    for (const s of e.servers) {
      const addr = parseServer(s);
      const where = formatServer(addr);
      const connectTimeoutMs = Math.max(1, Math.round(e.connect_timeout * 1000));
      const r = await clamdReload(addr, { connectTimeoutMs, replyTimeoutMs: CLAMD_RELOAD_REPLY_MS, signal: AbortSignal.timeout(connectTimeoutMs + CLAMD_RELOAD_REPLY_MS) });
      if (r.ok) {
        host.log.event('clamd-reload', { server: where, reply: r.reply });
        say(`clamd at ${where}: RELOAD answered RELOADING (clamd loads its database in the background and scans with the old one until then)`);
      } else {
        host.log.event('clamd-reload', { server: where, code: r.code, reason: r.message }, 'error');
        say(`error: clamd at ${where} did not reload: ${r.message}`);
        errors.push(`clamd at ${where} did not reload: ${r.message}`);
      }
    }
  }
  return errors;
}

/**
 * What the watcher watches for a config (undefined: nothing, `watch = false`). While degraded
 * (no config) only the config file, and only when its text does not say `watch = false`.
 */
export function watchTargets(cfg: Config | undefined, source: string | undefined, rescuedWatch: boolean): WatchTargets | undefined {
  if (!(cfg ? cfg.watch : rescuedWatch)) return undefined;
  const configFile = source !== undefined && source !== BUILT_IN ? source : '';
  const ruleDirs = (cfg?.engine ?? []).flatMap((e) => (e.type === 'yara' ? [e.rules || DEFAULT_RULES_DIR] : []));
  return { configFile, ruleDirs };
}
