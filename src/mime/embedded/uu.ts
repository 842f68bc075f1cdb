/**
 * uuencode: one line at a time, and as a Content-Transfer-Encoding (x-uuencode).
 *
 * Owns: decoding uuencoded lines (the length character, then groups of four characters for
 * three bytes; "`" and " " are both zero), leniently: a line shorter than its length
 * character says gives what it holds, characters outside the range count as zero. Input:
 * lines or chunks. Output: bytes. Never throws.
 */
import type { ChunkDecoder } from '../decoders.js';
import { LineSplitter } from './lines.js';

export const UU_BEGIN_RE = /^begin(?:-base64)?\s+[0-7]{1,6}\s*(.*)$/;

export function uudecodeLine(line: Buffer): Buffer {
  if (line.length === 0) return Buffer.alloc(0);
  const n = (line[0]! - 0x20) & 0x3f;
  const out = Buffer.allocUnsafe(Math.ceil(n / 3) * 3);
  let o = 0;
  for (let i = 1; o < n && i < line.length; i += 4) {
    const a = sextet(line, i);
    const b = sextet(line, i + 1);
    const c = sextet(line, i + 2);
    const d = sextet(line, i + 3);
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b << 4) | (c >> 2)) & 0xff;
    out[o++] = ((c << 6) | d) & 0xff;
  }
  return out.subarray(0, Math.min(n, o));
}

function sextet(line: Buffer, i: number): number {
  return i < line.length ? (line[i]! - 0x20) & 0x3f : 0;
}

/**
 * x-uuencode as a CTE: lines up to a "begin" line are skipped when one exists within the
 * first lines, else every line is data; decoding stops at "end".
 */
export class UuDecoder implements ChunkDecoder {
  private readonly lines = new LineSplitter();
  private state: 'head' | 'data' | 'done' = 'head';
  private held: Buffer[] = [];

  update(chunk: Buffer): Buffer {
    return this.decode(this.lines.push(chunk));
  }

  final(): Buffer {
    const out = this.decode(this.lines.end());
    // no "begin" line at all: the whole body was data
    if (this.state === 'head') {
      this.state = 'data';
      const held = this.held;
      this.held = [];
      return Buffer.concat([out, this.decode(held)]);
    }
    return out;
  }

  private decode(lines: Buffer[]): Buffer {
    const out: Buffer[] = [];
    for (const line of lines) {
      if (this.state === 'done') break;
      const text = line.toString('latin1').trim();
      if (this.state === 'head') {
        if (UU_BEGIN_RE.test(text)) {
          this.state = 'data';
          this.held = [];
        } else if (this.held.length < HEAD_LINES) {
          this.held.push(Buffer.from(line));
        } else {
          this.state = 'data';
          const held = this.held;
          this.held = [];
          out.push(this.decode(held), uudecodeLine(line));
        }
        continue;
      }
      if (text === 'end') {
        this.state = 'done';
        continue;
      }
      out.push(uudecodeLine(line));
    }
    return Buffer.concat(out);
  }
}

/** Lines looked at for a "begin" line before the body is taken as bare uuencoded data. */
const HEAD_LINES = 16;
