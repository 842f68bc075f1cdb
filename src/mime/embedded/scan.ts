/**
 * Finding files encoded inside a decoded text: uuencode, begin-base64 blocks, yEnc, BinHex 4.0
 * and data: URIs, the encodings mail readers (and ClamAV) undo in bodies that MIME calls plain
 * text.
 *
 * Owns: the state machines that recognise where such an encoding starts and ends. Input: the
 * decoded bytes of one part, in chunks split anywhere. Output: events (open an item, data for
 * it, close it), so the caller does the async writing. Never throws; an encoding cut off by
 * the end of the part is closed with what it held.
 * Recognised: "begin mode name" ... "end" (uuencode); "begin-base64 mode name" ... "====" (the
 * lines decoded with the lenient base64 decoder: a 7bit or 8bit text part holds them as they
 * are, nothing undid them before); "=ybegin ... name=" ... "=yend"; the BinHex marker line, then
 * ":" ... ":"; in any text (HTML attributes, CSS url()), `data:<type>;base64,` followed by
 * base64 (whitespace allowed, as browsers allow it) and `data:<type>,` followed by
 * percent-encoded bytes up to a quote, ")", ">", whitespace or the end of the part (only where
 * "data" starts a word: "metadata:x,y" is no URI).
 */
import { Base64Decoder } from '../base64.js';
import type { ChunkDecoder } from '../decoders.js';
import { BINHEX_MARKER, BinHexDecoder } from './binhex.js';
import { LineSplitter } from './lines.js';
import { PercentDecoder } from './percent.js';
import { UU_BEGIN_RE, uudecodeLine } from './uu.js';
import { ydecodeLine } from './yenc.js';

const BINHEX_MARKER_BYTES = Buffer.from(BINHEX_MARKER, 'latin1');
const DATA_LOWER = Buffer.from('data', 'latin1');

export type EmbeddedKind = 'uuencode' | 'base64-block' | 'yenc' | 'binhex' | 'data-uri';

export type ScanEvent =
  | { readonly type: 'open'; readonly id: number; readonly kind: EmbeddedKind; readonly name?: string | undefined }
  | { readonly type: 'data'; readonly id: number; readonly bytes: Buffer }
  | { readonly type: 'close'; readonly id: number };

/** Longest `data:` media type and parameters before the ","; longer is not a data URI. */
const MAX_DATA_URI_HEADER = 256;
/** A data URI decoding to fewer bytes than this holds nothing worth an item. */
export const MIN_DATA_URI_BYTES = 16;

type LineState =
  | { kind: 'uuencode' | 'yenc'; id: number }
  | { kind: 'base64-block'; id: number; dec: Base64Decoder }
  | { kind: 'binhex-wait'; id: number }
  | { kind: 'binhex'; id: number; dec: BinHexDecoder; rsrc: number | undefined };

export class EmbeddedScanner {
  private readonly lines = new LineSplitter();
  private nextId = 0;
  private line: LineState | undefined;
  // data: URI state, on latin1 text
  private uriCarry: Buffer = EMPTY;
  /** The byte before the text that onText is handed next (the carry, else the chunk); -1: none. */
  private uriPrev = -1;
  private uriHeader: string | undefined;
  /** The "data" of the URI being read starts a word (percent-encoded URIs need that). */
  private uriWordStart = false;
  private uri: { id: number; dec: ChunkDecoder; allowed: Uint8Array; bytes: Buffer[]; size: number } | undefined;

  push(chunk: Buffer): ScanEvent[] {
    const ev: ScanEvent[] = [];
    for (const l of this.lines.push(chunk)) this.onLine(l, ev);
    this.onText(chunk, ev);
    return ev;
  }

  end(): ScanEvent[] {
    const ev: ScanEvent[] = [];
    for (const l of this.lines.end()) this.onLine(l, ev);
    this.closeLine(ev);
    this.endUri(ev);
    return ev;
  }

  private onLine(line: Buffer, ev: ScanEvent[]): void {
    const st = this.line;
    if (st === undefined) {
      // cheap tests first: most lines of most parts start none of these
      if (line.length < 6) return;
      const c0 = line[0]!;
      if (c0 === 0x62 /* b */) {
        const uu = UU_BEGIN_RE.exec(line.toString('latin1', 0, Math.min(line.length, 512)).trimEnd());
        if (uu) {
          const id = this.nextId++;
          const b64 = line[5] === 0x2d; // "begin-base64"
          ev.push({ type: 'open', id, kind: b64 ? 'base64-block' : 'uuencode', name: uu[1]?.trim() || undefined });
          this.line = b64 ? { kind: 'base64-block', id, dec: new Base64Decoder() } : { kind: 'uuencode', id };
        }
      } else if (c0 === 0x3d /* = */ && line.subarray(0, 8).toString('latin1') === '=ybegin ') {
        const head = line.toString('latin1', 0, Math.min(line.length, 512));
        const id = this.nextId++;
        ev.push({ type: 'open', id, kind: 'yenc', name: / name=(.*)$/.exec(head)?.[1]?.trim() || undefined });
        this.line = { kind: 'yenc', id };
      } else if (line.includes(BINHEX_MARKER_BYTES)) {
        this.line = { kind: 'binhex-wait', id: this.nextId++ };
      }
      return;
    }
    switch (st.kind) {
      case 'uuencode': {
        const t = line.toString('latin1').trim();
        if (t === 'end') return this.closeLine(ev);
        const b = uudecodeLine(line);
        if (b.length > 0) ev.push({ type: 'data', id: st.id, bytes: b });
        return;
      }
      case 'base64-block': {
        if (line.toString('latin1').trim() === '====') return this.closeLine(ev);
        // a copy: the decoder reuses its output buffer, and events are applied after push() returns
        const b = Buffer.from(st.dec.update(line));
        if (b.length > 0) ev.push({ type: 'data', id: st.id, bytes: b });
        return;
      }
      case 'yenc': {
        if (line.subarray(0, 6).toString('latin1') === '=yend ' || line.toString('latin1') === '=yend') return this.closeLine(ev);
        if (line.subarray(0, 7).toString('latin1') === '=ypart ') return;
        const b = ydecodeLine(line);
        if (b.length > 0) ev.push({ type: 'data', id: st.id, bytes: b });
        return;
      }
      case 'binhex-wait': {
        const at = line.indexOf(0x3a); // ":"
        if (at < 0) {
          if (line.length > 0) this.line = undefined; // text between marker and data: not BinHex
          return;
        }
        const dec = new BinHexDecoder();
        this.line = { kind: 'binhex', id: st.id, dec, rsrc: undefined };
        ev.push({ type: 'open', id: st.id, kind: 'binhex' });
        return this.binhex(line.subarray(at + 1), ev);
      }
      case 'binhex':
        return this.binhex(line, ev);
    }
  }

  private binhex(text: Buffer, ev: ScanEvent[]): void {
    const st = this.line;
    if (st?.kind !== 'binhex') return;
    const end = text.indexOf(0x3a);
    const out = st.dec.push(end >= 0 ? text.subarray(0, end) : text);
    if (out.data.length > 0) ev.push({ type: 'data', id: st.id, bytes: out.data });
    if (out.rsrc.length > 0) {
      if (st.rsrc === undefined) {
        st.rsrc = this.nextId++;
        ev.push({ type: 'open', id: st.rsrc, kind: 'binhex', name: st.dec.name ? `${st.dec.name} (resource fork)` : undefined });
      }
      ev.push({ type: 'data', id: st.rsrc, bytes: out.rsrc });
    }
    if (end >= 0) this.closeLine(ev);
  }

  private closeLine(ev: ScanEvent[]): void {
    const st = this.line;
    this.line = undefined;
    if (st === undefined || st.kind === 'binhex-wait') return;
    if (st.kind === 'base64-block') {
      const tail = st.dec.final();
      if (tail.length > 0) ev.push({ type: 'data', id: st.id, bytes: tail });
    }
    ev.push({ type: 'close', id: st.id });
    if (st.kind === 'binhex' && st.rsrc !== undefined) ev.push({ type: 'close', id: st.rsrc });
  }

  private onText(chunk: Buffer, ev: ScanEvent[]): void {
    const buf = this.uriCarry.length > 0 ? Buffer.concat([this.uriCarry, chunk]) : chunk;
    const prev = this.uriPrev;
    this.uriCarry = EMPTY;
    // what the next call sees before its text: the last byte of this one, unless a carry is set
    this.uriPrev = buf.length > 0 ? buf[buf.length - 1]! : prev;
    let i = 0;
    while (i < buf.length) {
      if (this.uri !== undefined) {
        const allowed = this.uri.allowed;
        let j = i;
        while (j < buf.length && allowed[buf[j]!] === 1) j++;
        if (j > i) this.feedUri(buf.subarray(i, j), ev);
        if (j >= buf.length) return;
        this.endUri(ev);
        i = j;
        continue;
      }
      if (this.uriHeader !== undefined) {
        let j = i;
        while (j < buf.length && buf[j] !== 0x2c && HEADER_STOP[buf[j]!] !== 1 && this.uriHeader.length + (j - i) <= MAX_DATA_URI_HEADER) j++;
        this.uriHeader += buf.toString('latin1', i, j);
        if (j >= buf.length) return;
        if (buf[j] !== 0x2c) {
          this.uriHeader = undefined;
          i = j;
          continue;
        }
        const header = this.uriHeader.toLowerCase();
        this.uriHeader = undefined;
        i = j + 1;
        if (/;\s*base64$/.test(header)) this.uri = { id: this.nextId++, dec: new Base64Decoder(), allowed: IS_B64, bytes: [], size: 0 };
        else if (this.uriWordStart) this.uri = { id: this.nextId++, dec: new PercentDecoder(), allowed: IS_PERCENT_URI, bytes: [], size: 0 };
        continue;
      }
      // "data:" in any case: find each ":" and look at the four bytes before it (not yet read
      // as part of something else, so where the input was split does not matter)
      let at = buf.indexOf(0x3a, i);
      while (at >= 0 && !(at - 4 >= i && isData(buf, at - 4))) at = buf.indexOf(0x3a, at + 1);
      if (at < 0) {
        const from = Math.max(i, buf.length - 4);
        this.uriCarry = Buffer.from(buf.subarray(from));
        this.uriPrev = from > 0 ? buf[from - 1]! : prev;
        return;
      }
      const before = at >= 5 ? buf[at - 5]! : prev;
      this.uriWordStart = before < 0 || SCHEME_CHAR[before] !== 1;
      this.uriHeader = '';
      i = at + 1;
    }
  }

  private feedUri(enc: Buffer, ev: ScanEvent[]): void {
    const u = this.uri!;
    // a copy: the decoder reuses its output buffer, and events are applied after push() returns
    const b = Buffer.from(u.dec.update(enc));
    if (b.length === 0) return;
    // hold tiny URIs back until they are worth an item (icons, spacers)
    if (u.size < MIN_DATA_URI_BYTES) {
      u.bytes.push(b);
      u.size += b.length;
      if (u.size >= MIN_DATA_URI_BYTES) {
        ev.push({ type: 'open', id: u.id, kind: 'data-uri' }, { type: 'data', id: u.id, bytes: Buffer.concat(u.bytes) });
        u.bytes = [];
      }
      return;
    }
    u.size += b.length;
    ev.push({ type: 'data', id: u.id, bytes: b });
  }

  private endUri(ev: ScanEvent[]): void {
    const u = this.uri;
    this.uri = undefined;
    this.uriHeader = undefined;
    if (u === undefined) return;
    const tail = u.dec.final();
    if (u.size < MIN_DATA_URI_BYTES) {
      const all = Buffer.concat([...u.bytes, tail]);
      if (all.length >= MIN_DATA_URI_BYTES) ev.push({ type: 'open', id: u.id, kind: 'data-uri' }, { type: 'data', id: u.id, bytes: all }, { type: 'close', id: u.id });
      return;
    }
    if (tail.length > 0) ev.push({ type: 'data', id: u.id, bytes: tail });
    ev.push({ type: 'close', id: u.id });
  }
}

const EMPTY = Buffer.alloc(0);

/** Base64 alphabet, "=", and whitespace (browsers skip it inside data: URIs). */
const IS_B64: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n', 'latin1')) t[c] = 1;
  return t;
})();

/** What a percent-encoded data: URI holds: everything but quotes, ")", ">" and whitespace. */
const IS_PERCENT_URI: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(1);
  for (const c of Buffer.from(' \t\r\n\f\v"\')>', 'latin1')) t[c] = 0;
  return t;
})();

/** Bytes of a URI scheme (RFC 3986 §3.1): one before "data:" makes it part of a longer word. */
const SCHEME_CHAR: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-.', 'latin1')) t[c] = 1;
  return t;
})();

/** Bytes that cannot be in a data: URI's media type and parameters. */
const HEADER_STOP: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const c of Buffer.from(' \t\r\n"\'<>()', 'latin1')) t[c] = 1;
  return t;
})();

function isData(buf: Buffer, at: number): boolean {
  for (let k = 0; k < 4; k++) if ((buf[at + k]! | 0x20) !== DATA_LOWER[k]) return false;
  return true;
}
