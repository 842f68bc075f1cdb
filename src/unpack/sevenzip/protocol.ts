/**
 * The messages between the pool (pool.ts, the worker's thread) and one 7-Zip thread
 * (thread.ts). Structured-clone data only; member bytes travel in the transfer list.
 *
 * Owns: the message shapes. Inputs/outputs: none (types only). Fails with nothing.
 */
import type { UnpackOutcome } from '../types.js';

/** Given to a new thread as workerData: the compiled 7zz.wasm, shared so no thread compiles it. */
export interface ThreadData {
  readonly wasm: WebAssembly.Module;
  /** The WASM heap may not grow past this (a growth past it fails as out of memory in 7-Zip). */
  readonly heapLimitBytes: number;
}

export interface JobRequest {
  readonly type: 'job';
  readonly id: number;
  /** The archive; transferred (the pool copies the caller's buffer once). */
  readonly input: ArrayBuffer;
  /** 7-Zip's -t name. */
  readonly sevenZipType: string;
  readonly maxOutputBytes: number;
  readonly maxMembers: number;
}

export interface VersionRequest {
  readonly type: 'version';
  readonly id: number;
}

export type Request = JobRequest | VersionRequest;

export interface WireMember {
  readonly name: string;
  /** The member's bytes: these buffers one after the other (as 7-Zip wrote them), `length` in all. */
  readonly buffers: ArrayBuffer[];
  readonly length: number;
}

export interface JobReply {
  readonly type: 'job';
  readonly id: number;
  readonly members: WireMember[];
  readonly outcome: UnpackOutcome;
  readonly detail?: string | undefined;
  /** 7-Zip said there are bytes after the archive's end (UnpackResult.trailing). */
  readonly trailing?: boolean | undefined;
  /** The WASM heap after the job: never shrinks, so the pool retires a thread past its limit. */
  readonly heapBytes: number;
  /**
   * The module's state can no longer be trusted (a C++ exception or our own stop escaped
   * through 7-Zip's frames: its stack and heap were not unwound): the pool replaces the thread.
   */
  readonly retire: boolean;
}

export interface VersionReply {
  readonly type: 'version';
  readonly id: number;
  readonly version: string;
}

/** The thread's own fault (a bug or a WASM trap): the pool rejects with EUNPACK_INTERNAL. */
export interface FaultReply {
  readonly type: 'fault';
  readonly id: number;
  readonly message: string;
}

export type Reply = JobReply | VersionReply | FaultReply;
