/**
 * What the Courier E2E harness takes from the host and gives back, besides the /etc/courier
 * files (courier-etc.ts): which of Courier's daemons were running, /dev/log, and the local test
 * users it created.
 *
 * The record (STATE_DIR/host.json) is written once, before the first change, and survives a
 * crashed or killed run, so the next run (or the same run's stop()) gives back what the host had
 * before any test touched it. Each part is cleared as soon as it has been given back.
 *
 * /dev/log: the harness's syslogd must own /dev/log (Courier logs through syslog(3)); whatever
 * was there (a live socket of the host's syslog daemon, a symlink such as journald's, nothing)
 * is renamed aside in the same directory, which keeps the very same inode, and renamed back once
 * the harness's syslogd is gone. A socket renamed back still reaches the process that bound it.
 *
 * Plain fs errors; no HarnessError here (courier-setup.ts decides what is fatal).
 */
import fs from 'node:fs';
import path from 'node:path';
import { STATE_DIR } from './courier-etc.js';

export const DEV_LOG = '/dev/log';
/** Same directory as /dev/log: a rename cannot cross file systems. */
const DEV_LOG_ASIDE = path.join(path.dirname(DEV_LOG), '.avfilter-e2e-log');
const HOST_FILE = path.join(STATE_DIR, 'host.json');
/** Set to 1 to let the tests stop a running Courier (CI=true does the same). */
export const TAKE_COURIER_VAR = 'AVFILTER_TEST_TAKE_COURIER';
/** The process names of Courier's daemons (couriertcpd serves esmtpd, esmtpd-msa, esmtpd-ssl). */
const COURIER_NAMES = new Set(['courierd', 'courierfilter', 'couriertcpd', 'authdaemond']);

export interface DevLogRecord {
  /** what /dev/log was before the harness: moved to `aside`, or absent */
  was: 'absent' | 'socket' | 'symlink' | 'other';
  /** the symlink's target, when it was one (for the message only; the link itself is kept) */
  target?: string;
  /** the inode of the socket the harness's syslogd bound at /dev/log */
  ours?: number;
}

export interface HostRecord {
  /** the daemons (courier-setup.ts names) that were running, to start again; null once done */
  daemons: string[] | null;
  devLog: DevLogRecord | null;
  /** local users the harness created (removed again) */
  users: string[];
}

export function loadHost(): HostRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(HOST_FILE, 'utf8')) as HostRecord;
    r.users ??= [];
    return r;
  } catch {
    return undefined;
  }
}

export function saveHost(r: HostRecord): void {
  fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
  fs.writeFileSync(`${HOST_FILE}.new`, JSON.stringify(r, null, 2));
  fs.renameSync(`${HOST_FILE}.new`, HOST_FILE);
}

export function forgetHost(): void {
  fs.rmSync(HOST_FILE, { force: true });
}

export interface FoundProcess {
  pid: number;
  name: string;
  args: string;
}

/** Courier's daemons that run now (by process name), other than this process. */
export function courierProcesses(): FoundProcess[] {
  const out: FoundProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const name = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (!COURIER_NAMES.has(name)) continue;
      if (/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) continue;
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ');
      out.push({ pid, name, args });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Why taking over a running Courier is allowed (the setting that allows it), or undefined. */
export function takeOverAllowed(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CI === 'true') return 'CI=true';
  if (env[TAKE_COURIER_VAR] === '1') return `${TAKE_COURIER_VAR}=1`;
  return undefined;
}

/** The refusal for a host whose Courier runs: what was found and how to allow it. */
export function refusalMessage(found: readonly FoundProcess[]): string {
  const list = found.slice(0, 8).map((p) => `  ${p.pid} ${p.name}: ${p.args}`).join('\n');
  const more = found.length > 8 ? `\n  ... ${found.length - 8} more` : '';
  return `Courier is running on this host:\n${list}${more}\n` +
    'The Courier tests stop it, change /etc/courier and replace /dev/log while they run, then put everything back and start it again. ' +
    `To allow that, run them with ${TAKE_COURIER_VAR}=1 (CI=true does the same); otherwise stop Courier first or run the tests on another machine.`;
}

function kindOf(st: fs.Stats): DevLogRecord['was'] {
  if (st.isSocket()) return 'socket';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Frees /dev/log for the harness's syslogd: the original is renamed aside (recorded first, so a
 * crash in between is undone too). When the record already says it was moved (an earlier run
 * died), the harness's own dead socket at /dev/log is removed; anything else there was made
 * since (the host's syslog daemon restarted) and is the original from now on.
 */
export function moveDevLogAside(host: HostRecord): void {
  let st = lstatOrUndefined(DEV_LOG);
  if (host.devLog) {
    if (!st) return;
    if (st.isSocket() && (host.devLog.ours === undefined || st.ino === host.devLog.ours)) {
      fs.rmSync(DEV_LOG, { force: true });
      return;
    }
    // made anew since that run (the host's syslog daemon restarted): this one is the original now
    fs.rmSync(DEV_LOG_ASIDE, { force: true });
    host.devLog = null;
    st = lstatOrUndefined(DEV_LOG);
  }
  if (!st) {
    host.devLog = { was: 'absent' };
    saveHost(host);
    return;
  }
  if (lstatOrUndefined(DEV_LOG_ASIDE)) {
    throw new Error(`${DEV_LOG_ASIDE} exists but no run of the harness recorded it: look at it and remove it by hand`);
  }
  host.devLog = { was: kindOf(st), ...(st.isSymbolicLink() ? { target: fs.readlinkSync(DEV_LOG) } : {}) };
  saveHost(host);
  fs.renameSync(DEV_LOG, DEV_LOG_ASIDE);
}

/** Notes the inode of the harness's syslogd socket, so giving back never removes another's. */
export function noteOurDevLog(host: HostRecord): void {
  const st = lstatOrUndefined(DEV_LOG);
  if (!host.devLog || !st?.isSocket()) return;
  host.devLog.ours = st.ino;
  saveHost(host);
}

/**
 * Puts /dev/log back as it was (call after the harness's syslogd has exited). If something else
 * has taken /dev/log meanwhile (the host's syslog daemon restarted), that one stays.
 */
export function restoreDevLog(host: HostRecord): void {
  const rec = host.devLog;
  if (!rec) return;
  const st = lstatOrUndefined(DEV_LOG);
  const ours = st !== undefined && st.isSocket() && (rec.ours === undefined || st.ino === rec.ours);
  const aside = lstatOrUndefined(DEV_LOG_ASIDE) !== undefined;
  if (st && !ours) {
    if (aside) fs.rmSync(DEV_LOG_ASIDE, { force: true });
  } else if (aside) {
    // rename over our socket: /dev/log is never missing for the host's programs
    fs.renameSync(DEV_LOG_ASIDE, DEV_LOG);
  } else if (st) {
    fs.rmSync(DEV_LOG, { force: true });
  }
  host.devLog = null;
  saveHost(host);
}
