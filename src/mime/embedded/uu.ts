/**
 * uuencode: one line at a time, and as a Content-Transfer-Encoding (x-uuencode).
 *
 * Owns: decoding uuencoded lines (the length character, then groups of four characters for
 * three bytes; "`" and " " are both zero), leniently: a line shorter than its length
 * character says gives what it holds, characters outside the range count as zero; and the
 * "begin MODE NAME" / "end" lines. Input: lines (as buffer ranges) or chunks. Output: bytes,
 * written into the caller's buffer (no allocation per line). Never throws.
 */
import type { ChunkDecoder } from '../chunk-decoder.js';
import { LineReader } from './lines.js';

/** Most bytes one line can decode to: 63 from its length character, rounded up to a group. */
export const UU_MAX_LINE_OUTPUT = 66;

/**
 * Decodes the uuencoded line buf[start, end) into `out` at `o` (room for UU_MAX_LINE_OUTPUT
 * bytes needed); returns the offset after the last byte written.
 */
export function uudecodeInto(buf: Buffer, start: number, end: number, out: Buffer, o: number): number {
  if (end <= start) return o;
  const n = (buf[start]! - 0x20) & 0x3f;
  const stop = o + n;
  let w = o;
  for (let i = start + 1; w < stop && i < end; i += 4) {
    const a = (buf[i]! - 0x20) & 0x3f;
    const b = i + 1 < end ? (buf[i + 1]! - 0x20) & 0x3f : 0;
    const c = i + 2 < end ? (buf[i + 2]! - 0x20) & 0x3f : 0;
    const d = i + 3 < end ? (buf[i + 3]! - 0x20) & 0x3f : 0;
    out[w++] = (a << 2) | (b >> 4);
    out[w++] = ((b << 4) | (c >> 2)) & 0xff;
    out[w++] = ((c << 6) | d) & 0xff;
  }
  return Math.min(w, stop);
}

const isWs = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c || c === 0x0d || c === 0x0a || c === 0xa0;

/** buf[at, at + word.length) equals `word` (a loop: Buffer.compare's fixed cost exceeds a short word's). */
export function bytesAt(buf: Buffer, at: number, word: Buffer): boolean {
  if (at + word.length > buf.length) return false;
  for (let k = 0; k < word.length; k++) if (buf[at + k] !== word[k]) return false;
  return true;
}

/** buf[start, end) without leading and trailing whitespace equals `word` (ASCII). */
export function trimmedEquals(buf: Buffer, start: number, end: number, word: Buffer): boolean {
  while (start < end && isWs(buf[start]!)) start++;
  while (end > start && isWs(buf[end - 1]!)) end--;
  return end - start === word.length && bytesAt(buf, start, word);
}

const END = Buffer.from('end', 'latin1');

/** "end" alone on its line (whitespace around it allowed): the end of a uuencoded file. */
export function isUuEnd(buf: Buffer, start: number, end: number): boolean {
  return end - start >= 3 && trimmedEquals(buf, start, end, END);
}

export interface UuBegin {
  /** "begin-base64" rather than "begin". */
  readonly base64: boolean;
  /** The file name as written (latin1), or "" when none. */
  readonly name: string;
}

const BEGIN = Buffer.from('begin', 'latin1');
const B64_SUFFIX = Buffer.from('-base64', 'latin1');

/**
 * `begin[-base64] MODE [NAME]` at the start of the line: MODE is 1-6 digits after whitespace,
 * any decimal digits (uudecode reads octal, clamd takes any digits: `begin 999 x` is a file to
 * it), the name what follows (whitespace before it optional, as sscanf's "%o %s" reads it);
 * read from the bytes without making a string unless it is one.
 */
export function parseBegin(buf: Buffer, start: number, end: number): UuBegin | undefined {
  while (end > start && isWs(buf[end - 1]!)) end--;
  if (end - start < 7 || !bytesAt(buf, start, BEGIN)) return undefined;
  let i = start + 5;
  let base64 = false;
  if (buf[i] === 0x2d /* - */) {
    if (end - i < 7 || !bytesAt(buf, i, B64_SUFFIX)) return undefined;
    base64 = true;
    i += 7;
  }
  const ws = i;
  while (i < end && isWs(buf[i]!)) i++;
  if (i === ws) return undefined;
  const digits = i;
  while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39 && i - digits < 6) i++;
  if (i === digits) return undefined;
  while (i < end && isWs(buf[i]!)) i++;
  return { base64, name: buf.toString('latin1', i, Math.min(end, i + 512)) };
}

/** A "begin" line, leading whitespace allowed (a CTE body is read as loosely as readers read it). */
function parseBeginTrimmed(buf: Buffer, start: number, end: number): boolean {
  while (start < end && isWs(buf[start]!)) start++;
  return parseBegin(buf, start, end) !== undefined;
}

/** Lines looked at for a "begin" line before the body is taken as bare uuencoded data. */
const HEAD_LINES = 16;

/**
 * x-uuencode as a CTE: lines up to a "begin" line are skipped when one exists within the
 * first lines, else every line is data; a "begin" line that comes later still starts the
 * file (the lines before it were decoded as bare data, so nothing is lost either way);
 * decoding stops at "end".
 */
export class UuDecoder implements ChunkDecoder {
  private readonly lines = new LineReader();
  /** head: looking for "begin"; bare: decoding without one; file: after "begin"; done: after "end". */
  private state: 'head' | 'bare' | 'file' | 'done' = 'head';
  private held: Buffer[] = [];
  private out: Buffer = Buffer.alloc(0);
  private o = 0;
  private readonly onLine = (buf: Buffer, start: number, end: number): void => this.line(buf, start, end);

  update(chunk: Buffer): Buffer {
    this.room(chunk.length + UU_MAX_LINE_OUTPUT * 2);
    this.lines.push(chunk, this.onLine);
    return this.take();
  }

  final(): Buffer {
    this.room(UU_MAX_LINE_OUTPUT * (HEAD_LINES + 2) + 8192);
    this.lines.end(this.onLine);
    // no "begin" line at all: the whole body was data
    if (this.state === 'head') this.bare();
    return this.take();
  }

  private line(buf: Buffer, start: number, end: number): void {
    switch (this.state) {
      case 'done':
        return;
      case 'head':
        if (parseBeginTrimmed(buf, start, end)) {
          this.state = 'file';
          this.held = [];
        } else if (this.held.length < HEAD_LINES) {
          this.held.push(Buffer.from(buf.subarray(start, end)));
        } else {
          this.bare();
          this.line(buf, start, end);
        }
        return;
      case 'bare':
        if (parseBeginTrimmed(buf, start, end)) {
          this.state = 'file';
          return;
        }
        break;
      case 'file':
        break;
    }
    if (isUuEnd(buf, start, end)) {
      this.state = 'done';
      return;
    }
    this.room(UU_MAX_LINE_OUTPUT);
    this.o = uudecodeInto(buf, start, end, this.out, this.o);
  }

  /** No "begin" within the first lines: what was held is data, and so is what follows. */
  private bare(): void {
    this.state = 'bare';
    const held = this.held;
    this.held = [];
    for (const l of held) this.line(l, 0, l.length);
  }

  private room(n: number): void {
    if (this.o + n <= this.out.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.o + n, this.out.length * 2, 4096));
    this.out.copy(next, 0, 0, this.o);
    this.out = next;
  }

  /** The bytes decoded since the last call: a view of the reused buffer, valid until the next call (ChunkDecoder). */
  private take(): Buffer {
    const r = this.out.subarray(0, this.o);
    this.o = 0;
    return r;
  }
}
