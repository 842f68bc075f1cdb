/**
 * extractParts(): a message stream in, every decoded MIME part out, or a limit that says why
 * not all of them.
 *
 * Owns: one extraction's life cycle: the budget, the part store (and so the temp files), the
 * readings run over the message, and turning every failure into a result. Inputs: the message
 * as a Readable (consumed; destroyed on early stop), limits, the tmpdir for spilled parts, an
 * optional AbortSignal. Output: an Extraction. It never rejects for bad input: a parse failure,
 * a crossed limit or an I/O error is Extraction.limit (the caller's verdict is tempfail, never
 * clean), and the parts found up to then are kept, the one being decoded cut short (a virus in
 * them still counts; an attached message cut short is not walked). It rejects
 * only when the signal aborts (code EABORTED), after removing its temp files.
 *
 * Issue 3 adds readings here: each is a walk with its own decoder table (and splitter rules)
 * over the same bytes, all feeding the same store, so de-duplication and the budget span them.
 */
import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { Budget, MimeError, MimeErrorCode, type MimeLimits } from './limits.js';
import { PartStore, type ExtractedPart } from './part-store.js';
import { STANDARD_READING, walkMessage } from './walk.js';

export interface Extraction {
  /** Distinct decoded parts in document order (attached messages before their contents). */
  parts: ExtractedPart[];
  /** Set when a limit was hit or the message could not be parsed: a verdict, never clean. */
  limit?: { code: string; message: string };
  /** Removes the temp files; the parts' sources are unusable afterwards. */
  dispose(): Promise<void>;
}

export interface ExtractOptions {
  limits: MimeLimits;
  /** Parent of the private (0700) directory that spilled parts go to. */
  tmpdir: string;
  signal?: AbortSignal;
}

export async function extractParts(input: Readable, opts: ExtractOptions): Promise<Extraction> {
  checkLimits(opts.limits);
  const { signal } = opts;
  const budget = new Budget(opts.limits);
  const store = new PartStore(opts.tmpdir, budget);
  if (signal?.aborted) {
    input.destroy();
    throw abortedError(signal.reason);
  }
  // Each walk (one per attached message, nested up to maxDepth) listens on the signal while
  // it runs. They listen on a signal of our own, so the caller's gets one listener and the
  // nesting does not trip Node's MaxListenersExceededWarning.
  const inner = new AbortController();
  setMaxListeners(Math.max(10, opts.limits.maxDepth + 2), inner.signal);
  const onAbort = (): void => inner.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let limit: { code: string; message: string } | undefined;
  try {
    await walkMessage(input, { store, budget, reading: STANDARD_READING, signal: inner.signal }, []);
  } catch (err) {
    if (signal?.aborted) {
      await store.dispose().catch(() => undefined);
      throw abortedError(signal.reason);
    }
    limit = classify(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return {
    parts: store.parts,
    ...(limit !== undefined ? { limit } : {}),
    dispose: () => store.dispose(),
  };
}

/** Failure → limit record. By code only: MimeError's, mailsplit's EMAXLEN, fs errors. */
function classify(err: unknown): { code: string; message: string } {
  if (err instanceof MimeError) return { code: err.code, message: err.message };
  const e = err as { code?: unknown; syscall?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // mailsplit's only EMAXLEN left is the header size: its child-node count is switched off
  if (e?.code === 'EMAXLEN') return { code: MimeErrorCode.HEADER_LIMIT, message: `header block exceeds the limit: ${message}` };
  if (typeof e?.syscall === 'string') return { code: MimeErrorCode.IO, message: `${String(e.code)}: ${message}` };
  return { code: MimeErrorCode.PARSE, message: `cannot parse MIME structure: ${message}` };
}

function abortedError(reason: unknown): MimeError {
  return new MimeError(MimeErrorCode.ABORTED, 'MIME extraction aborted', { cause: reason });
}

/** A caller bug, not bad input: thrown at once, with what to use instead. */
function checkLimits(l: MimeLimits): void {
  for (const key of ['maxDepth', 'maxParts', 'maxHeaderBytes', 'maxDecodedBytes', 'memoryPartBytes'] as const) {
    const v = l?.[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw Object.assign(new TypeError(`MimeLimits.${key} must be a finite number >= 0 (got ${String(v)}); start from DEFAULT_MIME_LIMITS`), {
        code: 'ERR_INVALID_ARG_VALUE',
      });
    }
  }
}
