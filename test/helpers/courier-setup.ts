/**
 * Bringing a real Courier up and down for the E2E harness (courier.ts), following
 * ../shared/docs/courier-test-setup.md: prerequisites, /run/courier, a busybox syslogd writing to
 * a file, the test domain and users in /etc/courier (every change saved first by
 * courier-etc.ts), then authdaemond, courierd, courierfilter, esmtpd in that order; stopped in
 * reverse. Whatever an earlier run left running is stopped first, so this works both on a fresh
 * machine and after a crash.
 *
 * The host comes first (courier-host.ts): a Courier that runs when no earlier run of the harness
 * is on record belongs to the host, and is only taken over when allowed (CI=true or
 * AVFILTER_TEST_TAKE_COURIER=1); giveBackHost() then starts again what was running, puts
 * /dev/log back and removes the test users the harness created.
 *
 * Fails with HarnessError: E2E_NOT_ROOT, E2E_MISSING (a package or program is missing),
 * E2E_HOST_COURIER (Courier runs on this host and taking it over is not allowed), E2E_START (a
 * daemon did not come up or go down in time).
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { STATE_DIR, clearActiveFilters, originalContent, writeEtcFile } from './courier-etc.js';
import { freeLoopbackPort, isAlive, lockHolder, readGreeting, run, runDaemonStarter } from './courier-proc.js';
import {
  type HostRecord, courierProcesses, forgetHost, loadHost, moveDevLogAside, noteOurDevLog, refusalMessage, restoreDevLog,
  saveHost, takeOverAllowed,
} from './courier-host.js';
import { logSince, waitFor } from './courier-mail.js';

export class HarnessError extends Error {
  constructor(
    readonly code: 'E2E_NOT_ROOT' | 'E2E_MISSING' | 'E2E_HOST_COURIER' | 'E2E_START' | 'E2E_FILTER' | 'E2E_ACCESS',
    message: string,
  ) {
    super(message);
    this.name = 'HarnessError';
  }
}

export const TEST_DOMAIN = 'avfilter.test';
export const TEST_USERS = ['avtest', 'avtest2'] as const;
const ETC = '/etc/courier';
export const SOCKET_DIRS = { allfilters: '/var/lib/courier/allfilters', filters: '/var/lib/courier/filters' } as const;
export const LOCK = {
  courierd: '/var/lib/courier/tmp/courierd.lock',
  courierfilter: '/var/lib/courier/filters/.lock',
  esmtpd: '/run/courier/esmtpd.pid.lock',
  authdaemond: '/run/courier/authdaemon/pid.lock',
};
/** Courier's daemons in start order: the name (LOCK's key for its lock file) and its control command. */
const DAEMONS: readonly (readonly [keyof typeof LOCK, string])[] = [
  ['authdaemond', '/usr/sbin/authdaemond'],
  ['courierd', '/usr/sbin/courier'],
  ['courierfilter', '/usr/sbin/courierfilter'],
  ['esmtpd', '/usr/sbin/esmtpd'],
];
export const LOG_FILE = path.join(STATE_DIR, 'syslog.log');
const SYSLOGD_PID = path.join(STATE_DIR, 'syslogd.pid');
export const STARTER_OUT = path.join(STATE_DIR, 'starters.out');
// Each Courier control command returns within a second here; 20 s is "it hangs".
export const COMMAND_TIMEOUT_MS = 20_000;
// courierfilter stop waits up to 15 s for each filter (alarm(15) in its stop()).
export const STOP_TIMEOUT_MS = 30_000;
// esmtpd greets within ~50 ms of its start here.
const ESMTPD_UP_TIMEOUT_MS = 5_000;
const ESMTPD_PORT_ATTEMPTS = 3;
const REQUIRED = [
  '/usr/sbin/courier', '/usr/sbin/courierfilter', '/usr/sbin/esmtpd', '/usr/sbin/authdaemond',
  '/usr/sbin/makeacceptmailfor', '/usr/sbin/makesmtpaccess', '/usr/sbin/makealiases',
  '/usr/bin/maildirmake.courier', '/usr/lib/courier/courier/courierfilter', '/usr/bin/busybox',
];

export interface Ids {
  uid: number;
  gid: number;
}

export function courierIds(): Ids {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('courier:'));
  if (!line) throw new HarnessError('E2E_MISSING', 'no user "courier": install courier-mta (apt-get install -y courier-mta)');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export async function checkPrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0) throw new HarnessError('E2E_NOT_ROOT', 'the Courier E2E harness must run as root');
  const missing = REQUIRED.filter((p) => !fs.existsSync(p));
  if (missing.length) {
    throw new HarnessError('E2E_MISSING', `Courier E2E needs courier-mta and busybox (apt-get install -y courier-mta busybox); missing: ${missing.join(', ')}`);
  }
  courierIds();
  // courierfilter runs filters with PATH=/usr/bin:/bin:/usr/local/bin; `#!/usr/bin/env node` needs node there
  try {
    await run('runuser', ['-u', 'courier', '--', '/usr/bin/env', '-i', 'PATH=/usr/bin:/bin:/usr/local/bin', 'sh', '-c', 'command -v node'], COMMAND_TIMEOUT_MS);
  } catch {
    throw new HarnessError('E2E_MISSING', 'node is not in /usr/bin, /bin or /usr/local/bin: courierfilter cannot run a `#!/usr/bin/env node` filter');
  }
}

export async function waitLock(file: string, held: boolean, what: string, timeoutMs: number): Promise<void> {
  try {
    await waitFor(`${what} to ${held ? 'start' : 'stop'}`, timeoutMs, () => ((lockHolder(file) !== undefined) === held ? true : undefined));
  } catch (err) {
    throw new HarnessError('E2E_START', (err as Error).message);
  }
}

/**
 * Claims the host before anything changes: an earlier run's record is taken over as it is (the
 * Courier running now is that run's); otherwise a running Courier is refused unless allowed,
 * and the daemons that run (to start again afterwards) are recorded.
 */
export function claimHost(): HostRecord {
  const earlier = loadHost();
  if (earlier) return earlier;
  const found = courierProcesses();
  if (found.length > 0 && takeOverAllowed() === undefined) throw new HarnessError('E2E_HOST_COURIER', refusalMessage(found));
  const host: HostRecord = { daemons: DAEMONS.filter(([name]) => lockHolder(LOCK[name]) !== undefined).map(([name]) => name), devLog: null, users: [] };
  fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
  saveHost(host);
  return host;
}

/** Stops every Courier daemon that runs, in reverse start order, and our old syslogd. */
export async function stopDaemons(): Promise<void> {
  try {
    for (const [name, cmd] of [...DAEMONS].reverse()) {
      if (lockHolder(LOCK[name]) === undefined) continue;
      await run(cmd, ['stop'], STOP_TIMEOUT_MS);
      await waitLock(LOCK[name], false, path.basename(cmd), STOP_TIMEOUT_MS);
    }
  } finally {
    await stopSyslogd();
  }
}

async function stopSyslogd(): Promise<void> {
  const pid = Number(fs.existsSync(SYSLOGD_PID) ? fs.readFileSync(SYSLOGD_PID, 'utf8') : NaN);
  if (pid > 0 && isAlive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('syslogd')) {
    process.kill(pid, 'SIGTERM');
    await waitFor('the old syslogd to exit', COMMAND_TIMEOUT_MS, () => (isAlive(pid) ? undefined : true));
  }
  fs.rmSync(SYSLOGD_PID, { force: true });
}

export async function startSyslogd(): Promise<void> {
  fs.writeFileSync(LOG_FILE, '');
  // no environment of the test run (its TMPDIR): test/run.mjs waits for processes that have it
  const child = spawn('/usr/bin/busybox', ['syslogd', '-n', '-O', LOG_FILE], { detached: true, stdio: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  child.unref();
  fs.writeFileSync(SYSLOGD_PID, String(child.pid));
  await waitFor('busybox syslogd to start', COMMAND_TIMEOUT_MS, () => (/syslogd started/.test(logSince(LOG_FILE, 0)) ? true : undefined));
}

function makeRunDirs(ids: Ids): void {
  fs.mkdirSync('/run/courier/authdaemon', { recursive: true });
  fs.chownSync('/run/courier', 0, ids.gid);
  fs.chmodSync('/run/courier', 0o775);
  fs.chownSync('/run/courier/authdaemon', ids.uid, ids.gid);
  fs.chmodSync('/run/courier/authdaemon', 0o750);
}

/** Extra settings for /etc/courier/esmtpd, e.g. { MAXPERIP: '100' } for a benchmark's sessions. */
export type EsmtpdSettings = Readonly<Record<string, string>>;

function writeEsmtpdConfig(port: number, extra: EsmtpdSettings = {}): void {
  const esmtpd = originalContent(`${ETC}/esmtpd`) ?? '';
  for (const [k, v] of Object.entries(extra)) {
    // the values land in a shell file sourced by esmtpd
    if (!/^[A-Z][A-Z0-9_]*$/.test(k) || !/^[A-Za-z0-9_.,:/ -]*$/.test(v)) throw new Error(`bad esmtpd setting ${k}=${v}`);
  }
  const lines = Object.entries(extra).map(([k, v]) => `${k}="${v}"\n`).join('');
  writeEtcFile(`${ETC}/esmtpd`, `${esmtpd}\n# avfilter E2E harness (the original is restored when the tests end)
PORT=${port}
ADDRESS=127.0.0.1
BOFHCHECKDNS=0
TARPIT=0
TCPDOPTS="-stderrlogger=/usr/sbin/courierlogger -noidentlookup -nodnslookup"
${lines}`);
}

async function configure(ids: Ids, host: HostRecord): Promise<Record<string, string>> {
  const locals = originalContent(`${ETC}/locals`) ?? '';
  if (!locals.split('\n').includes(TEST_DOMAIN)) writeEtcFile(`${ETC}/locals`, `${locals.replace(/\n?$/, '\n')}${TEST_DOMAIN}\n`);
  writeEtcFile(`${ETC}/esmtpacceptmailfor.dir/avfilter-e2e`, `${TEST_DOMAIN}\n`, { mode: 0o640, gid: ids.gid });
  const filtering = originalContent(`${ETC}/enablefiltering`) ?? '';
  if (!/\besmtp\b/.test(filtering)) writeEtcFile(`${ETC}/enablefiltering`, 'esmtp\n');
  clearActiveFilters();
  for (const dir of Object.values(SOCKET_DIRS)) {
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { force: true });
  }
  for (const cmd of ['makeacceptmailfor', 'makesmtpaccess', 'makealiases']) await run(`/usr/sbin/${cmd}`, [], COMMAND_TIMEOUT_MS);
  const maildirs: Record<string, string> = {};
  for (const user of TEST_USERS) {
    try {
      await run('id', ['-u', user], COMMAND_TIMEOUT_MS);
    } catch {
      // recorded first: a run that dies right after useradd still removes the user
      if (!host.users.includes(user)) host.users.push(user);
      saveHost(host);
      await run('useradd', ['-m', '-s', '/usr/sbin/nologin', user], COMMAND_TIMEOUT_MS);
    }
    const home = (await run('getent', ['passwd', user], COMMAND_TIMEOUT_MS)).split(':')[5]!;
    const maildir = path.join(home, 'Maildir');
    if (!fs.existsSync(path.join(maildir, 'new'))) {
      await run('runuser', ['-u', user, '--', '/usr/bin/maildirmake.courier', maildir], COMMAND_TIMEOUT_MS);
    }
    for (const sub of ['new', 'cur', 'tmp']) {
      for (const f of fs.readdirSync(path.join(maildir, sub))) fs.rmSync(path.join(maildir, sub, f), { force: true });
    }
    maildirs[user] = maildir;
  }
  return maildirs;
}

/** Starts the daemons in Courier's order; returns esmtpd's port. */
async function startDaemons(esmtpd: EsmtpdSettings): Promise<number> {
  await startDaemon('authdaemond');
  await startDaemon('courierd');
  await startDaemon('courierfilter');
  return startEsmtpd(esmtpd);
}

async function startDaemon(name: keyof typeof LOCK): Promise<void> {
  const cmd = DAEMONS.find(([n]) => n === name)![1];
  await runDaemonStarter(cmd, ['start'], COMMAND_TIMEOUT_MS, STARTER_OUT);
  if (name === 'authdaemond') {
    await waitFor('authdaemond socket', COMMAND_TIMEOUT_MS, () => (fs.existsSync('/run/courier/authdaemon/socket') ? true : undefined));
  }
  await waitLock(LOCK[name], true, name, COMMAND_TIMEOUT_MS);
}

/**
 * Gives the host back what claimHost() recorded (call once the harness's daemons are stopped and
 * /etc/courier is restored): /dev/log, the test users it created, then the daemons that were
 * running, started again in Courier's order. Each part is cleared from the record once done, so
 * a failure leaves the rest for the next run; every part is tried.
 */
export async function giveBackHost(): Promise<void> {
  const host = loadHost();
  if (!host) return;
  const errors: Error[] = [];
  try {
    restoreDevLog(host);
  } catch (err) {
    errors.push(err as Error);
  }
  for (const user of [...host.users]) {
    try {
      await run('userdel', ['-r', user], COMMAND_TIMEOUT_MS);
      host.users = host.users.filter((u) => u !== user);
      saveHost(host);
    } catch (err) {
      // already gone (removed by hand): nothing left to give back
      if (await run('id', ['-u', user], COMMAND_TIMEOUT_MS).then(() => true, () => false)) errors.push(err as Error);
      else host.users = host.users.filter((u) => u !== user);
    }
  }
  if (host.daemons) {
    try {
      for (const [name] of DAEMONS) {
        if (host.daemons.includes(name) && lockHolder(LOCK[name]) === undefined) await startDaemon(name);
      }
      host.daemons = null;
    } catch (err) {
      errors.push(err as Error);
    }
  }
  if (host.devLog === null && host.users.length === 0 && host.daemons === null) forgetHost();
  else saveHost(host);
  if (errors.length) throw new HarnessError('E2E_START', `giving the host back failed: ${errors.map((e) => e.message).join('; ')}`);
}

/**
 * Starts esmtpd on a free loopback port. The port is free when picked but another process (a
 * test running in parallel) may take it before couriertcpd binds; then another port is tried.
 */
async function startEsmtpd(esmtpd: EsmtpdSettings): Promise<number> {
  let last = '';
  for (let attempt = 0; attempt < ESMTPD_PORT_ATTEMPTS; attempt++) {
    const port = await freeLoopbackPort();
    writeEsmtpdConfig(port, esmtpd);
    await runDaemonStarter('/usr/sbin/esmtpd', ['start'], COMMAND_TIMEOUT_MS, STARTER_OUT);
    const deadline = Date.now() + ESMTPD_UP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      try {
        const greeting = await readGreeting(port, ESMTPD_UP_TIMEOUT_MS);
        // Courier's banner; anything else is some other server on the port
        if (/^220 .*ESMTP/.test(greeting)) return port;
        last = `127.0.0.1:${port} greeted ${JSON.stringify(greeting)}`;
        break;
      } catch (err) {
        last = `127.0.0.1:${port}: ${(err as Error).message}`;
      }
      await sleep(100);
    }
    if (lockHolder(LOCK.esmtpd) !== undefined) {
      await run('/usr/sbin/esmtpd', ['stop'], STOP_TIMEOUT_MS);
      await waitLock(LOCK.esmtpd, false, 'esmtpd', STOP_TIMEOUT_MS);
    }
  }
  throw new HarnessError('E2E_START', `esmtpd did not come up (${ESMTPD_PORT_ATTEMPTS} ports tried): ${last}`);
}

/**
 * Everything startCourier() needs before the harness exists (after claimHost()): stops Courier
 * and leftovers, frees /dev/log for its syslogd, configures,
 * starts the daemons in order, and returns the esmtpd port and the test users' Maildirs.
 */
export async function bringUp(host: HostRecord, esmtpd: EsmtpdSettings = {}): Promise<{ port: number; maildirs: Record<string, string>; ids: Ids }> {
  const ids = courierIds();
  fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
  await stopDaemons();
  makeRunDirs(ids);
  moveDevLogAside(host);
  await startSyslogd();
  noteOurDevLog(host);
  const maildirs = await configure(ids, host);
  const port = await startDaemons(esmtpd);
  return { port, maildirs, ids };
}
