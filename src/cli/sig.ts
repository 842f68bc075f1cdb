/**
 * avfilter_sig: the program (bin/avfilter_sig.ts calls runSig). Texts live in sig-usage.ts.
 *
 * Owns: the arguments, finding the paths (config/rescue.ts, so a config with a mistake still
 * gives them) and the pid, the order of the steps — check the daemon runs, make the pipe, open
 * it, signal, read until the status line or the deadline — and removing the pipe on every way
 * out. The pipe protocol and its file-system care are ops/sig-pipe.ts's.
 * Outputs: the daemon's lines on stdout (or syslog with -l), our own messages on stderr (and
 * syslog with -l), and an exit status (SIG_EXIT). Never throws.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configPath, readConfigText } from '../config/load.js';
import { rescueDaemonKeys, type DaemonKeys } from '../config/rescue.js';
import { makeFifo, openReader, removeFifo, SigPipeError, type MadeFifo } from '../ops/sig-pipe.js';
import { messageOf } from '../errors.js';
import { SIG_EXIT, sigHelp, SIG_USAGE } from './sig-usage.js';

const DEFAULT_TIMEOUT_S = 90;
/** Owner read-write (avfilter_sig reads), group write (the daemon, when run as root): nothing else. */
const PIPE_MODE = 0o620;

type Request = { signal: NodeJS.Signals; what: string };

const COMMANDS: Record<string, Request> = {
  'reload': { signal: 'SIGHUP', what: 'reload' },
  'reload config': { signal: 'SIGUSR1', what: 'reload config' },
  'reload virus': { signal: 'SIGUSR2', what: 'reload virus' },
  'stats': { signal: 'SIGWINCH', what: 'stats' },
};

interface Out {
  /** A line of the daemon's answer; `error` for its status error line. */
  answer(line: string, error: boolean): Promise<void>;
  /** Our own message. */
  problem(text: string): Promise<void>;
}

export async function runSig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`avfilter_sig: ${messageOf(err)}\nusage: ${SIG_USAGE}\n`);
    return SIG_EXIT.USAGE;
  }
  const out = args.log ? syslogOut() : stdOut();
  const { path: cfgPath } = configPath(args.file, env);
  let keys: DaemonKeys;
  let configNote = '';
  try {
    keys = rescueDaemonKeys(readConfigText(args.file, env).text);
    if (!existsSync(cfgPath)) configNote = 'missing: built-in defaults';
  } catch (err) {
    // avfilter will report the file itself; we only need two paths
    keys = rescueDaemonKeys('');
    configNote = `unreadable (${messageOf(err)}): default paths`;
  }
  if (args.help) {
    process.stdout.write(sigHelp({ config: cfgPath, configNote, pidFile: keys.pid_file, pipe: keys.pipe }));
    return SIG_EXIT.OK;
  }
  if (configNote && !args.help) await out.problem(`config file ${cfgPath} ${configNote}`);

  // ---- the daemon
  let pid: number;
  if (args.pid !== undefined) {
    pid = args.pid;
  } else {
    const p = readPid(keys.pid_file);
    if (typeof p === 'string') {
      await out.problem(`avfilter is not running: ${p}`);
      return SIG_EXIT.NOT_RUNNING;
    }
    pid = p;
  }
  const alive = canSignal(pid);
  if (alive !== undefined) {
    await out.problem(`avfilter is not running: ${alive}`);
    return SIG_EXIT.NOT_RUNNING;
  }

  // ---- the pipe: made, opened for reading, removed on every way out. The signals are ours
  // before the pipe exists: one arriving while it is being made must not leave it behind (the
  // next avfilter_sig would find the pipe "busy").
  let signalled: NodeJS.Signals | undefined;
  const interrupted = new Promise<NodeJS.Signals>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(s, () => {
        signalled ??= s;
        resolve(s);
      });
    }
  });
  let fifo: MadeFifo;
  try {
    fifo = await makeFifo(keys.pipe, PIPE_MODE, isRoot() ? processGroup(pid) : undefined);
  } catch (err) {
    await out.problem(messageOf(err));
    return err instanceof SigPipeError ? SIG_EXIT.PIPE_BUSY : SIG_EXIT.USAGE;
  }
  if (signalled !== undefined) {
    removeFifo(fifo);
    await out.problem(`interrupted by ${signalled}`);
    return SIG_EXIT.INTERRUPTED;
  }
  let reader: ReturnType<typeof openReader> | undefined;
  try {
    reader = openReader(fifo);
    try {
      process.kill(pid, COMMANDS[args.command]!.signal);
    } catch (err) {
      await out.problem(`cannot signal avfilter (pid ${pid}): ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`);
      return SIG_EXIT.NOT_RUNNING;
    }
    // each line as it comes: a slow reload shows its progress
    let printed = Promise.resolve();
    const reading = reader.read(args.timeoutS * 1000, (line) => {
      printed = printed.then(() => out.answer(line, /^(status: )?error/.test(line)));
    });
    const outcome = await Promise.race([reading, interrupted.then((s) => ({ status: 'interrupted' as const, signal: s }))]);
    await printed;
    switch (outcome.status) {
      case 'ok':
        return SIG_EXIT.OK;
      case 'error':
        return SIG_EXIT.ERROR;
      case 'timeout':
        await out.problem(`no answer from avfilter (pid ${pid}) within ${args.timeoutS} s`);
        return SIG_EXIT.TIMEOUT;
      case 'interrupted':
        await out.problem(`interrupted by ${outcome.signal}`);
        return SIG_EXIT.INTERRUPTED;
    }
    return SIG_EXIT.USAGE; // not reached: every outcome is handled above
  } catch (err) {
    await out.problem(messageOf(err));
    return SIG_EXIT.USAGE;
  } finally {
    reader?.close();
    removeFifo(fifo);
  }
}

function parse(argv: readonly string[]): { file?: string | undefined; pid?: number | undefined; timeoutS: number; log: boolean; help: boolean; command: string } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      f: { type: 'string' },
      p: { type: 'string' },
      t: { type: 'string' },
      l: { type: 'boolean' },
      h: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  const command = positionals.length === 0 ? 'reload' : positionals.join(' ');
  if (!Object.hasOwn(COMMANDS, command)) throw new Error(`unknown command "${positionals.join(' ')}": use reload, reload config, reload virus or stats`);
  let pid: number | undefined;
  if (values.p !== undefined) {
    if (!/^\d+$/.test(values.p) || Number(values.p) < 2) throw new Error(`-p wants a process id, got "${values.p}"`);
    pid = Number(values.p);
  }
  let timeoutS = DEFAULT_TIMEOUT_S;
  if (values.t !== undefined) {
    timeoutS = Number(values.t);
    if (!/^\d+(\.\d+)?$/.test(values.t) || !(timeoutS > 0) || timeoutS > 86_400) throw new Error(`-t wants seconds (more than 0, at most 86400), got "${values.t}"`);
  }
  if (values.f === '') throw new Error('-f wants a file name');
  return { file: values.f, pid, timeoutS, log: values.l === true, help: values.h === true || values.help === true, command };
}

/** The pid in the pid file, or why there is none. */
function readPid(path: string): number | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `no pid file ${path} (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`;
  }
  const m = /^\s*(\d+)\s*$/.exec(text.split('\n')[0] ?? '');
  if (!m || Number(m[1]) < 2) return `pid file ${path} holds no process id`;
  return Number(m[1]);
}

/** undefined when `pid` runs and may be signalled; else why not. */
function canSignal(pid: number): string | undefined {
  try {
    process.kill(pid, 0);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return `no process ${pid} (stale pid file?)`;
    if (code === 'EPERM') return `no permission to signal process ${pid}: run avfilter_sig as root or as avfilter's user`;
    return `cannot signal process ${pid}: ${code ?? messageOf(err)}`;
  }
}

function isRoot(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}

/** The group the daemon runs with (its /proc entry belongs to its effective ids). */
function processGroup(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).gid;
  } catch {
    return undefined;
  }
}

function stdOut(): Out {
  return {
    answer: async (line) => { process.stdout.write(`${line}\n`); },
    problem: async (text) => { process.stderr.write(`avfilter_sig: ${text}\n`); },
  };
}

/**
 * -l: syslog through logger(1), facility mail, tag avfilter_sig (as freshclam's
 * OnUpdateExecute runs us, with no terminal to print to). A logger that fails leaves the line
 * on stderr, so it is not lost.
 */
function syslogOut(): Out {
  const bin = existsSync('/usr/bin/logger') ? '/usr/bin/logger' : 'logger';
  const send = (line: string, prio: string): Promise<void> => new Promise((resolve) => {
    execFile(bin, ['-t', 'avfilter_sig', '-p', prio, '--', line], { timeout: 10_000 }, (err, _o, stderr) => {
      if (err) process.stderr.write(`avfilter_sig: logger failed (${(stderr.trim() || err.message).split('\n')[0]}): ${line}\n`);
      resolve();
    });
  });
  return {
    answer: (line, error) => send(line, error ? 'mail.err' : 'mail.info'),
    problem: (text) => send(text, 'mail.err'),
  };
}
