/**
 * data: URIs inside a decoded text (HTML attributes, CSS url(), plain text): `data:<type>;base64,`
 * followed by base64 (whitespace allowed, as browsers allow it; the media type may be of any
 * length: only its ";base64" end matters) and `data:<type>,` followed by percent-encoded bytes
 * up to a quote, ")", ">", whitespace or the end of the part (only where "data" starts a word:
 * "metadata:x,y" is no URI). A URI decoding to fewer than MIN_DATA_URI_BYTES is no item.
 *
 * Owns: the URI state machine, one URI at a time. Input: the part's chunks, split anywhere.
 * Output: events into the scanner's list (ids from the scanner). Never throws.
 */
import { Base64Decoder } from '../base64.js';
import { Gather, type Arena, type ScanEvent } from './events.js';
import { PercentDecoder } from './percent.js';

/** A data URI decoding to fewer bytes than this holds nothing worth an item. */
export const MIN_DATA_URI_BYTES = 16;
/** The end of a data: URI's media type that is looked at (";base64" and the spaces before it). */
const URI_HEADER_TAIL = 64;

const DATA_LOWER = Buffer.from('data', 'latin1');
const EMPTY = Buffer.alloc(0);

export class DataUriReader {
  private ev: ScanEvent[] = [];
  private readonly out: Gather;
  private carry: Buffer = EMPTY;
  /** The byte before the text that text() is handed next (the carry, else the chunk); -1: none. */
  private prev = -1;
  /** The end (URI_HEADER_TAIL characters) of the media type being read; undefined: none. */
  private header: string | undefined;
  /** The "data" of the URI being read starts a word (percent-encoded URIs need that). */
  private wordStart = false;
  private uri: { id: number; base64: boolean; allowed: Uint8Array; size: number } | undefined;
  /**
   * The bytes of the URI being read while it is under MIN_DATA_URI_BYTES (one URI at a time,
   * so one buffer for all of them: a page of tiny icons allocates nothing per icon).
   */
  private held: Buffer = Buffer.allocUnsafe(64);
  private readonly b64 = new Base64Decoder();
  private readonly pct = new PercentDecoder();

  constructor(
    arena: Arena,
    private readonly nextId: () => number,
  ) {
    this.out = new Gather(arena);
  }

  /** A new push: events go to `ev`. */
  begin(ev: ScanEvent[], hint: number): void {
    this.ev = ev;
    this.out.begin(ev, hint);
  }

  /** The push is over: what was gathered goes out. */
  flush(): void {
    this.out.flush();
  }

  /** The chunk's text (a data: URI may start, go on or end anywhere in it). */
  text(chunk: Buffer): void {
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const prev = this.prev;
    this.carry = EMPTY;
    // what the next call sees before its text: the last byte of this one, unless a carry is set
    this.prev = buf.length > 0 ? buf[buf.length - 1]! : prev;
    let i = 0;
    while (i < buf.length) {
      if (this.uri !== undefined) {
        const allowed = this.uri.allowed;
        let j = i;
        while (j < buf.length && allowed[buf[j]!] === 1) j++;
        if (j > i) this.feed(buf, i, j);
        if (j >= buf.length) return;
        this.end();
        i = j;
        continue;
      }
      if (this.header !== undefined) {
        let j = i;
        while (j < buf.length && buf[j] !== 0x2c && HEADER_STOP[buf[j]!] !== 1) j++;
        // only the end of the media type matters (";base64"): a long one costs no memory
        if (j > i) this.header = (this.header + buf.toString('latin1', Math.max(i, j - URI_HEADER_TAIL), j)).slice(-URI_HEADER_TAIL);
        if (j >= buf.length) return;
        if (buf[j] !== 0x2c) {
          this.header = undefined;
          i = j;
          continue;
        }
        const base64 = /;\s*base64$/i.test(this.header);
        this.header = undefined;
        i = j + 1;
        if (base64) this.uri = { id: this.nextId(), base64: true, allowed: IS_B64, size: 0 };
        else if (this.wordStart) this.uri = { id: this.nextId(), base64: false, allowed: IS_PERCENT_URI, size: 0 };
        continue;
      }
      // "data:" in any case: find each ":" and look at the four bytes before it (not yet read
      // as part of something else, so where the input was split does not matter)
      let at = buf.indexOf(0x3a, i);
      while (at >= 0 && !(at - 4 >= i && isData(buf, at - 4))) at = buf.indexOf(0x3a, at + 1);
      if (at < 0) {
        const from = Math.max(i, buf.length - 4);
        this.carry = Buffer.from(buf.subarray(from));
        this.prev = from > 0 ? buf[from - 1]! : prev;
        return;
      }
      const before = at >= 5 ? buf[at - 5]! : prev;
      this.wordStart = before < 0 || SCHEME_CHAR[before] !== 1;
      this.header = '';
      i = at + 1;
    }
  }

  /** Decodes buf[start, end) of the URI being read. */
  private feed(buf: Buffer, start: number, end: number): void {
    const u = this.uri!;
    const dec = u.base64 ? this.b64 : this.pct;
    const need = end - start + 4;
    if (u.size >= MIN_DATA_URI_BYTES) {
      const out = this.out.room(u.id, need);
      const o = this.out.at;
      const n = dec.updateInto(buf, start, end, out, o);
      this.out.advance(n);
      u.size += n - o;
      return;
    }
    // hold tiny URIs back until they are worth an item (icons, spacers)
    if (this.held.length < u.size + need) {
      const next = Buffer.allocUnsafe(Math.max(u.size + need, this.held.length * 2));
      this.held.copy(next, 0, 0, u.size);
      this.held = next;
    }
    u.size = dec.updateInto(buf, start, end, this.held, u.size);
    if (u.size >= MIN_DATA_URI_BYTES) {
      this.out.flush();
      this.ev.push({ type: 'open', id: u.id, kind: 'data-uri' }, { type: 'data', id: u.id, bytes: Buffer.from(this.held.subarray(0, u.size)) });
    }
  }

  /** Ends the URI being read (the part ended, or a byte a URI cannot hold came). */
  end(): void {
    const u = this.uri;
    this.uri = undefined;
    this.header = undefined;
    if (u === undefined) return;
    const dec = u.base64 ? this.b64 : this.pct;
    if (u.size < MIN_DATA_URI_BYTES) {
      if (this.held.length < u.size + 2) {
        const next = Buffer.allocUnsafe(u.size + 2);
        this.held.copy(next, 0, 0, u.size);
        this.held = next;
      }
      const n = dec.finalInto(this.held, u.size);
      if (n >= MIN_DATA_URI_BYTES) this.ev.push({ type: 'open', id: u.id, kind: 'data-uri' }, { type: 'data', id: u.id, bytes: Buffer.from(this.held.subarray(0, n)) }, { type: 'close', id: u.id });
      return;
    }
    const out = this.out.room(u.id, 2);
    this.out.advance(dec.finalInto(out, this.out.at));
    this.out.flush();
    this.ev.push({ type: 'close', id: u.id });
  }
}

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
