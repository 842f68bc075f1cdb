/**
 * yEnc decoding of one line: every byte minus 42, "=" escapes the next one (minus 64 more).
 * Owns only the arithmetic; the scanner finds =ybegin / =ypart / =yend. Never throws.
 */

/** Decodes buf[start, end) into `out` at `o` (room for end - start bytes); returns the offset after the last byte. */
export function ydecodeInto(buf: Buffer, start: number, end: number, out: Buffer, o: number): number {
  for (let i = start; i < end; i++) {
    let c = buf[i]!;
    if (c === 0x3d && i + 1 < end) c = buf[++i]! - 64;
    out[o++] = (c - 42) & 0xff;
  }
  return o;
}
