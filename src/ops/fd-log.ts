/**
 * A worker's log output: finished lines written straight to the daemon's stderr (a descriptor
 * the master hands every worker), so a message's log line costs the master nothing.
 *
 * Several processes write to the same pipe (courierfilter's stderr, read by its logger), so a
 * line must never be cut by another process's write: writes of up to PIPE_BUF bytes to a pipe
 * are atomic (POSIX), and a write here is whole lines of at most that many bytes together; a
 * line longer than PIPE_BUF is cut to it (the cut is marked). On a pipe, a write goes out at once
 * on a non-blocking description of the pipe of this process's own (opened through /proc/self/fd,
 * so the shared description keeps its flags: the master's and courierfilter's other filters'
 * writes are untouched); a handover to the thread pool and back costs more than the write (two
 * wake-ups per message at mail rates). Only a full pipe (EAGAIN: a write of at most PIPE_BUF
 * bytes goes whole or not at all), or a descriptor that is no pipe, sends a write through the
 * thread pool, one at a time: a reader that stalls holds one pool thread and the lines queue
 * behind it, up to MAX_PENDING_LINES, beyond which they are dropped and counted, never the event
 * loop (the heartbeat goes on). A reader that went away (EPIPE) costs lines, never the process.
 *
 * Owns: the queue, the one write in flight, the non-blocking descriptor of its own, the count of
 * lines lost.
 * Inputs: finished lines. Outputs: bytes on the descriptor; `lost`.
 * Fails with nothing: every failure is a counted lost line.
 */
import { constants, fstatSync, openSync, write, writeSync } from 'node:fs';
import type { LogSink } from './log.js';

/** Linux's PIPE_BUF: writes up to this many bytes to a pipe are never interleaved with others. */
export const PIPE_BUF = 4096;
const MAX_PENDING_LINES = 20_000;
const CUT_MARK = Buffer.from(' [cut]\n');

export class FdLog {
  private queue: Buffer[] = [];
  private writing = false;
  private scheduled = false;
  private dropped = 0;
  private failed = 0;
  private idle: Array<() => void> = [];

  /** The pipe, non-blocking, on a description of this process's own; undefined: not a pipe. */
  private readonly twin: number | undefined;

  constructor(private readonly fd: number) {
    this.twin = nonBlockingTwin(fd);
  }

  readonly sink: LogSink = (line) => {
    if (this.queue.length >= MAX_PENDING_LINES) {
      this.dropped++;
      return;
    }
    this.queue.push(lineBytes(line));
    if (!this.scheduled && !this.writing) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.next();
      });
    }
  };

  /** Lines that never reached the descriptor. */
  get lost(): number {
    return this.dropped + this.failed;
  }

  /** Writes what is queued now, synchronously (a worker about to exit). */
  flushSync(): void {
    for (const chunk of this.take(Infinity)) {
      try {
        writeSync(this.fd, chunk);
      } catch {
        this.failed++;
      }
    }
  }

  /** Resolves when the queue is empty, at most `timeoutMs` later. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0 && !this.writing) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idle.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private next(): void {
    let chunk: Buffer | undefined;
    for (;;) {
      [chunk] = this.take(1);
      if (chunk === undefined) {
        for (const f of this.idle.splice(0)) f();
        return;
      }
      if (this.twin === undefined) break;
      try {
        // a write of at most PIPE_BUF bytes to a pipe is whole, or EAGAIN when it has no room
        if (writeSync(this.twin, chunk) !== chunk.length) this.failed += countLines(chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        this.failed += countLines(chunk);
      }
    }
    // the pipe is full (or no pipe): this write waits in the pool, the next ones behind it
    this.writing = true;
    const lines = countLines(chunk);
    write(this.fd, chunk, 0, chunk.length, null, (err, n) => {
      this.writing = false;
      // a short write to a pipe only happens past PIPE_BUF, which never leaves here whole
      if (err || n !== chunk.length) this.failed += lines;
      this.next();
    });
  }

  /** Up to `max` writes of whole lines, each at most PIPE_BUF bytes. */
  private take(max: number): Buffer[] {
    const out: Buffer[] = [];
    while (this.queue.length > 0 && out.length < max) {
      let size = 0;
      let n = 0;
      while (n < this.queue.length && size + this.queue[n]!.length <= PIPE_BUF) size += this.queue[n++]!.length;
      out.push(Buffer.concat(this.queue.splice(0, n), size));
    }
    return out;
  }
}

/**
 * A second, non-blocking description of the pipe at `fd`, or undefined (not a pipe, no /proc, no
 * reader: the shared descriptor is then written through the thread pool as it is).
 */
function nonBlockingTwin(fd: number): number | undefined {
  try {
    if (!fstatSync(fd).isFIFO()) return undefined;
    return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

/** The line as bytes with its newline, cut to PIPE_BUF. */
function lineBytes(line: string): Buffer {
  const b = Buffer.from(line.endsWith('\n') ? line : `${line}\n`, 'utf8');
  if (b.length <= PIPE_BUF) return b;
  const cut = Buffer.allocUnsafe(PIPE_BUF);
  b.copy(cut, 0, 0, PIPE_BUF - CUT_MARK.length);
  CUT_MARK.copy(cut, PIPE_BUF - CUT_MARK.length);
  return cut;
}

function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  return n;
}
