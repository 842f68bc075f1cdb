/**
 * Lines out of chunks, for the decoders of encodings that are line based (uuencode,
 * begin-base64, yEnc, BinHex framing).
 *
 * Owns: line splitting with every line end (CRLF, LF, bare CR) and a bound on line length.
 * Input: chunks split anywhere. Output: lines without their ends. A line longer than
 * MAX_LINE_BYTES comes out in pieces of that size (no encoding handled here has lines that
 * long, so a piece is never mistaken for a whole encoded line that matters; base64 pieces
 * decode the same as the whole line). Never throws.
 */

/** yEnc lines may be up to 997 bytes; 8 KiB leaves room and bounds the carried bytes. */
export const MAX_LINE_BYTES = 8 * 1024;

const CR = 0x0d;
const LF = 0x0a;

export class LineSplitter {
  private carry: Buffer | undefined;
  /** The previous chunk ended with CR: an LF at the start of this one belongs to it. */
  private afterCR = false;

  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let buf = chunk;
    let i = 0;
    if (this.afterCR && buf.length > 0 && buf[0] === LF) i = 1;
    this.afterCR = false;
    if (this.carry !== undefined) {
      buf = Buffer.concat([this.carry, buf.subarray(i)]);
      i = 0;
      this.carry = undefined;
    }
    let start = i;
    for (; i < buf.length; i++) {
      const c = buf[i]!;
      if (c === LF || c === CR) {
        lines.push(buf.subarray(start, i));
        if (c === CR) {
          if (i + 1 < buf.length) {
            if (buf[i + 1] === LF) i++;
          } else this.afterCR = true;
        }
        start = i + 1;
      } else if (i - start >= MAX_LINE_BYTES) {
        lines.push(buf.subarray(start, i));
        start = i;
      }
    }
    if (start < buf.length) this.carry = Buffer.from(buf.subarray(start));
    return lines;
  }

  end(): Buffer[] {
    const c = this.carry;
    this.carry = undefined;
    return c !== undefined && c.length > 0 ? [c] : [];
  }
}
