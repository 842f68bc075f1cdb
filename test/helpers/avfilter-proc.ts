/**
 * Runs the built avfilter (dist/bin/avfilter.js) as a child process for tests, optionally with
 * courierfilter's fd 3 pipe (a real FIFO) and a piped stdin, and talks to its socket.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const AVFILTER = fileURLToPath(new URL('../../bin/avfilter.js', import.meta.url));

export interface Run { code: number | null; stdout: string; stderr: string }

/** Run avfilter to completion (test modes). */
export function runAvfilter(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Run {
  const r = spawnSync(process.execPath, [AVFILTER, ...args], {
    input: opts.input ?? '', env: { ...process.env, ...opts.env }, encoding: 'utf8', timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user to run a process as (spawn's uid/gid). */
export interface User {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** Looks a user up (id -u / id -g); undefined when there is no such user. */
export function lookupUser(name: string): User | undefined {
  const id = (flag: string): number | undefined => {
    const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : undefined;
  };
  const uid = id('-u');
  const gid = id('-g');
  return uid === undefined || gid === undefined ? undefined : { name, uid, gid };
}

export interface Daemon {
  child: ChildProcess;
  stderr(): string;
  /** Resolves when fd 3 (the FIFO) reached EOF: avfilter closed it. */
  fd3Closed: Promise<void> | undefined;
  exited: Promise<number | null>;
  closeStdin(): void;
}

/** Start the daemon. With `fifo`, fd 3 is the write end of a real FIFO, as courierfilter gives it. */
export function startDaemon(args: string[], opts: { fifo?: boolean; name?: string; stdin?: 'pipe' | 'ignore'; asRoot?: boolean; user?: User; env?: NodeJS.ProcessEnv } = {}): Daemon {
  // The daemon refuses root unless told; the tests run as root (CI), so tell it — unless it
  // runs as another user (`user`: Courier's, as courierfilter starts it).
  if (process.getuid?.() === 0 && opts.asRoot !== false && !opts.user && !args.includes('--allow-root')) args = [...args, '--allow-root'];
  const stdio: Array<'pipe' | 'ignore' | number> = [opts.stdin ?? 'pipe', 'pipe', 'pipe'];
  let fd3Closed: Promise<void> | undefined;
  let readFd: number | undefined;
  let writeFd: number | undefined;
  if (opts.fifo) {
    const dir = mkdtempSync(join(tmpdir(), 'avf-fifo-'));
    const path = join(dir, 'fd3');
    const mk = spawnSync('mkfifo', [path]);
    if (mk.status !== 0) throw new Error('mkfifo failed');
    readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    writeFd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    stdio.push(writeFd);
  }
  // Run through a link named like the filter, as courierfilter does (active/NAME).
  let program = AVFILTER;
  if (opts.name) {
    const dir = mkdtempSync(join(tmpdir(), 'avf-bin-'));
    program = join(dir, opts.name);
    writeFileSync(program, `import(${JSON.stringify(AVFILTER)});\n`);
  }
  const child = spawn(process.execPath, [program, ...args], { stdio, ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}), ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}) });
  if (writeFd !== undefined) closeSync(writeFd);
  if (readFd !== undefined) {
    const fd = readFd;
    fd3Closed = new Promise((resolve) => {
      // EOF on the FIFO (read returns 0) once every writer, now only the child, has closed it.
      const check = () => {
        try {
          const buf = Buffer.alloc(1);
          const n = readSync(fd, buf, 0, 1, null);
          if (n === 0) {
            closeSync(fd);
            resolve();
            return;
          }
        } catch {
          // EAGAIN: writer still open.
        }
        setTimeout(check, 50);
      };
      check();
    });
  }
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderr: () => err, fd3Closed, exited, closeStdin: () => child.stdin?.end() };
}

/** Send raw bytes on the filter socket; resolve with everything read until the server closes. */
export function talk(socketPath: string, payload: string | Buffer, opts: { timeoutMs?: number; end?: boolean } = {}): Promise<{ reply: string; closedBy: 'server' | 'timeout' }> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: socketPath });
    let data = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve({ reply: data, closedBy: 'timeout' });
    }, opts.timeoutMs ?? 30_000);
    s.on('data', (d) => { data += d.toString(); });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') return;
      clearTimeout(t);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve({ reply: data, closedBy: 'server' });
    });
    s.write(payload);
    if (opts.end) s.end();
  });
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function exists(p: string): boolean {
  return existsSync(p);
}
