/**
 * When an idle worker is replaced to give its memory back (worker_idle_memory_limit).
 *
 * A worker's heap, its allocator's arenas and its scan threads grow with the largest messages
 * it has seen; the worker frees what it can once idle (threads end, a garbage collection), but
 * what the allocator keeps and a fragmented heap stay resident. A fresh worker costs a start-up
 * (its engines load) and nothing else, so an idle worker that stays well above what it was
 * when it became ready is replaced: a new one starts, and the old one ends once it holds no
 * connection (it stops accepting first, so no request is lost or cut).
 *
 * Owns: the decision only (pure, for tests); the pool (pool.ts) reads the figures and acts.
 * Inputs: a worker's resident size now and when it became ready, how long it has been idle,
 * how many requests it has answered, the limit. Output: recycle or not. Fails with nothing.
 */

const MiB = 1024 * 1024;

/**
 * Idle (no request in hand, none answered) for this long before a worker is considered: after
 * the worker's own idle collection (worker/idle-gc.ts, 10 s) and the beat that reports its
 * resident size after it, so that a worker the collection brings down is not replaced.
 */
export const IDLE_RECYCLE_AFTER_MS = 15_000;
/** Growth since ready below this is not worth a restart (lazily loaded code, caches). */
export const IDLE_GROWTH_SLACK_BYTES = 16 * MiB;

export interface IdleWorkerFigures {
  /** Resident bytes now (VmRSS). */
  readonly rss: number;
  /** Resident bytes when it said ready (undefined: not read). */
  readonly readyRss: number | undefined;
  /** Milliseconds since it last held or answered a request (or since it became ready). */
  readonly idleMs: number;
  /** Requests it has answered. */
  readonly served: number;
  /** Requests it holds now. */
  readonly busy: number;
}

/**
 * True when the worker should be replaced: worker_idle_memory_limit is on (> 0), the worker has
 * answered a request (a fresh worker is as small as it gets), holds none and has held none for
 * IDLE_RECYCLE_AFTER_MS, and its resident size is above the limit and more than
 * IDLE_GROWTH_SLACK_BYTES above its size when it became ready.
 */
export function shouldRecycleIdle(w: IdleWorkerFigures, limit: number): boolean {
  if (!(limit > 0)) return false;
  if (w.served < 1 || w.busy > 0 || w.idleMs < IDLE_RECYCLE_AFTER_MS) return false;
  if (w.rss <= limit) return false;
  if (w.readyRss === undefined) return false;
  return w.rss - w.readyRss > IDLE_GROWTH_SLACK_BYTES;
}
