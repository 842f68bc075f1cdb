/**
 * `avfilter --install-filter` and `--uninstall-filter`: put avfilter in Courier's filter
 * directory, give it a config and its private directories, and check, as Courier's user, that
 * what courierfilter will start loads; or take that away again.
 *
 * Owns: the wrapper (a small node script with the absolute paths of node and of the installed
 * avfilter.js, because courierfilter runs filters with almost no environment), the sample
 * config, the private directories' owner and mode, and the report of what was found and done.
 * Idempotent: a second run finds everything in place and says so.
 * Inputs: a root (/ on a mail host; another directory for tests and staging), the config path,
 * node's and avfilter.js's paths. Outputs: lines on `out`, an exit status (0, or 2 when something
 * could not be done or the check failed). Never removes an edited config or quarantined mail.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync, type Stats,
} from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, parseConfig, type Config } from '../config/load.js';
import { AvError } from '../errors.js';
import { DEFAULT_CONFIG_PATH } from '../config/schema.js';
import { courierUser, ownerNames, unreadableBy, type CourierUser } from './courier-user.js';

/** Debian's Courier: where filterctl looks for filter programs. */
export const FILTER_DIR = '/usr/lib/courier/filters';
/** courierfilter's PATH for the filters it starts (and nothing else of the environment). */
export const FILTER_PATH_ENV = '/usr/bin:/bin:/usr/local/bin';
/** The first line after the shebang of a wrapper we wrote: how uninstall knows it is ours. */
const WRAPPER_MARK = '// avfilter: Courier global filter, written by `avfilter --install-filter`';
/** The engines' check answers within seconds; a minute is "it hangs". */
const CHECK_TIMEOUT_MS = 60_000;

export interface InstallOptions {
  /** "/" on a mail host; every installed path is under it. */
  readonly root: string;
  /** -f: the config the filter is to use (default: ROOT/etc/courier/filters/avfilter.toml). */
  readonly configFile?: string;
  /** Absolute path of node (process.execPath). */
  readonly node: string;
  /** Absolute path of the installed dist/bin/avfilter.js. */
  readonly program: string;
  readonly out: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

export interface InstallPaths {
  readonly wrapper: string;
  readonly config: string;
  readonly activeLink: string;
}

export function installPaths(opts: Pick<InstallOptions, 'root' | 'configFile'>): InstallPaths {
  const config = opts.configFile ?? join(opts.root, DEFAULT_CONFIG_PATH);
  return {
    wrapper: join(opts.root, FILTER_DIR, 'avfilter'),
    config,
    activeLink: join(opts.root, dirname(DEFAULT_CONFIG_PATH), 'active', 'avfilter'),
  };
}

/**
 * The wrapper courierfilter runs. A node script (not a shell one) so that the filter's name,
 * the basename it is started as, stays the name of its active/ entry. It names the config only
 * when that is not the default, as the daemon gets no -f from courierfilter.
 */
export function wrapperText(node: string, program: string, config: string): string {
  const lines = [`#!${node}`, WRAPPER_MARK];
  if (config !== DEFAULT_CONFIG_PATH) lines.push(`process.env.AVFILTER_CONFIG ??= ${JSON.stringify(config)};`);
  lines.push(`import(${JSON.stringify(pathToFileURL(program).href)});`, '');
  return lines.join('\n');
}

/** The sample config: the private paths set (under the root), everything else a comment. */
export function sampleConfig(root: string): string {
  const p = (x: string): string => JSON.stringify(join(root, x));
  return `# avfilter configuration, see avfilter.toml(5). Written by \`avfilter --install-filter\` or the
# avfilter package as a sample: edit it freely (neither removes an edited config).
# \`avfilter --config -v\` prints every key with its effective value and what the engines know.
# After a change: \`avfilter --config\` to check it, then reload the filter
# (kill -HUP the pid in pid_file, or \`filterctl stop avfilter; filterctl start avfilter\`).
# The file must stay readable by Courier's user (mode 0640, group courier).

# Private files: --install-filter creates these directories, owned by Courier's user.
pid_file = ${p('/run/courier/avfilter.pid')}
pipe = ${p('/run/courier/avfilter_sig.pipe')}
tmpdir = ${p('/var/lib/avfilter/tmp')}
quarantine_dir = ${p('/var/lib/avfilter/quarantine')}

# Engines. With no [[engine]] avfilter uses clamd at the distribution's socket when one answers
# there, else the embedded engine, whose shipped rules detect only the EICAR test file: that is
# not a virus scanner, and avfilter logs so at error severity. For a mail server name clamd, so
# that a clamd that is down means 451 (the mail waits) rather than a scanner that knows nothing:
#
# [[engine]]
# type = "clamd"
# servers = ["unix:/run/clamav/clamd.ctl"]
#
# YARA rules of your own, in a directory of *.yar files (keep a copy of the shipped eicar.yar
# there to be able to test the filter):
#
# [[engine]]
# type = "yara"
# rules = "/etc/courier/filters/avfilter-rules"

# What happens to infected mail: drop (recipients marked delivered, the default), reject (550),
# tempfail (451) or pass (deliver, logged); quarantine keeps a copy in quarantine_dir.
#
# [action]
# infected = "drop"
# quarantine = false
`;
}

/** A directory created or put right: owner Courier's user, this mode. */
function privateDir(dir: string, mode: number, user: CourierUser, out: (l: string) => void, what: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    st = undefined;
  }
  if (!st) {
    makeParents(dir);
    mkdirSync(dir, { mode });
    chmodSync(dir, mode);
    chownSync(dir, user.uid, user.gid);
    out(`created   ${dir} (${what}; ${octal(mode)}, owner ${user.name})`);
    return;
  }
  if (!st.isDirectory()) throw new InstallError(`${dir} (${what}) exists and is not a directory (a symbolic link is not accepted either): move it away`);
  const fixes: string[] = [];
  if (st.uid !== user.uid || st.gid !== user.gid) {
    chownSync(dir, user.uid, user.gid);
    fixes.push(`owner ${ownerNames(st.uid, st.gid)} -> ${user.name}`);
  }
  if ((st.mode & 0o7777) !== mode) {
    chmodSync(dir, mode);
    fixes.push(`mode ${octal(st.mode & 0o7777)} -> ${octal(mode)}`);
  }
  out(fixes.length ? `fixed     ${dir} (${what}; ${fixes.join(', ')})` : `in place  ${dir} (${what}; ${octal(mode)}, owner ${user.name})`);
}

/** Missing parent directories: root's, 0755, like the system's own. */
function makeParents(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
}

/**
 * The directory of the pid file or the pipe: Courier's own (/run/courier, root:courier 0775 on
 * Debian). Created so when missing; an existing one is left as it is and only checked.
 */
function runDir(dir: string, user: CourierUser, out: (l: string) => void, problems: string[]): void {
  if (!existsSync(dir)) {
    makeParents(dir);
    mkdirSync(dir, { mode: 0o775 });
    chmodSync(dir, 0o775);
    chownSync(dir, 0, user.gid);
    out(`created   ${dir} (pid file and pipe; 0775, owner ${ownerNames(0, user.gid)})`);
    return;
  }
  const st = statSync(dir);
  const bits = st.uid === user.uid ? (st.mode >> 6) & 7 : user.groups.includes(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7;
  if ((bits & 3) !== 3) {
    problems.push(`${dir}: ${user.name} cannot create the pid file there (mode ${octal(st.mode & 0o7777)}, owner ${ownerNames(st.uid, st.gid)})`);
    out(`PROBLEM   ${dir}: not writable by ${user.name}`);
    return;
  }
  out(`in place  ${dir} (pid file and pipe; writable by ${user.name})`);
}

export class InstallError extends AvError {
  declare readonly code: 'EINSTALL';
  constructor(message: string) {
    super('EINSTALL', 'config', message);
    this.name = 'InstallError';
  }
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

function readIf(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes a file whole (a temp file renamed over it), with mode and owner. */
function writeWhole(file: string, text: string, mode: number, uid: number, gid: number): void {
  const tmp = `${file}.avfilter-new`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  chownSync(tmp, uid, gid);
  renameSync(tmp, file);
}

function requireRoot(what: string): void {
  if (typeof process.geteuid === 'function' && process.geteuid() !== 0) {
    throw new InstallError(`${what} must run as root (it creates files owned by Courier's user)`);
  }
}

function checkPaths(opts: InstallOptions): void {
  for (const [what, p] of [['root', opts.root], ['node', opts.node], ['avfilter.js', opts.program]] as const) {
    if (!isAbsolute(p)) throw new InstallError(`${what} path ${p} is not absolute`);
  }
  if (/\s/.test(opts.node)) throw new InstallError(`node's path ${opts.node} contains white space; a script's #! line cannot name it`);
}

/** The config to install with: the one there, else the sample (parsed before anything is written). */
function configFor(paths: InstallPaths, root: string): { cfg: Config; existing: boolean } {
  const text = readIf(paths.config);
  if (text === undefined) return { cfg: parseConfig(sampleConfig(root), paths.config), existing: false };
  return { cfg: loadConfig(paths.config), existing: true };
}

export function installFilter(opts: InstallOptions): number {
  const out = opts.out;
  requireRoot('--install-filter');
  checkPaths(opts);
  const paths = installPaths(opts);
  const { cfg, existing } = configFor(paths, opts.root);
  const user = courierUser(cfg.socket_dir_all);
  if (!user) throw new InstallError('no account for Courier found (neither the owner of its socket directory nor a user "courier"): install courier-mta first');
  out(`Courier's user: ${user.name} (uid ${user.uid}, gid ${user.gid})`);

  // The wrapper.
  const wrapper = wrapperText(opts.node, opts.program, paths.config);
  const old = lstatIf(paths.wrapper);
  if (old && !old.isSymbolicLink() && !(readIf(paths.wrapper) ?? '').includes(WRAPPER_MARK)) {
    throw new InstallError(`${paths.wrapper} exists and was not written by avfilter --install-filter: move it away first`);
  }
  if (old && !old.isSymbolicLink() && readIf(paths.wrapper) === wrapper && (old.mode & 0o7777) === 0o755 && old.uid === 0) {
    out(`in place  ${paths.wrapper} (runs ${opts.program} with ${opts.node})`);
  } else {
    mkdirSync(dirname(paths.wrapper), { recursive: true, mode: 0o755 });
    const was = old?.isSymbolicLink() ? `replaced  ${paths.wrapper} (was a symbolic link to ${readLinkIf(paths.wrapper)}; ` : old ? `updated   ${paths.wrapper} (` : `created   ${paths.wrapper} (`;
    writeWhole(paths.wrapper, wrapper, 0o755, 0, 0); // renamed over a link replaces the link
    out(`${was}runs ${opts.program} with ${opts.node})`);
  }

  if (existsSync(join(dirname(opts.program), '..', '..', '.git'))) {
    out(`note      ${opts.program} is in a git checkout: the filter runs from it, and rebuilding or removing it`);
    out('          changes the live filter; install a copy with npm install -g --install-links (see the README)');
  }

  // The config: the admin's is never written; a missing one gets the sample.
  if (existing) {
    out(`in place  ${paths.config} (kept as it is)`);
  } else {
    const dir = dirname(paths.config);
    if (!existsSync(dir)) {
      makeParents(dir);
      mkdirSync(dir, { mode: 0o750 });
      chownSync(dir, 0, user.gid);
    }
    writeWhole(paths.config, sampleConfig(opts.root), 0o640, 0, user.gid);
    out(`created   ${paths.config} (a commented sample; 0640, owner ${ownerNames(0, user.gid)})`);
  }

  // The private directories.
  const problems: string[] = [];
  privateDir(cfg.tmpdir, 0o700, user, out, 'tmpdir');
  privateDir(cfg.quarantine_dir, 0o700, user, out, 'quarantine_dir');
  for (const d of new Set([dirname(cfg.pid_file), dirname(cfg.pipe)])) {
    // A directory of avfilter's own (/run/avfilter) is private like tmpdir; Courier's is Courier's.
    if (basename(d).startsWith('avfilter')) privateDir(d, 0o755, user, out, 'pid file and pipe');
    else runDir(d, user, out, problems);
  }

  // What courierfilter will start, started the same way: as Courier's user, with its environment.
  const check = checkAsCourier(paths.wrapper, user, opts.env);
  for (const l of check.lines) out(l);
  problems.push(...check.problems);
  const unreadable = unreadableBy(user, paths.config);
  if (unreadable) problems.push(`${paths.config} is not readable by ${user.name}: ${unreadable.path}: ${unreadable.why}`);

  if (problems.length) {
    out('');
    for (const p of problems) out(`PROBLEM: ${p}`);
    out('Fix the above and run avfilter --install-filter again (it changes only what is missing or wrong).');
    return 2;
  }
  out('');
  out(existsSync(paths.activeLink) || lstatIf(paths.activeLink)
    ? 'The filter is active: reload it to apply changes (kill -HUP $(cat ' + cfg.pid_file + ')).'
    : 'Next: filterctl start avfilter   (Courier\'s courierfilter must be running: courierfilter start)');
  out('Logs: courierfilter sends the filter\'s standard error to syslog, facility mail, tag courierfilter');
  out('      (Debian: /var/log/mail.log, e.g. grep avfilter /var/log/mail.log; with no syslog daemon the lines are lost).');
  out('Test: avfilter -t on a message with the EICAR test file attached must say FOUND.');
  return 0;
}

interface Check {
  readonly lines: string[];
  readonly problems: string[];
}

/**
 * Runs `WRAPPER --config -v` as Courier's user with courierfilter's environment (PATH only, and
 * AVFILTER_CLAMD_CONF when set, which only tests set): the config loads, the engines answer.
 */
export function checkAsCourier(wrapper: string, user: CourierUser, env: NodeJS.ProcessEnv): Check {
  const childEnv: NodeJS.ProcessEnv = { PATH: FILTER_PATH_ENV };
  if (env['AVFILTER_CLAMD_CONF']) childEnv['AVFILTER_CLAMD_CONF'] = env['AVFILTER_CLAMD_CONF'];
  const r = spawnSync(wrapper, ['--config', '-v'], {
    uid: user.uid, gid: user.gid, env: childEnv, cwd: '/', encoding: 'utf8', timeout: CHECK_TIMEOUT_MS,
  });
  const lines: string[] = [];
  const problems: string[] = [];
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr.trim() || `exit status ${r.status ?? r.signal}`);
    lines.push(`FAILED    check as ${user.name}: ${wrapper} --config`);
    problems.push(`as ${user.name}, ${wrapper} --config fails: ${why}`);
    return { lines, problems };
  }
  const versions = r.stdout.split('\n').filter((l) => l.startsWith('# version: '));
  const down = versions.filter((l) => l.startsWith('# version: unavailable'));
  for (const d of down) problems.push(`as ${user.name}, an engine does not answer: ${d.slice('# version: '.length)}`);
  lines.push(`${down.length ? 'FAILED   ' : 'checked  '} as ${user.name}: the config loads${down.length ? '' : ' and the engines answer'}`);
  for (const l of r.stdout.split('\n').filter((x) => x.startsWith('# signatures:') || x.startsWith('# engine:'))) lines.push(`          ${l.slice(2)}`);
  if (/no real signatures/.test(r.stdout)) {
    lines.push('WARNING:  no real signatures: this is not a virus scanner yet. Give it clamd with its database (freshclam)');
    lines.push('          or YARA rules of your own: see "Signatures: make it a virus scanner" in the README.');
  }
  return { lines, problems };
}

function lstatIf(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

function readLinkIf(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '?';
  }
}

/** Removes a directory when it is empty; says what it did or left. */
function removeIfEmpty(dir: string, what: string, out: (l: string) => void): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    out(`not there ${dir} (${what})`);
    return;
  }
  if (names.length) {
    out(`left      ${dir} (${what}: ${names.length} entr${names.length === 1 ? 'y' : 'ies'} in it)`);
    return;
  }
  rmdirSync(dir);
  out(`removed   ${dir} (${what}, empty)`);
  // Its parent, when it is avfilter's own and now empty (/var/lib/avfilter).
  const parent = dirname(dir);
  if (basename(parent).startsWith('avfilter')) {
    try {
      if (readdirSync(parent).length === 0) {
        rmdirSync(parent);
        out(`removed   ${parent} (empty)`);
      }
    } catch {
      // already gone
    }
  }
}

export function uninstallFilter(opts: InstallOptions): number {
  const out = opts.out;
  requireRoot('--uninstall-filter');
  checkPaths(opts);
  const paths = installPaths(opts);
  if (lstatIf(paths.activeLink)) {
    throw new InstallError(`the filter is active (${paths.activeLink}): stop it first with filterctl stop avfilter`);
  }
  // The directories to clean up are the config's: read it before the sample goes.
  const text = readIf(paths.config);
  let cfg: Config | undefined;
  try {
    cfg = text === undefined ? parseConfig(sampleConfig(opts.root), paths.config) : loadConfig(paths.config);
  } catch (err) {
    out(`left      the directories: ${paths.config} does not load (${(err as Error).message})`);
  }

  const w = lstatIf(paths.wrapper);
  if (!w) out(`not there ${paths.wrapper}`);
  else if (!w.isSymbolicLink() && (readIf(paths.wrapper) ?? '').includes(WRAPPER_MARK)) {
    rmSync(paths.wrapper);
    out(`removed   ${paths.wrapper}`);
  } else out(`left      ${paths.wrapper} (not written by avfilter --install-filter)`);

  if (text === undefined) out(`not there ${paths.config}`);
  else if (text === sampleConfig(opts.root)) {
    rmSync(paths.config);
    out(`removed   ${paths.config} (the unchanged sample)`);
  } else out(`left      ${paths.config} (edited: yours)`);

  if (cfg) {
    removeIfEmpty(cfg.tmpdir, 'tmpdir', out);
    removeIfEmpty(cfg.quarantine_dir, 'quarantine_dir; quarantined mail is never removed', out);
  }
  return 0;
}
