/**
 * The messages between the master and a worker process (over the IPC channel that
 * child_process.fork sets up). The master holds no message data: a request is its paths and
 * its deadline; a reply is a code and a text; log lines are finished text.
 *
 * Owns: the message shapes and their type guards. Fails with nothing.
 */

export type ToWorker =
  /** First message: the config to load (text + where it came from) and this worker's share. */
  | { readonly t: 'init'; readonly configText: string; readonly source: string; readonly processes: number; readonly slots: number; readonly worker: number }
  | { readonly t: 'req'; readonly id: number; readonly dataPath: string; readonly controlPaths: readonly string[]; readonly acceptedAt: number; readonly deadlineAt: number }
  /** The master has answered this request (shutdown): stop its work. */
  | { readonly t: 'abort'; readonly id: number }
  /** Finish the requests in hand, then exit 0; no more will come. */
  | { readonly t: 'retire' };

export type FromWorker =
  | { readonly t: 'ready'; readonly engines: readonly string[] }
  | { readonly t: 'failed'; readonly code: string; readonly reason: string }
  /** `lines`: log lines written since the last message (the request's own line among them). */
  | { readonly t: 'reply'; readonly id: number; readonly code: number; readonly text: string | readonly string[]; readonly lines?: readonly string[] }
  | { readonly t: 'log'; readonly lines: readonly string[] };

export function isFromWorker(m: unknown): m is FromWorker {
  const t = (m as { t?: unknown } | null)?.t;
  return t === 'ready' || t === 'failed' || t === 'reply' || t === 'log';
}

export function isToWorker(m: unknown): m is ToWorker {
  const t = (m as { t?: unknown } | null)?.t;
  return t === 'init' || t === 'req' || t === 'abort' || t === 'retire';
}
