/**
 * Finding files encoded inside a decoded text: uuencode, begin-base64 blocks, yEnc, BinHex 4.0
 * and data: URIs (data-uri.ts), the encodings mail readers (and ClamAV) undo in bodies that
 * MIME calls plain text.
 *
 * Owns: the state machines that recognise where a line-based encoding starts and ends.
 * Input: the decoded bytes of one part, in chunks split anywhere. Output: events (open an
 * item, data for it, close it; events.ts), so the caller does the async writing. Never
 * throws; an encoding cut off by the end of the part is closed with what it held.
 * Cost: linear in the input, with no allocation per line: lines are buffer ranges (lines.ts),
 * each item's decoded bytes of one push() gather in one buffer and come out as one data event
 * (a part of millions of short lines once cost one event, one buffer and one store write per
 * line), the BinHex marker is searched once per chunk, not once per line.
 * Recognised: "begin mode name" ... "end" (uuencode); "begin-base64 mode name" ... "====" (the
 * lines decoded with the lenient base64 decoder: a 7bit or 8bit text part holds them as they
 * are, nothing undid them before); "=ybegin ... name=" ... "=yend"; the BinHex marker line, then
 * ":" ... ":"; a "Content-Transfer-Encoding: base64" (or quoted-printable) line in a text, then
 * the lines after the next blank line, up to a blank or "--" line (clamd decodes a body from
 * such a line on: a bounce quoting a message, or a header block written into a text part; a
 * "base64-block", or a "qp-block"); with any other token than 7bit, 8bit or binary (an unknown
 * one, a folded or empty value) both, as clamd tries its decoders on a token it does not know;
 * and a header block in a text that starts with "Received:" or "From:" and has a
 * "Content-Type:" line, whatever its transfer encoding says (clamd reads such a block as a
 * bounced message and decodes its body as base64): a "base64-block" from that line on.
 * Up to MAX_OPEN_ITEMS of them at once (one may start inside another).
 */
import { Base64Decoder } from '../base64.js';
import { QpDecoder } from '../qp.js';
import { BINHEX_MARKER, BinHexDecoder } from './binhex.js';
import { DataUriReader } from './data-uri.js';
import { Arena, Gather, type ScanEvent } from './events.js';
import { LineReader } from './lines.js';
import { bytesAt, isUuEnd, parseBegin, trimmedEquals, uudecodeInto, UU_MAX_LINE_OUTPUT } from './uu.js';
import { ydecodeInto } from './yenc.js';

const BINHEX_MARKER_BYTES = Buffer.from(BINHEX_MARKER, 'latin1');
const YBEGIN = Buffer.from('=ybegin ', 'latin1');
const YPART = Buffer.from('=ypart ', 'latin1');
const YEND = Buffer.from('=yend', 'latin1');
const B64_END = Buffer.from('====', 'latin1');

/**
 * Most line items (uuencode, begin-base64, yEnc, BinHex) read at once. A line that starts an
 * item while others are open is both: data of the open ones (a decoder that reads on until
 * its own end line) and the start of a new one (a decoder that starts there): an unterminated
 * "=ybegin" must not hide a uuencoded file after it. A start past this many open items is
 * not read, and `overflowed` says so (the caller reports EMIME_EMBED_LIMIT).
 */
export const MAX_OPEN_ITEMS = 4;

interface LineItem {
  readonly kind: 'uuencode' | 'base64-block' | 'qp-block' | 'yenc' | 'binhex';
  readonly id: number;
  /** Its decoded bytes during the current push. */
  readonly out: Gather;
  readonly b64: Base64Decoder | undefined;
  readonly binhex: BinHexDecoder | undefined;
  /** The id of a BinHex resource fork, once it has bytes. */
  rsrc: number | undefined;
  /** The decoder of a qp-block. */
  qp?: QpDecoder;
  /**
   * A base64 or qp block opened by a Content-Transfer-Encoding line: "head" (header lines up to the
   * blank line), "data" (no base64 line yet), "more" (base64 lines read); undefined otherwise.
   */
  cte?: 'head' | 'data' | 'more';
  /** Header lines read past in "head". */
  headLines?: number;
}

/**
 * Header lines after a Content-Transfer-Encoding line in a text before the blank line that
 * starts its data: a header block has a few; past this many the line started nothing.
 */
export const MAX_CTE_HEAD_LINES = 32;
const CTE_NAME = Buffer.from('content-transfer-encoding', 'latin1');
const CT_NAME = Buffer.from('content-type:', 'latin1');
const RECEIVED_NAME = Buffer.from('received:', 'latin1');
const FROM_NAME = Buffer.from('from:', 'latin1');
const DASH2 = Buffer.from('--', 'latin1');
const EOL = Buffer.from('\n', 'latin1');

export type { EmbeddedKind, ScanEvent } from './events.js';
export { MIN_DATA_URI_BYTES } from './data-uri.js';

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
  private readonly uris = new DataUriReader(this.arena, () => this.nextId++);
  /** The BinHex marker: where it is next in `markerBuf` at or after the last line looked at (-1: nowhere). */
  private markerBuf: Buffer | undefined;
  private markerPos = -1;
  /**
   * Lines since a "Received:" or "From:" line in the current block of non-blank lines (a header
   * block quoted in a text may be a bounced message), undefined when there is none.
   */
  private bounceLines: number | undefined;
  private readonly onLine = (buf: Buffer, start: number, end: number): void => this.lineAt(buf, start, end);

  push(chunk: Buffer): ScanEvent[] {
    const ev: ScanEvent[] = [];
    this.start(ev, chunk.length);
    this.lines.push(chunk, this.onLine);
    for (const it of this.items) it.out.flush();
    this.uris.text(chunk);
    this.uris.flush();
    return ev;
  }

  end(): ScanEvent[] {
    const ev: ScanEvent[] = [];
    this.start(ev, 0);
    this.lines.end(this.onLine);
    for (const it of this.items) this.close(it);
    this.items = [];
    this.binhexWait = false;
    this.uris.end();
    return ev;
  }

  private start(ev: ScanEvent[], n: number): void {
    this.ev = ev;
    this.hint = n;
    this.arena.begin(n);
    for (const it of this.items) it.out.begin(ev, n, it.id);
    this.uris.begin(ev, n);
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
    this.bounce(buf, start, end);
    this.starts(buf, start, end);
  }

  /**
   * A header block that starts with "Received:" or "From:" in a text and has a "Content-Type:"
   * line: clamd reads it as a bounced message and decodes its body as base64 whatever the
   * block's transfer encoding says (7bit, none); so is it read here, from the Content-Type line.
   */
  private bounce(buf: Buffer, start: number, end: number): void {
    if (isBlankLine(buf, start, end)) {
      this.bounceLines = undefined;
      return;
    }
    const c0 = buf[start]! | 0x20;
    if ((c0 === 0x72 /* r */ && startsWithCaseless(buf, start, end, RECEIVED_NAME)) || (c0 === 0x66 /* f */ && startsWithCaseless(buf, start, end, FROM_NAME))) {
      this.bounceLines = 0;
      return;
    }
    if (this.bounceLines === undefined) return;
    if (++this.bounceLines > MAX_CTE_HEAD_LINES) {
      this.bounceLines = undefined;
      return;
    }
    if (c0 === 0x63 /* c */ && startsWithCaseless(buf, start, end, CT_NAME)) {
      const it = this.open('base64-block', undefined);
      if (it !== undefined) {
        it.cte = 'head';
        it.headLines = this.bounceLines;
      }
      this.bounceLines = undefined;
    }
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
      case 'qp-block':
      case 'base64-block': {
        if (it.cte !== undefined) {
          const blank = isBlankLine(buf, start, end);
          if (it.cte === 'head') {
            if (blank) it.cte = 'data';
            else if ((it.headLines = (it.headLines ?? 0) + 1) > MAX_CTE_HEAD_LINES) return this.close(it);
            return false;
          }
          if (blank) return it.cte === 'more' ? this.close(it) : false;
          if (startsWith(buf, start, end, DASH2)) return this.close(it);
          it.cte = 'more';
        }
        if (it.qp !== undefined) {
          // rare (a header block pasted into a text): a decoder's output per line is affordable
          this.gather(it, it.qp.update(buf.subarray(start, end)));
          this.gather(it, it.qp.update(EOL));
          return false;
        }
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
    } else if ((c0 | 0x20) === 0x63 /* c */) {
      const cte = cteLineEncoding(buf, start, end);
      if (cte !== undefined) {
        for (const as of cte === 'unknown' ? (['base64', 'quoted-printable'] as const) : [cte]) {
          const it = this.open(as === 'base64' ? 'base64-block' : 'qp-block', undefined);
          if (it === undefined) continue;
          it.cte = 'head';
          it.headLines = 0;
          if (as === 'quoted-printable') it.qp = new QpDecoder();
        }
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

  /** Decoded bytes of an item, gathered. */
  private gather(it: LineItem, bytes: Buffer): void {
    if (bytes.length === 0) return;
    const dst = it.out.room(it.id, bytes.length);
    bytes.copy(dst, it.out.at);
    it.out.advance(it.out.at + bytes.length);
  }

  /** Ends an item: what was gathered for it goes out before its close. Returns true. */
  private close(it: LineItem): boolean {
    if (it.qp !== undefined) this.gather(it, it.qp.final());
    if (it.b64 !== undefined) {
      const out = it.out.room(it.id, 2);
      it.out.advance(it.b64.finalInto(out, it.out.at));
    }
    it.out.flush();
    this.ev.push({ type: 'close', id: it.id });
    if (it.rsrc !== undefined) this.ev.push({ type: 'close', id: it.rsrc });
    return true;
  }
}

/** Only blanks and line-end bytes. */
function isBlankLine(buf: Buffer, start: number, end: number): boolean {
  for (let k = start; k < end; k++) {
    const c = buf[k]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) return false;
  }
  return true;
}

/**
 * A `Content-Transfer-Encoding:` line (any case, blanks before the colon): `base64` or
 * `quoted-printable` (quotes allowed), undefined for 7bit, 8bit or binary (nothing to decode),
 * "unknown" for anything else — another token, a comment first, a value folded onto the next line
 * or none (clamd tries its decoders on a token it does not know).
 */
function cteLineEncoding(buf: Buffer, start: number, end: number): 'base64' | 'quoted-printable' | 'unknown' | undefined {
  if (end - start < CTE_NAME.length + 1) return undefined;
  for (let k = 0; k < CTE_NAME.length; k++) if ((buf[start + k]! | 0x20) !== CTE_NAME[k]) return undefined;
  const rest = buf.toString('latin1', start + CTE_NAME.length, Math.min(end, start + CTE_NAME.length + 64));
  const colon = /^[ \t]*:[ \t]*/.exec(rest);
  if (colon === null) return undefined;
  const m = /^"?(base64|quoted-printable)\b/i.exec(rest.slice(colon[0].length));
  if (m !== null) return m[1]!.toLowerCase() as 'base64' | 'quoted-printable';
  return /^"?(7bit|8bit|binary)"?[ \t\r\n]*$/i.test(rest.slice(colon[0].length)) ? undefined : 'unknown';
}

/** buf[start, end) begins with `lower` (lowercase ASCII) in any case. */
function startsWithCaseless(buf: Buffer, start: number, end: number, lower: Buffer): boolean {
  if (end - start < lower.length) return false;
  for (let k = 0; k < lower.length; k++) if ((buf[start + k]! | 0x20) !== lower[k]) return false;
  return true;
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

