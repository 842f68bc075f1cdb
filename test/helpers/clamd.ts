/**
 * Starts a REAL clamd for tests, with a signature database generated at run time (no official
 * database can be downloaded; courier-test-setup.md "clamd without the official database").
 *
 * Owns: a private temp dir (config, database, socket, log, pid, temp files), a free loopback
 * port, the clamd process and its removal. Each call gets its own clamd, so test files may run
 * in parallel.
 * Database: an .ndb body signature for EICAR (hex built from eicar() at run time) and an .hdb
 * MD5 signature for clam.exe from clamav-testfiles, so clamd's own unpackers (zip, 7z, mail,
 * ...) find clam.exe inside the other test files.
 * Outputs: where clamd listens and the names clamd reports, learned from the live clamd (never
 * hard-code them). Fails with: an Error saying clamd / clamav-testfiles is missing (CI must
 * fail, not skip), or that clamd did not answer PONG in time, with the tail of its log.
 * Access: the dir is 0755 and the socket 0666 so avfilter running as user `courier` can use it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants as fsc, existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile, open } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { eicar } from './eicar.js';

export const TESTFILES_DIR = '/usr/share/clamav-testfiles';
export const CLAM_EXE = join(TESTFILES_DIR, 'clam.exe');

/** Signature names written into the generated database (clamd appends .UNOFFICIAL). */
const EICAR_SIG = 'Avfilter.Test.EICAR';
const CLAM_EXE_SIG = 'Avfilter.Test.ClamExe';

/** clamd loads a tiny database in well under a second here; 60 s covers a loaded CI box. */
const START_TIMEOUT_MS = 60_000;
const PING_INTERVAL_MS = 50;
/** Time a single PING/INSTREAM exchange of the harness may take. */
const EXCHANGE_TIMEOUT_MS = 10_000;
const STOP_TERM_GRACE_MS = 10_000;
/** A port picked free can be taken before clamd binds it; try a few ports. */
const PORT_ATTEMPTS = 5;
/** Linux sun_path: 108 bytes including NUL. */
const UNIX_PATH_MAX_BYTES = 107;

export interface StartClamdOptions {
  /** clamd StreamMaxLength (default '100M'); small values provoke "size limit exceeded". */
  streamMaxLength?: string;
  /** Extra clamd.conf lines. */
  extraConfig?: string[];
}

export interface RunningClamd {
  socketPath: string;
  tcpPort: number;
  /** Same port on ::1; undefined when this machine has no IPv6 loopback. */
  tcp6Port?: number;
  dir: string;
  /** DatabaseDirectory: add signature files here, then reload(). */
  dbDir: string;
  /** Names clamd reports for the EICAR file and for clam.exe, as learned from it. */
  names: { eicar: string; clamExe: string };
  /** The running clamd's pid (a new one after restart()). */
  readonly pid: number;
  /** Milliseconds from spawn to the first PONG. */
  startMs: number;
  /** SIGTERM, SIGKILL after a bound; removes the dir. Safe to call twice. */
  stop(): Promise<void>;
  /** zRELOAD and wait until clamd has put the reloaded database in service. */
  reload(): Promise<void>;
  /**
   * SIGKILL clamd (if it still runs) and start it again with the same config, socket and port;
   * resolves at its first PONG. Fails like startClamd when it does not come back.
   */
  restart(): Promise<void>;
}

const live = new Map<number, string>();
let exitHookInstalled = false;

export async function startClamd(opts: StartClamdOptions = {}): Promise<RunningClamd> {
  const bin = findClamd();
  if (!existsSync(CLAM_EXE)) {
    throw new Error(`${CLAM_EXE} is missing: install the Debian package clamav-testfiles`);
  }
  const ipv6 = await hasIPv6Loopback();
  const dir = await mkdtemp(join(tmpdir(), 'avf-clamd-'));
  await chmod(dir, 0o755);
  const dbDir = join(dir, 'db');
  const tmp = join(dir, 'tmp');
  await mkdir(dbDir, { mode: 0o755 });
  await mkdir(tmp, { mode: 0o700 });
  const socketPath = join(dir, 'clamd.sock');
  if (Buffer.byteLength(socketPath) > UNIX_PATH_MAX_BYTES) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`socket path ${socketPath} is too long for a unix socket; use a shorter TMPDIR`);
  }
  await writeDatabase(dbDir);

  let lastFailure = '';
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort(ipv6);
    const conf = join(dir, 'clamd.conf');
    await writeFile(conf, config({ dir, dbDir, tmp, socketPath, port, ipv6, opts }));
    const t0 = Date.now();
    const child = await spawnClamd(bin, conf, dir);
    const up = await waitForPong(child, socketPath, dir);
    if (up === 'ok') {
      const startMs = Date.now() - t0;
      try {
        for (const host of ipv6 ? ['127.0.0.1', '::1'] : ['127.0.0.1']) {
          const r = await rawExchange({ host, port }, Buffer.from('zPING\0'));
          if (r !== 'PONG\0') throw new Error(`clamd on [${host}]:${port} answered ${JSON.stringify(r)} to PING`);
        }
        const names = {
          eicar: await learnName(socketPath, eicar(), EICAR_SIG),
          clamExe: await learnName(socketPath, readFileSync(CLAM_EXE), CLAM_EXE_SIG),
        };
        return handle({ bin, conf, child, dir, dbDir, socketPath, port, ipv6, names, startMs });
      } catch (err) {
        await kill(child);
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
    await kill(child);
    lastFailure = up;
    if (!/bind|address already in use/i.test(up)) break;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`clamd did not start: ${lastFailure}`);
}

/** True when a socket can listen on ::1 (IPv6 loopback configured and enabled). */
export async function hasIPv6Loopback(): Promise<boolean> {
  try {
    const srv = await listen('::1', 0);
    await closeServer(srv);
    return true;
  } catch {
    return false;
  }
}

function findClamd(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    const p = join(d, 'clamd');
    try {
      accessSync(p, fsc.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new Error(`clamd is not installed (looked in ${dirs.join(', ')}): install the Debian package clamav-daemon`);
}

async function writeDatabase(dbDir: string): Promise<void> {
  // Body signature: matches the 68 EICAR bytes anywhere in any file type.
  await writeFile(join(dbDir, 'avfilter-test.ndb'), `${EICAR_SIG}:0:*:${eicar().toString('hex')}\n`);
  const exe = readFileSync(CLAM_EXE);
  const md5 = createHash('md5').update(exe).digest('hex');
  await writeFile(join(dbDir, 'avfilter-test.hdb'), `${md5}:${exe.length}:${CLAM_EXE_SIG}\n`);
}

interface ConfigInput {
  dir: string; dbDir: string; tmp: string; socketPath: string; port: number; ipv6: boolean; opts: StartClamdOptions;
}

function config(c: ConfigInput): string {
  return [
    'Foreground yes',
    `LocalSocket ${c.socketPath}`,
    'LocalSocketMode 666',
    'FixStaleSocket yes',
    `TCPSocket ${c.port}`,
    'TCPAddr 127.0.0.1',
    ...(c.ipv6 ? ['TCPAddr ::1'] : []),
    `DatabaseDirectory ${c.dbDir}`,
    `TemporaryDirectory ${c.tmp}`,
    `PidFile ${join(c.dir, 'clamd.pid')}`,
    `LogFile ${join(c.dir, 'clamd.log')}`,
    'LogTime yes',
    `StreamMaxLength ${c.opts.streamMaxLength ?? '100M'}`,
    'MaxThreads 8',
    'SelfCheck 0',
    // No `User`: clamd keeps running as whoever started the tests.
    ...(c.opts.extraConfig ?? []),
    '',
  ].join('\n');
}

async function spawnClamd(bin: string, conf: string, dir: string): Promise<ChildProcess> {
  const out = await open(join(dir, 'clamd.out'), 'a');
  try {
    const child = spawn(bin, [`--config-file=${conf}`], { detached: true, stdio: ['ignore', out.fd, out.fd] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    if (child.pid !== undefined) live.set(child.pid, dir);
    installExitHook();
    return child;
  } finally {
    await out.close();
  }
}

/** 'ok', or why clamd is not answering (with its log tail). */
async function waitForPong(child: ChildProcess, socketPath: string, dir: string): Promise<string> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      return `clamd exited (${child.exitCode ?? child.signalCode}) during start-up; log:\n${logTail(dir)}`;
    }
    if (existsSync(socketPath)) {
      try {
        if ((await rawExchange({ path: socketPath }, Buffer.from('zPING\0'))) === 'PONG\0') return 'ok';
      } catch {
        // not accepting yet
      }
    }
    await sleep(PING_INTERVAL_MS);
  }
  return `no PONG within ${START_TIMEOUT_MS} ms; log:\n${logTail(dir)}`;
}

function logTail(dir: string): string {
  const read = (f: string): string => { try { return readFileSync(join(dir, f), 'utf8'); } catch { return ''; } };
  return `${read('clamd.log')}\n${read('clamd.out')}`.trim().split('\n').slice(-30).join('\n');
}

async function learnName(socketPath: string, body: Buffer, sig: string): Promise<string> {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const reply = await rawExchange({ path: socketPath }, Buffer.concat([Buffer.from('zINSTREAM\0'), len, body, Buffer.alloc(4)]));
  const m = /^stream: (\S+) FOUND\0$/.exec(reply);
  if (!m || !m[1]!.startsWith(sig)) {
    throw new Error(`generated database not in effect: clamd answered ${JSON.stringify(reply)} for a ${sig} sample`);
  }
  return m[1]!;
}

function handle(h: {
  bin: string; conf: string; child: ChildProcess; dir: string; dbDir: string; socketPath: string; port: number; ipv6: boolean;
  names: { eicar: string; clamExe: string }; startMs: number;
}): RunningClamd {
  let stopping: Promise<void> | undefined;
  let child = h.child;
  const r: RunningClamd = {
    socketPath: h.socketPath,
    tcpPort: h.port,
    dir: h.dir,
    dbDir: h.dbDir,
    names: h.names,
    get pid() { return child.pid!; },
    startMs: h.startMs,
    stop() {
      stopping ??= (async () => {
        await kill(child);
        await rm(h.dir, { recursive: true, force: true });
      })();
      return stopping;
    },
    async restart() {
      if (stopping) throw new Error('clamd was stopped');
      await kill(child, 'SIGKILL');
      child = await spawnClamd(h.bin, h.conf, h.dir);
      const up = await waitForPong(child, h.socketPath, h.dir);
      if (up !== 'ok') throw new Error(`clamd did not restart: ${up}`);
    },
    async reload() {
      // clamd's reload thread logs "Database correctly reloaded" once the new database is
      // compiled, before the main loop puts it in service; that loop logs "Activating the newly
      // loaded database..." as it swaps the engines, and a PING answered after that line comes
      // from the loop past the swap: only then do new scans use the new database.
      const count = async (): Promise<number> =>
        ((await readFile(join(h.dir, 'clamd.log'), 'utf8').catch(() => '')).match(/Activating the newly loaded database/g) ?? []).length;
      const before = await count();
      const reply = await rawExchange({ path: h.socketPath }, Buffer.from('zRELOAD\0'));
      if (reply !== 'RELOADING\0') throw new Error(`clamd answered ${JSON.stringify(reply)} to RELOAD`);
      const deadline = Date.now() + START_TIMEOUT_MS;
      while ((await count()) <= before) {
        if (Date.now() > deadline) throw new Error(`clamd did not reload in ${START_TIMEOUT_MS} ms; log:\n${logTail(h.dir)}`);
        await sleep(PING_INTERVAL_MS);
      }
      const pong = await rawExchange({ path: h.socketPath }, Buffer.from('zPING\0'));
      if (pong !== 'PONG\0') throw new Error(`clamd answered ${JSON.stringify(pong)} to PING after its reload`);
    },
  };
  if (h.ipv6) r.tcp6Port = h.port;
  return r;
}

async function kill(child: ChildProcess, first: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const waitExit = (ms: number): Promise<boolean> => new Promise((resolve) => {
    if (exited()) return resolve(true);
    const timer = setTimeout(() => { child.off('exit', onExit); resolve(false); }, ms);
    const onExit = (): void => { clearTimeout(timer); resolve(true); };
    child.once('exit', onExit);
  });
  if (!exited()) {
    // a stopped clamd would never see the SIGTERM
    if (first === 'SIGTERM') child.kill('SIGCONT');
    child.kill(first);
    if (!(await waitExit(STOP_TERM_GRACE_MS))) {
      child.kill('SIGKILL');
      await waitExit(STOP_TERM_GRACE_MS);
    }
  }
  if (child.pid !== undefined) live.delete(child.pid);
}

/** A clamd must not outlive a test process that forgot stop() (it is detached). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [pid, dir] of live) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  });
}

/** A port free on 127.0.0.1 (and on ::1 too when asked), released again for clamd. */
async function freePort(ipv6: boolean): Promise<number> {
  for (;;) {
    const v4 = await listen('127.0.0.1', 0);
    const port = (v4.address() as { port: number }).port;
    let v6: Server | undefined;
    try {
      if (ipv6) v6 = await listen('::1', port);
    } catch {
      await closeServer(v4);
      continue;
    }
    await closeServer(v4);
    if (v6) await closeServer(v6);
    return port;
  }
}

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host, port, exclusive: true, ipv6Only: host === '::1' }, () => resolve(srv));
  });
}

function closeServer(srv: Server): Promise<void> {
  return new Promise((resolve) => srv.close(() => resolve()));
}

/** Sends `payload`, returns everything clamd writes until it closes (bounded). */
function rawExchange(target: { path: string } | { host: string; port: number }, payload: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(target);
    const parts: Buffer[] = [];
    const timer = setTimeout(() => { s.destroy(); reject(new Error('clamd exchange timed out')); }, EXCHANGE_TIMEOUT_MS);
    s.on('error', (err) => { clearTimeout(timer); s.destroy(); reject(err); });
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(parts).toString('utf8')); });
    s.once('connect', () => s.write(payload));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
