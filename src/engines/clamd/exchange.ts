/**
 * One request/reply exchange with clamd over a fresh connection.
 *
 * Owns: the socket's whole life - connect (connectTimeoutMs), send with backpressure, collect
 * NUL-terminated reply lines until clamd closes (replyTimeoutMs from connect), the caller's
 * AbortSignal - and settling exactly once with the socket destroyed on every path.
 * Inputs: an address, deadlines, a sender that writes the request through an Outbox.
 * Outputs: the reply lines, or a failure with a stable code; never a rejection.
 * Fails with: ECONNECT / ECONNECT_TIMEOUT (only before the connection is up, so the caller may
 * try another server), ESCAN_TIMEOUT, EPROTOCOL (closed without, or with a truncated or
 * oversized reply), EIO (the sender failed), EABORTED.
 */
import { connect, type Socket } from 'node:net';
import { EngineErrorCode } from '../engine.js';
import { formatServer, type ClamdAddress } from './address.js';
import { quote, ReplyParser } from './protocol.js';

export interface ExchangeOptions {
  readonly connectTimeoutMs: number;
  /** From the connection being up (first byte sent) until the reply is complete. */
  readonly replyTimeoutMs: number;
  readonly signal: AbortSignal;
}

export type Failure = { readonly code: string; readonly message: string };

export type Exchange =
  | { readonly ok: true; readonly lines: readonly string[]; readonly sentAll: boolean }
  | ({ readonly ok: false } & Failure);

export interface Outbox {
  /**
   * Queues the buffers and waits for 'drain' if the socket's buffer is full. `final` marks the
   * last bytes of the request. Resolves false when sending must stop: a reply has arrived
   * (clamd only answers early to refuse), writing failed, or the exchange is settled.
   */
  write(bufs: readonly Buffer[], final?: boolean): Promise<boolean>;
}

/** Resolves with a failure to end the exchange with it, or undefined when done/stopped. */
export type Sender = (out: Outbox) => Promise<Failure | undefined>;

/** Node reads into this buffer (copied out at once); clamd's replies are tiny. */
const READ_BUFFER_BYTES = 16 * 1024;

/**
 * After a write fails because clamd closed, any reply it wrote before closing is already in
 * our receive queue and is read on the next turn of the event loop; this only bounds the wait
 * when there is none (Node reports no end-of-stream once a write has failed).
 */
const REPLY_AFTER_WRITE_ERROR_MS = 1000;

export function exchange(addr: ClamdAddress, opts: ExchangeOptions, send: Sender): Promise<Exchange> {
  const where = formatServer(addr);
  if (opts.signal.aborted) {
    return Promise.resolve({ ok: false, code: EngineErrorCode.ABORTED, message: `${where}: aborted before connecting` });
  }
  return new Promise<Exchange>((resolve) => {
    const parser = new ReplyParser();
    const lines: string[] = [];
    const wakers = new Set<() => void>();
    let settled = false;
    let connected = false;
    let sentAll = false;
    let lateError: NodeJS.ErrnoException | undefined;
    let replyTimer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;

    // `onread` hands us the bytes even after a failed write has marked the stream errored
    // (then Node would drop them as 'data'); see keepReadingAfterWriteError.
    const onread = { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: onBytes };
    const socket: Socket = addr.kind === 'unix'
      ? connect({ path: addr.path, onread })
      : connect({ host: addr.host, port: addr.port, onread });
    keepReadingAfterWriteError(socket, onWriteError);
    const connectTimer = setTimeout(() => {
      fail(EngineErrorCode.CONNECT_TIMEOUT, `${where}: not connected within ${opts.connectTimeoutMs} ms`);
    }, opts.connectTimeoutMs);
    const onAbort = (): void => fail(EngineErrorCode.ABORTED, `${where}: aborted`);
    opts.signal.addEventListener('abort', onAbort, { once: true });

    function settle(x: Exchange): void {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(replyTimer);
      clearTimeout(graceTimer);
      opts.signal.removeEventListener('abort', onAbort);
      for (const wake of wakers) wake();
      socket.destroy();
      resolve(x);
    }
    function fail(code: string, message: string): void {
      settle({ ok: false, code, message });
    }
    /** clamd is done talking: decide with what we have. */
    function peerClosed(): void {
      const why = lateError ? ` (${lateError.code ?? lateError.message})` : '';
      // Bytes after the last complete line mean the reply as a whole is broken (a second line
      // cut off, "stream: OK\0stream: Evil FOU"): never let its first line stand for it.
      if (parser.partial.length > 0) {
        return fail(EngineErrorCode.PROTOCOL, `${where}: reply not terminated: ${quote(parser.partial)}${why}`);
      }
      if (lines.length > 0) return settle({ ok: true, lines, sentAll });
      const when = lateError?.syscall === 'write' ? ' while we were still sending' : '';
      fail(EngineErrorCode.PROTOCOL, `${where}: connection closed${when} without a reply${why}`);
    }
    /** onread callback; true = keep reading. */
    function onBytes(n: number, buf: Uint8Array): boolean {
      lines.push(...parser.push(Buffer.from(buf.subarray(0, n))));
      if (parser.overflowed) fail(EngineErrorCode.PROTOCOL, `${where}: reply too long; is this clamd?`);
      // The refusal clamd sends before closing on us: nothing else can follow it.
      else if (lateError && lines.length > 0 && parser.partial.length === 0) peerClosed();
      return true;
    }
    function onWriteError(err: NodeJS.ErrnoException): void {
      lateError ??= err;
      for (const wake of wakers) wake();
      if (lines.length > 0) return peerClosed();
      graceTimer ??= setTimeout(peerClosed, REPLY_AFTER_WRITE_ERROR_MS);
    }

    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) return fail(EngineErrorCode.CONNECT, `${where}: ${err.code ?? 'error'}: ${err.message}`);
      lateError ??= err; // 'close' follows and decides, with whatever reply was read
    });
    socket.on('end', peerClosed);
    socket.on('close', peerClosed);
    socket.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      replyTimer = setTimeout(() => {
        // A complete reply with the connection left open is still a reply.
        if (lines.length > 0 && parser.partial.length === 0) return settle({ ok: true, lines, sentAll });
        fail(EngineErrorCode.SCAN_TIMEOUT, `${where}: no reply within ${opts.replyTimeoutMs} ms`);
      }, opts.replyTimeoutMs);
      const stopped = (): boolean =>
        settled || lines.length > 0 || lateError !== undefined || socket.destroyed || socket.writableEnded;
      const outbox: Outbox = {
        async write(bufs, final = false) {
          if (stopped()) return false;
          let room = true;
          // corked: the buffers of one call go out in one writev, not one syscall each
          socket.cork();
          bufs.forEach((b, i) => {
            // "all sent" only once the last byte has left us: a reply that comes before is an
            // answer to less than the whole item (clamd never answers OK before the end marker)
            room = final && i === bufs.length - 1 ? socket.write(b, () => { sentAll = true; }) : socket.write(b);
          });
          socket.uncork();
          if (!room) await drainOrStop(socket, wakers);
          return !stopped();
        },
      };
      send(outbox).then(
        (failure) => { if (failure) fail(failure.code, `${where}: ${failure.message}`); },
        (err: unknown) => fail(EngineErrorCode.IO, `${where}: reading the item failed: ${describe(err)}`),
      );
    });
  });
}

/** Resolves when the socket takes more, or never will (write error, end, close, settled). */
function drainOrStop(socket: Socket, wakers: Set<() => void>): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  const events = ['drain', 'end', 'close'] as const;
  return new Promise((resolve) => {
    const done = (): void => {
      for (const e of events) socket.off(e, done);
      wakers.delete(done);
      resolve();
    };
    for (const e of events) socket.on(e, done);
    wakers.add(done);
  });
}

/**
 * Node destroys a socket on its first write error, and with it a reply already waiting in the
 * kernel's receive queue. That is exactly how clamd's refusal arrives: it answers "INSTREAM
 * size limit exceeded. ERROR" and closes while we are still writing, so our next write fails
 * with EPIPE/ECONNRESET. Here a write error (syscall "write") only stops the sending side; the
 * socket keeps reading until a read error or until exchange() settles and really destroys it.
 * The clamd engine test "size limit while writing" fails if a Node upgrade breaks this.
 */
function keepReadingAfterWriteError(socket: Socket, onWriteError: (err: NodeJS.ErrnoException) => void): void {
  const destroy = socket.destroy.bind(socket);
  socket.destroy = function destroyUnlessWriteError(err?: Error): Socket {
    const e = err as NodeJS.ErrnoException | undefined;
    if (e?.syscall === 'write' && !socket.destroyed) {
      onWriteError(e);
      return socket;
    }
    return destroy(err);
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
