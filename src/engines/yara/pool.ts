/**
 * A small pool of scan worker threads (worker.ts) with a FIFO queue.
 *
 * Owns: the worker threads' life cycle. Workers start on demand, up to `size`; an idle worker is
 * unref'd so an idle engine never keeps the process alive, and ends after IDLE_THREAD_MS
 * without a job (its heap, its compiled rules and its scanner's buffers go with it; the next
 * job starts a fresh one). Bytes handed to the threads are capped (MAX_BYTES_IN_FLIGHT: a
 * buffer is copied for its thread, and a file costs its size too: measured with binding 0.7.2,
 * scanFile holds the whole file in anonymous memory during the scan, mmap on or off): past the
 * cap jobs wait in the queue, and one job larger than the cap runs alone, so two large parts of
 * a message are never in memory at once. When a job's signal aborts (deadline
 * or caller), the job is answered at once; if its scan was running, that worker is retired
 * (terminate() takes effect only when the native scan returns, so the thread may burn CPU until
 * then: the binding offers no way to interrupt a scan before 0.7.x's setTimeout) and a fresh one
 * is started for the next job.
 * Inputs: buffers to scan and an AbortSignal each.
 * Outputs: a PoolOutcome per run(); never rejects. A worker that fails, crashes or exits turns
 * its job into a 'failed' outcome with code ESCANNER.
 */
import { Worker } from 'node:worker_threads';
import { EngineErrorCode } from '../engine.js';
import type { RuleHit, WorkerInit, WorkerReply, WorkerRequest } from './worker.js';

export type PoolOutcome =
  | { readonly kind: 'done'; readonly hits: readonly RuleHit[] }
  | { readonly kind: 'failed'; readonly code: string; readonly message: string }
  | { readonly kind: 'aborted' };

const WORKER_URL = new URL('./worker.js', import.meta.url);
/** A thread without a job for this long ends. */
export const IDLE_THREAD_MS = 5_000;
/** Most bytes (buffers and files) held by the threads at once; a larger job runs alone. */
export const MAX_BYTES_IN_FLIGHT = 32 * 1024 * 1024;

/**
 * What a thread scans: bytes in memory, or a file it reads itself (no copy in our heap; `size`:
 * its length, what the thread holds while it scans it).
 */
export type ScanInput = Buffer | { readonly path: string; readonly size?: number | undefined };

interface Job {
  readonly data: ScanInput;
  settle(outcome: PoolOutcome): void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
  jobId: number;
  /** Bytes of its job (a buffer's, or the size of the file it maps). */
  bytes: number;
  idleTimer: NodeJS.Timeout | undefined;
}

export class ScanPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private seq = 0;
  private closed = false;
  private inFlight = 0;

  constructor(
    private readonly init: WorkerInit,
    private readonly size: number,
    private readonly idleMs = IDLE_THREAD_MS,
    private readonly maxBytesInFlight = MAX_BYTES_IN_FLIGHT,
  ) {}

  /** Threads alive now (for tests). */
  get threadCount(): number {
    return this.slots.length;
  }

  run(data: ScanInput, signal: AbortSignal): Promise<PoolOutcome> {
    if (this.closed) return Promise.resolve(closedOutcome());
    if (signal.aborted) return Promise.resolve({ kind: 'aborted' });
    return new Promise<PoolOutcome>((resolve) => {
      let settled = false;
      const job: Job = {
        data,
        settle: (outcome) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      const onAbort = (): void => {
        const queued = this.queue.indexOf(job);
        if (queued >= 0) this.queue.splice(queued, 1);
        const slot = this.slots.find((s) => s.job === job);
        if (slot) this.retire(slot);
        job.settle({ kind: 'aborted' });
        this.pump();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(job);
      this.pump();
    });
  }

  /** Answers queued and running jobs, stops the workers; waits only for idle ones. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.settle(closedOutcome());
    const idle: Promise<number>[] = [];
    for (const slot of [...this.slots]) {
      const job = slot.job;
      if (!job) idle.push(slot.worker.terminate());
      this.retire(slot);
      job?.settle(closedOutcome());
    }
    await Promise.allSettled(idle);
  }

  private pump(): void {
    while (!this.closed && this.queue.length > 0) {
      const next = this.queue[0]!;
      const bytes = Buffer.isBuffer(next.data) ? next.data.length : next.data.size ?? 0;
      // FIFO: a job past the cap waits (and the ones behind it) until a thread hands back
      if (bytes > 0 && this.inFlight > 0 && this.inFlight + bytes > this.maxBytesInFlight) return;
      const idle = this.slots.find((s) => !s.job);
      const slot = idle ?? (this.slots.length < this.size ? this.spawn() : undefined);
      if (!slot) return;
      const job = this.queue.shift()!;
      clearTimeout(slot.idleTimer);
      slot.idleTimer = undefined;
      slot.job = job;
      slot.jobId = ++this.seq;
      slot.bytes = bytes;
      this.inFlight += bytes;
      slot.worker.ref();
      if (Buffer.isBuffer(job.data)) {
        // One exact-size copy, transferred: posting the caller's Buffer would clone its whole
        // backing ArrayBuffer (possibly a large pool) and the caller may still need it.
        const copy = new Uint8Array(job.data.length);
        copy.set(job.data);
        const req: WorkerRequest = { id: slot.jobId, data: copy };
        slot.worker.postMessage(req, [copy.buffer]);
      } else {
        const req: WorkerRequest = { id: slot.jobId, path: job.data.path };
        slot.worker.postMessage(req);
      }
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_URL, { workerData: this.init });
    const slot: Slot = { worker, job: undefined, jobId: 0, bytes: 0, idleTimer: undefined };
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      if (!this.slots.includes(slot)) return; // retired: its answer is no longer wanted
      if (reply.type === 'fatal') {
        this.fail(slot, reply.message);
        return;
      }
      const job = slot.job;
      if (!job || reply.id !== slot.jobId) return;
      this.release(slot);
      worker.unref();
      job.settle(
        reply.type === 'result'
          ? { kind: 'done', hits: reply.hits }
          : { kind: 'failed', code: reply.code, message: reply.message },
      );
      this.pump();
      if (slot.job === undefined && this.slots.includes(slot)) this.idle(slot);
    });
    // Listeners stay after retirement: an 'error' event without one would crash the process.
    worker.on('error', (err) => {
      if (this.slots.includes(slot)) this.fail(slot, `YARA scan worker failed: ${err.message}`);
    });
    worker.on('exit', (code) => {
      if (this.slots.includes(slot)) this.fail(slot, `YARA scan worker exited with code ${code}`);
    });
    this.slots.push(slot);
    return slot;
  }

  private fail(slot: Slot, message: string): void {
    const job = slot.job;
    this.retire(slot);
    job?.settle({ kind: 'failed', code: EngineErrorCode.SCANNER, message });
    this.pump();
  }

  /** The slot's job is over: its bytes no longer count. */
  private release(slot: Slot): void {
    this.inFlight -= slot.bytes;
    slot.bytes = 0;
    slot.job = undefined;
  }

  /** An idle thread ends after idleMs unless a job comes first. */
  private idle(slot: Slot): void {
    clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = undefined;
      if (slot.job === undefined && this.slots.includes(slot)) this.retire(slot);
    }, this.idleMs);
    slot.idleTimer.unref();
  }

  private retire(slot: Slot): void {
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots.splice(at, 1);
    clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    this.release(slot);
    slot.worker.unref();
    slot.worker.terminate().catch(() => undefined);
  }
}

function closedOutcome(): PoolOutcome {
  const message = 'YARA engine closed during the scan';
  return { kind: 'failed', code: EngineErrorCode.ABORTED, message };
}
