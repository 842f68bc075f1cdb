/**
 * The filter skeleton: owns the connections, their deadlines and the shutdown; the program
 * supplies one service function (request → reply) and knows nothing about sockets.
 *
 * Per connection: read the request through the empty line (bounded line length and count, and a
 * read deadline: a client that never finishes gets no reply and a closed socket), run the
 * service, write exactly one reply and close. The service is given the request's deadline and
 * is expected to answer by then (the worker answers 451 at it); if it has not answered
 * `backstopMs` later, the skeleton answers 451 itself and aborts the service's signal. Courier
 * waits forever for a reply; we never let it.
 *
 * A reply is formatted before the connection counts as answered, so a reply that cannot be
 * formatted still leaves room for the 451 fallback (the defect this replaces marked the
 * connection answered first, and a throwing formatter left Courier waiting for ever).
 *
 * Shutdown (stdin EOF, SIGTERM): stop accepting, give in-flight requests `shutdownTimeoutMs`,
 * then answer the stragglers 451 and resolve.
 */
import type { Socket } from 'node:net';
import { formatReply } from './reply.js';
import { BAD_REQUEST_REPLY, INTERNAL_REPLY, SHUTDOWN_REPLY, TIMEOUT_REPLY, type Reply } from './replies.js';
import { RequestReader, type CourierRequest } from './request.js';

export type { Reply } from './replies.js';

export interface ServiceCall {
  /** Epoch ms: when the connection was accepted. */
  readonly acceptedAt: number;
  /** Epoch ms: the reply is due by then (request_timeout after the accept). */
  readonly deadlineAt: number;
  /** Fires when the skeleton has answered for the service (backstop, shutdown): stop. */
  readonly signal: AbortSignal;
}

export type Service = (req: CourierRequest, call: ServiceCall) => Promise<Reply>;

export type EventLevel = 'error' | 'warning' | 'info' | 'debug';
/** The events a connection reports (registered, with their levels, in ops/events.ts). */
export type ServerEvent = 'internal-error' | 'connection-error' | 'bad-request' | 'request-overdue' | 'request-read-timeout' | 'request-truncated';

export interface ServerOptions {
  readonly maxLineBytes: number;
  readonly maxLines: number;
  readonly readTimeoutMs: number;
  /** From accept to reply. */
  readonly requestTimeoutMs: number;
  /** How long past the deadline the service may take before the skeleton answers for it. */
  readonly backstopMs: number;
  /** Called for events worth a log line (protocol errors, timeouts); never for normal replies. */
  readonly onEvent: (event: ServerEvent, detail: Record<string, string | number>, level: EventLevel) => void;
}

/** The reason a service's signal carries when the backstop answered for it (and when draining). */
export const OVERDUE = 'overdue';
export const SHUTTING_DOWN = 'shutdown';

const INTERNAL_BYTES = formatReply(INTERNAL_REPLY.code, INTERNAL_REPLY.text as string);

export class ConnectionHandler {
  /** Unanswered connections: their abort handle and how to answer them. */
  private readonly inFlight = new Map<AbortController, (r: Reply) => void>();
  /** Deadlines (epoch ms) of the requests read and not yet answered. */
  private readonly deadlines = new Map<AbortController, number>();
  private draining = false;
  private seq = 0;
  /** Connections closed by the client before sending a byte (probes, connect storms). */
  emptyConnections = 0;

  constructor(private readonly service: Service, public options: ServerOptions) {}

  /** The options for connections accepted from now on (a reload may change them). */
  private get opts(): ServerOptions {
    return this.options;
  }

  /** Number of connections not yet answered. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** The earliest deadline among the requests being served (epoch ms), 0 when none. */
  get oldestDeadline(): number {
    let oldest = 0;
    for (const d of this.deadlines.values()) if (oldest === 0 || d < oldest) oldest = d;
    return oldest;
  }

  handle = (sock: Socket): void => {
    const conn = ++this.seq;
    const acceptedAt = Date.now();
    const reader = new RequestReader({ maxLineBytes: this.opts.maxLineBytes, maxLines: this.opts.maxLines });
    const ctl = new AbortController();
    let settled = false;
    let requestRead = false;
    let bytesSeen = 0;
    let backstop: NodeJS.Timeout | undefined;
    const finish = (): void => {
      settled = true;
      clearTimeout(readTimer);
      clearTimeout(backstop);
      this.inFlight.delete(ctl);
      this.deadlines.delete(ctl);
      sock.removeListener('data', onData);
    };
    const reply = (r: Reply): void => {
      if (settled) return;
      let bytes: Buffer;
      try {
        bytes = formatReply(r.code, r.text as string | string[]);
      } catch (err) {
        this.opts.onEvent('internal-error', { conn, reason: `reply could not be formatted: ${err instanceof Error ? err.message : String(err)}` }, 'error');
        bytes = INTERNAL_BYTES;
      }
      finish();
      // Paused sockets read no EOF, so close ours once the reply is flushed instead of waiting
      // for the peer's half of the close (the server's close would wait forever otherwise).
      sock.end(bytes, () => sock.destroy());
    };
    this.inFlight.set(ctl, reply);
    const drop = (event: ServerEvent | undefined, detail: Record<string, string | number> = {}): void => {
      if (settled) return;
      finish();
      if (event) this.opts.onEvent(event, { conn, ...detail }, 'warning');
      sock.destroy();
    };
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!settled) ctl.abort();
      // A client that hung up before our reply: Courier gave up on this message.
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') this.opts.onEvent('connection-error', { conn, code: err.code ?? 'EIO' }, 'warning');
    });
    const readTimer = setTimeout(() => drop('request-read-timeout', { ms: this.opts.readTimeoutMs }), this.opts.readTimeoutMs);
    const onData = (chunk: Buffer): void => {
      bytesSeen += chunk.length;
      const r = reader.push(chunk);
      if (r.state === 'incomplete') return;
      requestRead = true;
      clearTimeout(readTimer);
      sock.removeListener('data', onData);
      sock.pause();
      if (r.state === 'error') {
        this.opts.onEvent('bad-request', { conn, code: r.code, reason: r.message }, 'warning');
        reply(BAD_REQUEST_REPLY);
        return;
      }
      const call: ServiceCall = { acceptedAt, deadlineAt: acceptedAt + this.opts.requestTimeoutMs, signal: ctl.signal };
      this.deadlines.set(ctl, call.deadlineAt);
      backstop = setTimeout(() => {
        this.opts.onEvent('request-overdue', { conn, data: r.request.dataPath, ms: Date.now() - acceptedAt }, 'error');
        reply(TIMEOUT_REPLY);
        ctl.abort(OVERDUE);
      }, Math.max(0, call.deadlineAt + this.opts.backstopMs - Date.now()));
      this.serve(r.request, call, reply);
    };
    sock.on('data', onData);
    sock.on('end', () => {
      if (settled || requestRead) return;
      if (bytesSeen === 0) {
        this.emptyConnections++;
        drop(undefined);
      } else {
        drop('request-truncated', { bytes: bytesSeen });
      }
    });
    if (this.draining) reply(SHUTDOWN_REPLY);
  };

  private serve(req: CourierRequest, call: ServiceCall, reply: (r: Reply) => void): void {
    let answer: Promise<Reply>;
    try {
      answer = this.service(req, call);
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(reply, (err: unknown) => {
      this.opts.onEvent('internal-error', { data: req.dataPath, reason: err instanceof Error ? err.message : String(err) }, 'error');
      reply(INTERNAL_REPLY);
    });
  }

  /**
   * Stop taking new requests; wait up to `timeoutMs` for the ones in flight, then answer them
   * 451 and abort their service calls. Returns how many had to be answered so.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    const until = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const stragglers = [...this.inFlight];
    // Answer first, then abort: an aborted scan must never turn into an accept.
    for (const [ctl, reply] of stragglers) {
      reply(SHUTDOWN_REPLY);
      ctl.abort(SHUTTING_DOWN);
    }
    return stragglers.length;
  }
}
