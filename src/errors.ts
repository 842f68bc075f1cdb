/**
 * Errors with an origin: every failure that can decide a reply says where it came from, so the
 * verdict → action table can tell a scanner fault (the only thing `action.error = "accept"` may
 * ever pass) from an abort, a bad request or a bug in avfilter (always 4xx).
 *
 * Owns: the Origin vocabulary (the one there is: a verdict's ErrorOrigin is derived from it),
 * AvError (a stable `code` plus an origin, the cause kept), and originOf(), which classifies
 * anything thrown by its `code` — never by message text. Every error of avfilter's that carries a
 * code is an AvError, or a subclass that only fixes its name and origin (ConfigError,
 * ControlError, MimeError, ...) so callers can still tell them apart with `instanceof`. The
 * exceptions are the caller-bug TypeErrors and RangeErrors that carry Node's own
 * ERR_INVALID_ARG_* codes, as Node's own argument checks do (originOf: internal).
 * Inputs: errors from anywhere. Outputs: an Origin. Fails with nothing.
 */

/**
 * scanner  an engine could not give an answer (clamd down, timed out, refused the size)
 * limit    the message is beyond what avfilter is willing to unpack (depth, parts, sizes)
 * input    the request or its files are unusable (missing data file, bad path, bad control file)
 * abort    the work was stopped from outside (request deadline, shutdown): never a verdict
 * internal a fault in avfilter itself (a bug, a temp file that cannot be written)
 * config   the config, an engine's options or the installation cannot be used: raised while
 *          loading (the daemon degrades, a reload keeps the old state, a command exits), never
 *          while a message is handled
 *
 * The same words class the codes of src/ops/codes.ts (which says `fault` for internal).
 */
export type Origin = 'scanner' | 'limit' | 'input' | 'abort' | 'internal' | 'config';

/**
 * The origin a verdict's error carries (policy/verdict.ts): a limit is a verdict of its own,
 * and a config error happens before there is a message.
 */
export type ErrorOrigin = Exclude<Origin, 'limit' | 'config'>;

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

/**
 * originOf for an error verdict: a limit or a config error that was thrown (rather than
 * reported) while a message was scanned is a fault of ours — 451, never a fail-open origin.
 */
export function errorOriginOf(err: unknown): ErrorOrigin {
  const origin = originOf(err);
  return origin === 'limit' || origin === 'config' ? 'internal' : origin;
}

export function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
