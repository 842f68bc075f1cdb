/**
 * Process plumbing for the Courier E2E harness: running Courier's control commands with a clean
 * environment and a deadline, finding who holds Courier's lock files, finding filter processes,
 * and checking what the `courier` user can reach.
 *
 * Outputs plain values; run() throws CommandError (code E2E_COMMAND) with the command's output.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

// What an init script would give Courier's control scripts; they rebuild their own environment.
const CLEAN_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };

export class CommandError extends Error {
  readonly code = 'E2E_COMMAND';
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Courier's daemons inherit stdout/stderr; with pipes execFile would wait for them to close
    // (never), so output is only collected from commands that do not daemonise.
    execFile(cmd, args, { env: CLEAN_ENV, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) {
        reject(new CommandError(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      } else {
        resolve(String(stdout));
      }
    });
  });
}

/**
 * Runs a command that starts a daemon: its output goes to a file (the daemon keeps the
 * descriptors), and only the starter's exit status is awaited.
 */
export async function runDaemonStarter(cmd: string, args: string[], timeoutMs: number, outFile: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  const out = fs.openSync(outFile, 'a');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(cmd, args, { env: CLEAN_ENV, stdio: ['ignore', out, out] });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new CommandError(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms (see ${outFile})`));
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new CommandError(`${cmd}: ${err.message}`));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new CommandError(`${cmd} ${args.join(' ')} exited with ${code ?? signal} (see ${outFile})`));
      });
    });
  } finally {
    fs.closeSync(out);
  }
}

/** The pid holding a POSIX or flock lock on `file` (from /proc/locks), or undefined. */
export function lockHolder(file: string): number | undefined {
  let ino: number;
  try {
    ino = fs.statSync(file).ino;
  } catch {
    return undefined;
  }
  const locks = fs.readFileSync('/proc/locks', 'utf8');
  for (const line of locks.split('\n')) {
    // "1: POSIX  ADVISORY  WRITE 6882 fe:00:1450357 0 EOF"
    const m = /^\d+:\s+\S+\s+\S+\s+\S+\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
    if (m && Number(m[2]) === ino) return Number(m[1]);
  }
  return undefined;
}

export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // a zombie has exited; only its parent's wait() is missing
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

export function cmdline(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Live processes whose argv contains `arg` exactly. */
export function processesWithArg(arg: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    if (cmdline(pid).includes(arg) && isAlive(pid)) out.push(pid);
  }
  return out;
}

/** True when the courier user can do `test FLAG path` (e.g. -r, -x). */
export async function courierCan(flag: string, file: string): Promise<boolean> {
  try {
    await run('runuser', ['-u', 'courier', '--', 'test', flag, file], 10_000);
    return true;
  } catch {
    return false;
  }
}

/** A loopback port nobody listens on right now. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves with the first line the server sends (the SMTP greeting), or rejects. */
export function readGreeting(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    let settled = false;
    const done = (err: Error | undefined, line?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(line!);
    };
    const timer = setTimeout(() => done(new Error(`no greeting within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        sock.end('QUIT\r\n');
        done(undefined, buf.slice(0, nl).trim());
      }
    });
    sock.on('error', (err) => done(err));
    sock.on('close', () => done(new Error('closed before a greeting')));
  });
}

/**
 * Holds an exclusive flock(1) lock on `file` until the returned release() (or until this
 * process ends: the lock is held by a `flock` child that exits when its stdin closes). The
 * child runs in its own process group, so a Ctrl-C does not release the lock before the
 * clean-up that follows it.
 */
export async function holdFileLock(file: string): Promise<() => Promise<void>> {
  const { spawn } = await import('node:child_process');
  const child = spawn('flock', ['-x', file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'], detached: true, env: CLEAN_ENV,
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', (e) => reject(new CommandError(`flock ${file}: ${e.message}`)));
    child.once('exit', (code) => reject(new CommandError(`flock ${file} exited (${code}) before taking the lock`)));
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
  });
  child.removeAllListeners('exit');
  // held for as long as this process wants it, but never what keeps it alive
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
  (child.stdout as unknown as { unref(): void }).unref();
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    // waited for now: without a ref the process could end before `flock` has let go
    child.ref();
    child.stdin!.end();
    await exited;
  };
}
