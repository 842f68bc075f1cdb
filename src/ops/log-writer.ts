/**
 * The master's log output: lines go to a thread that writes them to fd 2 with blocking writes,
 * so a stalled reader (courierlogger stopped) stalls the thread and never the master, and a
 * reader that went away (EPIPE) costs lines, never the process.
 *
 * Owns: the writer thread, the bound on lines waiting for it, and the count of lines lost.
 * Inputs: finished lines. Outputs: bytes on fd 2; `lost` and `pending` counts.
 * Fails with nothing: every failure is a counted lost line.
 */
import { Worker } from 'node:worker_threads';
import type { LogSink } from './log.js';

/** Lines waiting for the writer beyond this are dropped (and counted): bounded memory. */
const MAX_PENDING_LINES = 20_000;

/** Counters shared with the thread: [written, lost]. */
const WRITTEN = 0;
const LOST = 1;

const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const counters = new Int32Array(workerData.counters);
const fd = workerData.fd;
const nap = new Int32Array(new SharedArrayBuffer(4));
// EAGAIN: fd 2 may be a non-blocking pipe shared with others; retry a little, then give up.
const EAGAIN_RETRIES = 50;
parentPort.on('message', (batch) => {
  for (const line of batch) writeLine(line);
});
function writeLine(line) {
  const buf = Buffer.from(line, 'utf8');
  let off = 0;
  let tries = 0;
  try {
    while (off < buf.length) {
      try {
        off += writeSync(fd, buf, off, buf.length - off);
      } catch (err) {
        if (err.code !== 'EAGAIN' || ++tries > EAGAIN_RETRIES) throw err;
        Atomics.wait(nap, 0, 0, 10);
      }
    }
    Atomics.add(counters, ${WRITTEN}, 1);
  } catch {
    Atomics.add(counters, ${LOST}, 1);
    Atomics.add(counters, ${WRITTEN}, 1);
  }
}
`;

export class LogWriter {
  private readonly counters = new Int32Array(new SharedArrayBuffer(8));
  private readonly thread: Worker;
  private posted = 0;
  private dropped = 0;

  constructor(fd = 2) {
    this.thread = new Worker(THREAD_SOURCE, { eval: true, workerData: { counters: this.counters.buffer, fd } });
    this.thread.unref();
    // A writer thread that dies (it should not) turns every later line into a lost one.
    this.thread.on('error', () => undefined);
    this.thread.on('exit', () => {
      this.dead = true;
    });
  }

  private dead = false;

  /** Lines of this turn of the event loop, posted together (one message, not one per line). */
  private batch: string[] = [];

  readonly sink: LogSink = (line) => {
    if (this.dead || this.pending + this.batch.length >= MAX_PENDING_LINES) {
      this.dropped++;
      return;
    }
    if (this.batch.length === 0) setImmediate(() => this.post());
    this.batch.push(line);
  };

  private post(): void {
    const lines = this.batch;
    this.batch = [];
    if (lines.length === 0) return;
    if (this.dead) {
      this.dropped += lines.length;
      return;
    }
    this.posted += lines.length;
    this.thread.postMessage(lines);
  }

  /** Lines handed to the thread and not written (or lost) yet. */
  get pending(): number {
    return this.posted - Atomics.load(this.counters, WRITTEN);
  }

  /** Lines that never reached fd 2: write failures plus lines dropped for want of room. */
  get lost(): number {
    return Atomics.load(this.counters, LOST) + this.dropped;
  }

  /** Waits until every posted line is written or lost, at most `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    this.post();
    const until = Date.now() + timeoutMs;
    while (this.pending > 0 && !this.dead && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    await this.thread.terminate().catch(() => undefined);
  }
}
