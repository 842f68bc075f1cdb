/**
 * Finding the delimiter lines of a multipart body, leniently, in one streaming pass.
 *
 * Owns: matching lines against several boundary candidates at once. Input: a byte range of the
 * message and the candidates. Output: for each candidate, its delimiter lines in order, each
 * marked close (`--b--`) or not and "strict" (only whitespace or transport padding after it,
 * RFC 2046 §5.1.1) or "prefix" (anything after it: readers that match by prefix). Line ends
 * may be CRLF, LF or bare CR. Fails with EMIME_PART_LIMIT when a candidate has more delimiter
 * lines than the part limit allows, or with the stream's error.
 */
import type { MessageBytes } from '../input.js';
import { MimeError, MimeErrorCode } from '../limits.js';

export interface Delimiter {
  /** Offset of the first "-". */
  readonly lineStart: number;
  /** Offset just after the delimiter line's end. */
  readonly lineEnd: number;
  /** Length of the line end before the delimiter (it belongs to the delimiter). */
  readonly eolBefore: number;
  readonly close: boolean;
  /** Only whitespace follows (or "--" then whitespace): every lenient reader agrees. */
  readonly strict: boolean;
}

/** A line starting with "--" longer than this is not a delimiter (RFC 2046: boundaries ≤ 70). */
const MAX_DELIMITER_LINE_BYTES = 4096;

const CR = 0x0d;
const LF = 0x0a;
const DASH2 = Buffer.from('--', 'latin1');

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
  const onLine = (line: Buffer, at: number, lineEnd: number, eolBefore: number): void => {
    for (let k = 0; k < cands.length; k++) {
      const c = cands[k]!;
      if (line.length < c.length || line.compare(c, 0, c.length, 0, c.length) !== 0) continue;
      let rest = line.subarray(c.length);
      const close = rest.length >= 2 && rest[0] === 0x2d && rest[1] === 0x2d;
      if (close) rest = rest.subarray(2);
      const strict = rest.every((b) => b === 0x20 || b === 0x09);
      if (found[k]!.length >= maxPerCandidate) throw new MimeError(MimeErrorCode.PART_LIMIT, `more than ${maxPerCandidate} delimiter lines in one multipart`);
      found[k]!.push({ lineStart: at, lineEnd, eolBefore, close, strict });
    }
  };
  const process = (buf: Buffer, at: number, final: boolean): void => {
    let i = buf.indexOf(DASH2);
    while (i >= 0) {
      const p1 = i >= 1 ? buf[i - 1]! : before[1]!;
      if (p1 === LF || p1 === CR) {
        let j = i;
        while (j < buf.length && buf[j] !== LF && buf[j] !== CR && j - i <= MAX_DELIMITER_LINE_BYTES) j++;
        if (j - i > MAX_DELIMITER_LINE_BYTES) {
          i = buf.indexOf(DASH2, j);
          continue;
        }
        // the line end must be whole to know its length (a CR may be followed by an LF)
        if (!final && (j >= buf.length || (buf[j] === CR && j + 1 >= buf.length))) {
          carry = Buffer.from(buf.subarray(i));
          carryAt = at + i;
          return;
        }
        const eol = j >= buf.length ? 0 : buf[j] === CR && buf[j + 1] === LF ? 2 : 1;
        const p2 = i >= 2 ? buf[i - 2]! : i === 1 ? before[1]! : before[0]!;
        const eolBefore = at + i === start ? 0 : p1 === LF && p2 === CR ? 2 : 1;
        onLine(buf.subarray(i, j), at + i, at + j + eol, eolBefore);
        i = buf.indexOf(DASH2, j);
        continue;
      }
      i = buf.indexOf(DASH2, i + 1);
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
  if (carry !== undefined) {
    const buf = carry;
    carry = undefined;
    process(buf, carryAt, true);
  }
  return found;
}
