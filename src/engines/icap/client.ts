/**
 * One ICAP request over a connection of its own: OPTIONS, or RESPMOD with an item.
 *
 * Connections are not kept for a next item: a kept connection must be known idle and unbroken
 * (the answer fully read, no Connection: close, no bytes pending) before reuse, and a wrong guess
 * costs a verdict. One connection per item is simple and safe; the engine bounds how many are
 * open at once.
 *
 * Owns: the socket's life (connect within connectTimeoutMs; the answer within replyTimeoutMs of
 * the connection being up), sending with backpressure, the preview dance (RFC 3507 §4.5: the
 * first bytes, `0; ieof` when they are the whole item, else wait for `100 Continue` before the
 * rest), comparing an echoed body with the item (SHA-256 of both), settling exactly once with
 * the socket destroyed.
 * Inputs: the URL, a ScanSource, the preview size from OPTIONS, deadlines, the caller's signal.
 * Outputs: the final answer (head, encapsulated HTTP head, echoed?) or a failure with a code;
 * never a rejection.
 * Fails with: ECONNECT, ECONNECT_TIMEOUT (before the connection is up), ESCAN_TIMEOUT,
 * EPROTOCOL (garbage, a close before the answer is complete, a clean answer before the item
 * was sent, an echo larger than the item), EIO (the item could not be read), EABORTED.
 */
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { AvError } from '../../errors.js';
import { EngineErrorCode, type ScanSource } from '../engine.js';
import {
  chunk, encodeOptions, encodeRespmodHead, IcapParser, LAST_CHUNK, LAST_CHUNK_IEOF, type IcapEvent, type IcapHead,
} from './protocol.js';
import type { FinalAnswer } from './verdict.js';
import type { IcapUrl } from './url.js';

/** Bytes per body chunk written to the socket. */
const CHUNK_BYTES = 64 * 1024;
/** A 200 body may be a block page larger than a tiny item: allow this much over the item. */
const BODY_SLACK_BYTES = 1024 * 1024;

export interface RequestOptions {
  readonly connectTimeoutMs: number;
  /** From the connection being up until the answer is complete. */
  readonly replyTimeoutMs: number;
  readonly signal: AbortSignal;
}

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: string; readonly message: string };

export function where(url: IcapUrl): string {
  return url.text;
}

/** OPTIONS: the head of the server's answer (any status; the caller judges it). */
export async function options(url: IcapUrl, opts: RequestOptions): Promise<Outcome<IcapHead>> {
  const r = await request(url, opts, async (io) => {
    await io.write([encodeOptions(url)], true);
  });
  return r.ok ? { ok: true, value: r.value.head } : r;
}

export interface RespmodOptions extends RequestOptions {
  /** The server's Preview from OPTIONS; undefined: no preview. */
  readonly preview: number | undefined;
  readonly itemId: string;
}

/** RESPMOD with `source` as the body of an encapsulated HTTP response. */
export async function respmod(url: IcapUrl, source: ScanSource, opts: RespmodOptions): Promise<Outcome<FinalAnswer>> {
  const preview = opts.preview === undefined ? undefined : Math.min(opts.preview, source.size);
  const sentHash = createHash('sha256');
  let stream: AsyncIterator<unknown> | undefined;
  const reader = new ItemReader(source, sentHash, (it) => { stream = it; });
  const r = await request(url, opts, async (io) => {
    const head = encodeRespmodHead(url, { preview, size: source.size, itemId: opts.itemId });
    if (preview !== undefined) {
      const first = await reader.take(preview);
      const whole = preview === source.size;
      // asked before writing: the server's decision may come while a write waits for 'drain'
      const decision = whole ? undefined : io.continued();
      await io.write([head, ...(first.length > 0 ? chunk(first) : []), whole ? LAST_CHUNK_IEOF : LAST_CHUNK], whole);
      // the server decides from the preview: 100 Continue (send the rest) or its final answer
      if (decision === undefined || !(await decision)) return;
    } else {
      await io.write([head]);
    }
    for (;;) {
      const data = await reader.take(CHUNK_BYTES);
      if (data.length === 0) break;
      if (!(await io.write(chunk(data)))) return;
    }
    if (reader.read !== source.size) throw ioError(`the item ended after ${reader.read} of its ${source.size} bytes`);
    if (await reader.more()) throw ioError(`the item has more than its declared ${source.size} bytes`);
    await io.write([LAST_CHUNK], true);
  }, source.size + BODY_SLACK_BYTES);
  await stream?.return?.();
  if (!r.ok) return r;
  const { head, httpHead, bodyHash, bodyBytes, sentAll } = r.value;
  // A clean answer before the server had every byte answers less than the item, except a 204
  // to a preview: RFC 3507 lets the server decide from the preview.
  const answeredPreview = preview !== undefined && !sentAll && r.value.afterPreview;
  if (!sentAll && !answeredPreview && head.status === 204) {
    return { ok: false, code: EngineErrorCode.PROTOCOL, message: `${where(url)}: the server answered 204 before the whole item was sent` };
  }
  const echoed = sentAll && bodyBytes === source.size && bodyHash === sentHash.digest('hex');
  return { ok: true, value: { head, httpHead, echoed } };
}

/** What the sender may do with the connection. */
interface Io {
  /**
   * Writes with backpressure; false when sending must stop (the exchange is over). `final`:
   * the last bytes of the request (the whole item has left us once they are written).
   */
  write(bufs: readonly Buffer[], final?: boolean): Promise<boolean>;
  /** Asked before a preview is written: true on 100 Continue, false on the server's final answer instead. */
  continued(): Promise<boolean>;
}

interface Answer {
  head: IcapHead;
  httpHead: string;
  bodyHash: string;
  bodyBytes: number;
  sentAll: boolean;
  /** The final answer came while we waited for the server's decision on the preview. */
  afterPreview: boolean;
}

function request(url: IcapUrl, opts: RequestOptions, send: (io: Io) => Promise<void>, maxBodyBytes = BODY_SLACK_BYTES): Promise<Outcome<Answer>> {
  const at = where(url);
  if (opts.signal.aborted) return Promise.resolve({ ok: false, code: EngineErrorCode.ABORTED, message: `${at}: aborted before connecting` });
  return new Promise((resolve) => {
    const parser = new IcapParser();
    const bodyHash: Hash = createHash('sha256');
    let bodyBytes = 0;
    let head: IcapHead | undefined;
    let httpHead = '';
    let settled = false;
    let connected = false;
    let allSent = false;
    let waitingForPreview = false;
    let afterPreview = false;
    let continueWaiter: ((v: boolean) => void) | undefined;
    /** Aborted when the exchange is settled: ends a wait for 'drain'. */
    const over = new AbortController();
    let replyTimer: NodeJS.Timeout | undefined;

    // noDelay: the request goes out in a few writes with waits between them (the preview,
    // then the rest after 100 Continue); Nagle's algorithm held the last small one back for the
    // peer's delayed ACK, 40 ms an item measured against c-icap
    const socket: Socket = connect({ host: url.host, port: url.port, noDelay: true });
    const connectTimer = setTimeout(() => fail(EngineErrorCode.CONNECT_TIMEOUT, `not connected within ${opts.connectTimeoutMs} ms`), opts.connectTimeoutMs);
    const onAbort = (): void => fail(EngineErrorCode.ABORTED, 'aborted');
    opts.signal.addEventListener('abort', onAbort, { once: true });

    function settle(r: Outcome<Answer>): void {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(replyTimer);
      opts.signal.removeEventListener('abort', onAbort);
      continueWaiter?.(false);
      over.abort();
      socket.destroy();
      resolve(r);
    }
    function fail(code: string, message: string): void {
      settle({ ok: false, code, message: `${at}: ${message}` });
    }
    const finalHead = (): boolean => head !== undefined && head.status !== 100;

    socket.on('data', (data: Buffer) => {
      let events: IcapEvent[];
      try {
        events = parser.push(data);
      } catch (err) {
        // a parser bug must cost this item (an error), never the process
        return fail(EngineErrorCode.PROTOCOL, `unreadable answer: ${err instanceof Error ? err.message : String(err)}`);
      }
      for (const ev of events) {
        if (settled) return;
        switch (ev.kind) {
          case 'head':
            if (ev.head.status === 100) {
              if (!waitingForPreview) return fail(EngineErrorCode.PROTOCOL, '100 Continue without a preview to continue');
              waitingForPreview = false;
              const w = continueWaiter;
              continueWaiter = undefined;
              w?.(true);
            } else {
              head = ev.head;
              if (waitingForPreview) afterPreview = true;
              continueWaiter?.(false);
              continueWaiter = undefined;
            }
            break;
          case 'http-head':
            httpHead = ev.text;
            break;
          case 'body':
            bodyBytes += ev.data.length;
            if (bodyBytes > maxBodyBytes) return fail(EngineErrorCode.PROTOCOL, `answer body larger than ${maxBodyBytes} bytes`);
            bodyHash.update(ev.data);
            break;
          case 'end':
            return settle({ ok: true, value: { head: head!, httpHead, bodyHash: bodyHash.digest('hex'), bodyBytes, sentAll: allSent, afterPreview } });
        }
      }
      if (parser.error !== undefined) fail(EngineErrorCode.PROTOCOL, parser.error);
    });
    const closed = (err?: NodeJS.ErrnoException): void => {
      if (settled) return;
      if (!connected) return fail(EngineErrorCode.CONNECT, `${err?.code ?? 'closed'}${err ? `: ${err.message}` : ''}`);
      const why = err ? ` (${err.code ?? err.message})` : '';
      fail(EngineErrorCode.PROTOCOL, `connection closed ${finalHead() ? 'in the middle of the answer' : parser.idle ? 'without an answer' : 'in the middle of the answer head'}${why}`);
    };
    socket.on('error', closed);
    socket.on('end', () => closed());
    socket.on('close', () => closed());
    socket.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      replyTimer = setTimeout(() => fail(EngineErrorCode.SCAN_TIMEOUT, `no complete answer within ${opts.replyTimeoutMs} ms`), opts.replyTimeoutMs);
      // A final answer's head may come before the request is complete (c-icap answers 200 and
      // then streams the body back while it still reads): the rest is sent all the same, and
      // only a complete answer (settle) stops the sending.
      const stopped = (): boolean => settled || socket.destroyed;
      const io: Io = {
        async write(bufs, final = false) {
          if (stopped()) return false;
          // one buffer per call (a chunk's size line, data and CRLF: one syscall); "all sent"
          // once the last byte has left us (the write callback), not when it is queued
          const data = bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs);
          const room = socket.write(data, final ? (err) => { if (!err) allSent = true; } : undefined);
          // every way the socket can end settles the exchange, and that ends the wait
          if (!room) await once(socket, 'drain', { signal: over.signal }).catch(() => undefined);
          return !stopped();
        },
        continued() {
          if (stopped()) return Promise.resolve(false);
          waitingForPreview = true;
          return new Promise((res) => { continueWaiter = res; });
        },
      };
      send(io).catch((err: unknown) => {
        fail(EngineErrorCode.IO, `reading the item failed: ${err instanceof Error ? err.message : String(err)}`);
      });
    });
  });
}

/** Reads a ScanSource in pieces of a chosen size, hashing what it hands out. */
class ItemReader {
  read = 0;
  private pending: Buffer = Buffer.alloc(0);
  private it: AsyncIterator<unknown> | undefined;
  private ended = false;

  constructor(private readonly source: ScanSource, private readonly hash: Hash, private readonly onOpen: (it: AsyncIterator<unknown>) => void) {}

  /** Up to n bytes (fewer only at the end of the item). */
  async take(n: number): Promise<Buffer> {
    if (this.source.bytes !== undefined && this.source.bytes.length === this.source.size) {
      const out = this.source.bytes.subarray(this.read, this.read + n);
      return this.handOut(out);
    }
    while (this.pending.length < n && !this.ended) {
      this.it ??= this.open();
      const r = await this.it.next();
      if (r.done === true) this.ended = true;
      else this.pending = Buffer.concat([this.pending, toBuffer(r.value)]);
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(out.length);
    return this.handOut(out);
  }

  /** True when the source yields bytes beyond what was taken. */
  async more(): Promise<boolean> {
    if (this.source.bytes !== undefined && this.source.bytes.length === this.source.size) return false;
    return (await this.take(1)).length > 0;
  }

  private open(): AsyncIterator<unknown> {
    const it = this.source.stream()[Symbol.asyncIterator]();
    this.onOpen(it);
    return it;
  }

  private handOut(b: Buffer): Buffer {
    if (this.read + b.length > this.source.size) throw ioError(`the item has more than its declared ${this.source.size} bytes`);
    this.read += b.length;
    this.hash.update(b);
    return b;
  }
}

function toBuffer(v: unknown): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : (v as Buffer);
}

/**
 * The item read short or long: our source misbehaved, not the server (internal, never the
 * scanner origin a fail-open may pass). Caught below and answered as an EIO result.
 */
function ioError(message: string): AvError {
  return new AvError(EngineErrorCode.IO, 'internal', message);
}
