/**
 * The Courier harness leaves the host as it found it. This suite plays the host: its own syslog
 * daemon (busybox syslogd writing to a file of the test) at /dev/log, and Courier's courierd and
 * courierfilter running with the host's /etc/courier. Then:
 *
 * - without CI=true and without AVFILTER_TEST_TAKE_COURIER=1 the harness refuses, saying what
 *   runs and how to allow it, and changes nothing;
 * - allowed, it takes Courier over and, once stopped, has given everything back: the same
 *   daemons running, /dev/log the same socket (a datagram sent to it reaches the host's
 *   syslogd), /etc/courier identical (contents, modes, owners, the filters/active links: the
 *   host has one of its own), the same local users;
 * - the same when the process running the harness gets SIGTERM;
 * - a run killed with SIGKILL leaves its record, and the next run (not refused: the Courier that
 *   runs is the harness's own) gives everything back;
 * - /dev/log as a symlink (journald's shape) is a symlink to the same target afterwards.
 *
 * The real /dev/log of the machine is moved aside for the suite and put back at the end. Needs
 * root, courier-mta and busybox, and a machine where Courier is not running (run it under the
 * Courier lock); fails, never skips.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HARNESS_LOCKED_VAR, HarnessError, lockHarness, startCourier } from './helpers/courier.js';
import { STATE_DIR } from './helpers/courier-etc.js';
import { DEV_LOG, TAKE_COURIER_VAR, courierProcesses } from './helpers/courier-host.js';
import { LOCK, STARTER_OUT, checkPrerequisites, courierIds, stopDaemons } from './helpers/courier-setup.js';
import { isAlive, lockHolder, run, runDaemonStarter } from './helpers/courier-proc.js';
import { waitFor } from './helpers/courier-mail.js';

const ETC = '/etc/courier';
const HOST_FILE = path.join(STATE_DIR, 'host.json');
// The machine's own /dev/log while this suite plays the host (same directory: a rename).
const REAL_DEV_LOG_ASIDE = path.join(path.dirname(DEV_LOG), '.avfilter-host-test-real-log');
const COMMAND_TIMEOUT_MS = 20_000;
// A harness start takes ~2 s here, a stop up to ~15 s per filter; a loaded CI box gets room.
const CHILD_TIMEOUT_MS = 90_000;
const LOG_TIMEOUT_MS = 5_000;
// A global filter link of the host's (its program need not exist: only the link is compared).
const HOST_FILTER_LINK = path.join(ETC, 'filters', 'active', 'avfilter-host-test');
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'courier-host-child.js');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avfilter-host-'));
const hostLog = path.join(dir, 'host-syslog.log');
let hostSyslogd: ChildProcess | undefined;
let realDevLogMoved = false;
let unlock: (() => Promise<void>) | undefined;

/** Every entry under /etc/courier: type, mode, owner, and content hash or link target. */
function snapshotEtc(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const head = `${(st.mode & 0o177777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out[p] = `${head} -> ${fs.readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[p] = `${head} dir`;
        walk(p);
      } else out[p] = `${head} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`;
    }
  };
  walk(ETC);
  return out;
}

interface DevLogState {
  kind: string;
  ino: number;
  target?: string;
}

function devLogState(): DevLogState | undefined {
  try {
    const st = fs.lstatSync(DEV_LOG);
    const kind = st.isSocket() ? 'socket' : st.isSymbolicLink() ? 'symlink' : 'other';
    return { kind, ino: st.ino, ...(st.isSymbolicLink() ? { target: fs.readlinkSync(DEV_LOG) } : {}) };
  } catch {
    return undefined;
  }
}

function readHostLog(): string {
  return fs.existsSync(hostLog) ? fs.readFileSync(hostLog, 'utf8') : '';
}

/** Sends a syslog datagram through /dev/log (busybox logger, as any program's syslog(3)). */
async function logLine(text: string): Promise<void> {
  await run('/usr/bin/busybox', ['logger', '-t', 'avfilter-host-test', text], COMMAND_TIMEOUT_MS);
}

async function assertReachesHostSyslogd(what: string): Promise<void> {
  const marker = `${what}-${crypto.randomUUID()}`;
  await logLine(marker);
  await waitFor(`"${marker}" in the host's syslog`, LOG_TIMEOUT_MS, () => (readHostLog().includes(marker) ? true : undefined));
}

/** The host's syslogd: busybox syslogd binds /dev/log (or the socket a /dev/log symlink names). */
async function startHostSyslogd(): Promise<void> {
  fs.writeFileSync(hostLog, '');
  hostSyslogd = spawn('/usr/bin/busybox', ['syslogd', '-n', '-O', hostLog], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
  await waitFor('the host syslogd to start', COMMAND_TIMEOUT_MS, () => (/syslogd started/.test(readHostLog()) ? true : undefined));
}

async function stopHostSyslogd(): Promise<void> {
  const child = hostSyslogd;
  hostSyslogd = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The host's Courier: courierd and courierfilter, started as an init script would. */
async function startHostCourier(): Promise<void> {
  // as Debian's tmpfiles.d for courier-mta makes it at boot
  if (!fs.existsSync('/run/courier')) {
    fs.mkdirSync('/run/courier', { mode: 0o775 });
    fs.chownSync('/run/courier', 0, courierIds().gid);
    fs.chmodSync('/run/courier', 0o775);
  }
  await runDaemonStarter('/usr/sbin/courier', ['start'], COMMAND_TIMEOUT_MS, STARTER_OUT);
  await runDaemonStarter('/usr/sbin/courierfilter', ['start'], COMMAND_TIMEOUT_MS, STARTER_OUT);
  await waitFor('the host Courier to start', COMMAND_TIMEOUT_MS, () =>
    (lockHolder(LOCK.courierd) !== undefined && lockHolder(LOCK.courierfilter) !== undefined ? true : undefined));
}

function running(): Record<keyof typeof LOCK, boolean> {
  return {
    courierd: lockHolder(LOCK.courierd) !== undefined,
    courierfilter: lockHolder(LOCK.courierfilter) !== undefined,
    esmtpd: lockHolder(LOCK.esmtpd) !== undefined,
    authdaemond: lockHolder(LOCK.authdaemond) !== undefined,
  };
}

const HOST_RUNNING = { courierd: true, courierfilter: true, esmtpd: false, authdaemond: false };

/** Runs fn with CI and the take-over variable set as given (undefined: unset). */
async function withEnv<T>(env: { CI?: string; take?: string }, fn: () => Promise<T>): Promise<T> {
  const saved = { CI: process.env.CI, take: process.env[TAKE_COURIER_VAR] };
  const set = (k: string, v: string | undefined): void => {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  };
  set('CI', env.CI);
  set(TAKE_COURIER_VAR, env.take);
  try {
    return await fn();
  } finally {
    set('CI', saved.CI);
    set(TAKE_COURIER_VAR, saved.take);
  }
}

function childEnv(take: boolean): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CI;
  delete env[TAKE_COURIER_VAR];
  if (take) env[TAKE_COURIER_VAR] = '1';
  // this process holds the harness lock for the whole suite
  env[HARNESS_LOCKED_VAR] = '1';
  return env;
}

/** Starts the harness in a child process; resolves once it printed "up". */
async function startChild(take: boolean, arg?: string): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, [CHILD, ...(arg ? [arg] : [])], { env: childEnv(take), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the harness in the child to come up', CHILD_TIMEOUT_MS, () => {
    if (/^up \d+$/m.test(out)) return true;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the child exited before "up":\n${out}`);
    return undefined;
  });
  return { child, out: () => out };
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** The child's exit; killed when it takes longer than CHILD_TIMEOUT_MS (a hang fails the test). */
async function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  try {
    return await exitOf(child);
  } finally {
    clearTimeout(timer);
  }
}

function localUsers(): string[] {
  return fs.readFileSync('/etc/passwd', 'utf8').split('\n').filter(Boolean).map((l) => l.split(':')[0]!).sort();
}

let etcBefore: Record<string, string>;
let usersBefore: string[];
let devLogBefore: DevLogState | undefined;

/** What every run of the harness must have left: the host exactly as before it. */
async function assertGivenBack(what: string): Promise<void> {
  assert.deepEqual(running(), HOST_RUNNING, `${what}: the host's Courier daemons`);
  assert.deepEqual(devLogState(), devLogBefore, `${what}: /dev/log`);
  await assertReachesHostSyslogd(what);
  assert.deepEqual(snapshotEtc(), etcBefore, `${what}: /etc/courier`);
  assert.deepEqual(localUsers(), usersBefore, `${what}: the local users`);
  assert.equal(fs.existsSync(HOST_FILE), false, `${what}: the harness's record of the host is left`);
  const strays = courierProcesses().filter((p) => p.name === 'couriertcpd' || p.name === 'authdaemond');
  assert.deepEqual(strays, [], `${what}: daemons the host did not run`);
}

before(async () => {
  await checkPrerequisites();
  // no other test file's harness meanwhile (they run in parallel): this suite is the host
  unlock = await lockHarness();
  const busy = courierProcesses();
  if (busy.length > 0 || fs.existsSync(HOST_FILE)) {
    throw new Error(`this suite plays the host and needs a machine where Courier is not running and no harness run is on record (${HOST_FILE}); found: ${busy.map((p) => `${p.pid} ${p.name}`).join(', ') || 'a record'}`);
  }
  if (fs.existsSync(REAL_DEV_LOG_ASIDE)) throw new Error(`${REAL_DEV_LOG_ASIDE} exists (an earlier run of this suite died): put it back at ${DEV_LOG} by hand`);
  if (devLogState()) {
    fs.renameSync(DEV_LOG, REAL_DEV_LOG_ASIDE);
    realDevLogMoved = true;
  }
  await startHostSyslogd();
  await startHostCourier();
  if (fs.existsSync(HOST_FILTER_LINK)) throw new Error(`${HOST_FILTER_LINK} exists: an earlier run of this suite died; remove it by hand`);
  fs.symlinkSync('/usr/local/lib/avfilter-host-test-filter', HOST_FILTER_LINK);
  etcBefore = snapshotEtc();
  usersBefore = localUsers();
  devLogBefore = devLogState();
  assert.equal(devLogBefore?.kind, 'socket');
});

after(async () => {
  try {
    // a failed test may have left a harness run on record: let a run give the host back first
    if (fs.existsSync(HOST_FILE)) {
      await startChild(false, 'stop').then(({ child }) => waitExit(child)).catch(() => undefined);
    }
    await stopDaemons().catch(() => undefined);
    await stopHostSyslogd();
  } finally {
    fs.rmSync(HOST_FILTER_LINK, { force: true });
    if (realDevLogMoved) fs.renameSync(REAL_DEV_LOG_ASIDE, DEV_LOG);
    else fs.rmSync(DEV_LOG, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    await unlock?.();
  }
});

describe('a host where Courier runs', () => {
  test('refused without CI=true or AVFILTER_TEST_TAKE_COURIER=1, with what runs and how to allow it; nothing changed', async () => {
    const courierd = lockHolder(LOCK.courierd)!;
    await withEnv({}, () =>
      assert.rejects(startCourier(), (err: unknown) => {
        assert.ok(err instanceof HarnessError, String(err));
        assert.equal(err.code, 'E2E_HOST_COURIER');
        assert.match(err.message, new RegExp(`\\b${courierd} courierd\\b`));
        assert.match(err.message, /courierfilter/);
        assert.match(err.message, /AVFILTER_TEST_TAKE_COURIER=1/);
        assert.match(err.message, /CI=true/);
        return true;
      }),
    );
    // CI=false is not CI=true, a value other than 1 does not allow it either
    await withEnv({ CI: 'false', take: 'yes' }, () => assert.rejects(startCourier(), { code: 'E2E_HOST_COURIER' }));
    assert.equal(lockHolder(LOCK.courierd), courierd, 'courierd was restarted');
    await assertGivenBack('after the refusal');
  });

  test('allowed: taken over while it runs, then the same daemons, /etc/courier and /dev/log as before (the host syslogd\'s socket, not a dead one)', async () => {
    const h = await withEnv({ take: '1' }, () => startCourier());
    try {
      assert.notDeepEqual(devLogState(), devLogBefore, 'the harness runs its own syslogd at /dev/log');
      const marker = `during-${crypto.randomUUID()}`;
      await logLine(marker);
      await waitFor('the marker in the harness log', LOG_TIMEOUT_MS, () => (fs.readFileSync(h.logFile, 'utf8').includes(marker) ? true : undefined));
      assert.equal(fs.existsSync(HOST_FILE), true, 'no record of the host while the harness runs');
    } finally {
      await h.stop();
    }
    await assertGivenBack('after stop()');
  });

  test('CI=true takes it over too, and gives it back', async () => {
    const h = await withEnv({ CI: 'true' }, () => startCourier());
    await h.stop();
    await assertGivenBack('after stop() under CI=true');
  });

  test('SIGTERM of the process running the harness: everything given back, the process exits with 143', async () => {
    const { child, out } = await startChild(true);
    child.kill('SIGTERM');
    const { code, signal } = await waitExit(child);
    assert.deepEqual({ code, signal }, { code: 143, signal: null }, `the child did not exit with 128 + SIGTERM:\n${out()}`);
    await assertGivenBack('after SIGTERM');
  });

  test('a run killed with SIGKILL is given back by the next run, which is not refused', async () => {
    const first = await startChild(true);
    first.child.kill('SIGKILL');
    await exitOf(first.child);
    assert.equal(fs.existsSync(HOST_FILE), true, 'the killed run left no record');
    assert.notDeepEqual(devLogState(), devLogBefore, 'the killed run had not replaced /dev/log');
    // no CI, no variable: the Courier that runs now is the killed run's, on record
    const next = await startChild(false, 'stop');
    const { code } = await waitExit(next.child);
    assert.equal(code, 0, next.out());
    assert.match(next.out(), /^stopped$/m);
    await assertGivenBack('after the next run');
  });
});

describe('/dev/log a symlink (as journald has it)', () => {
  const target = path.join(dir, 'dev-log');

  before(async () => {
    await stopHostSyslogd();
    fs.rmSync(DEV_LOG, { force: true });
    fs.symlinkSync(target, DEV_LOG);
    await startHostSyslogd();
    assert.equal(fs.lstatSync(target).isSocket(), true, 'busybox syslogd did not bind the symlink target');
    devLogBefore = devLogState();
  });

  test('the same symlink afterwards, its target untouched and still reaching the host syslogd', async () => {
    const targetIno = fs.lstatSync(target).ino;
    const h = await withEnv({ take: '1' }, () => startCourier());
    try {
      assert.equal(fs.lstatSync(DEV_LOG).isSocket(), true, 'the harness runs its own syslogd at /dev/log');
      assert.equal(fs.lstatSync(target).ino, targetIno, 'the harness replaced the symlink target');
    } finally {
      await h.stop();
    }
    assert.equal(fs.lstatSync(target).ino, targetIno);
    await assertGivenBack('after stop() with a /dev/log symlink');
    assert.ok(hostSyslogd && isAlive(hostSyslogd.pid!), 'the host syslogd died');
  });
});
