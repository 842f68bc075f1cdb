/**
 * A real Courier (Debian courier-mta 1.0.16) on loopback for the end-to-end tests.
 *
 * startCourier() configures and starts Courier by hand (courier-setup.ts), as in
 * ../shared/docs/courier-test-setup.md: /run/courier, a busybox syslogd writing to a file the
 * tests read (a filter's stderr arrives there as `courierfilter: ...`), esmtpd on a free loopback
 * port, the test domain and local users with Maildirs, no other global filter. It works on a
 * fresh machine (courier-mta installed with service start blocked) and after an earlier run
 * left things behind: it stops whatever Courier runs, restores nothing it did not save, and
 * saves every /etc/courier file before changing it (courier-etc.ts); stop() puts them back.
 *
 * The host is left as it was found (courier-host.ts): a Courier running on the host is refused
 * unless CI=true or AVFILTER_TEST_TAKE_COURIER=1, and started again by stop(); /dev/log (owned
 * by the harness's syslogd meanwhile) and the test users it created are given back. The same
 * happens when the process gets SIGINT, SIGTERM or SIGHUP while a harness is up (it then exits
 * with 128 + the signal's number), and a run that was killed outright is undone by the next one.
 *
 * The returned CourierHarness installs and removes global filters (a link in filters/active +
 * SIGHUP, re-sent because courierfilter can lose one), sends mail over SMTP (smtp.ts), holds
 * the queue (courierd stopped) so control files can be inspected, and waits for deliveries.
 *
 * Fails with HarnessError (stable `code`): E2E_NOT_ROOT, E2E_MISSING (a package or program is
 * not installed), E2E_HOST_COURIER (Courier runs on this host; the message says what was found
 * and how to allow taking it over), E2E_START (a daemon did not come up), E2E_FILTER (a filter did not appear or
 * go away in time; the message carries courierfilter's log lines), E2E_ACCESS (the courier user
 * cannot run or read something).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { sendSmtp, type SmtpResult } from './smtp.js';
import { ACTIVE_DIR, STATE_DIR, restoreAll, setOurFilter, writeEtcFile } from './courier-etc.js';
import { courierCan, holdFileLock, lockHolder, processesWithArg, run, runDaemonStarter } from './courier-proc.js';
import {
  COMMAND_TIMEOUT_MS, HarnessError, LOCK, LOG_FILE, SOCKET_DIRS, STARTER_OUT, STOP_TIMEOUT_MS, TEST_DOMAIN, TEST_USERS,
  type EsmtpdSettings, type Ids, bringUp, checkPrerequisites, claimHost, giveBackHost, stopDaemons, waitLock,
} from './courier-setup.js';

export { HarnessError, TEST_DOMAIN, TEST_USERS } from './courier-setup.js';

const RUNTIME_DIR_FILE = path.join(STATE_DIR, 'runtime-dir');
/** One harness at a time on the machine: test files run in parallel processes. */
const HARNESS_LOCK = path.join(STATE_DIR, 'harness.lock');
/** Set (to 1) for a process whose parent holds the harness lock for it (courier-host.test.ts). */
export const HARNESS_LOCKED_VAR = 'AVFILTER_E2E_HARNESS_LOCKED';
// courierfilter can lose a SIGHUP (courier-test-setup.md §9); re-send after this long.
const HUP_RETRY_MS = 3_000;
const FILTER_TIMEOUT_MS = 20_000;
// Between courierfilter's "Starting NAME" and the exec there is a moment with no such process.
const FILTER_DEATH_GRACE_MS = 1_000;
import {
  type DeliveredMessage, type LogMark, type QueuedMessage, logMark, logSince, readMaildirs, readQueue, waitFor,
} from './courier-mail.js';

export interface InstallOptions {
  /** where the filter puts its socket: allfilters (avfilter's default all_mode) or filters */
  socketDir?: keyof typeof SOCKET_DIRS;
  timeoutMs?: number;
}

export interface CourierHarness {
  readonly port: number;
  readonly domain: string;
  readonly users: readonly string[];
  readonly maildirs: Record<string, string>;
  readonly logFile: string;
  /** a 0755 temp dir for files the courier user must reach */
  readonly runtimeDir: string;
  /** how long startCourier() took, in ms */
  readonly startMs: number;
  address(user: string): string;
  installFilter(name: string, program: string, opts?: InstallOptions): Promise<void>;
  removeFilter(name: string, opts?: InstallOptions): Promise<void>;
  sendMail(opts: { from: string; to: string[]; message: Buffer | string; replyTimeoutMs?: number }): Promise<SmtpResult>;
  delivered(): DeliveredMessage[];
  waitForDelivery(predicate: (m: DeliveredMessage) => boolean, timeoutMs: number): Promise<DeliveredMessage>;
  /** stops courierd: accepted mail stays in /var/lib/courier/tmp with its control file */
  holdQueue(): Promise<void>;
  releaseQueue(): Promise<void>;
  queue(): QueuedMessage[];
  logMark(): LogMark;
  logSince(mark: LogMark): string;
  waitForLog(re: RegExp, mark: LogMark, timeoutMs: number): Promise<RegExpExecArray>;
  /** backs up and writes a file under /etc/courier (restored by stop()) */
  writeEtcFile(file: string, content: string, mode?: number): void;
  /** a directory owned by courier (for a filter's pid file, temp files) */
  courierDir(name: string, mode?: number): string;
  stop(): Promise<void>;
}

/** The repository root, found from this compiled file (dist/test/helpers/courier.js). */
export function repoRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'test', 'helpers'))) return dir;
  }
  throw new HarnessError('E2E_MISSING', `no repository root above ${here}`);
}


function hupCourierfilter(): void {
  const pid = Number(fs.readFileSync('/run/courier/courierfilter.pid', 'utf8'));
  process.kill(pid, 'SIGHUP');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function courierfilterLines(text: string): string {
  return text.split('\n').filter((l) => l.includes('courierfilter')).slice(-40).join('\n');
}

/** Removes the runtime dir on record (this run's, or one a crashed earlier run left behind). */
function removeRuntimeDir(): void {
  const prefix = path.join(os.tmpdir(), 'avfilter-e2e-');
  const old = fs.existsSync(RUNTIME_DIR_FILE) ? fs.readFileSync(RUNTIME_DIR_FILE, 'utf8') : '';
  if (old.startsWith(prefix)) fs.rmSync(old, { recursive: true, force: true });
  fs.rmSync(RUNTIME_DIR_FILE, { force: true });
}

/** A fresh 0755 temp dir; the one a crashed earlier run left behind is removed. */
function newRuntimeDir(): string {
  removeRuntimeDir();
  const prefix = path.join(os.tmpdir(), 'avfilter-e2e-');
  const dir = fs.mkdtempSync(prefix);
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(RUNTIME_DIR_FILE, dir);
  return dir;
}

export interface StartCourierOptions {
  /** extra /etc/courier/esmtpd settings (the benchmark raises MAXPERIP/MAXPERC for 16 sessions) */
  esmtpd?: EsmtpdSettings;
}

let lockUsers = 0;
let lockHeld: Promise<() => Promise<void>> | undefined;

/**
 * Takes the machine-wide harness lock (waits while another process holds it); the returned
 * function gives it up. Taken again in the same process, it is counted, not waited for.
 */
export async function lockHarness(): Promise<() => Promise<void>> {
  if (process.env[HARNESS_LOCKED_VAR] === '1') return async () => undefined;
  fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
  lockUsers++;
  lockHeld ??= holdFileLock(HARNESS_LOCK);
  let release: () => Promise<void>;
  try {
    release = await lockHeld;
  } catch (err) {
    if (--lockUsers === 0) lockHeld = undefined;
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    if (--lockUsers > 0) return;
    lockHeld = undefined;
    await release();
  };
}

export async function startCourier(opts: StartCourierOptions = {}): Promise<CourierHarness> {
  const t0 = Date.now();
  await checkPrerequisites();
  const unlock = await lockHarness();
  let host;
  try {
    // refused here, nothing has changed yet: nothing to put back
    host = claimHost();
  } catch (err) {
    await unlock();
    throw err;
  }
  const guard = new SignalGuard(unlock);
  try {
    const starting = bringUp(host, opts.esmtpd);
    guard.starting = starting;
    const { port, maildirs, ids } = await starting;
    const runtimeDir = newRuntimeDir();
    return new Harness(port, maildirs, runtimeDir, ids, Date.now() - t0, guard);
  } catch (err) {
    // leave the machine as it was; the error that matters is the start failure
    await guard.tearDown().catch(() => undefined);
    await guard.release();
    throw err;
  }
}

/**
 * Stops every daemon, puts /etc/courier back (and the maps built from it), then gives the host
 * back (courier-host.ts) and removes the runtime dir, each step even when an earlier one fails;
 * the first error is thrown.
 */
async function tearDown(): Promise<void> {
  try {
    await stopDaemons();
  } finally {
    try {
      restoreAll();
      for (const cmd of ['makeacceptmailfor', 'makesmtpaccess', 'makealiases']) await run(`/usr/sbin/${cmd}`, [], COMMAND_TIMEOUT_MS);
    } finally {
      try {
        await giveBackHost();
      } finally {
        removeRuntimeDir();
      }
    }
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * From startCourier() until stop(): tears down once (stop(), a failed start and a signal share
 * it), and on SIGINT/SIGTERM/SIGHUP waits for a start under way, tears down, then exits with
 * 128 + the signal's number, as a shell reports a process ended by it.
 */
class SignalGuard {
  starting: Promise<unknown> | undefined;
  private down: Promise<void> | undefined;
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    // the test runner may be gone: its pipes can fail, which must not stop the clean-up
    process.stdout.on('error', () => undefined);
    process.stderr.on('error', () => undefined);
    void (async () => {
      await this.starting?.catch(() => undefined);
      await this.tearDown().catch((err: Error) => {
        process.stderr.write(`courier harness: clean-up after ${sig} failed: ${err.message}\n`);
      });
      await this.release().catch(() => undefined);
      // an exit, not the signal again: the process's 'exit' hooks (a test clamd's) still run
      process.exit(128 + os.constants.signals[sig]);
    })();
  };

  constructor(private readonly unlock: () => Promise<void>) {
    for (const sig of SIGNALS) process.on(sig, this.onSignal);
  }

  tearDown(): Promise<void> {
    this.down ??= tearDown();
    return this.down;
  }

  /** Ends the guard: no more signal handling, the harness lock given up. */
  async release(): Promise<void> {
    for (const sig of SIGNALS) process.off(sig, this.onSignal);
    await this.unlock();
  }
}

class Harness implements CourierHarness {
  readonly domain = TEST_DOMAIN;
  readonly users = TEST_USERS;
  readonly logFile = LOG_FILE;
  private readonly started = new Set<string>();

  constructor(
    readonly port: number,
    readonly maildirs: Record<string, string>,
    readonly runtimeDir: string,
    private readonly ids: Ids,
    readonly startMs: number,
    private readonly guard: SignalGuard,
  ) {}

  address(user: string): string {
    return `${user}@${this.domain}`;
  }

  async installFilter(name: string, program: string, opts: InstallOptions = {}): Promise<void> {
    if (!/^[^./][^/]*$/.test(name)) throw new HarnessError('E2E_FILTER', `bad filter name ${JSON.stringify(name)}`);
    if (!(await courierCan('-r', program)) || !(await courierCan('-x', program))) {
      throw new HarnessError('E2E_ACCESS', `the courier user cannot read and execute ${program} (check every directory on its path)`);
    }
    if (fs.existsSync(path.join(ACTIVE_DIR, name)) || this.started.has(name)) await this.removeFilter(name, opts);
    for (const dir of Object.values(SOCKET_DIRS)) fs.rmSync(path.join(dir, name), { force: true });
    const socket = path.join(SOCKET_DIRS[opts.socketDir ?? 'allfilters'], name);
    const timeoutMs = opts.timeoutMs ?? FILTER_TIMEOUT_MS;
    const mark = this.logMark();
    fs.symlinkSync(program, path.join(ACTIVE_DIR, name));
    setOurFilter(name, true);
    this.started.add(name);
    const startedRe = new RegExp(`courierfilter: Starting ${escapeRe(name)}$`, 'm');
    const arg = path.join(ACTIVE_DIR, name);
    let goneSince = 0;
    await this.hupUntil(`filter ${name} to create ${socket}`, mark, timeoutMs, startedRe, () => {
      if (fs.existsSync(socket)) return true;
      // started, then no process for a while: it died (its stderr is in the log); fail now
      if (startedRe.test(this.logSince(mark)) && processesWithArg(arg).length === 0) {
        goneSince ||= Date.now();
        if (Date.now() - goneSince > FILTER_DEATH_GRACE_MS) {
          throw new HarnessError('E2E_FILTER', `filter ${name} exited without creating ${socket}; courierfilter log:\n${courierfilterLines(this.logSince(mark))}`);
        }
      } else {
        goneSince = 0;
      }
      return false;
    });
  }

  async removeFilter(name: string, opts: InstallOptions = {}): Promise<void> {
    const mark = this.logMark();
    const wasStarted = this.started.has(name);
    fs.rmSync(path.join(ACTIVE_DIR, name), { force: true });
    setOurFilter(name, false);
    const stoppedRe = new RegExp(`courierfilter: Stopping ${escapeRe(name)}$`, 'm');
    const arg = path.join(ACTIVE_DIR, name);
    await this.hupUntil(`filter ${name} to stop`, mark, opts.timeoutMs ?? FILTER_TIMEOUT_MS, wasStarted ? stoppedRe : undefined, () => {
      if (wasStarted && !stoppedRe.test(this.logSince(mark))) return false;
      const sockets = Object.values(SOCKET_DIRS).some((d) => fs.existsSync(path.join(d, name)));
      return !sockets && processesWithArg(arg).length === 0;
    });
    this.started.delete(name);
  }

  /**
   * HUPs courierfilter until `done()`; re-sends the HUP every HUP_RETRY_MS while courierfilter
   * has not logged `ackRe` (its "Starting NAME"/"Stopping NAME"), since it can lose a HUP.
   */
  private async hupUntil(what: string, mark: LogMark, timeoutMs: number, ackRe: RegExp | undefined, done: () => boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastHup = 0;
    while (!done()) {
      if (Date.now() >= deadline) {
        throw new HarnessError('E2E_FILTER', `timed out after ${timeoutMs} ms waiting for ${what}; courierfilter log:\n${courierfilterLines(this.logSince(mark))}`);
      }
      const acked = ackRe?.test(this.logSince(mark)) ?? false;
      if (lastHup === 0 || (!acked && Date.now() - lastHup >= HUP_RETRY_MS)) {
        hupCourierfilter();
        lastHup = Date.now();
      }
      await sleep(50);
    }
  }

  sendMail(opts: { from: string; to: string[]; message: Buffer | string; replyTimeoutMs?: number }): Promise<SmtpResult> {
    return sendSmtp({ port: this.port, ...opts });
  }

  delivered(): DeliveredMessage[] {
    return readMaildirs(this.maildirs);
  }

  waitForDelivery(predicate: (m: DeliveredMessage) => boolean, timeoutMs: number): Promise<DeliveredMessage> {
    return waitFor('a delivery to the test Maildirs', timeoutMs, () => this.delivered().find(predicate));
  }

  async holdQueue(): Promise<void> {
    await run('/usr/sbin/courier', ['stop'], COMMAND_TIMEOUT_MS);
    await waitLock(LOCK.courierd, false, 'courierd', STOP_TIMEOUT_MS);
  }

  async releaseQueue(): Promise<void> {
    if (lockHolder(LOCK.courierd) !== undefined) return;
    await runDaemonStarter('/usr/sbin/courier', ['start'], COMMAND_TIMEOUT_MS, STARTER_OUT);
    await waitLock(LOCK.courierd, true, 'courierd', COMMAND_TIMEOUT_MS);
  }

  queue(): QueuedMessage[] {
    return readQueue();
  }

  logMark(): LogMark {
    return logMark(this.logFile);
  }

  logSince(mark: LogMark): string {
    return logSince(this.logFile, mark);
  }

  waitForLog(re: RegExp, mark: LogMark, timeoutMs: number): Promise<RegExpExecArray> {
    return waitFor(`a log line matching ${re}`, timeoutMs, () => re.exec(this.logSince(mark)) ?? undefined);
  }

  writeEtcFile(file: string, content: string, mode = 0o640): void {
    writeEtcFile(file, content, { mode, gid: this.ids.gid });
  }

  courierDir(name: string, mode = 0o700): string {
    const dir = path.join(this.runtimeDir, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.chownSync(dir, this.ids.uid, this.ids.gid);
    fs.chmodSync(dir, mode);
    return dir;
  }

  async stop(): Promise<void> {
    try {
      await this.guard.tearDown();
    } finally {
      await this.guard.release();
    }
  }
}
