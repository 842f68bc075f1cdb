/**
 * LZ4 streams, as `lz4 -d` reads them: LZ4 frames (magic 04 22 4D 18), legacy frames (02 21 4C
 * 18, `lz4 -l`) and skippable frames (5? 2A 4D 18), one after another; their output is one
 * member, "[data]" (a .tar.lz4 then holds a tar). 7-Zip 24.09 has no LZ4 handler, so without
 * this a payload compressed with lz4 was never seen.
 *
 * Why by hand: the LZ4 block format is a dozen lines (literals, then a match copied from the
 * output), and the npm decoders either are native addons (lz4, lz4-napi) or decode a whole frame
 * into memory with no output bound (lz4js): a reader here must stop at UnpackLimits (output
 * bytes, deadline) whatever the frame's headers claim.
 *
 * Owns: the frame walk and the block decoder. Input: the item's bytes from the first frame.
 * Output: UnpackResult (one member; `size` past the output limit, `time` past the deadline,
 * `corrupt` for a frame or block that does not decode: what decoded before it is still the
 * member, as lz4 writes it before it fails; `trailing` for bytes after the last frame, which lz4
 * ignores). Checksums are not checked (lz4 writes the bytes before it checks them). Pure; never
 * throws.
 */
import type { UnpackLimits, UnpackResult } from '../types.js';

const MAGIC_FRAME = 0x184d2204;
const MAGIC_LEGACY = 0x184c2102;
/** Skippable frames: 0x184D2A50 to 0x184D2A5F. */
const MAGIC_SKIPPABLE_MASK = 0xfffffff0;
const MAGIC_SKIPPABLE = 0x184d2a50;
/** A legacy frame's blocks decode to 8 MiB each at most. */
const LEGACY_BLOCK_BYTES = 8 * 1024 * 1024;
/** Block maximum sizes by the frame descriptor's BD byte (4 to 7). */
const BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

export const LZ4_FRAME_MAGIC = Buffer.from([0x04, 0x22, 0x4d, 0x18]);

/** An LZ4 frame header at `at`: magic, version 01, reserved bits clear, a known block size. */
export function isLz4Frame(b: Buffer, at = 0): boolean {
  if (b.length < at + 7) return false;
  const magic = b.readUInt32LE(at);
  if (magic === MAGIC_LEGACY) return b.length >= at + 8 && b.readUInt32LE(at + 4) > 0 && b.readUInt32LE(at + 4) <= LZ4_BOUND;
  if (magic !== MAGIC_FRAME) return false;
  const flg = b[at + 4]!;
  const bd = b[at + 5]!;
  return (flg >> 6) === 1 && (flg & 0x02) === 0 && (bd & 0x8f) === 0 && bd >> 4 >= 4;
}

/** The most a block of 8 MiB compresses to (LZ4_compressBound). */
const LZ4_BOUND = LEGACY_BLOCK_BYTES + Math.floor(LEGACY_BLOCK_BYTES / 255) + 16;

class Output {
  buf = Buffer.alloc(64 * 1024);
  len = 0;
  constructor(private readonly max: number) {}
  /** Room for `n` more bytes; false when it would pass the limit. */
  reserve(n: number): boolean {
    const need = this.len + n;
    if (need > this.max) return false;
    if (need > this.buf.length) {
      const next = Buffer.alloc(Math.min(this.max, Math.max(need, this.buf.length * 2)));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    return true;
  }
}

type Step = 'ok' | 'size' | 'corrupt';

/** One LZ4 block into `out`; matches may reach back into earlier blocks' output (linked blocks). */
function decodeBlock(src: Buffer, start: number, end: number, out: Output, from: number): Step {
  let ip = start;
  while (ip < end) {
    const token = src[ip++]!;
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do { if (ip >= end) return 'corrupt'; b = src[ip++]!; lit += b; } while (b === 255);
    }
    if (ip + lit > end) return 'corrupt';
    if (!out.reserve(lit)) return 'size';
    src.copy(out.buf, out.len, ip, ip + lit);
    out.len += lit;
    ip += lit;
    if (ip >= end) break; // the last sequence has literals only
    if (ip + 2 > end) return 'corrupt';
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > out.len) return 'corrupt';
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do { if (ip >= end) return 'corrupt'; b = src[ip++]!; len += b; } while (b === 255);
    }
    len += 4;
    if (!out.reserve(len)) return 'size';
    const o = out.buf;
    let s = out.len - offset;
    if (offset >= len) {
      o.copy(o, out.len, s, s + len);
    } else {
      for (let k = 0; k < len; k++) o[out.len + k] = o[s++]!;
    }
    out.len += len;
  }
  return out.len >= from ? 'ok' : 'corrupt';
}

export function unpackLz4(input: Buffer, limits: UnpackLimits): UnpackResult {
  const out = new Output(Math.max(0, limits.maxOutputBytes));
  let at = 0;
  let frames = 0;
  let outcome: UnpackResult['outcome'] = 'ok';
  let detail: string | undefined;
  let trailing = false;
  const fail = (o: UnpackResult['outcome'], d: string): void => { outcome = o; detail = d; };
  frames: while (at < input.length) {
    if (Date.now() > limits.deadline) { fail('time', 'deadline passed'); break; }
    if (at + 4 > input.length) { trailing = frames > 0; if (frames === 0) fail('corrupt', 'no LZ4 frame'); break; }
    const magic = input.readUInt32LE(at);
    if (((magic & MAGIC_SKIPPABLE_MASK) >>> 0) === MAGIC_SKIPPABLE) {
      if (at + 8 > input.length) { fail('corrupt', 'skippable frame cut short'); break; }
      at += 8 + input.readUInt32LE(at + 4);
      frames++;
      continue;
    }
    if (magic === MAGIC_LEGACY) {
      at += 4;
      // blocks until the input ends or the next frame's magic
      while (at + 4 <= input.length) {
        const size = input.readUInt32LE(at);
        if (size === MAGIC_FRAME || size === MAGIC_LEGACY || ((size & MAGIC_SKIPPABLE_MASK) >>> 0) === MAGIC_SKIPPABLE) break;
        if (size > LZ4_BOUND || at + 4 + size > input.length) { fail('corrupt', 'legacy block cut short'); break frames; }
        const step = decodeBlock(input, at + 4, at + 4 + size, out, 0);
        if (step !== 'ok') { fail(step, step === 'size' ? `output passes ${limits.maxOutputBytes} bytes` : 'a block does not decode'); break frames; }
        at += 4 + size;
        if (Date.now() > limits.deadline) { fail('time', 'deadline passed'); break frames; }
      }
      frames++;
      continue;
    }
    if (!isLz4Frame(input, at)) {
      if (frames === 0) fail('corrupt', 'no LZ4 frame');
      else trailing = true; // lz4 stops there too
      break;
    }
    const flg = input[at + 4]!;
    const blockMax = BLOCK_MAX[input[at + 5]! >> 4]!;
    const blockChecksum = (flg & 0x10) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    let p = at + 6 + ((flg & 0x08) ? 8 : 0) + ((flg & 0x01) ? 4 : 0) + 1; // descriptor, its checksum byte
    for (;;) {
      if (p + 4 > input.length) { fail('corrupt', 'frame cut short'); break frames; }
      const word = input.readUInt32LE(p);
      p += 4;
      if (word === 0) break; // end mark
      const stored = (word & 0x80000000) !== 0;
      const size = word & 0x7fffffff;
      if (size > blockMax || p + size > input.length) { fail('corrupt', 'block cut short or too large'); break frames; }
      if (stored) {
        if (!out.reserve(size)) { fail('size', `output passes ${limits.maxOutputBytes} bytes`); break frames; }
        input.copy(out.buf, out.len, p, p + size);
        out.len += size;
      } else {
        const step = decodeBlock(input, p, p + size, out, 0);
        if (step !== 'ok') { fail(step, step === 'size' ? `output passes ${limits.maxOutputBytes} bytes` : 'a block does not decode'); break frames; }
      }
      p += size + (blockChecksum ? 4 : 0);
      if (Date.now() > limits.deadline) { fail('time', 'deadline passed'); break frames; }
    }
    at = p + (contentChecksum ? 4 : 0);
    frames++;
  }
  const members = out.len > 0 || outcome === 'ok' ? [{ name: '[data]', bytes: out.buf.subarray(0, out.len) }] : [];
  return { members, outcome, detail, ...(trailing ? { trailing } : {}) };
}
