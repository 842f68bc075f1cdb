/**
 * clamd wire codec (peers-and-engines.md §B1): pure functions and one incremental parser, no
 * sockets, so every byte boundary can be tested.
 *
 * Owns: the `z`-prefixed commands, INSTREAM chunk framing, splitting clamd's byte stream into
 * reply lines, and the meaning of one reply line.
 * Inputs: buffers from a socket. Outputs: command/frame buffers, reply lines, ClamdReply values
 * and, for a whole INSTREAM reply, an EngineResult.
 * Fails with: nothing thrown for peer input; a reply we do not recognise is an EPROTOCOL error,
 * never "clean". frameHeader() throws RangeError for a length the wire cannot carry (a bug).
 */
import { EngineErrorCode, type EngineResult } from '../engine.js';

/** `z` prefix: the command and clamd's reply both end with NUL (§B1.1). */
export type ClamdCommand = 'INSTREAM' | 'PING' | 'VERSION' | 'RELOAD';

export function encodeCommand(command: ClamdCommand): Buffer {
  return Buffer.from(`z${command}\0`, 'latin1');
}

/** Largest chunk the 4-byte length header can announce. */
export const MAX_CHUNK_BYTES = 0xffffffff;

/** The 4-byte big-endian length that precedes each INSTREAM chunk. */
export function frameHeader(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > MAX_CHUNK_BYTES) {
    throw new RangeError(`INSTREAM chunk length out of range: ${length}`);
  }
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(length, 0);
  return header;
}

/** One whole frame (header + bytes); the client writes header and bytes separately instead. */
export function frameChunk(data: Buffer): Buffer {
  if (data.length === 0) throw new RangeError('an empty INSTREAM chunk would end the stream');
  return Buffer.concat([frameHeader(data.length), data]);
}

/** The zero-length chunk that tells clamd the stream is complete. */
export function endOfStream(): Buffer {
  return Buffer.alloc(4);
}

/**
 * Longest reply line we buffer or return. clamd's replies are one short line (a path, a name,
 * an error text); anything longer is not clamd, and must not grow our memory.
 */
export const REPLY_MAX_BYTES = 64 * 1024;

/**
 * Most bytes of one whole reply, terminators included. clamd sends one line (one per name with
 * AllMatch); a peer that keeps sending short lines (a stream of NULs) would otherwise pile them
 * up in memory until the reply deadline.
 */
export const REPLY_MAX_TOTAL_BYTES = 256 * 1024;

/** clamd sends this one LF-terminated even to `z` commands, then closes (§B1.2). */
const READ_TIMED_OUT = 'COMMAND READ TIMED OUT';
const READ_TIMED_OUT_LF = Buffer.from(`${READ_TIMED_OUT}\n`, 'latin1');

/**
 * Splits clamd's output into reply lines (without terminator). Feed it every chunk in order;
 * `partial` is what arrived after the last terminator (non-empty at close = truncated reply).
 */
export class ReplyParser {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of the lines returned so far, terminators included. */
  private used = 0;
  private tooLong = false;

  /**
   * Returns the lines completed by this chunk; none once `overflowed` is set. Keeps a
   * reference to `chunk` until its line is complete: pass a buffer that will not be reused.
   */
  push(chunk: Buffer): string[] {
    if (this.tooLong) return [];
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const lines: string[] = [];
    for (;;) {
      const timedOut = startsWith(this.pending, READ_TIMED_OUT_LF);
      const nul = timedOut ? READ_TIMED_OUT.length : this.pending.indexOf(0);
      // Past either bound the peer is not clamd, whether the line is complete or not. An
      // unfinished line is judged by what has arrived of it, which only grows, so the verdict
      // does not depend on how the bytes were chunked.
      const length = nul < 0 ? this.pending.length : nul;
      const total = this.used + length + (nul < 0 ? 0 : 1);
      if (length > REPLY_MAX_BYTES || total > REPLY_MAX_TOTAL_BYTES) {
        this.tooLong = true;
        this.pending = Buffer.alloc(0);
        break;
      }
      if (nul < 0) break;
      lines.push(timedOut ? READ_TIMED_OUT : this.pending.subarray(0, nul).toString('utf8'));
      this.pending = this.pending.subarray(nul + 1);
      this.used = total;
    }
    return lines;
  }

  /** A line passed REPLY_MAX_BYTES, or the reply REPLY_MAX_TOTAL_BYTES: the peer is not clamd. */
  get overflowed(): boolean {
    return this.tooLong;
  }

  /** Bytes after the last terminator, as text (for error messages). */
  get partial(): string {
    return this.pending.toString('utf8');
  }
}

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return buf.length >= prefix.length && buf.subarray(0, prefix.length).equals(prefix);
}

/** The meaning of one reply line to INSTREAM. */
export type ClamdReply =
  | { readonly kind: 'clean' }
  | { readonly kind: 'infected'; readonly name: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

/** Longest virus name taken as one: clamd's are well under 100 bytes; this is for the header and logs. */
export const MAX_VIRUS_NAME_BYTES = 512;

const SANE_NAME = new RegExp(`^[\\x21-\\x7e]{1,${MAX_VIRUS_NAME_BYTES}}$`);
const SIZE_LIMIT_REPLY = 'INSTREAM size limit exceeded. ERROR';
const FOUND_SUFFIX = ' FOUND';
const ERROR_SUFFIX = 'ERROR';

/**
 * Classifies one INSTREAM reply line. Only the exact `stream: OK` is clean; the virus name is
 * taken from the right (after the last ": ") because only the part before it could ever hold
 * a colon-space (a path in SCAN replies). A name that is not 1..MAX_VIRUS_NAME_BYTES of
 * printable ASCII without spaces is not clamd talking (EPROTOCOL): it would otherwise reach the
 * X-Virus-Found header, the quarantine record and the logs as it came.
 */
export function classifyReply(line: string): ClamdReply {
  if (line === 'stream: OK') return { kind: 'clean' };
  if (line === SIZE_LIMIT_REPLY) {
    return { kind: 'error', code: EngineErrorCode.SIZE_LIMIT, message: `clamd: ${line} (StreamMaxLength)` };
  }
  if (line.endsWith(FOUND_SUFFIX)) {
    const body = line.slice(0, -FOUND_SUFFIX.length);
    const sep = body.lastIndexOf(': ');
    const name = sep < 0 ? '' : body.slice(sep + 2);
    if (sep > 0 && SANE_NAME.test(name)) return { kind: 'infected', name };
    return protocolError(line);
  }
  if (line.endsWith(ERROR_SUFFIX) && line.length > ERROR_SUFFIX.length) {
    return { kind: 'error', code: EngineErrorCode.SCANNER, message: `clamd: ${line}` };
  }
  if (line === READ_TIMED_OUT) {
    // clamd gave up waiting for us (its ReadTimeout/CommandReadTimeout): a scanner-side fault.
    return { kind: 'error', code: EngineErrorCode.SCANNER, message: `clamd: ${line}` };
  }
  return protocolError(line);
}

function protocolError(line: string): ClamdReply {
  return { kind: 'error', code: EngineErrorCode.PROTOCOL, message: `unexpected clamd reply: ${quote(line)}` };
}

/** Reply text in a message: bounded and with control characters made visible. */
export function quote(text: string): string {
  const short = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  return JSON.stringify(short);
}

/**
 * The verdict of a whole INSTREAM reply. clamd sends one line; should it ever send several,
 * an unrecognised line makes the whole reply untrustworthy (EPROTOCOL), any FOUND line wins
 * over scanner errors (a found virus is a definite answer), and only all-OK is clean.
 */
export function resultFromReplies(lines: readonly string[]): EngineResult {
  if (lines.length === 0) {
    return { status: 'error', code: EngineErrorCode.PROTOCOL, message: 'clamd sent no reply' };
  }
  const replies = lines.map(classifyReply);
  const garbage = replies.find((r) => r.kind === 'error' && r.code === EngineErrorCode.PROTOCOL);
  if (garbage && garbage.kind === 'error') return { status: 'error', code: garbage.code, message: garbage.message };
  const names = replies.flatMap((r) => (r.kind === 'infected' ? [r.name] : []));
  if (names.length > 0) return { status: 'infected', names: [...new Set(names)] };
  const failure = replies.find((r) => r.kind === 'error');
  if (failure && failure.kind === 'error') return { status: 'error', code: failure.code, message: failure.message };
  return { status: 'clean' };
}
