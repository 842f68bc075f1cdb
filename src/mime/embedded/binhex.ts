/**
 * BinHex 4.0 (RFC 1741) decoding: the text between the two ":" after the "(This file must be
 * converted with BinHex 4.0)" line, to the data and resource forks.
 *
 * Owns: the 6-bit alphabet, the 0x90 run-length escape and the header that gives the fork
 * lengths. Input: the encoded characters in pieces, as buffer ranges (line ends and other
 * whitespace are ignored; the caller stops at the closing ":"). Output: fork bytes as they
 * complete, in two buffers reused from call to call (no allocation per line). CRCs are not
 * checked: a reader that ignores them still extracts the file. A header that cannot be right
 * (a fork longer than MAX_FORK_BYTES) makes the whole decoded stream the data fork, so
 * nothing decoded is ever dropped. Never throws.
 */

const ALPHABET = '!"#$%&\'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr';
const VALUE: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

const RLE_MARK = 0x90;
/** Fork lengths are 32-bit; beyond 2 GiB the header is garbage (decoded bytes are bounded anyway). */
const MAX_FORK_BYTES = 0x7fffffff;
/** The longest header: a name of 255 bytes and the fixed fields. */
const MAX_HEADER_BYTES = 1 + 255 + 1 + 4 + 4 + 2 + 4 + 4 + 2;

export const BINHEX_MARKER = '(This file must be converted with BinHex';

export interface BinHexOutput {
  /** Valid until the next push(). */
  data: Buffer;
  rsrc: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** A growable output buffer, reused from call to call; allocated on first use (most markers lead nowhere). */
class Out {
  buf = EMPTY;
  n = 0;
  put(b: number): void {
    if (this.n === this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(256, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.n);
      this.buf = next;
    }
    this.buf[this.n++] = b;
  }
  take(): Buffer {
    if (this.n === 0) return EMPTY;
    const r = this.buf.subarray(0, this.n);
    this.n = 0;
    return r;
  }
}

export class BinHexDecoder {
  private acc = 0;
  private bits = 0;
  private last = -1;
  private escape = false;
  // fork parser
  private readonly header = Buffer.allocUnsafe(MAX_HEADER_BYTES);
  private headerN = 0;
  private headerLen = -1;
  private phase: 'header' | 'data' | 'dcrc' | 'rsrc' | 'rcrc' | 'raw' | 'done' = 'header';
  private left = 0;
  private rsrcLen = 0;
  private readonly data = new Out();
  private readonly rsrc = new Out();
  /** The file name from the header, for reports. */
  name: string | undefined;

  push(text: Buffer, start = 0, end = text.length): BinHexOutput {
    for (let i = start; i < end; i++) {
      const v = VALUE[text[i]!]!;
      if (v < 0) continue;
      this.acc = ((this.acc << 6) | v) & 0xffffff;
      this.bits += 6;
      if (this.bits >= 8) {
        this.bits -= 8;
        this.rle((this.acc >> this.bits) & 0xff);
      }
    }
    return { data: this.data.take(), rsrc: this.rsrc.take() };
  }

  private rle(b: number): void {
    if (this.escape) {
      this.escape = false;
      if (b === 0) {
        this.fork(RLE_MARK);
        this.last = RLE_MARK;
      } else if (this.last >= 0) {
        for (let i = 1; i < b; i++) this.fork(this.last);
      }
      return;
    }
    if (b === RLE_MARK) {
      this.escape = true;
      return;
    }
    this.fork(b);
    this.last = b;
  }

  private fork(b: number): void {
    switch (this.phase) {
      case 'header':
        this.header[this.headerN++] = b;
        if (this.headerLen < 0) this.headerLen = 1 + b + 1 + 4 + 4 + 2 + 4 + 4 + 2;
        if (this.headerN === this.headerLen) this.startForks();
        return;
      case 'data':
        this.data.put(b);
        if (--this.left === 0) this.next('dcrc', 2);
        return;
      case 'dcrc':
        if (--this.left === 0) this.next(this.rsrcLen > 0 ? 'rsrc' : 'done', this.rsrcLen || 0);
        return;
      case 'rsrc':
        this.rsrc.put(b);
        if (--this.left === 0) this.next('rcrc', 2);
        return;
      case 'rcrc':
        if (--this.left === 0) this.phase = 'done';
        return;
      case 'raw':
        this.data.put(b);
        return;
      case 'done':
        return;
    }
  }

  private startForks(): void {
    const h = this.header;
    const n = h[0]!;
    this.name = h.toString('latin1', 1, 1 + n);
    const at = 1 + n + 1 + 4 + 4 + 2;
    const dataLen = h.readUInt32BE(at);
    const rsrcLen = h.readUInt32BE(at + 4);
    if (dataLen > MAX_FORK_BYTES || rsrcLen > MAX_FORK_BYTES) {
      // not a header we can trust: keep everything, header included
      this.phase = 'raw';
      for (let i = 0; i < this.headerN; i++) this.data.put(h[i]!);
      return;
    }
    this.rsrcLen = rsrcLen;
    if (dataLen > 0) this.next('data', dataLen);
    else this.next('dcrc', 2);
  }

  private next(phase: typeof this.phase, left: number): void {
    this.phase = phase;
    this.left = left;
    if (left === 0 && phase !== 'done') this.phase = phase === 'rsrc' ? 'done' : phase;
  }
}
