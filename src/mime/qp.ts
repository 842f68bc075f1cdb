/**
 * Lenient streaming quoted-printable decoder.
 *
 * Owns: quoted-printable content-transfer-decoding. Input: encoded chunks split anywhere.
 * Output: the decoded bytes; it never fails. Rules:
 * - "=XY" with hex digits of either case is one byte (lowercase hex is invalid but common);
 * - "=" before a line end (CRLF, LF or a bare CR) is a soft break and disappears, also with
 *   spaces or tabs between the "=" and the line end (RFC 2045 transport padding);
 * - any other "=" is kept as it is, as lenient readers do;
 * - everything else, hard line ends and trailing whitespace included, passes through
 *   unchanged (stripping trailing whitespace would be a reading of its own).
 * Only the bytes from an undecided "=" onwards are carried to the next chunk, bounded by
 * MAX_PAD_BYTES, so splitting the input anywhere gives the same output (tested at every offset).
 *
 * Readers disagree on an "=" that is neither an escape nor a plain soft break: Python's
 * binascii drops everything from "=" CR to the next LF, clamd ends a line at a NUL and reads
 * LF CR as one line end. Where QpDecoder meets such an "=" (`irregular`), the lenient reading
 * decodes the body again with LooseQpDecoder, which reads those the way those readers do
 * (lenient/walk.ts).
 */
import type { ChunkDecoder } from './chunk-decoder.js';

const EQ = 0x3d;
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;

/**
 * Longest run of spaces and tabs after "=" still waited for to see whether a line end follows.
 * An SMTP line is at most 998 bytes, so padding cannot be longer; beyond it the "=" is literal
 * and the carried bytes stay bounded whatever the input.
 */
const MAX_PAD_BYTES = 998;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

export class QpDecoder implements ChunkDecoder {
  /**
   * An "=" other readers read otherwise (what LooseQpDecoder reads differently): "=" CR not
   * before LF, "=" NUL, a soft break's LF followed by a CR. A literal "=" otherwise (bad but
   * common mail) is read alike by every reader we know, so it is not flagged: it costs no
   * extra reading.
   */
  irregular = false;
  private carry: Buffer | null = null;
  /** The last bytes decoded were a soft break "=" LF: a CR first in the next chunk is irregular. */
  private afterSoftLf = false;

  update(chunk: Buffer): Buffer {
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = null;
    return this.decode(buf, false);
  }

  final(): Buffer {
    const buf = this.carry ?? Buffer.alloc(0);
    this.carry = null;
    return this.decode(buf, true);
  }

  /** Reused output buffer (the result is valid until the next call): mailsplit hands a body over a line at a time. */
  private scratch: Buffer | undefined;

  private decode(buf: Buffer, final: boolean): Buffer {
    const len = buf.length;
    if (this.scratch === undefined || this.scratch.length < len) this.scratch = Buffer.allocUnsafe(Math.max(len, 4096));
    const out = this.scratch;
    let o = 0;
    let i = 0;
    if (this.afterSoftLf && len > 0) {
      this.afterSoftLf = false;
      if (buf[0] === CR) this.irregular = true;
    }
    while (i < len) {
      const c = buf[i]!;
      if (c !== EQ) {
        out[o++] = c;
        i++;
        continue;
      }
      // An "=": decide what it is, or carry it when the bytes that decide are not here yet.
      if (i + 1 >= len) {
        if (!final) break;
        out[o++] = c;
        i++;
        continue;
      }
      const n = buf[i + 1]!;
      if (n === LF) {
        i += 2;
        if (i < len) {
          if (buf[i] === CR) this.irregular = true;
        } else if (!final) this.afterSoftLf = true;
        continue;
      }
      if (n === CR) {
        if (i + 2 >= len) {
          if (!final) break;
          i += 2;
          continue;
        }
        if (buf[i + 2] !== LF) this.irregular = true;
        i += buf[i + 2] === LF ? 3 : 2;
        continue;
      }
      const hi = hexValue(n);
      if (hi >= 0) {
        if (i + 2 >= len) {
          if (!final) break;
          out[o++] = c; // "=X" at the very end: literal, X follows as itself
          i++;
          continue;
        }
        const lo = hexValue(buf[i + 2]!);
        if (lo >= 0) {
          out[o++] = (hi << 4) | lo;
          i += 3;
        } else {
          out[o++] = c;
          i++;
        }
        continue;
      }
      if (n === SP || n === TAB) {
        let j = i + 1;
        while (j < len && j - i <= MAX_PAD_BYTES && (buf[j] === SP || buf[j] === TAB)) j++;
        if (j - i > MAX_PAD_BYTES) {
          out[o++] = c;
          i++;
          continue;
        }
        if (j >= len) {
          if (!final) break;
          i = j; // padding up to the end of the body: a soft break with nothing after it
          continue;
        }
        if (buf[j] === LF) {
          i = j + 1;
          continue;
        }
        if (buf[j] === CR) {
          if (j + 1 >= len && !final) break;
          i = buf[j + 1] === LF ? j + 2 : j + 1;
          continue;
        }
      }
      if (n === 0) this.irregular = true;
      out[o++] = c;
      i++;
    }
    if (i < len) this.carry = Buffer.from(buf.subarray(i));
    return out.subarray(0, o);
  }
}

/**
 * Quoted-printable with the soft breaks other readers see: the lenient reading's extra
 * decoding of a body QpDecoder calls irregular (lenient/walk.ts). Rules, QpDecoder's but:
 * - "=" CR, and "=" NUL, drop everything up to and including the next LF (Python's
 *   binascii.a2b_qp does so after "=" CR; clamd's line reader ends the line at a NUL, so
 *   the "=" before it is a soft break), or up to the end of the body when no LF follows;
 * - a CR right after a soft break's LF is dropped (clamd reads LF CR as one line end).
 * State is one of three modes, no bytes but an undecided "=" are carried, so splitting the
 * input anywhere gives the same output.
 */
export class LooseQpDecoder implements ChunkDecoder {
  private readonly inner = new QpDecoder();
  /** Dropping bytes up to the next LF. */
  private skipping = false;
  /** The bytes before were a soft break's LF: a CR next is dropped. */
  private afterLf = false;
  private carry: Buffer | null = null;

  update(chunk: Buffer): Buffer {
    return this.inner.update(this.prepare(chunk, false));
  }

  final(): Buffer {
    const rest = this.prepare(Buffer.alloc(0), true);
    const a = Buffer.from(this.inner.update(rest));
    return Buffer.concat([a, this.inner.final()]);
  }

  /**
   * Removes the soft breaks QpDecoder reads otherwise before it sees them: the bytes from
   * "=" CR or "=" NUL to the next LF go, and so does a CR after a soft break's LF.
   */
  private prepare(chunk: Buffer, final: boolean): Buffer {
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = null;
    const out = Buffer.allocUnsafe(buf.length);
    let o = 0;
    let i = 0;
    const len = buf.length;
    while (i < len) {
      const c = buf[i]!;
      if (this.skipping) {
        const lf = buf.indexOf(LF, i);
        if (lf < 0) return out.subarray(0, o);
        this.skipping = false;
        this.afterLf = true;
        i = lf + 1;
        continue;
      }
      if (this.afterLf) {
        this.afterLf = false;
        if (c === CR) {
          i++;
          continue;
        }
      }
      if (c !== EQ) {
        out[o++] = c;
        i++;
        continue;
      }
      if (i + 1 >= len) {
        if (!final) {
          this.carry = Buffer.from(buf.subarray(i));
          break;
        }
        out[o++] = c;
        i++;
        continue;
      }
      const n = buf[i + 1]!;
      if (n === CR || n === 0) {
        this.skipping = true;
        i += 2;
        continue;
      }
      out[o++] = c;
      i++;
      if (n === LF) {
        out[o++] = LF;
        i++;
        this.afterLf = true;
      }
    }
    return out.subarray(0, o);
  }
}
