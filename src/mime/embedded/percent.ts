/**
 * Percent-decoding (RFC 3986 §2.1) of the body of a data: URI that is not base64
 * (`data:text/html,%3Cscript%3E...`), the way browsers undo it.
 *
 * Owns: the %XX escapes only; the scanner decides where the URI ends. Input: the URI's bytes
 * after the ",", in chunks split anywhere. Output: the decoded bytes: "%" and two hex digits
 * (either case) give that byte, every other byte (a "%" without two hex digits after it
 * included) comes out as it is. State is at most the two bytes of an unfinished escape, so
 * splitting the input anywhere gives the same output. Never throws.
 */
import type { ChunkDecoder } from '../chunk-decoder.js';

const PERCENT = 0x25;

/** 0-15 for hex digits, -1 for everything else. */
const HEX: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < 10; i++) t[0x30 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[0x41 + i] = 10 + i;
    t[0x61 + i] = 10 + i;
  }
  return t;
})();

export class PercentDecoder implements ChunkDecoder {
  /** Bytes of an unfinished escape: 0, "%" (1) or "%" and one hex digit (2). */
  private held = 0;
  /** The hex digit held (held === 2), as it was written: a broken escape comes out unchanged. */
  private digit = 0;

  /** A new buffer per call. */
  update(chunk: Buffer): Buffer {
    const out = Buffer.allocUnsafe(chunk.length + 2);
    return out.subarray(0, this.updateInto(chunk, 0, chunk.length, out, 0));
  }

  /** Decodes chunk[start, end) into `out` at `o` (room for end - start + 2 bytes); returns the offset after the last byte. */
  updateInto(chunk: Buffer, start: number, end: number, out: Buffer, o: number): number {
    let i = start;
    while (i < end) {
      const c = chunk[i]!;
      if (this.held === 0) {
        if (c === PERCENT) this.held = 1;
        else out[o++] = c;
        i++;
        continue;
      }
      const v = HEX[c]!;
      if (v < 0) {
        // not an escape after all: what was held is literal, and c is looked at afresh
        o = this.flush(out, o);
        continue;
      }
      if (this.held === 1) {
        this.held = 2;
        this.digit = c;
      } else {
        out[o++] = (HEX[this.digit]! << 4) | v;
        this.held = 0;
      }
      i++;
    }
    return o;
  }

  final(): Buffer {
    const out = Buffer.allocUnsafe(2);
    return out.subarray(0, this.finalInto(out, 0));
  }

  /** Writes an unfinished escape literally (at most 2 bytes); the decoder is then fresh again. */
  finalInto(out: Buffer, o: number): number {
    return this.flush(out, o);
  }

  /** Writes the held bytes of an unfinished escape literally. */
  private flush(out: Buffer, o: number): number {
    if (this.held >= 1) out[o++] = PERCENT;
    if (this.held === 2) out[o++] = this.digit;
    this.held = 0;
    return o;
  }
}
