/**
 * Lenient streaming base64 decoder: the way forgiving mail readers decode, so that whatever a
 * recipient's client would extract, we extract too.
 *
 * Owns: base64 content-transfer-decoding. Input: encoded chunks split anywhere. Output: the
 * decoded bytes; it never fails. Rules:
 * - every byte outside the alphabet (A-Z a-z 0-9 + /) is ignored: line ends of any kind
 *   (CRLF, LF, bare CR), whitespace, junk; lines may have any length;
 * - "=" ends the current 4-character group early (1 or 2 bytes come out of 2 or 3 characters)
 *   and decoding resumes after it, so concatenated encodings and mid-stream padding decode to
 *   every byte that was there (a reader that stops at the first "=" sees less: that would
 *   be a reading of its own);
 * - missing padding at the end is tolerated the same way; a lone trailing character (6 bits)
 *   cannot make a byte and is dropped.
 * State is only the bits of the unfinished group, so splitting the input anywhere gives the
 * same output (tested at every offset).
 *
 * Readers disagree on a stray "=" (one where no padding can stand, or data after padding):
 * this decoder flushes the group there, clamd stops there, and Python's binascii skips it
 * unless it completes a group's padding. Where it met one (`dataAfterPad`), the lenient
 * reading decodes the body again with PadSkippingBase64Decoder, Python's way (lenient/walk.ts).
 * Two paths, one result. JsBase64Decoder reads byte by byte and is the decoder of record.
 * Base64Decoder hands runs of whole lines that are provably regular to Node's native decoder
 * (several times faster on attachment bodies) and everything else to the byte-by-byte path; a
 * fuzz test holds the two to the same bytes and the same `irregular` flag (test/mime-base64.test.ts).
 */
import type { ChunkDecoder } from './chunk-decoder.js';

const PAD = 0x3d; // "="

/** 0-63 for alphabet bytes, -1 for everything else. */
const SEXTET: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
})();

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

/** The decoder of record, byte by byte: the reference for Base64Decoder and its path for anything irregular. */
export class JsBase64Decoder implements ChunkDecoder {
  /**
   * The input was not what a strict decoder reads the same way: bytes outside the alphabet
   * other than line ends and blanks, or data after "=" padding. Such a body may decode
   * differently elsewhere (clamd stops at the first "="), so a scanner that decodes mail
   * itself must be given our decoding too (scan/route.ts).
   */
  irregular = false;
  /**
   * An alphabet character came after an "=": readers decode the rest of the body each their
   * own way (see the header). Implies `irregular`.
   */
  dataAfterPad = false;
  protected padded = false;
  /** Skip "=" where it cannot be padding (PadSkippingBase64Decoder), instead of flushing the group. */
  protected readonly skipStrayPad: boolean = false;
  /** "=" seen since the last alphabet character (PadSkippingBase64Decoder's count, Python's `pads`). */
  private pads = 0;

  /** Bits of the unfinished group, `count` sextets of them. */
  private acc = 0;
  protected count = 0;

  /** Reused output buffer: large inputs would otherwise allocate one buffer per chunk. */
  private scratch: Buffer | undefined;

  /** The result is valid until the next call (it may be a view of a reused buffer). */
  update(chunk: Buffer): Buffer {
    // at most 3 bytes per 4 characters, plus what the carried group completes
    const need = Math.floor(((chunk.length + this.count) * 3) / 4) + 3;
    if (this.scratch === undefined || this.scratch.length < need) this.scratch = Buffer.allocUnsafe(Math.max(need, 4096));
    return this.scratch.subarray(0, this.updateInto(chunk, 0, chunk.length, this.scratch, 0));
  }

  /**
   * Decodes chunk[start, end) into `out` from offset `o`; returns the offset after the last
   * byte written. `out` needs room for (end - start + 4) * 3 / 4 bytes. No allocation: the
   * embedded scanner decodes line after line into one buffer.
   */
  updateInto(chunk: Buffer, start: number, end: number, out: Buffer, o: number): number {
    let acc = this.acc;
    let count = this.count;
    let padded = this.padded;
    let irregular = this.irregular;
    let pads = this.pads;
    for (let i = start; i < end; i++) {
      const c = chunk[i]!;
      const v = SEXTET[c]!;
      if (v >= 0) {
        if (padded) irregular = this.dataAfterPad = true;
        pads = 0;
        acc = (acc << 6) | v;
        if (++count === 4) {
          out[o++] = (acc >> 16) & 0xff;
          out[o++] = (acc >> 8) & 0xff;
          out[o++] = acc & 0xff;
          acc = 0;
          count = 0;
        }
      } else if (c === PAD) {
        // Python's binascii: an "=" ends the group only where it completes the padding ("=="
        // after two characters, "=" after three); anywhere else it is skipped
        if (this.skipStrayPad && (count < 2 || count + ++pads < 4)) continue;
        pads = 0;
        if (count > 0) {
          o = flushGroup(out, o, acc, count);
          acc = 0;
          count = 0;
        }
        padded = true;
      } else if (c !== LF && c !== CR && c !== SPACE && c !== TAB) {
        irregular = true;
      }
    }
    this.acc = acc;
    this.count = count;
    this.padded = padded;
    this.irregular = irregular;
    this.pads = pads;
    return o;
  }

  final(): Buffer {
    const out = Buffer.allocUnsafe(2);
    return out.subarray(0, this.finalInto(out, 0));
  }

  /** Writes what the unfinished group holds (at most 2 bytes) into `out` at `o`; the decoder is then fresh again. */
  finalInto(out: Buffer, o: number): number {
    const n = flushGroup(out, o, this.acc, this.count);
    this.acc = 0;
    this.count = 0;
    this.padded = false;
    this.pads = 0;
    return n;
  }
}

/**
 * Base64 as Python's email package decodes it (binascii.a2b_base64, not strict): an "=" that
 * cannot be padding is skipped, so a stray one in mid-group does not shift the rest of the
 * body. Unlike binascii, decoding resumes after real padding, as JsBase64Decoder does (a
 * second encoding after the first). The lenient reading's extra decoding of a body where
 * JsBase64Decoder met data after an "=" (lenient/walk.ts); byte by byte, as such bodies are
 * rare. Its own class: PartStore keys decodings by the decoder's class name.
 */
export class PadSkippingBase64Decoder extends JsBase64Decoder {
  protected override readonly skipStrayPad: boolean = true;
}

const HYPHEN = 0x2d;
const UNDERSCORE = 0x5f;

/** Ranges shorter than this go byte by byte (the embedded scanner's lines): the native call and its checks would cost more. */
const FAST_MIN_BYTES = 1024;
/**
 * Most bytes per native call. The call needs the run as a latin1 string; one this small is made
 * in V8's young generation, a larger one in large-object space, which costs more than the
 * decoding saves (measured on Node 20).
 */
const FAST_PIECE_BYTES = 48 * 1024;
/** Lines decoded byte by byte to close a group left open by the previous chunk before the fast path gives up on a chunk. */
const ALIGN_LINES = 4;

/**
 * Whether Node's decoder reads the way the fast path's argument needs: a byte outside our
 * alphabet other than "-" and "_" (base64url, which the fast path searches for) is skipped or
 * stops decoding, never read as a character. Checked once on this runtime; on a Node that read
 * otherwise every body would take the byte-by-byte path.
 */
export const NATIVE_FAST_PATH: boolean = (() => {
  const out = Buffer.alloc(8);
  for (let c = 0; c < 256; c++) {
    if (SEXTET[c]! >= 0 || c === HYPHEN || c === UNDERSCORE) continue;
    // seven alphabet characters around it make 5 bytes; a sixth byte would mean c was read as a character
    if (out.write(`QUFB${String.fromCharCode(c)}QUF`, 0, 8, 'base64') > 5) return false;
  }
  return out.write('QUJD\r\nREVG', 0, 8, 'base64') === 6 && out.toString('latin1', 0, 6) === 'ABCDEF';
})();

/**
 * The decoder the pipeline uses: JsBase64Decoder's output, faster. A run of lines goes to
 * Node's decoder only when all of this holds, which makes its reading ours:
 * - no group is open and no "=" was seen before the run (the carried state is empty);
 * - the run is whole lines of one width, each ended by the same CRLF or LF (checked at each
 *   line's end), so it holds width × lines other bytes, N, which make whole groups (N ≡ 0 mod 4);
 * - it holds no "=", "-" or "_" (searched);
 * - Node, allowed N × 3/4 bytes, writes all of them: it skips any other byte outside the
 *   alphabet (NATIVE_FAST_PATH), so each of the N bytes was an alphabet character.
 * The run is then alphabet characters in whole groups and line ends, which the byte-by-byte path
 * decodes to the same bytes, skips without a flag, and leaves no state after. When Node writes
 * less, the run and the rest of the chunk are decoded byte by byte, over what Node wrote.
 */
export class Base64Decoder extends JsBase64Decoder {
  override updateInto(chunk: Buffer, start: number, end: number, out: Buffer, o: number): number {
    if (!NATIVE_FAST_PATH || end - start < FAST_MIN_BYTES) return super.updateInto(chunk, start, end, out, o);
    let i = start;
    // the rest of the line the previous chunk ended in, and more while a group is still open
    for (let n = 0; n === 0 || (this.count !== 0 && n < ALIGN_LINES); n++) {
      const lf = chunk.indexOf(LF, i);
      if (lf < 0 || lf >= end) return super.updateInto(chunk, i, end, out, o);
      o = super.updateInto(chunk, i, lf + 1, out, o);
      i = lf + 1;
    }
    if (this.count !== 0 || this.padded) return super.updateInto(chunk, i, end, out, o);
    const lf = chunk.indexOf(LF, i);
    if (lf < 0 || lf >= end) return super.updateInto(chunk, i, end, out, o);
    const crlf = lf > i && chunk[lf - 1] === CR;
    const stride = lf + 1 - i;
    const width = stride - (crlf ? 2 : 1);
    // lines per run come in units that make whole groups: 1 for widths of 4n, 2 for 4n + 2, else 4
    const unit = width % 4 === 0 ? 1 : width % 2 === 0 ? 2 : 4;
    const maxLines = Math.max(unit, Math.floor(FAST_PIECE_BYTES / stride / unit) * unit);
    while (width > 0) {
      let lines = 0;
      for (let p = i + stride; lines < maxLines && p <= end && chunk[p - 1] === LF && (!crlf || chunk[p - 2] === CR); p += stride) lines++;
      // "=" (padding, or a second encoding) and the two characters Node reads as base64url end the run before their line
      const run = chunk.subarray(i, i + lines * stride);
      let stop = lines;
      for (const c of [PAD, HYPHEN, UNDERSCORE]) {
        const at = run.indexOf(c);
        if (at >= 0 && at < stop * stride) stop = Math.floor(at / stride);
      }
      stop -= stop % unit;
      if (stop === 0) break;
      const expect = ((stop * width) / 4) * 3;
      if (out.write(chunk.toString('latin1', i, i + stop * stride), o, expect, 'base64') !== expect) break;
      o += expect;
      i += stop * stride;
      if (stop < lines || lines < maxLines) break;
    }
    return super.updateInto(chunk, i, end, out, o);
  }
}

/** Writes the whole bytes held by an unfinished group of `count` (0-3) sextets. */
function flushGroup(out: Buffer, o: number, acc: number, count: number): number {
  if (count === 2) {
    out[o++] = (acc >> 4) & 0xff;
  } else if (count === 3) {
    out[o++] = (acc >> 10) & 0xff;
    out[o++] = (acc >> 2) & 0xff;
  }
  return o;
}
