/**
 * The messages between the master and a worker process (over the IPC channel that
 * child_process.fork sets up). No message data and no request crosses it: a worker accepts its
 * connections on the listening socket itself (handed over once, with `listen`), reads the
 * request, answers it and closes; the master hears only life-cycle messages, a heartbeat once a
 * second (with the counters since the last one: numbers and virus names, no message data), and finished log lines when the worker has no descriptor of the daemon's stderr
 * (`logFd`) to write them to itself; and the client IPs blocked after a virus (a worker
 * reports one, the master keeps the table and sends it on to every worker).
 *
 * Owns: the message shapes and their type guards. Fails with nothing.
 */
import type { ParseOptions } from '../config/load.js';
import type { WorkerLog } from '../ops/log-output.js';
import type { StatsDelta } from '../ops/stats.js';
import type { BlockEntry } from '../policy/ip-blocks.js';

export type ToWorker =
  /**
   * First message: what this worker is. A scanning worker loads the config (text + where it
   * came from) and its share of the scan slots; a responder loads nothing and answers every
   * request 451 with the text it is given, logged with its code (the daemon's degraded mode, or
   * no scanning worker ready).
   */
  | { readonly t: 'init'; readonly configText: string; readonly source: string; readonly parse?: ParseOptions | undefined; readonly processes: number; readonly slots: number; readonly worker: number; readonly logFd?: number | undefined; readonly log?: WorkerLog | undefined }
  | { readonly t: 'init'; readonly responder: { readonly code: string; readonly text: string }; readonly worker: number; readonly logLevel: string; readonly logFd?: number | undefined; readonly log?: WorkerLog | undefined }
  /**
   * Start accepting on the listening socket: the handle travels with this message (as a raw
   * pipe handle). Sent once the worker is ready and its generation serves.
   */
  | { readonly t: 'listen'; readonly echo: boolean; readonly requestTimeoutMs: number; readonly readTimeoutMs: number; readonly maxLineBytes: number; readonly maxLines: number; readonly backstopMs: number }
  /**
   * Stop accepting, finish the requests in hand, then exit 0. `graceMs`: answer what is still
   * unanswered after that long 451 (shutdown); absent: let each finish within its own
   * deadline (a reload, a recycle).
   */
  | { readonly t: 'retire'; readonly graceMs?: number | undefined }
  /**
   * Blocked client IPs (action.block_ip_seconds), each with the end of its block (epoch ms):
   * every block in force when the worker says ready, then each new one as any worker reports it.
   */
  | { readonly t: 'blocks'; readonly entries: readonly BlockEntry[] };

export type FromWorker =
  | { readonly t: 'ready'; readonly engines: readonly string[] }
  | { readonly t: 'failed'; readonly code: string; readonly reason: string }
  /** Accepting now; with `echo`, the listening handle travels back (the master keeps a copy). */
  | { readonly t: 'listening' }
  /**
   * Once a second: how many requests it holds and the earliest deadline among them (epoch ms,
   * 0 when idle), and how many it has answered since it started (`served`: the master tells an
   * idle worker from a busy one between two beats). A worker whose event loop is stuck stops
   * beating. `stats`: the counters since its previous beat (ops/stats.ts), when any changed.
   */
  | { readonly t: 'beat'; readonly busy: number; readonly oldestDeadline: number; readonly served?: number; readonly lostLines?: number; readonly stats?: StatsDelta | undefined }
  /** Finished log lines, a turn of the event loop's worth at a time. */
  | { readonly t: 'log'; readonly lines: readonly string[] }
  /** A virus came from `ip`: block its mail until `until` (epoch ms), in every worker. */
  | { readonly t: 'block'; readonly ip: string; readonly until: number };

const FROM: ReadonlySet<string> = new Set(['ready', 'failed', 'listening', 'beat', 'log', 'block']);
const TO: ReadonlySet<string> = new Set(['init', 'listen', 'retire', 'blocks']);

export function isFromWorker(m: unknown): m is FromWorker {
  const t = (m as { t?: unknown } | null)?.t;
  return typeof t === 'string' && FROM.has(t);
}

export function isToWorker(m: unknown): m is ToWorker {
  const t = (m as { t?: unknown } | null)?.t;
  return typeof t === 'string' && TO.has(t);
}
