/**
 * BinHex 4.0 (RFC 1741) decoding: the text between the two ":" after the "(This file must be
 * converted with BinHex 4.0)" line, to the data and resource forks.
 *
 * Owns: the 6-bit alphabet, the 0x90 run-length escape and the header that gives the fork
 * lengths. Input: the encoded characters in pieces (line ends and other whitespace are
 * ignored; the caller stops at the closing ":"). Output: fork bytes as they complete. CRCs
 * are not checked: a reader that ignores them still extracts the file. A header that cannot
 * be right (a fork longer than MAX_FORK_BYTES) makes the whole decoded stream the data fork,
 * so nothing decoded is ever dropped. Never throws.
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

export const BINHEX_MARKER = '(This file must be converted with BinHex';

export interface BinHexOutput {
  data: Buffer;
  rsrc: Buffer;
}

export class BinHexDecoder {
  private acc = 0;
  private bits = 0;
  private last = -1;
  private escape = false;
  // fork parser
  private header: number[] = [];
  private headerLen = -1;
  private phase: 'header' | 'data' | 'dcrc' | 'rsrc' | 'rcrc' | 'raw' | 'done' = 'header';
  private left = 0;
  private rsrcLen = 0;
  /** The file name from the header, for reports. */
  name: string | undefined;

  push(text: Buffer): BinHexOutput {
    const raw: number[] = [];
    for (const c of text) {
      const v = VALUE[c]!;
      if (v < 0) continue;
      this.acc = ((this.acc << 6) | v) & 0xffffff;
      this.bits += 6;
      if (this.bits >= 8) {
        this.bits -= 8;
        this.rle((this.acc >> this.bits) & 0xff, raw);
      }
    }
    return this.forks(raw);
  }

  private rle(b: number, out: number[]): void {
    if (this.escape) {
      this.escape = false;
      if (b === 0) {
        out.push(RLE_MARK);
        this.last = RLE_MARK;
      } else if (this.last >= 0) {
        for (let i = 1; i < b; i++) out.push(this.last);
      }
      return;
    }
    if (b === RLE_MARK) {
      this.escape = true;
      return;
    }
    out.push(b);
    this.last = b;
  }

  private forks(raw: number[]): BinHexOutput {
    const data: number[] = [];
    const rsrc: number[] = [];
    for (const b of raw) {
      switch (this.phase) {
        case 'header':
          this.header.push(b);
          if (this.headerLen < 0) this.headerLen = 1 + b + 1 + 4 + 4 + 2 + 4 + 4 + 2;
          if (this.header.length === this.headerLen) this.startForks(data);
          break;
        case 'data':
          data.push(b);
          if (--this.left === 0) this.next('dcrc', 2);
          break;
        case 'dcrc':
          if (--this.left === 0) this.next(this.rsrcLen > 0 ? 'rsrc' : 'done', this.rsrcLen || 0);
          break;
        case 'rsrc':
          rsrc.push(b);
          if (--this.left === 0) this.next('rcrc', 2);
          break;
        case 'rcrc':
          if (--this.left === 0) this.phase = 'done';
          break;
        case 'raw':
          data.push(b);
          break;
        case 'done':
          break;
      }
    }
    return { data: Buffer.from(data), rsrc: Buffer.from(rsrc) };
  }

  private startForks(data: number[]): void {
    const h = this.header;
    const n = h[0]!;
    this.name = Buffer.from(h.slice(1, 1 + n)).toString('latin1');
    const at = 1 + n + 1 + 4 + 4 + 2;
    const dataLen = ((h[at]! << 24) | (h[at + 1]! << 16) | (h[at + 2]! << 8) | h[at + 3]!) >>> 0;
    const rsrcLen = ((h[at + 4]! << 24) | (h[at + 5]! << 16) | (h[at + 6]! << 8) | h[at + 7]!) >>> 0;
    if (dataLen > MAX_FORK_BYTES || rsrcLen > MAX_FORK_BYTES) {
      // not a header we can trust: keep everything, header included
      this.phase = 'raw';
      data.push(...h);
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
