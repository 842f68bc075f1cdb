/**
 * The PDF stream filters that carry content by hand (pdf.ts decides which apply): ASCIIHexDecode,
 * ASCII85Decode, LZWDecode (with EarlyChange), RunLengthDecode; FlateDecode goes to zlib
 * (inflate.ts). Each decoder is one pass over its input, writes into an output that never grows
 * past `room` (it fails with `size` first) and checks the deadline every 64 Ki steps.
 *
 * Fails with FilterFailure (outcome `size`, `corrupt` or `time`), caught by pdf.ts: these are
 * the only throws, and they never leave the formats module.
 */
import { brotliDecompressSync } from 'node:zlib';
import { inflateLenient } from './inflate.js';

export class FilterFailure extends Error {
  /** `partial`: what the filter decoded before the damage (a viewer passes that on). */
  constructor(readonly outcome: 'size' | 'corrupt' | 'time', detail: string, readonly partial?: Buffer) {
    super(detail);
  }
}

export interface FilterContext {
  /** Output bytes this stream may still produce. */
  readonly room: number;
  /** True once the deadline passed (checked every 64 Ki steps). */
  timeUp(): boolean;
  /** LZW's /EarlyChange (1 unless its /DecodeParms say 0). */
  readonly earlyChange?: number;
}

/** A growing output that fails with `size` before passing its room. */
class Output {
  buf: Buffer;
  n = 0;
  constructor(private readonly room: number, hint: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, Math.min(hint, room)));
  }
  ensure(more: number): void {
    const need = this.n + more;
    if (need <= this.buf.length) return;
    if (need > this.room) throw new FilterFailure('size', `decodes past ${this.room} bytes`);
    const next = Buffer.allocUnsafe(Math.min(this.room, Math.max(need, this.buf.length * 2)));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.n++] = b;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.n);
  }
}

const tick = (i: number, ctx: FilterContext): void => {
  if ((i & 0xffff) === 0 && ctx.timeUp()) throw new FilterFailure('time', 'deadline passed');
};

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c || c === 0x00;

/** Filter names and their abbreviations (PDF 1.7, 7.4 and inline-image abbreviations). */
export const FILTERS: Record<string, (data: Buffer, ctx: FilterContext) => Buffer> = {
  FlateDecode: flate, Fl: flate,
  ASCIIHexDecode: asciiHex, AHx: asciiHex,
  ASCII85Decode: ascii85, A85: ascii85,
  LZWDecode: lzw, LZW: lzw,
  RunLengthDecode: runLength, RL: runLength,
  // ISO 32000-2 amendment (2025); pdf.js reads it
  BrotliDecode: brotli,
};

function flate(data: Buffer, ctx: FilterContext): Buffer {
  const r = inflateLenient(data, ctx.room);
  if (!r.ok) throw new FilterFailure(r.outcome, r.detail);
  if (r.damage !== undefined) throw new FilterFailure('corrupt', `FlateDecode: ${r.damage}`, r.bytes);
  return r.bytes;
}

function brotli(data: Buffer, ctx: FilterContext): Buffer {
  try {
    const out = brotliDecompressSync(data, { maxOutputLength: Math.min(Math.max(1, ctx.room + 1), 2 ** 31 - 1) });
    if (out.length > ctx.room) throw new FilterFailure('size', `decodes past ${ctx.room} bytes`);
    return out;
  } catch (err) {
    if (err instanceof FilterFailure) throw err;
    if (err instanceof RangeError) throw new FilterFailure('size', `decodes past ${ctx.room} bytes`);
    throw new FilterFailure('corrupt', 'BrotliDecode: the data does not decode');
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

function asciiHex(data: Buffer, ctx: FilterContext): Buffer {
  const out = new Output(ctx.room, (data.length >> 1) + 1);
  let hi = -1;
  for (let i = 0; i < data.length; i++) {
    tick(i, ctx);
    const c = data[i]!;
    if (c === 0x3e) break; // '>' ends the data
    const v = hexValue(c);
    if (v < 0) continue; // pdf.js skips anything that is not a digit (qpdf refuses the stream)
    if (hi < 0) hi = v;
    else { out.byte((hi << 4) | v); hi = -1; }
  }
  if (hi >= 0) out.byte(hi << 4); // an odd last digit stands for digit + 0
  return out.done();
}

function ascii85(data: Buffer, ctx: FilterContext): Buffer {
  const out = new Output(ctx.room, data.length);
  let value = 0;
  let k = 0;
  let i = 0;
  if (data[0] === 0x3c && data[1] === 0x7e) i = 2; // optional "<~"
  for (; i < data.length; i++) {
    tick(i, ctx);
    const c = data[i]!;
    if (isSpace(c)) continue;
    if (c === 0x7e) break; // "~>" ends the data
    if (c === 0x7a && k === 0) { out.ensure(4); out.buf.fill(0, out.n, out.n + 4); out.n += 4; continue; }
    if (c < 0x21 || c > 0x75) continue; // not a digit: skipped, as readers skip white space
    value = value * 85 + (c - 0x21);
    if (++k === 5) {
      // a group past 2^32 wraps, as pdf.js computes it (a reader that refuses it shows nothing)
      out.ensure(4);
      out.buf.writeUInt32BE(value % 0x100000000, out.n);
      out.n += 4;
      value = 0;
      k = 0;
    }
  }
  if (k > 1) { // pad with 'u' and keep k-1 bytes (one digit alone carries no byte)
    for (let j = k; j < 5; j++) value = value * 85 + 84;
    value %= 0x100000000;
    for (let j = 0; j < k - 1; j++) out.byte((value >>> (24 - 8 * j)) & 0xff);
  }
  return out.done();
}

function runLength(data: Buffer, ctx: FilterContext): Buffer {
  const out = new Output(ctx.room, data.length * 2);
  let i = 0;
  while (i < data.length) {
    tick(i, ctx);
    const n = data[i++]!;
    if (n === 128) break; // EOD
    if (n < 128) {
      const end = Math.min(data.length, i + n + 1);
      out.ensure(end - i);
      data.copy(out.buf, out.n, i, end);
      out.n += end - i;
      i = end;
    } else {
      if (i >= data.length) break;
      const count = 257 - n;
      out.ensure(count);
      out.buf.fill(data[i++]!, out.n, out.n + count);
      out.n += count;
    }
  }
  return out.done();
}

/**
 * LZW as PDF uses it (7.4.4): codes 9 to 12 bits MSB first, 256 = clear, 257 = end; the code
 * width grows one code early when EarlyChange is 1 (the default). Strings are kept as prefix
 * links with their first byte and length, so each code costs its output length.
 */
function lzw(data: Buffer, ctx: FilterContext): Buffer {
  const out = new Output(ctx.room, data.length * 3);
  const prefix = new Int32Array(4096);
  const last = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const length = new Int32Array(4096);
  for (let c = 0; c < 256; c++) { prefix[c] = -1; last[c] = c; first[c] = c; length[c] = 1; }
  const early = ctx.earlyChange === 0 ? 0 : 1;
  let next = 258;
  let width = 9;
  let prev = -1;
  let bitBuf = 0;
  let bits = 0;
  let i = 0;
  let steps = 0;
  for (;;) {
    tick(++steps, ctx);
    while (bits < width && i < data.length) { bitBuf = ((bitBuf << 8) | data[i++]!) >>> 0; bits += 8; }
    if (bits < width) break; // ran out without an end code: keep what was decoded
    const code = (bitBuf >>> (bits - width)) & ((1 << width) - 1);
    bits -= width;
    bitBuf &= (1 << bits) - 1;
    if (code === 256) { next = 258; width = 9; prev = -1; continue; }
    if (code === 257) break;
    let head: number;
    if (prev < 0) {
      if (code > 255) throw new FilterFailure('corrupt', 'LZWDecode: first code is not a byte', out.done());
      out.byte(code);
      prev = code;
      continue;
    }
    if (code < next) {
      write(out, code, prefix, last, length);
      head = first[code]!;
    } else if (code === next) {
      head = first[prev]!;
      write(out, prev, prefix, last, length);
      out.byte(head);
    } else throw new FilterFailure('corrupt', 'LZWDecode: code not in the table', out.done());
    if (next < 4096) {
      prefix[next] = prev;
      last[next] = head;
      first[next] = first[prev]!;
      length[next] = length[prev]! + 1;
      next++;
    }
    prev = code;
    if (next + early >= 1 << width && width < 12) width++;
  }
  return out.done();
}

function write(out: Output, code: number, prefix: Int32Array, last: Uint8Array, length: Int32Array): void {
  const len = length[code]!;
  out.ensure(len);
  let p = out.n + len - 1;
  for (let c = code; c >= 0; c = prefix[c]!) out.buf[p--] = last[c]!;
  out.n += len;
}
