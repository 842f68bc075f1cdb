/**
 * clamd IDSESSION connections kept open by one process: many INSTREAM scans over one connection
 * instead of a connection each (peers-and-engines.md §B1.4). A connection per item cost this
 * side three times the CPU of the scan's own writes (connect, socket set-up, close), and clamd an
 * accept and a thread hand-off each.
 *
 * Owns: the sessions to one server (at most MAX_SESSIONS, each with at most MAX_OUTSTANDING
 * scans in flight), command numbering, matching clamd's `<id>: <reply>` lines to scans, the
 * per-scan reply deadline, closing a session that has been idle for IDLE_CLOSE_MS (before
 * clamd's own ReadTimeout would), and the connect phase (connectTimeoutMs).
 * Inputs: an in-memory item (the command, frames and end marker go out in one write, so scans
 * never interleave on the wire), the scan deadline and the caller's signal.
 * Outputs: an EngineResult; or `undefined` when no session could take it (all busy) or the
 * session broke before clamd answered it (closed, garbage, a reply without an id): then clamd
 * gave no verdict on this item, and the caller sends it on a connection of its own — a scan is
 * never sent again after a verdict. Never rejects.
 * Fails with: ECONNECT / ECONNECT_TIMEOUT (the session could not be opened: the caller may try
 * another server), ESCAN_TIMEOUT (the session is then closed: clamd may be stuck; its other scans
 * go out again on connections of their own), EABORTED, and clamd's own replies (classifyReply).
 */
import { connect, type Socket } from 'node:net';
import { EngineErrorCode, type EngineResult } from '../engine.js';
import { formatServer, type ClamdAddress } from './address.js';
import { encodeCommand, endOfStream, frameHeader, ReplyParser, resultFromReplies } from './protocol.js';

/** Scans in flight on one session; amavis pipelines 8 too, and clamd keeps reading. */
const MAX_OUTSTANDING = 8;
/** Sessions to one server from one process; beyond, items go on connections of their own. */
const MAX_SESSIONS = 4;
/** A session idle this long is ended (clamd's ReadTimeout is 120 s upstream, 180 s on Debian). */
const IDLE_CLOSE_MS = 5_000;

const IDSESSION = Buffer.from('zIDSESSION\0', 'latin1');
const END = Buffer.from('zEND\0', 'latin1');
const REPLY_LINE = /^(\d{1,9}): (.*)$/s;

export interface SessionScanOptions {
  readonly connectTimeoutMs: number;
  readonly scanTimeoutMs: number;
  readonly chunkBytes: number;
  readonly signal: AbortSignal;
}

/** undefined: no verdict from a session; send the item on a connection of its own. */
export type SessionResult = EngineResult | undefined;

interface Pending {
  readonly resolve: (r: SessionResult) => void;
  readonly timer: NodeJS.Timeout;
  /** Every byte of the scan has left us: only then may a reply stand for it. */
  sent: boolean;
}

class Session {
  private readonly socket: Socket;
  private readonly pending = new Map<number, Pending>();
  private parser = new ReplyParser();
  /**
   * "OK" verdicts read while bytes of a further, unfinished line followed them: they stand only
   * once the line is complete (a reply that breaks off and closes makes the whole session's
   * talk untrustworthy, and its scans go out again on connections of their own).
   */
  private readonly held = new Map<number, EngineResult>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  closed = false;
  /** The connection is up (IDSESSION sent). */
  connected = false;
  /**
   * Resolves when the connection is up (undefined) or could not be made (the error); a session
   * closed before either resolves undefined too: its scan() then says "no verdict here" and the
   * item goes on a connection of its own. It always settles.
   */
  readonly ready: Promise<EngineResult | undefined>;
  private settleReady: (r: EngineResult | undefined) => void = () => undefined;

  constructor(private readonly addr: ClamdAddress, connectTimeoutMs: number, private readonly onClose: (s: Session) => void) {
    const where = formatServer(addr);
    this.socket = addr.kind === 'unix' ? connect({ path: addr.path }) : connect({ host: addr.host, port: addr.port });
    this.socket.setNoDelay?.(true);
    this.ready = new Promise((resolve) => {
      this.settleReady = resolve;
      this.connectTimer = setTimeout(() => {
        resolve({ status: 'error', code: EngineErrorCode.CONNECT_TIMEOUT, message: `${where}: not connected within ${connectTimeoutMs} ms` });
        this.close();
      }, connectTimeoutMs);
      this.socket.once('connect', () => {
        clearTimeout(this.connectTimer);
        this.connected = true;
        this.socket.write(IDSESSION);
        resolve(undefined);
      });
      this.socket.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(this.connectTimer);
        resolve({ status: 'error', code: EngineErrorCode.CONNECT, message: `${where}: ${err.code ?? 'error'}: ${err.message}` });
        this.close();
      });
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('close', () => this.close());
    this.socket.on('end', () => this.close());
  }

  /** Scans waiting for this session to be up. */
  claims = 0;

  get load(): number {
    return this.closed ? Infinity : this.pending.size;
  }

  /** `data`: the item's bytes, in pieces sent one after the other (clamd sees them joined). */
  scan(data: readonly Buffer[], opts: SessionScanOptions): Promise<SessionResult> {
    if (this.closed) return Promise.resolve(undefined);
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    const bufs: Buffer[] = [encodeCommand('INSTREAM')];
    for (const piece of data) {
      for (let off = 0; off < piece.length; off += opts.chunkBytes) {
        const slice = piece.subarray(off, off + opts.chunkBytes);
        bufs.push(frameHeader(slice.length), slice);
      }
    }
    bufs.push(endOfStream());
    return new Promise<SessionResult>((resolve) => {
      const where = formatServer(this.addr);
      const onAbort = (): void => finish({ status: 'error', code: EngineErrorCode.ABORTED, message: `${where}: aborted` });
      const finish = (r: SessionResult): void => {
        const p = this.pending.get(id);
        if (p === undefined) return;
        clearTimeout(p.timer);
        this.pending.delete(id);
        opts.signal.removeEventListener('abort', onAbort);
        if (this.pending.size === 0 && !this.closed) this.idleTimer = setTimeout(() => this.end(), IDLE_CLOSE_MS);
        resolve(r);
      };
      const timer = setTimeout(() => {
        finish({ status: 'error', code: EngineErrorCode.SCAN_TIMEOUT, message: `${where}: no reply within ${opts.scanTimeoutMs} ms` });
        // clamd may be stuck: this session is done; its other scans go out again on their own
        this.close();
      }, opts.scanTimeoutMs);
      const entry: Pending = { resolve: finish, timer, sent: false };
      this.pending.set(id, entry);
      if (opts.signal.aborted) return onAbort();
      opts.signal.addEventListener('abort', onAbort, { once: true });
      this.socket.cork();
      bufs.forEach((b, i) => {
        if (i < bufs.length - 1) this.socket.write(b);
        else this.socket.write(b, () => { entry.sent = true; });
      });
      this.socket.uncork();
    });
  }

  private onData(chunk: Buffer): void {
    const lines = this.parser.push(chunk);
    if (this.parser.overflowed) return this.close();
    for (const line of lines) {
      const m = REPLY_LINE.exec(line);
      // a line without an id (a refusal such as "INSTREAM size limit exceeded. ERROR", or
      // "COMMAND READ TIMED OUT") ends the session: no scan in flight has its verdict
      if (m === null) return this.close();
      const p = this.pending.get(Number(m[1]));
      if (p === undefined) continue; // answered already (timed out, aborted)
      // clamd never answers a scan before its end marker: a reply that comes first is not
      // clamd's verdict on the whole item, and this session is not to be trusted
      if (!p.sent) return this.close();
      const r = resultFromReplies([m[2]!]);
      if (r.status === 'clean') this.held.set(Number(m[1]), r);
      else p.resolve(r);
    }
    if (this.parser.partial.length === 0) {
      for (const [id, r] of this.held) this.pending.get(id)?.resolve(r);
      this.held.clear();
      // a long-lived session must not add up to the parser's bound on one reply
      this.parser = new ReplyParser();
    }
  }

  /** No more scans: tell clamd, then close. */
  private end(): void {
    if (this.closed || this.pending.size > 0) return;
    this.closed = true;
    this.onClose(this);
    this.socket.end(END);
  }

  /** Broken or stuck: the scans without a reply go out again on connections of their own. */
  close(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.connectTimer);
    if (!this.closed) {
      this.closed = true;
      this.onClose(this);
    }
    this.socket.destroy();
    this.settleReady(undefined);
    this.held.clear();
    const left = [...this.pending.values()];
    for (const p of left) p.resolve(undefined);
  }
}

/** The sessions of one process to one clamd server. */
export class SessionPool {
  private readonly sessions: Session[] = [];

  constructor(private readonly addr: ClamdAddress) {}

  /**
   * Scans `data` on a session (opened when none has room), or says the caller must use a
   * connection of its own (undefined). A connect failure is returned as such.
   */
  async scan(data: readonly Buffer[], opts: SessionScanOptions): Promise<SessionResult> {
    if (opts.signal.aborted) return { status: 'error', code: EngineErrorCode.ABORTED, message: `${formatServer(this.addr)}: aborted before sending` };
    let best: Session | undefined;
    for (const s of this.sessions) if (s.load < MAX_OUTSTANDING && (best === undefined || s.load < best.load)) best = s;
    if (best === undefined) {
      if (this.sessions.length >= MAX_SESSIONS) return undefined;
      best = new Session(this.addr, opts.connectTimeoutMs, (s) => {
        const i = this.sessions.indexOf(s);
        if (i >= 0) this.sessions.splice(i, 1);
      });
      this.sessions.push(best);
    }
    best.claims++;
    let failed: EngineResult | undefined;
    try {
      failed = await best.ready;
    } finally {
      best.claims--;
    }
    if (failed !== undefined) return failed;
    return best.scan(data, opts);
  }

  /** Ends the sessions that are up and carry no scan now (never one a scan is waiting to use). */
  closeIdle(): void {
    for (const s of [...this.sessions]) if (s.connected && s.load === 0 && s.claims === 0) s.close();
  }

  close(): void {
    for (const s of [...this.sessions]) s.close();
  }
}
