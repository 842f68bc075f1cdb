/**
 * The ICAP codec (RFC 3507): requests as bytes, and an incremental parser of the server's
 * answers. Pure: buffers in, values out, no sockets (tested by splitting answers at every offset).
 *
 * Written by hand: no RFC 3507 client on npm is in real use (checked Dec 2026: no ICAP client
 * among the packages with a few hundred downloads a month; "ethereumjs-icap" is Ethereum's
 * address format), and the subset a scanner client needs is small: OPTIONS, RESPMOD with a
 * preview, and reading one answer.
 *
 * Owns: the request line and headers we send, the encapsulated HTTP response an item travels
 * in, chunk framing, and parsing an answer: status line, headers (with continuation lines, as
 * X-Violations-Found uses), the Encapsulated offsets, the encapsulated HTTP header block and the
 * chunked body.
 * Fails with: the parser's `error` (a reason; the caller reports EPROTOCOL) for anything that is
 * not a well-formed ICAP/1.0 answer within the bounds below.
 */
import { hostHeader, type IcapUrl } from './url.js';

/** An answer's ICAP header block; c-icap's largest (an infection with its violations) is < 1 KB. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** The encapsulated HTTP header block of a 200 answer (a block page's headers). */
export const MAX_HTTP_HEAD_BYTES = 64 * 1024;
/** A chunk-size line or a trailer line. */
const MAX_LINE_BYTES = 4096;

const CRLF = Buffer.from('\r\n');
const ICAP_PREFIX = Buffer.from('ICAP/');
export const LAST_CHUNK = Buffer.from('0\r\n\r\n');
/** The end of a preview that holds the whole item (RFC 3507 §4.5). */
export const LAST_CHUNK_IEOF = Buffer.from('0; ieof\r\n\r\n');

const USER_AGENT = 'avfilter';

export function encodeOptions(url: IcapUrl): Buffer {
  return Buffer.from(
    `OPTIONS ${url.text} ICAP/1.0\r\nHost: ${hostHeader(url)}\r\nUser-Agent: ${USER_AGENT}\r\nEncapsulated: null-body=0\r\n\r\n`,
    'latin1',
  );
}

export interface RespmodHead {
  /** Bytes of the preview (RFC 3507 §4.5), or undefined to send no preview. */
  readonly preview?: number | undefined;
  /** The item's size, sent as the encapsulated response's Content-Length. */
  readonly size: number;
  /** Shown to the server as the request path (it logs it); only [A-Za-z0-9._-] survive. */
  readonly itemId: string;
}

/**
 * The RESPMOD request up to the first body chunk: ICAP head, then an encapsulated HTTP request
 * and response header (req-hdr, res-hdr, res-body: the form every server takes; c-icap also
 * takes res-hdr alone, but URL-based services such as squidclamav want the request line).
 */
export function encodeRespmodHead(url: IcapUrl, h: RespmodHead): Buffer {
  const path = `/avfilter/${h.itemId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200) || 'item'}`;
  const reqHdr = `GET ${path} HTTP/1.1\r\nHost: avfilter.invalid\r\n\r\n`;
  const resHdr = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${h.size}\r\n\r\n`;
  const lines = [
    `RESPMOD ${url.text} ICAP/1.0`,
    `Host: ${hostHeader(url)}`,
    `User-Agent: ${USER_AGENT}`,
    'Allow: 204',
    ...(h.preview !== undefined ? [`Preview: ${h.preview}`] : []),
    // one connection per item: the server need not keep it for us
    'Connection: close',
    `Encapsulated: req-hdr=0, res-hdr=${reqHdr.length}, res-body=${reqHdr.length + resHdr.length}`,
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${reqHdr}${resHdr}`, 'latin1');
}

/** One chunk of the encapsulated body (never empty: a zero-size chunk ends the body). */
export function chunk(data: Buffer): Buffer[] {
  return [Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, CRLF];
}

export interface IcapHead {
  readonly status: number;
  readonly reason: string;
  /** Lower-case names; a header sent twice has two values; continuation lines joined with "\n". */
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

export function header(h: IcapHead, name: string): string | undefined {
  return h.headers.get(name)?.[0];
}

export type IcapEvent =
  /** An answer's head; a 100 Continue is followed by the final answer's head. */
  | { readonly kind: 'head'; readonly head: IcapHead }
  /** The encapsulated HTTP header block(s) of the answer, as text. */
  | { readonly kind: 'http-head'; readonly text: string }
  | { readonly kind: 'body'; readonly data: Buffer }
  /** The answer is complete. */
  | { readonly kind: 'end' };

type State =
  | { s: 'head' }
  | { s: 'http-head'; left: number; parts: Buffer[]; hasBody: boolean }
  | { s: 'size' }
  | { s: 'data'; left: number }
  | { s: 'data-crlf' }
  | { s: 'trailer' }
  | { s: 'done' };

export class IcapParser {
  private buf: Buffer = Buffer.alloc(0);
  private state: State = { s: 'head' };
  /** Set once the input is not a valid answer; push() then returns nothing more. */
  error: string | undefined;

  get done(): boolean {
    return this.state.s === 'done';
  }

  /** True between answers (nothing of the next one read yet). */
  get idle(): boolean {
    return (this.state.s === 'head' && this.buf.length === 0) || this.state.s === 'done';
  }

  push(data: Buffer): IcapEvent[] {
    const out: IcapEvent[] = [];
    if (this.error !== undefined) return out;
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    while (this.error === undefined && this.step(out));
    return out;
  }

  /** One step; false when it needs more bytes (or is done or failed). */
  private step(out: IcapEvent[]): boolean {
    const st = this.state;
    switch (st.s) {
      case 'head': {
        // checked first, so that the outcome does not depend on how the bytes arrive
        if (this.buf.length >= 5 && !this.buf.subarray(0, 5).equals(ICAP_PREFIX)) return this.fail(`not an ICAP answer: ${quote(this.buf.subarray(0, 40))}`);
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.buf.length > MAX_HEAD_BYTES) return this.fail(`answer head longer than ${MAX_HEAD_BYTES} bytes`);
          return false;
        }
        if (end > MAX_HEAD_BYTES) return this.fail(`answer head longer than ${MAX_HEAD_BYTES} bytes`);
        const head = parseHead(this.buf.subarray(0, end).toString('latin1'));
        this.buf = this.buf.subarray(end + 4);
        if (typeof head === 'string') return this.fail(head);
        out.push({ kind: 'head', head });
        if (head.status === 100) return true; // the final answer follows
        const enc = header(head, 'encapsulated');
        if (enc === undefined) return this.finish(out);
        const parsed = parseEncapsulated(enc);
        if (typeof parsed === 'string') return this.fail(parsed);
        if (parsed.headerBytes > MAX_HTTP_HEAD_BYTES) return this.fail(`encapsulated header of ${parsed.headerBytes} bytes`);
        this.state = { s: 'http-head', left: parsed.headerBytes, parts: [], hasBody: parsed.hasBody };
        return true;
      }
      case 'http-head': {
        const take = Math.min(st.left, this.buf.length);
        if (take > 0) {
          st.parts.push(this.buf.subarray(0, take));
          this.buf = this.buf.subarray(take);
          st.left -= take;
        }
        if (st.left > 0) return false;
        const text = Buffer.concat(st.parts).toString('latin1');
        if (text.length > 0) out.push({ kind: 'http-head', text });
        if (!st.hasBody) return this.finish(out);
        this.state = { s: 'size' };
        return true;
      }
      case 'size': {
        const line = this.line('chunk-size');
        if (line === undefined) return false;
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
        if (m === null) return this.fail(`bad chunk-size line ${quote(Buffer.from(line, 'latin1'))}`);
        const n = parseInt(m[1]!, 16);
        this.state = n === 0 ? { s: 'trailer' } : { s: 'data', left: n };
        return true;
      }
      case 'data': {
        if (this.buf.length === 0) return false;
        const take = Math.min(st.left, this.buf.length);
        out.push({ kind: 'body', data: this.buf.subarray(0, take) });
        this.buf = this.buf.subarray(take);
        st.left -= take;
        if (st.left === 0) this.state = { s: 'data-crlf' };
        return true;
      }
      case 'data-crlf': {
        if (this.buf.length < 2) return false;
        if (this.buf[0] !== 0x0d || this.buf[1] !== 0x0a) return this.fail('chunk not followed by CRLF');
        this.buf = this.buf.subarray(2);
        this.state = { s: 'size' };
        return true;
      }
      case 'trailer': {
        const line = this.line('trailer');
        if (line === undefined) return false;
        return line === '' ? this.finish(out) : true;
      }
      case 'done':
        if (this.buf.length > 0) return this.fail(`bytes after the answer: ${quote(this.buf.subarray(0, 40))}`);
        return false;
    }
  }

  /** A CRLF-ended line (without it); undefined when incomplete or over the bound (then failed). */
  private line(what: string): string | undefined {
    const end = this.buf.indexOf(CRLF);
    if (end > MAX_LINE_BYTES || (end < 0 && this.buf.length > MAX_LINE_BYTES)) {
      this.fail(`${what} line longer than ${MAX_LINE_BYTES} bytes`);
      return undefined;
    }
    if (end < 0) return undefined;
    const l = this.buf.subarray(0, end).toString('latin1');
    this.buf = this.buf.subarray(end + 2);
    return l;
  }

  private finish(out: IcapEvent[]): boolean {
    out.push({ kind: 'end' });
    this.state = { s: 'done' };
    return this.buf.length > 0;
  }

  private fail(why: string): false {
    this.error = why;
    return false;
  }
}

/** Status line and headers; a string says why it is not an ICAP/1.0 head. */
export function parseHead(text: string): IcapHead | string {
  const lines = text.split('\r\n');
  const m = /^ICAP\/1\.0 ([1-5]\d\d)(?: (.*))?$/.exec(lines[0]!);
  if (m === null) return `bad status line ${quote(Buffer.from(lines[0]!, 'latin1'))}`;
  const headers = new Map<string, string[]>();
  let last: { name: string; i: number } | undefined;
  for (const l of lines.slice(1)) {
    if (/^[ \t]/.test(l)) {
      // a continuation line (X-Violations-Found lists its violations so)
      if (last === undefined) return 'continuation line before any header';
      const vals = headers.get(last.name)!;
      vals[last.i] = `${vals[last.i]}\n${l.trim()}`;
      continue;
    }
    const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(l);
    if (h === null) return `bad header line ${quote(Buffer.from(l, 'latin1'))}`;
    const name = h[1]!.toLowerCase();
    const vals = headers.get(name) ?? [];
    vals.push(h[2]!);
    headers.set(name, vals);
    last = { name, i: vals.length - 1 };
  }
  return { status: Number(m[1]), reason: m[2] ?? '', headers };
}

/**
 * "req-hdr=0, res-hdr=45, res-body=120": the header bytes before the body and whether a
 * (chunked) body follows. A string says why the value cannot be used.
 */
export function parseEncapsulated(v: string): { headerBytes: number; hasBody: boolean } | string {
  const entities = v.split(',').map((s) => s.trim());
  let prev = -1;
  let last: { name: string; off: number } | undefined;
  for (const e of entities) {
    const m = /^(req-hdr|res-hdr|req-body|res-body|opt-body|null-body)=(\d{1,9})$/.exec(e);
    if (m === null) return `bad Encapsulated entity ${JSON.stringify(e)}`;
    if (last !== undefined && /-body$/.test(last.name)) return `Encapsulated: ${last.name} is not last`;
    const off = Number(m[2]);
    if (off < prev || (last === undefined && off !== 0)) return `Encapsulated offsets out of order: ${JSON.stringify(v)}`;
    prev = off;
    last = { name: m[1]!, off };
  }
  if (last === undefined) return 'empty Encapsulated';
  if (!/-body$/.test(last.name)) return `Encapsulated does not end with a body entity: ${JSON.stringify(v)}`;
  return { headerBytes: last.off, hasBody: last.name !== 'null-body' };
}

/** Printable, bounded rendering of bytes for messages (never CR, LF or controls). */
export function quote(b: Buffer): string {
  return JSON.stringify(b.subarray(0, 80).toString('latin1')).replace(/[\u007f-\uffff]/g, '?');
}
