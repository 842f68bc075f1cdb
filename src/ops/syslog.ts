/**
 * log_to = "syslog": each line one datagram to the local syslog socket (/dev/log, or
 * syslog_socket), facility mail, the line's own severity, tag `avfilter[pid]`, in the format
 * glibc's syslog(3) writes and local syslog daemons expect (RFC 3164 without the host name:
 * `<PRI>Mmm dd hh:mm:ss avfilter[pid]: text`).
 *
 * Why a native binding (node-unix-socket's prebuilt N-API binary, node-unix-socket-linux-x64-gnu,
 * an optional dependency like YARA-X's: nothing to compile at `npm ci`): Node has no unix
 * datagram sockets. Its binary package is used without the umbrella package, whose optional
 * dependencies name platforms the registry may not serve (npm ci then refuses the lock file); the
 * few lines of wrapper are here (DgramSocketWrap's API). Where the binding does not load, the
 * daemon says so on stderr and logs there (log-output.ts). A `logger` child reading
 * lines on its stdin was the other way, but it drops lines silently while /dev/log is missing
 * and reports a lost line only now and then, so lines lost could not be counted; here every
 * send reports its own failure. Sending never blocks: a full or missing socket fails the send
 * (EAGAIN, ENOENT, ECONNREFUSED) and the line is counted as lost; a syslog daemon that comes
 * back is simply sent to again (every datagram names the path).
 * Each process (the master and every worker) has its own socket, so a worker's lines carry
 * their severity too and cost the master nothing.
 *
 * Owns: the datagram format, the socket, the bound on sends in flight, the count of lines lost.
 * Inputs: line bodies with their level. Outputs: datagrams; `lost`. Fails with nothing once
 * open; `openSyslog` fails with an Error when the module cannot be loaded on this platform.
 */
import { createRequire } from 'node:module';
import { statSync } from 'node:fs';
import type { Level, LogSink } from './log.js';

export const DEFAULT_SYSLOG_SOCKET = '/dev/log';
/** LOG_MAIL (syslog.h): facility 2. */
const FACILITY_MAIL = 2;
const SEVERITY: Readonly<Record<Level, number>> = { error: 3, warning: 4, info: 6, debug: 7 };
const TAG = 'avfilter';
/** Longest datagram sent: rsyslog's and syslog-ng's default maximum message size is 8 KiB. */
export const MAX_DATAGRAM_BYTES = 8192;
/** Sends not yet reported beyond this are not started (a syslog that stalls): counted as lost. */
const MAX_IN_FLIGHT = 2000;
const CUT_MARK = ' [cut]';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `<PRI>` of a line: facility mail and the level's severity (error is <19>, info <22>). */
export function priority(level: Level): number {
  return FACILITY_MAIL * 8 + SEVERITY[level];
}

/** `Mmm dd hh:mm:ss` in local time, the day padded with a space (RFC 3164, as glibc). */
export function syslogTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** One datagram, cut (and marked) to MAX_DATAGRAM_BYTES. The body is already safe (log.ts). */
export function syslogDatagram(level: Level, body: string, pid: number, now = new Date()): Buffer {
  const text = body.endsWith('\n') ? body.slice(0, -1) : body;
  const b = Buffer.from(`<${priority(level)}>${syslogTime(now)} ${TAG}[${pid}]: ${text}`, 'utf8');
  if (b.length <= MAX_DATAGRAM_BYTES) return b;
  // cut on a character boundary: back up over UTF-8 continuation bytes
  let end = MAX_DATAGRAM_BYTES - CUT_MARK.length;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return Buffer.concat([b.subarray(0, end), Buffer.from(CUT_MARK)]);
}

/** The binding's datagram socket (node-unix-socket's DgramSocketWrap). */
interface DgramSocketWrap {
  init(self: object): void;
  startRecv(): void;
  sendTo(buf: Buffer, offset: number, length: number, path: string, cb?: (err: Error | undefined) => void): void;
  close(): void;
}
type DgramSocketWrapClass = new (events: { emit(event: string, ...args: unknown[]): boolean }) => DgramSocketWrap;

/** The binding for this platform; throws when there is none. */
function loadBinding(): DgramSocketWrapClass {
  const require = createRequire(import.meta.url);
  const binding = require(`node-unix-socket-${process.platform}-${process.arch}-gnu`) as { DgramSocketWrap?: DgramSocketWrapClass };
  if (typeof binding.DgramSocketWrap !== 'function') throw new Error('node-unix-socket binding without DgramSocketWrap');
  return binding.DgramSocketWrap;
}

export class SyslogSink {
  private inFlight = 0;
  private failed = 0;
  private closed = false;

  private constructor(private readonly socket: DgramSocketWrap, readonly path: string) {}

  readonly sink: LogSink = (line, level) => {
    if (this.closed || this.inFlight >= MAX_IN_FLIGHT) {
      this.failed++;
      return;
    }
    const b = syslogDatagram(level, line, process.pid);
    this.inFlight++;
    try {
      this.socket.sendTo(b, 0, b.length, this.path, (err) => {
        this.inFlight--;
        if (err) this.failed++;
      });
    } catch {
      this.inFlight--;
      this.failed++;
    }
  };

  /** Lines that never reached the syslog socket. */
  get lost(): number {
    return this.failed;
  }

  /** Waits (at most `timeoutMs`) for the sends in flight to be reported. */
  async flush(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.close();
    } catch {
      // already closed by an error: nothing to release
    }
  }

  /** A sink sending to `path`. Throws when the binding cannot be loaded. */
  static open(path: string): SyslogSink {
    const Wrap = loadBinding();
    let sink: SyslogSink | undefined;
    // The binding reports a socket error (nothing is received: the socket is never bound) as an
    // '_error' event; the socket is then closed and every later line lost, counted.
    const events = {
      emit: (event: string): boolean => {
        if (event === '_error' && sink !== undefined) sink.close();
        return true;
      },
    };
    const socket = new Wrap(events);
    socket.init(socket);
    socket.startRecv();
    sink = new SyslogSink(socket, path);
    return sink;
  }
}

/** Why lines sent to `path` would be lost now, or undefined when a socket is there. */
export function syslogSocketProblem(path: string): string | undefined {
  try {
    return statSync(path).isSocket() ? undefined : `${path} is not a socket`;
  } catch (err) {
    return `${path}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be checked'}`;
  }
}
