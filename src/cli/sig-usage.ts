/**
 * What avfilter_sig says about itself, defined once: its --help (sig.ts) and its man page
 * (man.ts) come from here, so the two cannot say different things.
 *
 * Owns: the usage line, the help text, the description, the exit statuses. Pure data and text.
 */

export const SIG_SUMMARY = 'ask a running avfilter to reload its configuration and signatures, or for its stats';

export const SIG_USAGE = 'avfilter_sig [-f FILE] [-p PID] [-t SECONDS] [-l] [reload [config | virus] | stats]';

/** Exit statuses: 0 and 1 are the contract's; everything else is 2 or more. */
export const SIG_EXIT = {
  OK: 0,
  /** avfilter reported an error and kept its old state. */
  ERROR: 1,
  USAGE: 2,
  NOT_RUNNING: 3,
  PIPE_BUSY: 4,
  TIMEOUT: 5,
  INTERRUPTED: 6,
} as const;

export const SIG_EXIT_TEXT: readonly (readonly [number, string])[] = [
  [SIG_EXIT.OK, 'done: avfilter reloaded (or wrote its stats)'],
  [SIG_EXIT.ERROR, 'avfilter reported an error (and kept its old state); its lines say what failed'],
  [SIG_EXIT.USAGE, 'usage error, or another failure (the message says which)'],
  [SIG_EXIT.NOT_RUNNING, 'avfilter is not running: no pid file, a stale pid file, or no permission to signal it'],
  [SIG_EXIT.PIPE_BUSY, 'pipe busy: the pipe exists (another avfilter_sig is waiting), is a symbolic link, or cannot be made'],
  [SIG_EXIT.TIMEOUT, 'no answer from avfilter within -t seconds'],
  [SIG_EXIT.INTERRUPTED, 'interrupted by SIGINT, SIGTERM or SIGHUP (the pipe is removed)'],
];

export const SIG_OPTIONS: readonly (readonly [string, string])[] = [
  ['-f FILE', 'config file (default: $AVFILTER_CONFIG, else /etc/courier/filters/avfilter.toml); only pid_file and pipe are read, even from a file that does not parse'],
  ['-p PID', "avfilter's pid, instead of the one in its pid file"],
  ['-t SECONDS', 'wait at most this long for the answer (default 90)'],
  ['-l', "log the answer to syslog (facility mail, tag avfilter_sig, through logger(1)) instead of printing it; for freshclam's OnUpdateExecute"],
  ['-h, --help', 'print this help with the paths in use, and exit'],
];

export const SIG_COMMANDS: readonly (readonly [string, string, string])[] = [
  ['reload', 'SIGHUP', 'config and signatures: the config file is read again and a new generation of workers loads it (the YARA rules compiled again); clamd engines with reload_clamd = true are sent RELOAD. The default command.'],
  ['reload config', 'SIGUSR1', 'config only: the config file is read again and a new generation of workers loads it; clamd is not asked to reload. (Each generation compiles the YARA rules from their files, so edited rule files take effect too.)'],
  ['reload virus', 'SIGUSR2', 'signatures only: the config in force is kept (the file is not read again); a new generation compiles the YARA rules again and clamd engines with reload_clamd = true are sent RELOAD. For freshclam: OnUpdateExecute avfilter_sig -l reload virus'],
  ['stats', 'SIGWINCH', "avfilter writes its counters (uptime, reloads, workers, generation) into the pipe. A daemon too old to answer ignores the signal, and avfilter_sig times out."],
];

export const SIG_DESCRIPTION =
  'avfilter_sig asks a running avfilter(8) to reload and prints its answer. It reads the config file for the paths of ' +
  "avfilter's pid file and of the pipe (keys pid_file and pipe; when the file does not parse, the usual case when an " +
  'admin reloads a config with a mistake, it still picks these two keys out of it, or uses their defaults, and goes on so ' +
  'that avfilter reports the mistake), makes the pipe, a FIFO, sends avfilter the signal, copies every line avfilter writes ' +
  'into the pipe to its standard output, and removes the pipe - also on a timeout, SIGINT, SIGTERM or SIGHUP.\n\n' +
  'The existence of the pipe is the lock: a second avfilter_sig finds it and stops with "pipe busy". A pipe path that is ' +
  'a symbolic link is refused and never followed. Run as root, the pipe is made mode 0620 with the group of the avfilter ' +
  'process, so avfilter can write into it and nobody else can. avfilter itself never creates the pipe and writes only into ' +
  'a FIFO that avfilter_sig is reading.\n\n' +
  'The answer ends with a status line: "status: ok", or "status: error REASON" when the new configuration or engines did ' +
  'not load (avfilter then keeps serving with what it had, or keeps answering 451 while it has no working configuration) ' +
  'or a clamd did not accept RELOAD.';

/** The --help text; `paths` are the config file and the pid file and pipe it names. */
export function sigHelp(paths: { config: string; configNote: string; pidFile: string; pipe: string }): string {
  const opt = SIG_OPTIONS.map(([o, d]) => `  ${o.padEnd(12)} ${d}`).join('\n');
  const cmd = SIG_COMMANDS.map(([c, s, d]) => `  ${`${c} (${s})`.padEnd(26)} ${d}`).join('\n');
  const exit = SIG_EXIT_TEXT.map(([n, d]) => `  ${n}  ${d}`).join('\n');
  return `usage: ${SIG_USAGE}
       avfilter_sig --help

Asks a running avfilter to reload, waits for its answer on the pipe and prints it.

Commands (the signal sent):
${cmd}

Options:
${opt}

Paths in use:
  config file: ${paths.config}${paths.configNote ? `  (${paths.configNote})` : ''}
  pid file:    ${paths.pidFile}  (key pid_file)
  pipe:        ${paths.pipe}  (key pipe)

Exit status:
${exit}
`;
}
