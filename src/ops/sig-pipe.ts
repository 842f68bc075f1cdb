/**
 * The reply pipe between the daemon and avfilter_sig: a FIFO that avfilter_sig creates (its
 * existence is the lock against a second avfilter_sig), reads and removes; the daemon only ever
 * writes into it.
 *
 * Protocol: UTF-8 lines, each ended by "\n", with no control characters; the last line of one
 * answer is `status: ok` or `status: error REASON` (avfilter_sig exits 0 or 1 on it). Everything
 * before it is for the admin to read (what was reloaded, each engine's signatures, what failed).
 *
 * Owns, daemon side (ReportPipe): opening the path only when it is a FIFO — never following a
 * symlink, never creating anything, non-blocking so that a FIFO nobody reads never blocks the
 * master — and writing lines with a bounded wait when the reader is slow. A pipe that is absent,
 * unread or refused costs the report, never the reload.
 * Owns, reader side: making the FIFO (mkfifo), reading answers line by line with a deadline, and
 * removing the FIFO it made. Fails with SigPipeError (code EPIPE_BUSY, EPIPE_UNSAFE,
 * EPIPE_CREATE) for the reader; the writer fails with nothing.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants, existsSync, fstatSync, lchownSync, lstatSync, openSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { Socket } from 'node:net';
import { AvError, messageOf } from '../errors.js';

export const STATUS_PREFIX = 'status: ';
export const STATUS_OK = 'status: ok';

/** How long the daemon waits in all for a reader that does not empty the pipe. */
const WRITE_TIMEOUT_MS = 5000;
const WRITE_RETRY_MS = 20;
/** Longest line written (a reason naming a file and a line is far shorter). */
const MAX_LINE_CHARS = 2000;

/** `status: error REASON` for a reason that may carry newlines. */
export function statusError(reason: string): string {
  return `${STATUS_PREFIX}error ${oneLine(reason)}`;
}

/** The text of a line as written: no control characters, bounded. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').slice(0, MAX_LINE_CHARS);
}

/** 'ok', 'error' or undefined (not a status line). */
export function statusOf(line: string): 'ok' | 'error' | undefined {
  if (line === STATUS_OK) return 'ok';
  if (line.startsWith(`${STATUS_PREFIX}error`)) return 'error';
  return undefined;
}

/** Why the daemon wrote no report (for its log); undefined for "nobody asked" (no pipe, no reader). */
export type OpenResult = { pipe: ReportPipe; refused?: undefined } | { pipe: undefined; refused?: string };

/**
 * The daemon's side: opens `path` for writing when it is a FIFO with a reader. No FIFO (a plain
 * signal, a watched edit) and no reader are the usual cases, not errors.
 */
export function openReportPipe(path: string): OpenResult {
  let before: Stats;
  try {
    before = lstatSync(path);
  } catch {
    return { pipe: undefined };
  }
  if (before.isSymbolicLink()) return { pipe: undefined, refused: `${path} is a symbolic link` };
  if (!before.isFIFO()) return { pipe: undefined, refused: `${path} is not a FIFO` };
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENXIO: a FIFO nobody reads (an avfilter_sig that died); ENOENT: removed meanwhile
    if (code === 'ENXIO' || code === 'ENOENT') return { pipe: undefined };
    return { pipe: undefined, refused: `${path}: ${code ?? messageOf(err)}` };
  }
  const st = fstatSync(fd);
  if (!st.isFIFO() || st.ino !== before.ino || st.dev !== before.dev) {
    closeSync(fd);
    return { pipe: undefined, refused: `${path} changed while it was opened` };
  }
  return { pipe: new ReportPipe(fd) };
}

export class ReportPipe {
  private chain: Promise<void> = Promise.resolve();
  private gone = false;
  private readonly until = Date.now() + WRITE_TIMEOUT_MS;

  constructor(private fd: number | undefined) {}

  /** Queues one line (never throws; a reader that went away ends the report silently). */
  line(text: string): void {
    const buf = Buffer.from(`${oneLine(text)}\n`, 'utf8');
    this.chain = this.chain.then(() => this.write(buf));
  }

  /** Writes the status line, waits for the queued lines and closes the pipe. */
  async end(status: string): Promise<void> {
    this.line(status);
    await this.chain;
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already unusable
      }
      this.fd = undefined;
    }
  }

  private async write(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length && !this.gone && this.fd !== undefined) {
      try {
        off += writeSync(this.fd, buf, off, buf.length - off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' && Date.now() < this.until) {
          await new Promise((r) => setTimeout(r, WRITE_RETRY_MS));
          continue;
        }
        this.gone = true; // EPIPE: the reader left; EAGAIN past the bound: it does not read
      }
    }
  }
}

// ---- the reader's side (avfilter_sig)

export class SigPipeError extends AvError {
  declare readonly code: 'EPIPE_BUSY' | 'EPIPE_UNSAFE' | 'EPIPE_CREATE';
  constructor(code: 'EPIPE_BUSY' | 'EPIPE_UNSAFE' | 'EPIPE_CREATE', message: string) {
    super(code, 'input', message);
    this.name = 'SigPipeError';
  }
}

/** The FIFO made by makeFifo: what identifies it, so that only it is ever removed. */
export interface MadeFifo {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

/**
 * Creates the FIFO at `path` with `mode` (exact, not masked) and, when given, the group the
 * daemon runs with. Node has no mkfifo(3), so coreutils' mkfifo runs it (execFile, no shell):
 * mkfifo(3) fails on any existing path, a dangling symlink included, so an existing path —
 * the lock of another avfilter_sig, or something planted — is never followed or reused.
 */
export async function makeFifo(path: string, mode: number, group?: number): Promise<MadeFifo> {
  const existing = lstatOrUndefined(path);
  if (existing?.isSymbolicLink()) throw new SigPipeError('EPIPE_UNSAFE', `${path} is a symbolic link: refusing to use it (remove it if you did not make it)`);
  if (existing) throw busy(path);
  const bin = existsSync('/usr/bin/mkfifo') ? '/usr/bin/mkfifo' : 'mkfifo';
  const made = await new Promise<string | undefined>((resolve) => {
    execFile(bin, ['-m', mode.toString(8), '--', path], { timeout: 10_000 }, (err, _out, stderr) => {
      resolve(err ? (stderr.trim() || err.message) : undefined);
    });
  });
  if (made !== undefined) {
    if (lstatOrUndefined(path)) throw busy(path);
    throw new SigPipeError('EPIPE_CREATE', `cannot create the pipe ${path}: ${made}`);
  }
  const st = lstatOrUndefined(path);
  if (!st?.isFIFO()) throw new SigPipeError('EPIPE_UNSAFE', `${path} is not the FIFO just made`);
  const fifo = { path, dev: st.dev, ino: st.ino };
  if (group !== undefined) {
    try {
      // lchown: the path is ours and a FIFO, but never follow anything
      lchownSync(path, -1, group);
    } catch (err) {
      removeFifo(fifo);
      throw new SigPipeError('EPIPE_CREATE', `cannot give the pipe ${path} to group ${group}: ${messageOf(err)}`);
    }
  }
  return fifo;
}

function busy(path: string): SigPipeError {
  return new SigPipeError('EPIPE_BUSY', `pipe busy: ${path} exists (another avfilter_sig is running; if none is, one was killed: remove the file)`);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Removes the FIFO if it is still the one made (never another file put in its place). */
export function removeFifo(fifo: MadeFifo): void {
  const st = lstatOrUndefined(fifo.path);
  if (st?.isFIFO() && st.dev === fifo.dev && st.ino === fifo.ino) {
    try {
      unlinkSync(fifo.path);
    } catch {
      // gone meanwhile
    }
  }
}

export type ReadOutcome = { readonly status: 'ok' | 'error' } | { readonly status: 'timeout' };

/**
 * Opens the FIFO for reading (and once for writing, so that the daemon closing its end is no
 * end of file: the answer ends with its status line, not with EOF). Call before the signal is
 * sent; `read()` then yields every line to `onLine` until the status line or the deadline.
 */
export function openReader(fifo: MadeFifo): { read(timeoutMs: number, onLine: (line: string) => void): Promise<ReadOutcome>; close(): void } {
  const flags = constants.O_NONBLOCK | constants.O_NOFOLLOW;
  const rfd = openSync(fifo.path, constants.O_RDONLY | flags);
  const st = fstatSync(rfd);
  if (!st.isFIFO() || st.ino !== fifo.ino || st.dev !== fifo.dev) {
    closeSync(rfd);
    throw new SigPipeError('EPIPE_UNSAFE', `${fifo.path} changed while it was opened`);
  }
  const wfd = openSync(fifo.path, constants.O_WRONLY | flags);
  // A net.Socket reads a FIFO through the event loop (as process.stdin does), non-blocking.
  const sock = new Socket({ fd: rfd, readable: true, writable: false });
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    sock.destroy();
    try {
      closeSync(wfd);
    } catch {
      // closed
    }
  };
  const read = (timeoutMs: number, onLine: (line: string) => void): Promise<ReadOutcome> => new Promise((resolve) => {
    let buf = '';
    const done = (o: ReadOutcome): void => {
      clearTimeout(timer);
      sock.removeAllListeners('data');
      resolve(o);
    };
    const timer = setTimeout(() => done({ status: 'timeout' }), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(line);
        const s = statusOf(line);
        if (s !== undefined) return done({ status: s });
      }
    });
  });
  return { read, close };
}
