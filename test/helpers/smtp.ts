/**
 * A small SMTP client for the end-to-end tests: one message per connection, every reply kept
 * (code and all text lines) so a test can assert the exact final reply of DATA, which is where a
 * Courier filter's answer reaches the client.
 *
 * Inputs: host, port, envelope, the message (LF or CRLF line ends; converted to CRLF and
 * dot-stuffed here). Output: SmtpResult with every reply (and, for a sent message, when its final
 * "." left and when the reply came); a rejected RCPT is recorded and the session goes on with the
 * accepted ones. Fails (throws SmtpClientError, stable `code`) only on
 * transport problems: connect refused/timeout, a reply that does not parse, a step timeout.
 */
import net from 'node:net';

export interface SmtpReply {
  code: number;
  /** the text of each line, without the code and separator */
  lines: string[];
  /** the lines joined with '\n' */
  text: string;
}

export interface SmtpResult {
  greeting: SmtpReply;
  ehlo: SmtpReply;
  mail: SmtpReply;
  rcpt: SmtpReply[];
  /** the reply to the DATA command (354), absent when no recipient was accepted */
  data?: SmtpReply;
  /** the reply after the final dot, absent when the message was never sent */
  final?: SmtpReply;
  /** the reply that ended the transaction: final, or the first refusal */
  last: SmtpReply;
  /** performance.now() marks, when the message was sent (the benchmark measures DATA→reply) */
  timing?: SmtpTiming;
}

export interface SmtpTiming {
  /** connect started */
  startMs: number;
  /** the message and its final "." were handed to the kernel (write callback) */
  dataSentMs: number;
  /** the reply after the final "." was read */
  finalMs: number;
}

export interface SmtpSendOptions {
  host?: string;
  port: number;
  from: string;
  to: string[];
  message: Buffer | string;
  heloName?: string;
  /** MAIL FROM parameters, e.g. ['BODY=8BITMIME'] */
  mailParams?: string[];
  connectTimeoutMs?: number;
  /** deadline for each reply; the final reply includes the filter's scan time */
  replyTimeoutMs?: number;
}

export class SmtpClientError extends Error {
  constructor(
    readonly code: 'SMTP_CONNECT' | 'SMTP_TIMEOUT' | 'SMTP_CLOSED' | 'SMTP_PROTOCOL',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SmtpClientError';
  }
}

// A reply line longer than this is not SMTP (RFC 5321 says 512); guards the buffer.
const MAX_REPLY_LINE_BYTES = 4096;
// A whole multi-line reply (EHLO lists a dozen lines; a filter's reply a few).
const MAX_REPLY_BYTES = 64 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_REPLY_TIMEOUT_MS = 60_000;

/**
 * Parses complete replies at the start of `buf`. Pure: returns the replies found and the bytes
 * not yet consumed (an incomplete reply stays in `rest`).
 */
export function parseReplies(buf: Buffer): { replies: SmtpReply[]; rest: Buffer } {
  const replies: SmtpReply[] = [];
  let start = 0;
  let lines: string[] = [];
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl < 0) break;
    const line = buf.subarray(start, nl).toString('latin1').replace(/\r$/, '');
    const m = /^(\d{3})([ -])(.*)$/s.exec(line) ?? /^(\d{3})()$/.exec(line);
    if (!m) throw new SmtpClientError('SMTP_PROTOCOL', `not an SMTP reply line: ${JSON.stringify(line)}`);
    lines.push(m[3] ?? '');
    start = nl + 1;
    if (m[2] !== '-') {
      replies.push({ code: Number(m[1]), lines, text: lines.join('\n') });
      lines = [];
      // the bytes consumed so far form whole replies
      buf = buf.subarray(start);
      start = 0;
    }
  }
  if (buf.length - start > MAX_REPLY_LINE_BYTES) throw new SmtpClientError('SMTP_PROTOCOL', 'reply line too long');
  if (buf.length > MAX_REPLY_BYTES) throw new SmtpClientError('SMTP_PROTOCOL', 'multi-line reply too long');
  return { replies, rest: buf };
}

/** CRLF line ends, dot-stuffing, and the terminating dot line. */
export function encodeData(message: Buffer | string): Buffer {
  const text = Buffer.isBuffer(message) ? message.toString('latin1') : Buffer.from(message, 'utf8').toString('latin1');
  let crlf = text.replace(/\r?\n/g, '\r\n');
  if (!crlf.endsWith('\r\n')) crlf += '\r\n';
  const stuffed = crlf.replace(/^\./gm, '..');
  return Buffer.from(`${stuffed}.\r\n`, 'latin1');
}

class ReplyReader {
  private buf: Buffer = Buffer.alloc(0);
  private queue: SmtpReply[] = [];
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => {
      try {
        const { replies, rest } = parseReplies(Buffer.concat([this.buf, chunk]));
        this.buf = rest;
        this.queue.push(...replies);
        this.flush();
      } catch (err) {
        this.fail(err as Error);
        sock.destroy();
      }
    });
    sock.on('error', (err) => this.fail(new SmtpClientError('SMTP_CLOSED', `socket error: ${err.message}`, { cause: err })));
    sock.on('close', () => this.fail(new SmtpClientError('SMTP_CLOSED', 'server closed the connection')));
  }

  private flush(): void {
    if (this.waiter && this.queue.length > 0) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(this.queue.shift()!);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }

  next(timeoutMs: number, what: string): Promise<SmtpReply> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift()!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new SmtpClientError('SMTP_TIMEOUT', `no reply to ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }
}

function connect(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new SmtpClientError('SMTP_CONNECT', `connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(new SmtpClientError('SMTP_CONNECT', `connect to ${host}:${port}: ${err.message}`, { cause: err }));
    });
  });
}

/** Sends one message; see the module header. */
export async function sendSmtp(opts: SmtpSendOptions): Promise<SmtpResult> {
  const host = opts.host ?? '127.0.0.1';
  const startMs = performance.now();
  const replyTimeoutMs = opts.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
  const sock = await connect(host, opts.port, opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  const reader = new ReplyReader(sock);
  const send = (line: string | Buffer): void => {
    sock.write(line);
  };
  try {
    const greeting = await reader.next(replyTimeoutMs, 'the greeting');
    if (greeting.code !== 220) {
      return { greeting, ehlo: greeting, mail: greeting, rcpt: [], last: greeting };
    }
    send(`EHLO ${opts.heloName ?? 'client.example.test'}\r\n`);
    const ehlo = await reader.next(replyTimeoutMs, 'EHLO');
    const params = opts.mailParams?.length ? ` ${opts.mailParams.join(' ')}` : '';
    send(`MAIL FROM:<${opts.from}>${params}\r\n`);
    const mail = await reader.next(replyTimeoutMs, 'MAIL FROM');
    const base = { greeting, ehlo, mail, rcpt: [] as SmtpReply[] };
    if (ehlo.code !== 250 || mail.code !== 250) return { ...base, last: ehlo.code !== 250 ? ehlo : mail };
    for (const rcpt of opts.to) {
      send(`RCPT TO:<${rcpt}>\r\n`);
      base.rcpt.push(await reader.next(replyTimeoutMs, `RCPT TO:<${rcpt}>`));
    }
    const accepted = base.rcpt.filter((r) => r.code >= 200 && r.code < 300);
    if (accepted.length === 0) return { ...base, last: base.rcpt[0] ?? mail };
    send('DATA\r\n');
    const data = await reader.next(replyTimeoutMs, 'DATA');
    if (data.code !== 354) return { ...base, data, last: data };
    // the write callback marks the moment the final "." left for the server
    let dataSentMs = 0;
    sock.write(encodeData(opts.message), () => {
      dataSentMs = performance.now();
    });
    const final = await reader.next(replyTimeoutMs, 'the end of data');
    const finalMs = performance.now();
    const timing: SmtpTiming = { startMs, dataSentMs: dataSentMs || finalMs, finalMs };
    send('QUIT\r\n');
    await reader.next(replyTimeoutMs, 'QUIT').catch(() => undefined);
    return { ...base, data, final, last: final, timing };
  } finally {
    sock.destroy();
  }
}
