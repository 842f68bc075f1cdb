/**
 * The filter skeleton: owns the connections, their deadlines and the shutdown; the program
 * supplies one service function (request → reply) and knows nothing about sockets.
 *
 * Per connection: read the request through the empty line (bounded line length and count, and a
 * read deadline: a client that never finishes gets no reply and a closed socket), then wait for
 * one of `maxConcurrent` service slots, run the service under the request deadline, write exactly
 * one reply and close. A service that throws or misses the deadline is answered 451: Courier
 * waits forever for a reply, we never let it.
 *
 * Shutdown (stdin EOF, SIGTERM): stop accepting, give in-flight requests `shutdownTimeoutMs`,
 * then answer the stragglers 451 and resolve.
 */
import type { Socket } from 'node:net';
import { formatReply } from './reply.js';
import { RequestReader, type CourierRequest } from './request.js';

export interface Reply {
  readonly code: number;
  readonly text: string | readonly string[];
}

export type Service = (req: CourierRequest, signal: AbortSignal) => Promise<Reply>;

export interface ServerOptions {
  readonly maxLineBytes: number;
  readonly maxLines: number;
  readonly readTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxConcurrent: number;
  /** Called for events worth a log line (protocol errors, timeouts); never for normal replies. */
  readonly onEvent: (event: string, detail: Record<string, string | number>) => void;
}

const TIMEOUT_REPLY: Reply = { code: 451, text: '4.3.0 Virus scan timed out, try again later' };
const INTERNAL_REPLY: Reply = { code: 451, text: '4.3.0 Internal error in the virus filter, try again later' };
const SHUTDOWN_REPLY: Reply = { code: 451, text: '4.3.2 Virus filter shutting down, try again later' };
const BAD_REQUEST_REPLY: Reply = { code: 451, text: '4.3.0 Virus filter could not read the request' };

export class ConnectionHandler {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** Unanswered connections: their abort handle and how to answer them. */
  private readonly inFlight = new Map<AbortController, (r: Reply) => void>();
  private draining = false;
  private seq = 0;

  constructor(private readonly service: Service, private readonly opts: ServerOptions) {}

  /** Number of connections not yet answered. */
  get pending(): number {
    return this.inFlight.size;
  }

  handle = (sock: Socket): void => {
    const conn = ++this.seq;
    const reader = new RequestReader({ maxLineBytes: this.opts.maxLineBytes, maxLines: this.opts.maxLines });
    const ctl = new AbortController();
    let settled = false;
    let requestRead = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(readTimer);
      this.inFlight.delete(ctl);
      sock.removeListener('data', onData);
    };
    const reply = (r: Reply) => {
      if (settled) return;
      finish();
      // Paused sockets read no EOF, so close ours once the reply is flushed instead of waiting
      // for the peer's half of the close (the server's close would wait forever otherwise).
      sock.end(formatReply(r.code, r.text as string | string[]), () => sock.destroy());
    };
    this.inFlight.set(ctl, reply);
    const drop = (event: string, detail: Record<string, string | number> = {}) => {
      if (settled) return;
      finish();
      this.opts.onEvent(event, { conn, ...detail });
      sock.destroy();
    };
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!settled) ctl.abort();
      this.opts.onEvent('connection-error', { conn, code: err.code ?? 'EIO' });
    });
    const readTimer = setTimeout(() => drop('request-read-timeout', { ms: this.opts.readTimeoutMs }), this.opts.readTimeoutMs);
    const onData = (chunk: Buffer) => {
      const r = reader.push(chunk);
      if (r.state === 'incomplete') return;
      requestRead = true;
      clearTimeout(readTimer);
      sock.removeListener('data', onData);
      sock.pause();
      if (r.state === 'error') {
        this.opts.onEvent('bad-request', { conn, code: r.code, reason: r.message });
        reply(BAD_REQUEST_REPLY);
        return;
      }
      void this.serve(r.request, ctl, reply);
    };
    sock.on('data', onData);
    sock.on('end', () => {
      if (settled || requestRead) return;
      drop('request-truncated');
    });
    if (this.draining) {
      reply(SHUTDOWN_REPLY);
    }
  };

  private async serve(req: CourierRequest, ctl: AbortController, reply: (r: Reply) => void): Promise<void> {
    const deadline = setTimeout(() => {
      ctl.abort();
      this.opts.onEvent('request-timeout', { ms: this.opts.requestTimeoutMs, data: req.dataPath });
      reply(TIMEOUT_REPLY);
    }, this.opts.requestTimeoutMs);
    try {
      await this.acquire(ctl.signal);
      if (ctl.signal.aborted) {
        reply(this.draining ? SHUTDOWN_REPLY : TIMEOUT_REPLY);
        return;
      }
      try {
        const r = await this.service(req, ctl.signal);
        reply(r);
      } finally {
        this.release();
      }
    } catch (err) {
      this.opts.onEvent('internal-error', { reason: err instanceof Error ? err.message : String(err) });
      reply(INTERNAL_REPLY);
    } finally {
      clearTimeout(deadline);
    }
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (this.active < this.opts.maxConcurrent) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const go = () => {
        signal.removeEventListener('abort', cancel);
        this.active++;
        resolve();
      };
      const cancel = () => {
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
        // Resolve without a slot; the caller sees the aborted signal and answers 451.
        this.active++;
        resolve();
      };
      this.waiting.push(go);
      signal.addEventListener('abort', cancel, { once: true });
    });
  }

  private release(): void {
    this.active--;
    const next = this.waiting.shift();
    if (next) next();
  }

  /**
   * Stop taking new requests; wait up to `timeoutMs` for the ones in flight, then abort them
   * (their connections are answered 451 by the service's abort path or by SHUTDOWN_REPLY).
   */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    const until = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const stragglers = [...this.inFlight];
    // Answer first, then abort: an aborted scan must never turn into an accept.
    for (const [ctl, reply] of stragglers) {
      reply(SHUTDOWN_REPLY);
      ctl.abort();
    }
    return stragglers.length;
  }
}
