/**
 * Lines out of chunks, for the decoders of encodings that are line based (uuencode,
 * begin-base64, yEnc, BinHex framing).
 *
 * Owns: line splitting with every line end (CRLF, LF, bare CR) and a bound on line length.
 * Input: chunks split anywhere. Output: each line, without its end, as a range of a buffer
 * handed to a callback: no object per line, since a part of short lines has millions of them
 * (the line ends are found with indexOf, at memchr speed). A line longer than MAX_LINE_BYTES
 * comes out in pieces of that size (no encoding handled here has lines that long, so a piece
 * is never mistaken for a whole encoded line that matters; base64 pieces decode the same as
 * the whole line). Where the input is split does not change the lines. Never throws.
 */

/** yEnc lines may be up to 997 bytes; 8 KiB leaves room and bounds the carried bytes. */
export const MAX_LINE_BYTES = 8 * 1024;

const CR = 0x0d;
const LF = 0x0a;

/** One line: buf[start, end). The range is only valid during the call. */
export type OnLine = (buf: Buffer, start: number, end: number) => void;

export class LineReader {
  /** The start of a line whose end has not arrived yet (at most MAX_LINE_BYTES). */
  private carry: Buffer | undefined;
  /** The previous chunk ended with CR: an LF at the start of this one belongs to it. */
  private afterCR = false;

  push(chunk: Buffer, onLine: OnLine): void {
    const len = chunk.length;
    if (len === 0) return;
    let i = 0;
    if (this.afterCR && chunk[0] === LF) i = 1;
    this.afterCR = false;
    if (this.carry !== undefined) {
      const carry = this.carry;
      this.carry = undefined;
      const room = MAX_LINE_BYTES - carry.length;
      const e = eolIn(chunk, i, Math.min(len, i + room + 1));
      if (e >= 0 && e - i <= room) {
        const line = Buffer.concat([carry, chunk.subarray(i, e)]);
        onLine(line, 0, line.length);
        i = this.afterEol(chunk, e);
      } else if (len - i <= room) {
        this.carry = Buffer.concat([carry, chunk.subarray(i)]);
        return;
      } else {
        // a byte that is no line end sits past the room: the carried line is a full piece
        const piece = Buffer.concat([carry, chunk.subarray(i, i + room)]);
        onLine(piece, 0, piece.length);
        i += room;
      }
    }
    // next LF and next CR at or after i (-1: none left); each searched again only once passed
    let lf = chunk.indexOf(LF, i);
    let cr = chunk.indexOf(CR, i);
    while (i < len) {
      if (lf >= 0 && lf < i) lf = chunk.indexOf(LF, i);
      if (cr >= 0 && cr < i) cr = chunk.indexOf(CR, i);
      const e = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (e >= 0 && e - i <= MAX_LINE_BYTES) {
        onLine(chunk, i, e);
        i = this.afterEol(chunk, e);
        continue;
      }
      if (e < 0 && len - i <= MAX_LINE_BYTES) {
        this.carry = Buffer.from(chunk.subarray(i));
        return;
      }
      onLine(chunk, i, i + MAX_LINE_BYTES);
      i += MAX_LINE_BYTES;
    }
  }

  end(onLine: OnLine): void {
    const c = this.carry;
    this.carry = undefined;
    this.afterCR = false;
    if (c !== undefined && c.length > 0) onLine(c, 0, c.length);
  }

  /** The offset after the line end at `e`; a CR last in the chunk may pair with an LF in the next one. */
  private afterEol(chunk: Buffer, e: number): number {
    if (chunk[e] === LF) return e + 1;
    if (e + 1 >= chunk.length) {
      this.afterCR = true;
      return e + 1;
    }
    return chunk[e + 1] === LF ? e + 2 : e + 1;
  }
}

/** The first CR or LF in chunk[from, to), or -1. */
function eolIn(chunk: Buffer, from: number, to: number): number {
  for (let k = from; k < to; k++) {
    const c = chunk[k]!;
    if (c === LF || c === CR) return k;
  }
  return -1;
}
