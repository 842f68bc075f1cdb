/**
 * When an idle worker collects its garbage (worker/main.ts), apart from the worker so that a test
 * can check the timing against V8 with the workers' own flags (master/pool.ts WORKER_V8_FLAGS).
 */

/**
 * Idle (no request in hand) this long after the last request: collect the garbage once. V8
 * shrinks its young generation at a collection only when little was allocated in the last ~5 s;
 * 3 s after a burst of large messages it still counted the burst and kept the young generation
 * grown (a worker at ~95 MiB instead of ~80, 20 s after 8 messages of 30 MB), and 6 s after it,
 * one time in eight; so the collection waits until the burst is well out of that window (10 s:
 * shrunk in every one of 22 tries, 12 of them with six at once).
 */
export const IDLE_GC_AFTER_MS = 10_000;

/** Collections in a row: objects freed by one round's finalizers are collected by the next. */
export const IDLE_GC_ROUNDS = 3;
