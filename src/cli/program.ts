/**
 * The avfilter command line, defined once: bin/avfilter.ts parses with it and prints --help from
 * it, and the man page generator (man.ts) writes avfilter(8) from the same options, texts and
 * sections, so the two cannot say different things.
 *
 * Owns: option names, their help lines, the usage line, the longer sections of the man page.
 * Outputs: a commander Command (not parsed) and the man sections. Fails with nothing.
 */
import { Command } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../config/schema.js';
import { QUARANTINE_USAGE } from '../quarantine/usage.js';

export const SUMMARY = 'anti-virus global filter for the Courier mail server';

export const DESCRIPTION = 'Anti-virus global filter for the Courier mail server.\n' +
  'With no mode option it runs as a Courier global filter (started by courierfilter).';

export const EXIT_STATUS = 'Exit status with -t: 1 if any file was infected, else 2 if any error, else 0.\n' +
  'With --quarantine: 0 done, 1 no such entry or already released, 2 usage or a failure.\n' +
  'Config errors exit 2.';

export const SEE_ALSO = ['avfilter_sig(8)', 'avfilter.toml(5)', 'courierfilter(8)', 'clamd(8)', 'freshclam(1)'];

/** The sections of avfilter(8) beyond the options: heading and paragraphs (blank line between). */
export const MAN_SECTIONS: readonly { readonly heading: string; readonly text: string }[] = [
  {
    heading: 'DESCRIPTION',
    text: 'avfilter scans every message Courier accepts, before it is queued, with one or more engines: ' +
      'clamd (ClamAV\'s daemon) over its socket, and an embedded YARA-X engine. It decodes the MIME parts and ' +
      'unpacks archives and documents so that every engine sees every member. An infected message is dropped ' +
      '(the default), rejected or tempfailed; a message that cannot be scanned is tempfailed (451), never ' +
      'delivered unscanned unless the configuration says so.\n\n' +
      'courierfilter starts it: "avfilter --install-filter" (as root) installs it as ' +
      '/usr/lib/courier/filters/avfilter, then "filterctl start avfilter" starts it. The filter name, and ' +
      'its socket\'s, is the name it was started as.\n\n' +
      'With no [[engine]] in the configuration avfilter uses clamd at the LocalSocket named in ' +
      '/etc/clamav/clamd.conf (or /run/clamav/clamd.ctl) when a clamd answers there, else the embedded ' +
      'engine with the rules shipped with avfilter, which detect only the EICAR test file. Such an engine ' +
      'set is not a virus scanner: avfilter then logs "event=no-real-signatures" at error severity at start ' +
      'and on every reload, and "avfilter --config -v" says what each engine knows.',
  },
  {
    heading: 'INSTALLING',
    text: '--install-filter, as root, makes avfilter Courier\'s filter: it writes ' +
      '/usr/lib/courier/filters/avfilter, a small node script that names the absolute paths of node and ' +
      'of this avfilter (courierfilter runs filters with almost no environment); writes a commented sample ' +
      `config ${DEFAULT_CONFIG_PATH} (mode 0640, group of Courier's user) when there is none, and never ` +
      'changes an existing one; creates the directories the config names (tmpdir and quarantine_dir 0700, ' +
      'owned by Courier\'s user; the pid file\'s directory: /run/courier created root:courier 0775 when ' +
      'missing, one of avfilter\'s own owned by Courier\'s user) and puts right the owner and ' +
      'mode of existing ones; then runs the installed filter with "--config -v" as Courier\'s user with ' +
      'courierfilter\'s environment, to check that the config loads and the engines answer, and prints ' +
      'the next step (filterctl start avfilter) and where the logs go. Run again, it changes only what is ' +
      'missing or wrong and says what it found in place; it exits 2 when a check fails.\n\n' +
      '--uninstall-filter removes the filter program it wrote and the sample config when unchanged, and the ' +
      'empty private directories; it keeps an edited config and quarantined mail, and says what it left. ' +
      'It refuses while the filter is active (filterctl stop avfilter first).\n\n' +
      'Courier\'s user is the owner of socket_dir_all when that is not root, else the account courier ' +
      '(else daemon). Run as root, --config also checks that the user the daemon will run as (the owner ' +
      'of socket_dir_all, else Courier\'s user) can read the config file, and exits 2 naming the file, ' +
      'the user and the mode when it cannot.',
  },
  {
    heading: 'QUARANTINE',
    text: 'With action.quarantine = true an infected message is kept before anything else is done with it, in ' +
      'quarantine_dir (0700): one directory (0700) per message, named by an id avfilter makes (UTC date and time ' +
      'and 12 random hex digits, e.g. 20261207-004512-3f9a1c2b7d4e; never a name from the message), holding ' +
      'message.eml (the data file as Courier gave it), control-1... (its control files) and record.json (time, ' +
      'queue id, sender, recipients, client IP, virus names, where each was found, the action taken, the ' +
      'state), all 0600 and fsynced. A message that cannot be kept is answered 451, never dropped.\n\n' +
      '--quarantine list [--json] prints a table (id, time, sender, recipients, state, names), or the records ' +
      'as JSON; show ID [--json] one record; delete ID removes one entry; expire DAYS removes those kept more ' +
      'than DAYS days. An ID is letters, digits and hyphens only; any other is refused (exit 2).\n\n' +
      'release ID [--to ADDR]... hands the message to quarantine_sendmail (default /usr/sbin/sendmail -oi -f ' +
      'SENDER, run without a shell), to the recipients it was kept from or to the --to addresses, with the ' +
      'header X-Avfilter-Released: ID MAC put first (any such header already in it is removed). MAC is an ' +
      'HMAC-SHA256, with the 32-byte key in quarantine_dir/.release-key (0600, made on first use), of the id ' +
      'and the SHA-256 of the body (the multipart boundaries Courier rewrites on every submission do not count): the filter accepts that message without scanning it while the release ' +
      'runs, and scans a copied header on another body, or at another time, like any other message. A ' +
      'release happens once: the entry is marked releasing before sendmail runs and released (time, ' +
      'addresses) after; a second release is refused (exit 1), and one whose sendmail fails leaves the entry ' +
      'releasable, with the reason in its record. Releases and deletions are logged (event=quarantine-release, ' +
      'event=quarantine-delete) where the daemon logs. Run it as Courier\'s user or as root (files it makes ' +
      'as root are given to quarantine_dir\'s owner).',
  },
  {
    heading: 'LOGGING',
    text: 'One key=value line per message and per life-cycle event. With log_to = "stderr" (the default) they ' +
      'go to standard error, which courierfilter sends to syslog (facility mail, all lines at one severity): ' +
      'lines of warning and error severity say so in their text, as level=warning and level=error. With ' +
      'log_to = "syslog" every line, the workers\' too, is sent to the local syslog socket (syslog_socket, ' +
      'default /dev/log) with facility mail and its own severity (error, warning, info, debug) under the ' +
      'tag avfilter[pid], so a mail.err rule sees a config error at start, a failed reload or engines that ' +
      'do not load. A syslog socket that is missing (said once on standard error at start) or goes away ' +
      'loses lines, never mail: the count is in the stopped event (log_lines_lost=).\n\n' +
      'log_format = "json" writes one JSON object per line: ts, level, then the same fields.\n\n' +
      'Every event and code, with its level and meaning, is listed in docs/log-events.md of avfilter\'s source.',
  },
  {
    heading: 'DEBUGGING',
    text: '--foreground --debug runs the daemon for a developer: its socket is ./NAME in the current directory ' +
      '(./avfilter: send requests with socat, as Courier writes them), avfilter_sig\'s pipe is there too, no ' +
      'pid file is written, every line down to debug is logged, and each message is traced through its ' +
      'stages (event=trace stage=read, mime, unpack, engine, policy, reply). spool_dirs still applies. ' +
      'log_level = "debug" traces a running filter the same way; with any other level a message costs ' +
      'nothing more.\n\n' +
      '-t shows its progress (files done / total, MB) on standard error when that is a terminal, and ends ' +
      'with a summary line there (files, OK, FOUND, ERROR, MB/s); standard output carries only the PATH lines.',
  },
  {
    heading: 'SIGNALS',
    text: 'SIGHUP reloads the configuration and the signatures, SIGUSR1 the configuration only (clamd is not ' +
      'asked to reload), SIGUSR2 the signatures only (the configuration in force is kept, the file is not read ' +
      'again); avfilter_sig(8) sends them and prints the answer. Each reload is a new generation of workers ' +
      'that loads the configuration and compiles the YARA rules, takes over once ready, while the old one ' +
      'finishes its messages; clamd engines with reload_clamd = true are sent RELOAD (SIGHUP, SIGUSR2). A ' +
      'reload that fails keeps the running configuration and says why, in the log and to avfilter_sig. With ' +
      'watch = true an edit of the configuration or of a rules directory reloads as SIGHUP does, 2 s after the ' +
      'last change. SIGWINCH writes the stats into avfilter_sig\'s pipe. SIGTERM, or the end of standard input ' +
      'when it is a pipe (as courierfilter gives it), stops the filter after the messages in hand are done.',
  },
  {
    heading: 'ENVIRONMENT',
    text: `AVFILTER_CONFIG: the configuration file when -f is not given (default ${DEFAULT_CONFIG_PATH}).\n\n` +
      'AVFILTER_CLAMD_CONF: the clamd.conf whose LocalSocket is tried for the default engine (default ' +
      '/etc/clamav/clamd.conf).',
  },
  {
    heading: 'FILES',
    text: `${DEFAULT_CONFIG_PATH}: the configuration, see avfilter.toml(5).\n\n` +
      '/usr/lib/courier/filters/avfilter: the filter program courierfilter starts, written by --install-filter.\n\n' +
      '/run/courier/avfilter.pid: the pid file, read by avfilter_sig(8).\n\n' +
      '/run/courier/avfilter_sig.pipe: the FIFO avfilter_sig(8) makes and avfilter writes its answer into.',
  },
];

/** The avfilter program; the caller adds parsing behaviour (exitOverride, output). */
export function buildProgram(version: string): Command {
  return new Command('avfilter')
    .description(DESCRIPTION)
    .usage('[-f FILE] [--foreground [--debug] | --config [-v] | -t FILE... | --batch-test | --quarantine COMMAND | --install-filter | --uninstall-filter]')
    .option('-f, --file <FILE>', `config file (default ${DEFAULT_CONFIG_PATH}, or $AVFILTER_CONFIG)`)
    .option('--config', 'print the effective configuration and exit')
    .option('-v, --verbose', 'with --config: engine versions and what signatures each engine knows too; with -t: where each virus was found')
    .option('-t, --test <FILE...>', 'scan mail files (- for stdin, directories too) and report like clamscan')
    .option('--batch-test', 'read Courier requests on stdin instead of the socket; replies on stdout')
    .option('--foreground', 'run the filter daemon even when not started by courierfilter (under a supervisor or a test)')
    .option('--debug', 'with --foreground: a developer\'s run: the socket (./NAME) and avfilter_sig\'s pipe in the current directory, no pid file, log_level debug, each message traced through its stages')
    .option('--quarantine <COMMAND...>', `the quarantine: ${QUARANTINE_USAGE} (see QUARANTINE in avfilter(8))`)
    .option('--to <ADDR>', 'with --quarantine release: send to ADDR instead of the recipients it was kept from (repeat for more)', (v: string, acc: string[] | undefined) => [...(acc ?? []), v])
    .option('--json', 'with --quarantine list or show: the records as JSON')
    .option('--install-filter', 'as root: install as Courier\'s filter (/usr/lib/courier/filters/avfilter, a sample config, the private directories) and check it as Courier\'s user; run again to check')
    .option('--uninstall-filter', 'as root: remove what --install-filter made (an edited config and quarantined mail stay)')
    .option('--root <DIR>', 'with --install-filter or --uninstall-filter: install under DIR instead of / (staging, tests)')
    .option('--allow-root', 'let the daemon run as root (it refuses by default: run it as Courier\'s user)')
    .version(version, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .addHelpText('after', `\n${EXIT_STATUS}\nSee avfilter(8) and, for the config keys, avfilter.toml(5).`);
}
