/**
 * Finding the delimiter lines of a multipart body, leniently, in one streaming pass.
 *
 * Owns: matching lines against several boundary candidates at once. Input: a byte range of the
 * message and the candidates. Output: for each candidate, its delimiter lines in order, each
 * marked close (`--b--`) or not and "strict" (only whitespace or transport padding after it,
 * RFC 2046 §5.1.1) or "prefix" (anything after it: readers that match by prefix). Line ends
 * may be CRLF, LF or bare CR. A delimiter line may start with blanks (` --b`, as clamd reads it):
 * such a line is marked `indented`, and its lineStart is the line's first byte. A line longer than MAX_DELIMITER_LINE_BYTES is matched on its
 * first bytes (a prefix delimiter: its tail is never carried, so memory stays bounded). Fails
 * with EMIME_PART_LIMIT when a candidate has more delimiter lines than the part limit allows,
 * with the stream's error, or with the signal's reason.
 */
import type { MessageBytes } from '../../bytes/message-bytes.js';
import { MimeError, MimeErrorCode } from '../limits.js';

export interface Delimiter {
  /** Offset of the line's first byte (the first "-", or the first blank before it). */
  readonly lineStart: number;
  /** Offset just after the delimiter line's end. */
  readonly lineEnd: number;
  /** Length of the line end before the delimiter (it belongs to the delimiter). */
  readonly eolBefore: number;
  readonly close: boolean;
  /** Only whitespace follows (or "--" then whitespace): every lenient reader agrees. */
  readonly strict: boolean;
  /** Blanks (spaces, tabs) before the "--": only readers that trim lines take it. */
  readonly indented: boolean;
}

/**
 * Blanks before a "--" that still make a delimiter line. Real indentation is a few bytes; the
 * bound keeps the bytes carried across chunks (a line of blanks so far) within a line's worth.
 */
export const MAX_DELIMITER_INDENT_BYTES = 1024;

const isBlank = (c: number | undefined): boolean => c === 0x20 || c === 0x09;

/**
 * Bytes of a "--" line that are carried whole across chunks; a longer line is matched on these
 * (they hold "--", the longest boundary tried, lenient/interpret.ts, and "--").
 */
export const MAX_DELIMITER_LINE_BYTES = 4096;

const CR = 0x0d;
const LF = 0x0a;
const DASH2 = Buffer.from('--', 'latin1');

/** A match of one candidate on a line whose end is not known yet. */
interface Pending {
  readonly k: number;
  readonly close: boolean;
  readonly strict: boolean;
}

export async function findDelimiters(
  src: MessageBytes,
  start: number,
  end: number,
  boundaries: readonly string[],
  maxPerCandidate: number,
  signal?: AbortSignal,
): Promise<Delimiter[][]> {
  const cands = boundaries.map((b) => Buffer.from('--' + b, 'latin1'));
  const found: Delimiter[][] = cands.map(() => []);
  // the two bytes before `buf`, to tell line starts and the length of the line end before
  let before = [LF, LF]; // the range starts at a line start
  let carry: Buffer | undefined;
  let carryAt = 0;
  /** A long "--" line that matched: its end is still to be found. */
  let long: { matches: Pending[]; lineStart: number; eolBefore: number; indented: boolean } | undefined;

  /** The candidates the line bytes `line` match; `whole`: the line is all there, not a prefix of it. */
  const match = (line: Buffer, whole: boolean): Pending[] => {
    const out: Pending[] = [];
    for (let k = 0; k < cands.length; k++) {
      const c = cands[k]!;
      if (line.length < c.length || line.compare(c, 0, c.length, 0, c.length) !== 0) continue;
      let rest = line.subarray(c.length);
      const close = rest.length >= 2 && rest[0] === 0x2d && rest[1] === 0x2d;
      if (close) rest = rest.subarray(2);
      out.push({ k, close, strict: whole && rest.every((b) => b === 0x20 || b === 0x09) });
    }
    return out;
  };
  const record = (matches: Pending[], lineStart: number, lineEnd: number, eolBefore: number, indented: boolean): void => {
    for (const m of matches) {
      if (found[m.k]!.length >= maxPerCandidate) throw new MimeError(MimeErrorCode.PART_LIMIT, `more than ${maxPerCandidate} delimiter lines in one multipart`);
      found[m.k]!.push({ lineStart, lineEnd, eolBefore, close: m.close, strict: m.strict, indented });
    }
  };
  /** Where the line end at buf[j] ends, or -1 when a CR is the last byte and more may come. */
  const afterEol = (buf: Buffer, j: number, final: boolean): number => {
    if (j >= buf.length) return j;
    if (buf[j] === LF) return j + 1;
    if (j + 1 >= buf.length) return final ? j + 1 : -1;
    return buf[j + 1] === LF ? j + 2 : j + 1;
  };

  /** Scans buf (at offset `at` of the range) for delimiter lines; an unfinished line end is carried. */
  const process = (buf: Buffer, at: number, final: boolean): void => {
    let from = 0;
    if (long !== undefined) {
      // the rest of a long line: find its end (nothing of it is kept)
      let j = 0;
      while (j < buf.length && buf[j] !== LF && buf[j] !== CR) j++;
      if (j >= buf.length && !final) return;
      const e = afterEol(buf, j, final);
      if (e < 0) {
        carry = Buffer.from(buf.subarray(j));
        carryAt = at + j;
        return;
      }
      record(long.matches, long.lineStart, at + e, long.eolBefore, long.indented);
      long = undefined;
      from = e;
    }
    let i = buf.indexOf(DASH2, from);
    while (i >= 0) {
      // the line's start: "--" first, or after blanks (bounded, and never before `from`,
      // which is a line start or follows a line end)
      let ls = i;
      while (ls > from && isBlank(buf[ls - 1]) && i - ls < MAX_DELIMITER_INDENT_BYTES) ls--;
      const p1 = ls >= 1 ? buf[ls - 1]! : before[1]!;
      if (!(p1 === LF || p1 === CR)) {
        i = buf.indexOf(DASH2, i + 1);
        continue;
      }
      const p2 = ls >= 2 ? buf[ls - 2]! : ls === 1 ? before[1]! : before[0]!;
      const eolBefore = at + ls === start ? 0 : p1 === LF && p2 === CR ? 2 : 1;
      const indented = ls < i;
      let j = i;
      const stop = Math.min(buf.length, i + MAX_DELIMITER_LINE_BYTES + 1);
      while (j < stop && buf[j] !== LF && buf[j] !== CR) j++;
      if (j - i > MAX_DELIMITER_LINE_BYTES) {
        // a long line: matched on its first bytes, its end found later (maybe chunks later)
        const matches = match(buf.subarray(i, i + MAX_DELIMITER_LINE_BYTES), false);
        let e = j;
        while (e < buf.length && buf[e] !== LF && buf[e] !== CR) e++;
        if (matches.length === 0) {
          i = buf.indexOf(DASH2, e);
          continue;
        }
        long = { matches, lineStart: at + ls, eolBefore, indented };
        if (e >= buf.length && !final) return;
        const after = afterEol(buf, e, final);
        if (after < 0) {
          carry = Buffer.from(buf.subarray(e));
          carryAt = at + e;
          return;
        }
        record(matches, at + ls, at + after, eolBefore, indented);
        long = undefined;
        i = buf.indexOf(DASH2, after);
        continue;
      }
      // the line end must be whole to know its length (a CR may be followed by an LF)
      if (!final && (j >= buf.length || (buf[j] === CR && j + 1 >= buf.length))) {
        carry = Buffer.from(buf.subarray(ls));
        carryAt = at + ls;
        return;
      }
      const eol = j >= buf.length ? 0 : buf[j] === CR && buf[j + 1] === LF ? 2 : 1;
      record(match(buf.subarray(i, j), true), at + ls, at + j + eol, eolBefore, indented);
      i = buf.indexOf(DASH2, j);
    }
    // blanks, or a "-" (after blanks or not), last in the chunk at a line start may begin a
    // delimiter line the next chunk ends: carried from the line start
    if (!final) {
      let k = buf.length;
      if (k > from && buf[k - 1] === 0x2d) k--;
      while (k > from && isBlank(buf[k - 1]) && buf.length - k <= MAX_DELIMITER_INDENT_BYTES) k--;
      const p = k >= 1 ? buf[k - 1]! : before[1]!;
      if (k < buf.length && k >= from && (p === LF || p === CR)) {
        carry = Buffer.from(buf.subarray(k));
        carryAt = at + k;
      }
    }
  };

  let pos = start;
  for await (const chunk of src.chunks(start, end)) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    const c = chunk as Buffer;
    let buf = c;
    let at = pos;
    if (carry !== undefined) {
      buf = Buffer.concat([carry, c]);
      at = carryAt;
      carry = undefined;
    }
    process(buf, at, false);
    pos += c.length;
    // bytes before the next chunk (or the carried line) for line-start checks
    const tailSrc = carry !== undefined ? buf.subarray(0, carryAt - at) : buf;
    if (tailSrc.length >= 2) before = [tailSrc[tailSrc.length - 2]!, tailSrc[tailSrc.length - 1]!];
    else if (tailSrc.length === 1) before = [before[1]!, tailSrc[0]!];
  }
  if (carry !== undefined || long !== undefined) {
    const buf = carry ?? Buffer.alloc(0);
    const at = carry !== undefined ? carryAt : pos;
    carry = undefined;
    process(buf, at, true);
  }
  return found;
}
