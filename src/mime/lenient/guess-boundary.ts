/**
 * Boundaries guessed from a multipart body whose header gives none that splits it.
 *
 * Owns: reading the delimiter-like lines of a body (`--token`, `--token--`, blanks before
 * them allowed) into candidate boundaries. clamd splits a multipart without a boundary
 * parameter (or with one no line of the body matches) at the delimiter lines it finds in the
 * body; the lenient walker (walk.ts) tries what this returns as boundaries of a reading of its
 * own. Input: a byte range (a body), read once in chunks. Output: distinct tokens in the order
 * their first line comes, at most MAX_GUESSED_BOUNDARIES; `truncated` when more were seen (the
 * caller reports the limit: the rest is not tried). Fails with the stream's error or the
 * signal's reason.
 */
import type { MessageBytes } from '../../bytes/message-bytes.js';

/** Distinct tokens tried. A body with more delimiter-like tokens than this is built to multiply work. */
export const MAX_GUESSED_BOUNDARIES = 8;
/** Longest token taken (RFC 2046 allows 70); a longer "--" line is no delimiter here. */
export const MAX_GUESSED_BOUNDARY_BYTES = 200;
/** Blanks before "--" still taken (lenient/delimiters.ts reads the same lines). */
const MAX_INDENT_BYTES = 1024;
/** The head of a line carried into the next chunk: indentation, "--", a token, "--" and blanks. */
const LINE_HEAD_BYTES = MAX_INDENT_BYTES + MAX_GUESSED_BOUNDARY_BYTES + 64;

const CR = 0x0d;
const LF = 0x0a;
const DASH2 = Buffer.from('--', 'latin1');
const isBlank = (c: number | undefined): boolean => c === 0x20 || c === 0x09;
const isEol = (c: number | undefined): boolean => c === LF || c === CR;

export async function guessBoundaries(src: MessageBytes, start: number, end: number, signal?: AbortSignal): Promise<{ boundaries: string[]; truncated: boolean }> {
  const boundaries: string[] = [];
  let truncated = false;
  const take = (line: Buffer): void => {
    const token = tokenOf(line);
    if (token === undefined || boundaries.includes(token)) return;
    if (boundaries.length >= MAX_GUESSED_BOUNDARIES) truncated = true;
    else boundaries.push(token);
  };
  /** buf starts at a line start; its last line is carried unless `final`. */
  const scan = (buf: Buffer, final: boolean): Buffer => {
    const lastStart = final ? buf.length : Math.max(buf.lastIndexOf(LF), buf.lastIndexOf(CR)) + 1;
    let i = buf.indexOf(DASH2);
    while (i >= 0 && i < lastStart) {
      let ls = i;
      while (ls > 0 && isBlank(buf[ls - 1]) && i - ls < MAX_INDENT_BYTES) ls--;
      if (ls === 0 || isEol(buf[ls - 1])) {
        let j = i + 2;
        const stop = Math.min(buf.length, i + 2 + MAX_GUESSED_BOUNDARY_BYTES + 64);
        while (j < stop && !isEol(buf[j])) j++;
        if (j < stop || j >= buf.length) take(buf.subarray(i + 2, j));
      }
      i = buf.indexOf(DASH2, i + 2);
    }
    return final ? Buffer.alloc(0) : Buffer.from(buf.subarray(lastStart, Math.min(buf.length, lastStart + LINE_HEAD_BYTES)));
  };
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of src.chunks(start, end)) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    carry = scan(carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer), false);
  }
  if (carry.length > 0) scan(carry, true);
  return { boundaries, truncated };
}

/** The boundary a line after its "--" names: blanks and a closing "--" removed; undefined when none. */
function tokenOf(rest: Buffer): string | undefined {
  let e = rest.length;
  while (e > 0 && isBlank(rest[e - 1])) e--;
  if (e >= 2 && rest[e - 1] === 0x2d && rest[e - 2] === 0x2d) e -= 2;
  while (e > 0 && isBlank(rest[e - 1])) e--;
  if (e === 0 || e > MAX_GUESSED_BOUNDARY_BYTES) return undefined;
  return rest.toString('latin1', 0, e);
}
