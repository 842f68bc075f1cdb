/**
 * A private world for one daemon under test: socket directories, a spool for data and control
 * files (spool_dirs points at it), a config file, and helpers to write requests, start the
 * daemon and find its worker processes. With `owner` the world belongs to that user and the
 * daemon runs as that user (as courierfilter runs it: as Courier's user), so file modes mean
 * what they mean in production (root ignores them).
 */
import { chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, talk, waitFor, exists, type Daemon, type User } from './avfilter-proc.js';

export const CONTROL = 'ss@example.test\nfdns; x ([127.0.0.1])\nM00AB.CD.EF\nra@example.test\nR\nN\n';

/** Single part: the raw message and part "1" are two items. */
export const singlePart = (body: Buffer): string =>
  `Received: x\nSubject: t\nContent-Transfer-Encoding: base64\n\n${body.toString('base64')}\n`;

export interface Request {
  readonly line: string;
  readonly dataPath: string;
  readonly controlPaths: string[];
}

export interface DaemonEnv {
  readonly dir: string;
  readonly cfg: string;
  readonly sock: string;
  readonly pidFile: string;
  /** avfilter_sig's pipe (key pipe). */
  readonly pipe: string;
  readonly spool: string;
  /** Who owns the world and runs the daemon (undefined: the test's own user). */
  readonly owner: User | undefined;
  /** Rewrites the config: the common keys plus `extra`. */
  write(extra: string): void;
  /** Writes a data file (unless null) and its control files; returns the request line. */
  request(data: string | Buffer | null, controls?: string[]): Request;
  start(args?: string[], opts?: Parameters<typeof startDaemon>[1]): Daemon;
  /** Starts the daemon and waits for its socket. */
  up(args?: string[], opts?: Parameters<typeof startDaemon>[1]): Promise<Daemon>;
  send(line: string, timeoutMs?: number): Promise<string>;
}

export function daemonEnv(extra = '', prefix = 'avf-env-', opts: { owner?: User } = {}): DaemonEnv {
  const owner = opts.owner;
  const own = (p: string): void => { if (owner) chownSync(p, owner.uid, owner.gid); };
  const dir = mkdtempSync(join(tmpdir(), prefix));
  own(dir);
  for (const d of ['allfilters', 'filters', 'spool']) {
    mkdirSync(join(dir, d));
    own(join(dir, d));
  }
  const cfg = join(dir, 'avfilter.toml');
  const spool = join(dir, 'spool');
  const write = (more: string): void => {
    // a key of `more` before its first table replaces the common one
    const given = new Set(more.split('\n').filter((l, i, a) => !a.slice(0, i + 1).some((x) => x.startsWith('['))).map((l) => l.split('=')[0]!.trim()));
    const common = [
      `socket_dir_all = "${dir}/allfilters"`, `socket_dir_optional = "${dir}/filters"`,
      `pid_file = "${dir}/avfilter.pid"`, `tmpdir = "${dir}/work"`, `spool_dirs = ["${spool}"]`,
      // a private pipe; no watching, so that a test's own signal is the only reload (tests of
      // watching say watch = true)
      `pipe = "${dir}/avfilter_sig.pipe"`, 'watch = false',
    ].filter((l) => !given.has(l.split('=')[0]!.trim()));
    // whole or not at all: a reload must never read a half-written file
    writeFileSync(`${cfg}.new`, [...common, more, ''].join('\n'));
    own(`${cfg}.new`);
    renameSync(`${cfg}.new`, cfg);
  };
  write(extra);
  let n = 0;
  const sock = join(dir, 'allfilters', 'avfilter');
  const env: DaemonEnv = {
    dir, cfg, sock, spool, owner, pidFile: join(dir, 'avfilter.pid'), pipe: join(dir, 'avfilter_sig.pipe'), write,
    request(data, controls = [CONTROL]) {
      n++;
      const dataPath = join(spool, `D${n}`);
      if (data !== null) {
        writeFileSync(dataPath, data);
        own(dataPath);
      }
      const controlPaths = controls.map((c, i) => {
        const p = join(spool, `C${n}.${i + 1}`);
        writeFileSync(p, c);
        own(p);
        return p;
      });
      return { line: `${dataPath}\n${controlPaths.join('\n')}\n\n`, dataPath, controlPaths };
    },
    start: (args = [], o = {}) => startDaemon(['-f', cfg, '--foreground', ...args], { ...(owner ? { user: owner } : {}), ...o }),
    async up(args = [], o = {}) {
      const d = env.start(args, o);
      await waitFor(() => exists(sock), 30_000, `socket\n${d.stderr()}`);
      return d;
    },
    send: async (line, timeoutMs = 30_000) => (await talk(sock, line, { timeoutMs })).reply,
  };
  return env;
}

/** The worker processes of a master: its children. */
export function workerPids(master: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${master}/task`)) {
      const kids = readFileSync(`/proc/${master}/task/${t}/children`, 'utf8').trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** Waits until the master has `n` workers, other than those in `not`. */
export async function waitForWorkers(master: number, n: number, timeoutMs: number, not: readonly number[] = []): Promise<number[]> {
  let pids: number[] = [];
  await waitFor(() => {
    pids = workerPids(master).filter((p) => !not.includes(p));
    return pids.length >= n;
  }, timeoutMs, `${n} workers`);
  return pids;
}

/** Waits until the daemon's stderr matches (its log lines are written by a thread, a moment later). */
export async function waitLog(d: Daemon, re: RegExp, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => re.test(d.stderr()), timeoutMs, `log line ${re}\n${d.stderr()}`);
}

export async function stopDaemon(d: Daemon): Promise<number | null> {
  d.child.kill('SIGTERM');
  const t = setTimeout(() => d.child.kill('SIGKILL'), 20_000);
  try {
    return await d.exited;
  } finally {
    clearTimeout(t);
  }
}
