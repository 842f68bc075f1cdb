/**
 * avfilter as a black box outside Courier: `dist/bin/avfilter.js -f CONFIG --foreground` with a
 * private config (its socket directories, pid file and tmpdir in a private directory). Ready
 * when its socket exists and its pid file names a live process; its processes are that pid and
 * its descendants. Stopped by closing its stdin (as courierfilter does), then SIGTERM, then
 * SIGKILL, each after a grace period.
 *
 * Inputs: the engine ('clamd' with a clamd socket, or 'yara' = no [[engine]]) or the [[engine]]
 * tables themselves (an AvfilterMode's, avfilter-modes.ts), extra TOML lines;
 * $AVFILTER_BENCH_NODE_ARGS adds node options (e.g. --cpu-prof) to every avfilter started here.
 * Output: RunningAvfilter. Fails with an Error carrying avfilter's stderr when it exits or does
 * not become ready in time.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AVFILTER } from '../test/helpers/avfilter-proc.js';
import { pidFromFile } from './proc.js';

// Loading the YARA rules or connecting takes a second or two; a loaded machine gets room.
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 15_000;

export interface AvfilterOptions {
  engine: 'clamd' | 'yara';
  clamdSocket?: string;
  /** extra top-level TOML lines (before any table) */
  top?: string[];
  /** spool_dirs: where the request paths lie (default [], any path) */
  spoolDirs?: string[];
  /** extra lines for the [[engine]] table (clamd) or a [[engine]] type="yara" table */
  engineExtra?: string[];
  infected?: 'reject' | 'drop';
  /** the [[engine]] tables as TOML lines; when given, `engine`, `clamdSocket` and `engineExtra` are not used */
  engineTables?: string[];
  /** the checkout whose dist/bin/avfilter.js runs (default: this one) */
  root?: string;
}

export interface RunningAvfilter {
  socketPath: string;
  /** the pid in the pid file (the black box's root process) */
  pid(): number | undefined;
  dir: string;
  stderrFile: string;
  stop(): Promise<void>;
}

const q = (s: string): string => JSON.stringify(s);

export async function startAvfilter(opts: AvfilterOptions): Promise<RunningAvfilter> {
  const dir = mkdtempSync(join(tmpdir(), 'avf-bench-'));
  const pidFile = join(dir, 'avfilter.pid');
  const socketPath = join(dir, 'allfilters', 'avfilter');
  const engine: string[] = [];
  if (opts.engineTables) {
    engine.push(...opts.engineTables);
  } else if (opts.engine === 'clamd') {
    engine.push('[[engine]]', 'type = "clamd"', `servers = [${q(`unix:${opts.clamdSocket}`)}]`, ...(opts.engineExtra ?? []), '');
  } else if (opts.engineExtra?.length) {
    engine.push('[[engine]]', 'type = "yara"', ...opts.engineExtra, '');
  }
  // The config file in a directory of its own, as an installation has it (/etc/courier/filters):
  // the master watches the config file's directory (config key `watch`), and with the file beside
  // the tmpdir every temp file and lock of every message was a watch event for the master.
  mkdirSync(join(dir, 'etc'));
  const cfg = join(dir, 'etc', 'avfilter.toml');
  writeFileSync(cfg, [
    `socket_dir_all = ${q(join(dir, 'allfilters'))}`,
    `socket_dir_optional = ${q(join(dir, 'filters'))}`,
    `pid_file = ${q(pidFile)}`,
    `pipe = ${q(join(dir, 'avfilter_sig.pipe'))}`,
    `tmpdir = ${q(join(dir, 'work'))}`,
    `quarantine_dir = ${q(join(dir, 'quarantine'))}`,
    `spool_dirs = [${(opts.spoolDirs ?? []).map(q).join(', ')}]`,
    ...(opts.top ?? []),
    // AVFILTER_BENCH_CONFIG: extra top-level lines for an experiment, e.g. "workers = 1"
    ...(process.env.AVFILTER_BENCH_CONFIG ? process.env.AVFILTER_BENCH_CONFIG.split(';') : []),
    '',
    ...engine,
    '[action]',
    `infected = ${q(opts.infected ?? 'reject')}`,
    '',
  ].join('\n'));
  // Courier's socket directories exist before any filter starts
  for (const sub of ['allfilters', 'filters']) mkdirSync(join(dir, sub));
  const stderrFile = join(dir, 'avfilter.stderr');
  const errFd = openSync(stderrFile, 'a');
  // e.g. AVFILTER_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile avfilter under the load
  const nodeArgs = (process.env.AVFILTER_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  // the daemon refuses root unless told; the bench runs as root
  const root = process.getuid?.() === 0 ? ['--allow-root'] : [];
  const program = opts.root !== undefined ? join(opts.root, 'dist', 'bin', 'avfilter.js') : AVFILTER;
  const child = spawn(process.execPath, [...nodeArgs, program, '-f', cfg, '--foreground', ...root], { stdio: ['pipe', 'ignore', errFd] });
  closeSync(errFd);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  const stderr = (): string => { try { return readFileSync(stderrFile, 'utf8').slice(-4000); } catch { return ''; } };
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.stdin?.end();
      const t = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
      await Promise.race([exit, t(STOP_GRACE_MS)]);
      if (!exited) child.kill('SIGTERM');
      await Promise.race([exit, t(STOP_GRACE_MS)]);
      if (!exited) child.kill('SIGKILL');
      await exit;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(existsSync(socketPath) && pidFromFile(pidFile) !== undefined)) {
    if (exited || Date.now() > deadline) {
      const why = exited ? `exited (${child.exitCode ?? child.signalCode})` : `not ready within ${READY_TIMEOUT_MS} ms`;
      const text = stderr();
      await stop();
      throw new Error(`avfilter --foreground ${why}; stderr:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { socketPath, pid: () => pidFromFile(pidFile), dir, stderrFile, stop };
}
