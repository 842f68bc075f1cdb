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

export class Base64Decoder implements ChunkDecoder {
  /**
   * The input was not what a strict decoder reads the same way: bytes outside the alphabet
   * other than line ends and blanks, or data after "=" padding. Such a body may decode
   * differently elsewhere (clamd stops at the first "="), so a scanner that decodes mail
   * itself must be given our decoding too (scan/route.ts).
   */
  irregular = false;
  private padded = false;

  /** Bits of the unfinished group, `count` sextets of them. */
  private acc = 0;
  private count = 0;

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
    for (let i = start; i < end; i++) {
      const c = chunk[i]!;
      const v = SEXTET[c]!;
      if (v >= 0) {
        if (padded) irregular = true;
        acc = (acc << 6) | v;
        if (++count === 4) {
          out[o++] = (acc >> 16) & 0xff;
          out[o++] = (acc >> 8) & 0xff;
          out[o++] = acc & 0xff;
          acc = 0;
          count = 0;
        }
      } else if (c === PAD) {
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
    return n;
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
