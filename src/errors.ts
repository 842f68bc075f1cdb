/**
 * Errors with an origin: every failure that can decide a reply says where it came from, so the
 * verdict → action table can tell a scanner fault (the only thing `action.error = "accept"` may
 * ever pass) from an abort, a bad request or a bug in avfilter (always 4xx).
 *
 * Owns: the Origin vocabulary, AvError (a stable `code` plus an origin, the cause kept), and
 * originOf(), which classifies anything thrown by its `code` — never by message text.
 * Inputs: errors from anywhere. Outputs: an Origin. Fails with nothing.
 */

/**
 * scanner  an engine could not give an answer (clamd down, timed out, refused the size)
 * limit    the message is beyond what avfilter is willing to unpack (depth, parts, sizes)
 * input    the request or its files are unusable (missing data file, bad path, bad control file)
 * abort    the work was stopped from outside (request deadline, shutdown): never a verdict
 * internal a fault in avfilter itself (a bug, a temp file that cannot be written)
 */
export type Origin = 'scanner' | 'limit' | 'input' | 'abort' | 'internal';

export class AvError extends Error {
  readonly code: string;
  readonly origin: Origin;
  constructor(code: string, origin: Origin, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AvError';
    this.code = code;
    this.origin = origin;
  }
}

/** Codes that mean "stopped from outside", whoever raised them. */
const ABORT_CODES: ReadonlySet<string> = new Set(['EABORTED', 'ABORT_ERR', 'ETIMEOUT_REQUEST']);

/** The origin of anything thrown: an AvError says so; otherwise abort codes, else internal. */
export function originOf(err: unknown): Origin {
  if (err instanceof AvError) return err.origin;
  const code = codeOf(err);
  if (code !== undefined && ABORT_CODES.has(code)) return 'abort';
  if ((err as { name?: unknown } | null)?.name === 'AbortError') return 'abort';
  return 'internal';
}

export function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
