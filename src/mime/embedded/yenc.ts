/**
 * yEnc decoding of one line: every byte minus 42, "=" escapes the next one (minus 64 more).
 * Owns only the arithmetic; the scanner finds =ybegin / =ypart / =yend. Never throws.
 */
export function ydecodeLine(line: Buffer): Buffer {
  const out = Buffer.allocUnsafe(line.length);
  let o = 0;
  for (let i = 0; i < line.length; i++) {
    let c = line[i]!;
    if (c === 0x3d && i + 1 < line.length) c = line[++i]! - 64;
    out[o++] = (c - 42) & 0xff;
  }
  return out.subarray(0, o);
}
