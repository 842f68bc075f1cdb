/**
 * Finding files encoded inside a decoded text: uuencode, begin-base64 blocks, yEnc, BinHex 4.0
 * and data: URIs, the encodings mail readers (and ClamAV) undo in bodies that MIME calls plain
 * text.
 *
 * Owns: the state machines that recognise where such an encoding starts and ends. Input: the
 * decoded bytes of one part, in chunks split anywhere. Output: events (open an item, data for
 * it, close it), so the caller does the async writing. Never throws; an encoding cut off by
 * the end of the part is closed with what it held.
 * Cost: linear in the input, with no allocation per line: lines are buffer ranges (lines.ts),
 * each item's decoded bytes of one push() gather in one buffer and come out as one data event
 * (a part of millions of short lines once cost one event, one buffer and one store write per
 * line), the BinHex marker is searched once per chunk, not once per line.
 * Recognised: "begin mode name" ... "end" (uuencode); "begin-base64 mode name" ... "====" (the
 * lines decoded with the lenient base64 decoder: a 7bit or 8bit text part holds them as they
 * are, nothing undid them before); "=ybegin ... name=" ... "=yend"; the BinHex marker line, then
 * ":" ... ":"; in any text (HTML attributes, CSS url()), `data:<type>;base64,` followed by
 * base64 (whitespace allowed, as browsers allow it; the media type may be of any length: only
 * its ";base64" end matters) and `data:<type>,` followed by percent-encoded bytes up to a quote, ")", ">", whitespace or the end of the part (only where
 * "data" starts a word: "metadata:x,y" is no URI).
 */
import { Base64Decoder } from '../base64.js';
import { BINHEX_MARKER, BinHexDecoder } from './binhex.js';
import { LineReader } from './lines.js';
import { PercentDecoder } from './percent.js';
import { bytesAt, isUuEnd, parseBegin, trimmedEquals, uudecodeInto, UU_MAX_LINE_OUTPUT } from './uu.js';
import { ydecodeInto } from './yenc.js';

const BINHEX_MARKER_BYTES = Buffer.from(BINHEX_MARKER, 'latin1');
const DATA_LOWER = Buffer.from('data', 'latin1');
const YBEGIN = Buffer.from('=ybegin ', 'latin1');
const YPART = Buffer.from('=ypart ', 'latin1');
const YEND = Buffer.from('=yend', 'latin1');
const B64_END = Buffer.from('====', 'latin1');

export type EmbeddedKind = 'uuencode' | 'base64-block' | 'yenc' | 'binhex' | 'data-uri';

/** The bytes of a data event are valid until the next push() or end(). */
export type ScanEvent =
  | { readonly type: 'open'; readonly id: number; readonly kind: EmbeddedKind; readonly name?: string | undefined }
  | { readonly type: 'data'; readonly id: number; readonly bytes: Buffer }
  | { readonly type: 'close'; readonly id: number };

/** A data URI decoding to fewer bytes than this holds nothing worth an item. */
export const MIN_DATA_URI_BYTES = 16;
/** The end of a data: URI's media type that is looked at (";base64" and the spaces before it). */
const URI_HEADER_TAIL = 64;

/**
 * Most line items (uuencode, begin-base64, yEnc, BinHex) read at once. A line that starts an
 * item while others are open is both: data of the open ones (a decoder that reads on until
 * its own end line) and the start of a new one (a decoder that starts there): an unterminated
 * "=ybegin" must not hide a uuencoded file after it. A start past this many open items is
 * not read, and `overflowed` says so (the caller reports EMIME_EMBED_LIMIT).
 */
export const MAX_OPEN_ITEMS = 4;

interface LineItem {
  readonly kind: 'uuencode' | 'base64-block' | 'yenc' | 'binhex';
  readonly id: number;
  /** Its decoded bytes during the current push. */
  readonly out: Gather;
  readonly b64: Base64Decoder | undefined;
  readonly binhex: BinHexDecoder | undefined;
  /** The id of a BinHex resource fork, once it has bytes. */
  rsrc: number | undefined;
}

/**
 * The decoded bytes of one item during one push(), gathered into a buffer made for that push
 * (never reused: the events point into it until they are applied) and handed out as one data
 * event when the item changes or the push ends.
 */
/** An item's first room in a push comes from the push's arena: most items are small. */
const FIRST_GATHER_BYTES = 256;
/** The arena's size when the push is small. */
const MIN_ARENA_BYTES = 64 * 1024;

/**
 * Memory for the items of one push: small slices handed out one after the other from a buffer
 * made for the push (never reused: events point into it until they are applied), so a page
 * of thousands of tiny items allocates a few buffers, not one each.
 */
class Arena {
  private buf: Buffer = EMPTY;
  private used = 0;
  private size = MIN_ARENA_BYTES;

  /** A new push of about `hint` bytes: slices come from a new buffer from now on. */
  begin(hint: number): void {
    this.buf = EMPTY;
    this.used = 0;
    this.size = Math.max(MIN_ARENA_BYTES, hint);
  }

  take(n: number): Buffer {
    if (this.used + n > this.buf.length) {
      this.buf = Buffer.allocUnsafe(Math.max(n, this.size));
      this.used = 0;
    }
    const slice = this.buf.subarray(this.used, this.used + n);
    this.used += n;
    return slice;
  }
}

/**
 * The decoded bytes of one item (or of the data: URI being read) during one push, handed out
 * as one data event when the item changes or the push ends. Its first room comes from the
 * arena; an item that outgrows it gets buffers of its own, doubling up to the push's size.
 */
class Gather {
  private buf: Buffer = EMPTY;
  private o = 0;
  private start = 0;
  private id = -1;
  private ev: ScanEvent[] = [];
  private hint = 0;

  constructor(private readonly arena: Arena) {}

  /** A new push: its events go to `ev`; about `hint` bytes may come (for item `id`, if one). */
  begin(ev: ScanEvent[], hint: number, id = -1): void {
    this.ev = ev;
    this.buf = EMPTY;
    this.o = this.start = 0;
    this.id = id;
    this.hint = hint;
  }

  /** Room for `n` more bytes of item `id` at `at`: write there, then call advance(). */
  room(id: number, n: number): Buffer {
    if (id !== this.id) {
      this.flush();
      this.id = id;
    }
    if (this.o + n > this.buf.length) {
      this.flush();
      this.buf = this.buf.length === 0 && n <= FIRST_GATHER_BYTES ? this.arena.take(FIRST_GATHER_BYTES) : Buffer.allocUnsafe(Math.max(n, Math.min(this.hint, this.buf.length * 2)));
      this.o = this.start = 0;
    }
    return this.buf;
  }

  get at(): number {
    return this.o;
  }

  advance(to: number): void {
    this.o = to;
  }

  /** Hands out what was gathered for the current item. */
  flush(): void {
    if (this.o > this.start && this.id >= 0) this.ev.push({ type: 'data', id: this.id, bytes: this.buf.subarray(this.start, this.o) });
    this.start = this.o;
  }
}

export class EmbeddedScanner {
  private readonly lines = new LineReader();
  private nextId = 0;
  /** The line items open, oldest first. */
  private items: LineItem[] = [];
  /** A BinHex marker was seen and no ":" line yet (one wait covers any number of markers). */
  private binhexWait = false;
  /** A line started an item while MAX_OPEN_ITEMS were open: that item was not read. */
  overflowed = false;
  private ev: ScanEvent[] = [];
  private hint = 0;
  private readonly arena = new Arena();
  private readonly uriOut = new Gather(this.arena);
  /** The BinHex marker: where it is next in `markerBuf` at or after the last line looked at (-1: nowhere). */
  private markerBuf: Buffer | undefined;
  private markerPos = -1;
  private readonly onLine = (buf: Buffer, start: number, end: number): void => this.lineAt(buf, start, end);
  // data: URI state, on latin1 text
  private uriCarry: Buffer = EMPTY;
  /** The byte before the text that onText is handed next (the carry, else the chunk); -1: none. */
  private uriPrev = -1;
  /** The end (URI_HEADER_TAIL characters) of the media type being read; undefined: none. */
  private uriHeader: string | undefined;
  /** The "data" of the URI being read starts a word (percent-encoded URIs need that). */
  private uriWordStart = false;
  private uri: { id: number; base64: boolean; allowed: Uint8Array; size: number } | undefined;
  /**
   * The bytes of the URI being read while it is under MIN_DATA_URI_BYTES (one URI at a time,
   * so one buffer for all of them: a page of tiny icons allocates nothing per icon).
   */
  private uriHeld: Buffer = Buffer.allocUnsafe(64);
  private readonly uriB64 = new Base64Decoder();
  private readonly uriPct = new PercentDecoder();

  push(chunk: Buffer): ScanEvent[] {
    const ev: ScanEvent[] = [];
    this.start(ev, chunk.length);
    this.lines.push(chunk, this.onLine);
    for (const it of this.items) it.out.flush();
    this.onText(chunk);
    this.uriOut.flush();
    return ev;
  }

  end(): ScanEvent[] {
    const ev: ScanEvent[] = [];
    this.start(ev, 0);
    this.lines.end(this.onLine);
    for (const it of this.items) this.close(it);
    this.items = [];
    this.binhexWait = false;
    this.endUri();
    return ev;
  }

  private start(ev: ScanEvent[], n: number): void {
    this.ev = ev;
    this.hint = n;
    this.arena.begin(n);
    for (const it of this.items) it.out.begin(ev, n, it.id);
    this.uriOut.begin(ev, n);
    // a chunk may be a reused buffer holding new bytes: the marker position is per push
    this.markerBuf = undefined;
  }

  /** One line, buf[start, end): data of every open item, then maybe the start of another. */
  private lineAt(buf: Buffer, start: number, end: number): void {
    for (let k = 0; k < this.items.length; ) {
      if (this.feed(this.items[k]!, buf, start, end)) this.items.splice(k, 1);
      else k++;
    }
    if (this.binhexWait) {
      const at = indexIn(buf, start, end, 0x3a); // ":"
      if (at >= 0) {
        // the BinHex data starts after the first ":" following the marker
        this.binhexWait = false;
        const it = this.open('binhex', undefined);
        if (it !== undefined && this.binhexFeed(it, buf, at + 1, end)) this.items.splice(this.items.indexOf(it), 1);
        return;
      }
      // text between the marker and the data: wait on, unless the line starts something else
    }
    this.starts(buf, start, end);
  }

  /** Feeds a line to one open item; true when the line ended it. */
  private feed(it: LineItem, buf: Buffer, start: number, end: number): boolean {
    switch (it.kind) {
      case 'uuencode': {
        if (isUuEnd(buf, start, end)) return this.close(it);
        const out = it.out.room(it.id, UU_MAX_LINE_OUTPUT);
        it.out.advance(uudecodeInto(buf, start, end, out, it.out.at));
        return false;
      }
      case 'base64-block': {
        if (trimmedEquals(buf, start, end, B64_END)) return this.close(it);
        const out = it.out.room(it.id, Math.ceil(((end - start) * 3) / 4) + 4);
        it.out.advance(it.b64!.updateInto(buf, start, end, out, it.out.at));
        return false;
      }
      case 'yenc': {
        if (startsWith(buf, start, end, YEND) && (end - start === YEND.length || buf[start + YEND.length] === 0x20)) return this.close(it);
        if (startsWith(buf, start, end, YPART)) return false;
        const out = it.out.room(it.id, end - start);
        it.out.advance(ydecodeInto(buf, start, end, out, it.out.at));
        return false;
      }
      case 'binhex':
        return this.binhexFeed(it, buf, start, end);
    }
  }

  /** Does the line start an item? */
  private starts(buf: Buffer, start: number, end: number): void {
    const len = end - start;
    // cheap tests first: most lines of most parts start none of these
    if (len < 6) return;
    const c0 = buf[start]!;
    if (c0 === 0x62 /* b */) {
      const begin = parseBegin(buf, start, end);
      if (begin !== undefined) {
        this.open(begin.base64 ? 'base64-block' : 'uuencode', begin.name.trim() || undefined);
        return;
      }
    } else if (c0 === 0x3d /* = */ && startsWith(buf, start, end, YBEGIN)) {
      const head = buf.toString('latin1', start, Math.min(end, start + 512));
      this.open('yenc', / name=(.*)$/.exec(head)?.[1]?.trim() || undefined);
      return;
    }
    if (len >= BINHEX_MARKER_BYTES.length && this.markerIn(buf, start, end)) this.binhexWait = true;
  }

  /** Opens an item, or marks the overflow when MAX_OPEN_ITEMS are open already. */
  private open(kind: LineItem['kind'], name: string | undefined): LineItem | undefined {
    if (this.items.length >= MAX_OPEN_ITEMS) {
      this.overflowed = true;
      return undefined;
    }
    const id = this.nextId++;
    const out = new Gather(this.arena);
    out.begin(this.ev, this.hint, id);
    const it: LineItem = { kind, id, out, b64: kind === 'base64-block' ? new Base64Decoder() : undefined, binhex: kind === 'binhex' ? new BinHexDecoder() : undefined, rsrc: undefined };
    this.ev.push({ type: 'open', id, kind, name });
    this.items.push(it);
    return it;
  }

  /** Does buf[start, end) hold the BinHex marker? One search per chunk, not per line. */
  private markerIn(buf: Buffer, start: number, end: number): boolean {
    if (this.markerBuf !== buf || (this.markerPos >= 0 && this.markerPos < start)) {
      this.markerBuf = buf;
      this.markerPos = buf.indexOf(BINHEX_MARKER_BYTES, start);
    }
    return this.markerPos >= 0 && this.markerPos + BINHEX_MARKER_BYTES.length <= end;
  }

  /** BinHex text up to the closing ":"; true when it came. */
  private binhexFeed(it: LineItem, buf: Buffer, start: number, end: number): boolean {
    const colon = indexIn(buf, start, end, 0x3a);
    const out = it.binhex!.push(buf, start, colon >= 0 ? colon : end);
    if (out.data.length > 0) {
      const dst = it.out.room(it.id, out.data.length);
      out.data.copy(dst, it.out.at);
      it.out.advance(it.out.at + out.data.length);
    }
    if (out.rsrc.length > 0) {
      if (it.rsrc === undefined) {
        it.rsrc = this.nextId++;
        const name = it.binhex!.name;
        this.ev.push({ type: 'open', id: it.rsrc, kind: 'binhex', name: name ? `${name} (resource fork)` : undefined });
      }
      // the decoder reuses its buffers: a copy (resource forks are rare and small)
      this.ev.push({ type: 'data', id: it.rsrc, bytes: Buffer.from(out.rsrc) });
    }
    return colon >= 0 ? this.close(it) : false;
  }

  /** Ends an item: what was gathered for it goes out before its close. Returns true. */
  private close(it: LineItem): boolean {
    if (it.b64 !== undefined) {
      const out = it.out.room(it.id, 2);
      it.out.advance(it.b64.finalInto(out, it.out.at));
    }
    it.out.flush();
    this.ev.push({ type: 'close', id: it.id });
    if (it.rsrc !== undefined) this.ev.push({ type: 'close', id: it.rsrc });
    return true;
  }

  private onText(chunk: Buffer): void {
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
        if (j > i) this.feedUri(buf, i, j);
        if (j >= buf.length) return;
        this.endUri();
        i = j;
        continue;
      }
      if (this.uriHeader !== undefined) {
        let j = i;
        while (j < buf.length && buf[j] !== 0x2c && HEADER_STOP[buf[j]!] !== 1) j++;
        // only the end of the media type matters (";base64"): a long one costs no memory
        if (j > i) this.uriHeader = (this.uriHeader + buf.toString('latin1', Math.max(i, j - URI_HEADER_TAIL), j)).slice(-URI_HEADER_TAIL);
        if (j >= buf.length) return;
        if (buf[j] !== 0x2c) {
          this.uriHeader = undefined;
          i = j;
          continue;
        }
        const base64 = /;\s*base64$/i.test(this.uriHeader);
        this.uriHeader = undefined;
        i = j + 1;
        if (base64) this.uri = { id: this.nextId++, base64: true, allowed: IS_B64, size: 0 };
        else if (this.uriWordStart) this.uri = { id: this.nextId++, base64: false, allowed: IS_PERCENT_URI, size: 0 };
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

  /** Decodes buf[start, end) of the URI being read. */
  private feedUri(buf: Buffer, start: number, end: number): void {
    const u = this.uri!;
    const dec = u.base64 ? this.uriB64 : this.uriPct;
    const need = end - start + 4;
    if (u.size >= MIN_DATA_URI_BYTES) {
      const out = this.uriOut.room(u.id, need);
      const o = this.uriOut.at;
      const n = dec.updateInto(buf, start, end, out, o);
      this.uriOut.advance(n);
      u.size += n - o;
      return;
    }
    // hold tiny URIs back until they are worth an item (icons, spacers)
    if (this.uriHeld.length < u.size + need) {
      const next = Buffer.allocUnsafe(Math.max(u.size + need, this.uriHeld.length * 2));
      this.uriHeld.copy(next, 0, 0, u.size);
      this.uriHeld = next;
    }
    u.size = dec.updateInto(buf, start, end, this.uriHeld, u.size);
    if (u.size >= MIN_DATA_URI_BYTES) {
      this.uriOut.flush();
      this.ev.push({ type: 'open', id: u.id, kind: 'data-uri' }, { type: 'data', id: u.id, bytes: Buffer.from(this.uriHeld.subarray(0, u.size)) });
    }
  }

  private endUri(): void {
    const u = this.uri;
    this.uri = undefined;
    this.uriHeader = undefined;
    if (u === undefined) return;
    const dec = u.base64 ? this.uriB64 : this.uriPct;
    if (u.size < MIN_DATA_URI_BYTES) {
      if (this.uriHeld.length < u.size + 2) {
        const next = Buffer.allocUnsafe(u.size + 2);
        this.uriHeld.copy(next, 0, 0, u.size);
        this.uriHeld = next;
      }
      const n = dec.finalInto(this.uriHeld, u.size);
      if (n >= MIN_DATA_URI_BYTES) this.ev.push({ type: 'open', id: u.id, kind: 'data-uri' }, { type: 'data', id: u.id, bytes: Buffer.from(this.uriHeld.subarray(0, n)) }, { type: 'close', id: u.id });
      return;
    }
    const out = this.uriOut.room(u.id, 2);
    this.uriOut.advance(dec.finalInto(out, this.uriOut.at));
    this.uriOut.flush();
    this.ev.push({ type: 'close', id: u.id });
  }
}

/** buf[start, end) begins with `prefix`. */
function startsWith(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  return end - start >= prefix.length && bytesAt(buf, start, prefix);
}

/** The first `byte` in buf[start, end), or -1 (indexOf would search on to the end of the buffer). */
function indexIn(buf: Buffer, start: number, end: number, byte: number): number {
  for (let k = start; k < end; k++) if (buf[k] === byte) return k;
  return -1;
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
