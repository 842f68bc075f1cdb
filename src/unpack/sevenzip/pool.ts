/**
 * The 7-Zip pool: a few worker threads (thread.ts), each with its own 7-Zip WebAssembly module,
 * that unpack archives one job at a time. Decoding hostile input never runs on the caller's
 * thread: a job that passes its deadline or is aborted costs its thread (terminated and
 * replaced), never the worker process that owns the mail.
 *
 * Owns: the threads (created lazily, reused, replaced after a fault, a stop, an escaped C++
 * exception or a heap grown past maxHeapBytes: WASM memory never shrinks; ended after
 * idleThreadMs without a job, so an idle process does not keep a heap that only a large archive
 * needed), the compiled
 * 7zz.wasm (compiled once per pool, shared by its threads), the job queue and each job's
 * deadline and abort.
 * Inputs: archive bytes, a 7-Zip -t type, UnpackLimits, an optional AbortSignal.
 * Outputs: UnpackResult (the outcome `time` when the deadline passes). Fails with AvError:
 * EABORTED (origin abort) when the signal aborts, EUNPACK_INTERNAL (internal) when a thread
 * dies or its module traps, EUNPACK_CLOSED (internal) after close().
 */
import { Worker } from 'node:worker_threads';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { AvError } from '../../errors.js';
import { UnpackErrorCode, type UnpackLimits, type UnpackResult, type UnpackedMember } from '../types.js';
import type { JobReply, Reply, Request, ThreadData } from './protocol.js';
import type { SevenZipType } from './formats.js';

export interface SevenZipPoolOptions {
  /** Threads at most (default 1, at most 2: each holds a WASM heap of up to maxHeapBytes). */
  readonly threads?: number;
  /** A thread whose WASM heap passed this after a job is replaced (default 256 MiB). */
  readonly maxHeapBytes?: number;
  /** A thread without a job for this long ends (default IDLE_THREAD_MS). */
  readonly idleThreadMs?: number;
}

export const IDLE_THREAD_MS = 5_000;

export const DEFAULT_THREADS = 1;
export const MAX_THREADS = 2;
export const DEFAULT_MAX_HEAP_BYTES = 256 * 1024 * 1024;
/** Below this 7-Zip cannot even open a large zip's directory. */
const MIN_HEAP_BYTES = 64 * 1024 * 1024;
/**
 * The heap may grow to twice maxHeapBytes inside one job (then the thread is retired); a
 * growth past that fails inside 7-Zip as out of memory: outcome `size`, never 2 GiB per thread.
 */
const HEAP_HARD_LIMIT_FACTOR = 2;
const VERSION_TIMEOUT_MS = 10_000;

const THREAD_URL = new URL('./thread.js', import.meta.url);
const WASM_PATH = createRequire(import.meta.url).resolve('7z-wasm/7zz.wasm');

interface Job {
  readonly request: Request;
  readonly transfer: ArrayBuffer[];
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  resolve(reply: Reply): void;
  reject(err: Error): void;
  /** What to answer when the deadline passes: a result (`time`) or an error. */
  onDeadline(): void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
  dead: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

export class SevenZipPool {
  readonly #size: number;
  readonly #maxHeapBytes: number;
  readonly #idleThreadMs: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #wasm: WebAssembly.Module | undefined;
  #wasmLoading: Promise<void> | undefined;
  #closed = false;
  #nextId = 1;
  readonly #exits = new Set<Promise<unknown>>();

  constructor(opts: SevenZipPoolOptions = {}) {
    const threads = opts.threads ?? DEFAULT_THREADS;
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new RangeError(`threads must be an integer from 1 to ${MAX_THREADS} (got ${threads})`);
    }
    const heap = opts.maxHeapBytes ?? DEFAULT_MAX_HEAP_BYTES;
    if (!Number.isSafeInteger(heap) || heap < MIN_HEAP_BYTES) {
      throw new RangeError(`maxHeapBytes must be at least ${MIN_HEAP_BYTES} (got ${heap})`);
    }
    this.#size = threads;
    this.#maxHeapBytes = heap;
    this.#idleThreadMs = opts.idleThreadMs ?? IDLE_THREAD_MS;
  }

  /** Threads alive now (for tests and the bench). */
  get threadCount(): number {
    return this.#slots.length;
  }

  /** `sevenZipType`: from sevenZipTypeFor(format, input) (it tells RAR 5 from RAR 4). */
  unpack(input: Buffer, sevenZipType: SevenZipType, limits: UnpackLimits, signal?: AbortSignal): Promise<UnpackResult> {
    if (this.#closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(abortedError(signal.reason));
    if (Date.now() >= limits.deadline) return Promise.resolve({ members: [], outcome: 'time', detail: 'deadline passed before unpacking' });
    // One copy: the caller keeps its buffer; ours is transferred to the thread and owned there.
    const copy = new ArrayBuffer(input.length);
    new Uint8Array(copy).set(input);
    return new Promise<UnpackResult>((resolve, reject) => {
      const id = this.#nextId++;
      const job: Job = {
        request: {
          type: 'job',
          id,
          input: copy,
          sevenZipType,
          maxOutputBytes: limits.maxOutputBytes,
          maxMembers: limits.maxMembers,
        },
        transfer: [copy],
        deadline: limits.deadline,
        signal,
        resolve: (reply) => {
          if (reply.type !== 'job') return reject(internalError(`unexpected reply ${reply.type}`));
          resolve(toResult(reply));
        },
        reject,
        onDeadline: () => resolve({ members: [], outcome: 'time', detail: 'deadline passed while unpacking' }),
      };
      this.#submit(job);
    });
  }

  /** 7-Zip's banner ("7-Zip (z) 24.09 (LE)"), from a thread. */
  version(): Promise<string> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise<string>((resolve, reject) => {
      const job: Job = {
        request: { type: 'version', id: this.#nextId++ },
        transfer: [],
        deadline: Date.now() + VERSION_TIMEOUT_MS,
        signal: undefined,
        resolve: (reply) => (reply.type === 'version' ? resolve(reply.version) : reject(internalError(`unexpected reply ${reply.type}`))),
        reject,
        onDeadline: () => reject(internalError('7-Zip thread did not answer')),
      };
      this.#submit(job);
    });
  }

  /** Stops every thread; queued and running jobs reject with EUNPACK_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(closedError());
    for (const slot of [...this.#slots]) {
      const job = slot.job;
      this.#kill(slot);
      job?.reject(closedError());
    }
    await Promise.all([...this.#exits]);
  }

  #submit(job: Job): void {
    let timer: NodeJS.Timeout | undefined;
    const settle = (): void => {
      clearTimeout(timer);
      job.signal?.removeEventListener('abort', onAbort);
    };
    const stop = (answer: () => void): void => {
      settle();
      const queued = this.#queue.indexOf(job);
      if (queued >= 0) this.#queue.splice(queued, 1);
      const slot = this.#slots.find((s) => s.job === job);
      if (slot) this.#kill(slot); // the only way to stop WASM that is running
      answer();
      this.#pump();
    };
    const onAbort = (): void => stop(() => job.reject(abortedError(job.signal?.reason)));
    timer = setTimeout(() => stop(() => job.onDeadline()), Math.max(0, job.deadline - Date.now()));
    job.signal?.addEventListener('abort', onAbort, { once: true });
    const { resolve, reject } = job;
    job.resolve = (reply) => {
      settle();
      resolve(reply);
    };
    job.reject = (err) => {
      settle();
      reject(err);
    };
    this.#queue.push(job);
    this.#pump();
  }

  #pump(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      let slot = this.#slots.find((s) => s.job === undefined && !s.dead);
      if (!slot) {
        if (this.#slots.length >= this.#size) return;
        if (!this.#wasm) {
          this.#loadWasm();
          return;
        }
        slot = this.#spawn(this.#wasm);
      }
      const job = this.#queue.shift()!;
      clearTimeout(slot.idleTimer);
      slot.idleTimer = undefined;
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage(job.request, job.transfer);
    }
  }

  /**
   * Compiles 7zz.wasm once per pool; each thread gets the compiled module and starts in tens
   * of milliseconds instead of compiling 1.6 MB of WASM. Jobs wait in the queue meanwhile.
   */
  #loadWasm(): void {
    if (this.#wasmLoading) return;
    this.#wasmLoading = readFile(WASM_PATH)
      .then((bytes) => WebAssembly.compile(bytes))
      .then(
        (wasm) => {
          this.#wasm = wasm;
          this.#pump();
        },
        (err: unknown) => {
          this.#wasmLoading = undefined;
          for (const job of this.#queue.splice(0)) job.reject(internalError(`cannot load 7zz.wasm: ${String(err)}`, err));
        },
      );
  }

  #spawn(wasm: WebAssembly.Module): Slot {
    const data: ThreadData = { wasm, heapLimitBytes: this.#maxHeapBytes * HEAP_HARD_LIMIT_FACTOR };
    // execArgv: none of the parent's flags (an --input-type or --eval would stop the thread).
    const worker = new Worker(THREAD_URL, { workerData: data, execArgv: [] });
    const slot: Slot = { worker, job: undefined, dead: false, idleTimer: undefined };
    this.#slots.push(slot);
    this.#wire(slot);
    return slot;
  }

  #wire(slot: Slot): void {
    const w = slot.worker;
    w.on('message', (msg: Reply | { type: 'ready' }) => {
      if (msg.type === 'ready') return;
      const job = slot.job;
      if (!job || job.request.id !== msg.id) return; // a late answer to a job already stopped
      slot.job = undefined;
      if (msg.type === 'fault') {
        this.#kill(slot);
        job.reject(internalError(`7-Zip thread fault: ${msg.message}`));
      } else {
        if (msg.type === 'job' && (msg.retire || msg.heapBytes > this.#maxHeapBytes)) this.#kill(slot);
        else w.unref(); // an idle thread does not keep the process alive
        job.resolve(msg);
      }
      this.#pump();
      if (!slot.dead && slot.job === undefined) this.#idle(slot);
    });
    w.on('error', (err) => this.#fail(slot, internalError(`7-Zip thread failed: ${err.message}`, err)));
    w.on('exit', (code) => this.#fail(slot, internalError(`7-Zip thread exited (${code})`)));
  }

  #fail(slot: Slot, err: Error): void {
    if (slot.dead) return;
    const job = slot.job;
    this.#kill(slot);
    job?.reject(err);
    this.#pump();
  }

  /** An idle thread ends after idleThreadMs unless a job comes first. */
  #idle(slot: Slot): void {
    clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = undefined;
      if (slot.job === undefined) this.#kill(slot);
    }, this.#idleThreadMs);
    slot.idleTimer.unref();
  }

  #kill(slot: Slot): void {
    if (slot.dead) return;
    slot.dead = true;
    slot.job = undefined;
    clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots.splice(i, 1);
    const exit = slot.worker.terminate().catch(() => undefined);
    this.#exits.add(exit);
    void exit.finally(() => this.#exits.delete(exit));
  }
}

function toResult(reply: JobReply): UnpackResult {
  return {
    members: reply.members.map((m) => chunkedMember(m.name, m.buffers.map((b) => Buffer.from(b)))),
    outcome: reply.outcome,
    detail: reply.detail,
    trailing: reply.trailing,
  };
}

/**
 * A member as 7-Zip wrote it, in chunks: the stage writes them one by one (a 256 MiB member
 * is never held twice); `bytes` joins them only for a caller that asks.
 */
function chunkedMember(name: string, chunks: Buffer[]): UnpackedMember {
  let joined: Buffer | undefined = chunks.length === 1 ? chunks[0] : undefined;
  return {
    name,
    chunks,
    get bytes(): Buffer {
      joined ??= Buffer.concat(chunks);
      return joined;
    },
  };
}

function internalError(message: string, cause?: unknown): AvError {
  return new AvError(UnpackErrorCode.INTERNAL, 'internal', message, { cause });
}

function abortedError(reason: unknown): AvError {
  return new AvError('EABORTED', 'abort', '7-Zip job aborted', { cause: reason });
}

function closedError(): AvError {
  return new AvError('EUNPACK_CLOSED', 'internal', '7-Zip pool is closed');
}
