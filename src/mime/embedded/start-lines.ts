/**
 * Does a part hold a line that starts an item clamd decodes in any part, binaries and media
 * included: "begin" (uuencode, begin-base64) or "Content-Transfer-" (a base64 or
 * quoted-printable block after it, a mail after binary bytes among them)?
 *
 * Owns: the search, as a codec: bytes in (chunks split anywhere), one boolean out. The part
 * writer (part-writer.ts) feeds it the bytes of a part it spills to disk as they are written,
 * so the post-pass (index.ts) need not read a large binary back to decide; a part kept in
 * memory is searched there. A few native searches per chunk (a binary is not read line by
 * line); the last bytes of a chunk are carried into a small window with the next one's first
 * bytes, so that a line head across chunks is seen without copying the chunks. Never throws.
 */

/**
 * Each start line is searched for by a piece of it (`needle`, in the cases it is written in)
 * that starts `back` bytes into the line; `head` (lower case) is the line's start, checked
 * byte by byte, case ignored. Needles are at most 7 bytes: Buffer.indexOf searches a longer
 * one several times slower.
 */
const START_LINES: ReadonlyArray<{ needle: Buffer; back: number; head: Buffer }> = [
  { needle: Buffer.from('begin', 'latin1'), back: 0, head: Buffer.from('begin', 'latin1') },
  { needle: Buffer.from('ransfer', 'latin1'), back: 9, head: Buffer.from('content-transfer-', 'latin1') },
  { needle: Buffer.from('RANSFER', 'latin1'), back: 9, head: Buffer.from('content-transfer-', 'latin1') },
];
/** Bytes of a chunk carried into the next: the longest line head, and the byte before it. */
const START_CARRY_BYTES = Math.max(...START_LINES.map((s) => s.head.length)) + 1;

const isEol = (c: number | undefined): boolean => c === 0x0a || c === 0x0d;

export class StartLineSniffer {
  /** A start line was seen. */
  found = false;
  /** The last START_CARRY_BYTES bytes pushed (fewer at the start of the part). */
  private prev: Buffer | undefined;
  private seen = 0;

  push(chunk: Buffer): void {
    if (this.found || chunk.length === 0) return;
    const prev = this.prev;
    // prev starts at the part's first byte: its first byte is a line start
    const prevAtStart = prev !== undefined && this.seen === prev.length;
    if (prev !== undefined) {
      // heads that start in prev and end past it (those wholly in prev were looked at already)
      const w = Buffer.concat([prev, chunk.subarray(0, START_CARRY_BYTES)]);
      for (const { needle, back, head } of START_LINES) {
        for (let i = w.indexOf(needle, back); i >= 0 && i - back < prev.length; i = w.indexOf(needle, i + 1)) {
          const ls = i - back;
          if (ls + head.length <= prev.length || ls + head.length > w.length) continue;
          if ((ls === 0 ? prevAtStart : isEol(w[ls - 1])) && headIs(w, ls, head)) return void (this.found = true);
        }
      }
    }
    // heads that start in this chunk and end in it (one that ends past it is in the next window)
    const startsLine = prev === undefined || isEol(prev[prev.length - 1]);
    for (const { needle, back, head } of START_LINES) {
      for (let i = chunk.indexOf(needle, back); i >= 0; i = chunk.indexOf(needle, i + 1)) {
        const ls = i - back;
        if (ls + head.length > chunk.length) break;
        if ((ls === 0 ? startsLine : isEol(chunk[ls - 1])) && headIs(chunk, ls, head)) return void (this.found = true);
      }
    }
    this.seen += chunk.length;
    this.prev = chunk.length >= START_CARRY_BYTES ? Buffer.from(chunk.subarray(chunk.length - START_CARRY_BYTES)) : Buffer.concat([prev ?? Buffer.alloc(0), chunk]).subarray(-START_CARRY_BYTES);
  }
}

/** buf at `at` starts with `head` (lower case ASCII), case ignored. */
function headIs(buf: Buffer, at: number, head: Buffer): boolean {
  for (let k = 0; k < head.length; k++) if ((buf[at + k]! | 0x20) !== (head[k]! | 0x20)) return false;
  return true;
}
