/**
 * One item's deadline for the engines added after clamd and yara (icap, command): the
 * caller's signal, the engine's shutdown, and a timer, joined into one AbortSignal whose
 * reason tells a timeout from an abort.
 *
 * Owns: the timer and the listeners, removed by release(). Never throws.
 */
export const TIMED_OUT = 'timeout';

export interface Deadline {
  readonly signal: AbortSignal;
  /** True when the signal fired because the time ran out (not the caller or a shutdown). */
  timedOut(): boolean;
  release(): void;
}

export function deadline(timeoutMs: number, ...signals: AbortSignal[]): Deadline {
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort('aborted');
  for (const s of signals) {
    if (s.aborted) ctl.abort('aborted');
    s.addEventListener('abort', onAbort, { once: true });
  }
  const timer = setTimeout(() => ctl.abort(TIMED_OUT), timeoutMs);
  return {
    signal: ctl.signal,
    timedOut: () => ctl.signal.reason === TIMED_OUT,
    release() {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', onAbort);
    },
  };
}
