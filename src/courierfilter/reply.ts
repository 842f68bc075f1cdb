/**
 * Courier filter reply codec (courier-filter-protocol.md §2.3, §2.4).
 *
 * Owns: the bytes a filter writes back to submit, and a parser for them.
 * Inputs: formatReply takes a reply code and text from our own verdict table, which may embed
 * text from an engine (virus names, error messages) that we do not trust.
 * Outputs: formatReply returns an SMTP-style reply ("NNN-text\n" lines, last "NNN text\n"),
 * 7-bit ASCII, never empty. parseReply returns a ParsedReply and never throws.
 * Fails with: formatReply throws an AvError EBAD_REPLY_CODE (origin internal) for a code outside
 * 000-099 / 200-599 (a programming or config error: validate config codes with isReplyCode).
 * parseReply reports EBAD_REPLY, ELINE_TOO_LONG, ETRUNCATED as error results.
 */
import { AvError } from '../errors.js';

/** Text bytes per reply line. RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets with code and CRLF. */
export const MAX_REPLY_LINE_BYTES = 400;
/** Lines per reply: a reply is a verdict, not a report; submit copies every line to the client. */
export const MAX_REPLY_LINES = 20;
/** Longest line parseReply accepts, "\n" excluded; generous against RFC 5321's 512. */
export const MAX_PARSE_LINE_BYTES = 2048;

export type ParsedReply =
  | { state: 'incomplete' }
  | { state: 'done'; code: number; lines: string[]; length: number }
  | { state: 'error'; code: string; message: string };

/** 0xx (accept and skip later filters, §2.4) or 200-599. 1xx would be read as "accepted" too, but no one means that. */
export function isReplyCode(code: number): boolean {
  return Number.isInteger(code) && ((code >= 0 && code <= 99) || (code >= 200 && code <= 599));
}

/**
 * One line of printable ASCII: control characters (CR, LF, NUL, ESC, DEL, C1) become spaces,
 * other non-ASCII becomes "?" (SMTP replies are 7-bit, RFC 5321 §4.2), runs of spaces collapse,
 * the ends are trimmed and the result is cut at maxBytes. May return "".
 */
export function sanitizeLine(text: string, maxBytes: number): string {
  const s = typeof text === 'string' ? text : '';
  return s
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
    .replace(/[^\u0020-\u007e]/gu, '?')
    .replace(/ {2,}/g, ' ')
    .trim()
    .slice(0, Math.max(0, maxBytes))
    .trimEnd();
}

function defaultText(code: number): string {
  if (code < 400) return 'Ok';
  if (code < 500) return 'Temporary failure, please try again later';
  return 'Message rejected';
}

/** Format a reply. A string is one line (embedded line breaks become spaces); an array gives one line each. */
export function formatReply(code: number, text: string | string[]): Buffer {
  if (!isReplyCode(code)) {
    throw new AvError('EBAD_REPLY_CODE', 'internal', `reply code must be 0-99 or 200-599, got ${String(code)}`);
  }
  const input = Array.isArray(text) ? text : [text];
  let lines = input.map((t) => sanitizeLine(t, MAX_REPLY_LINE_BYTES)).filter((l) => l.length > 0);
  if (code < 100) {
    // Courier rewrites only the first line of a 0xx reply to 2xx; continuation lines would keep
    // their 0xx and the ESMTP side rejects mixed codes, so a 0xx reply is always one line.
    lines = [sanitizeLine(lines.join(' '), MAX_REPLY_LINE_BYTES)];
  }
  lines = lines.slice(0, MAX_REPLY_LINES).filter((l) => l.length > 0);
  if (lines.length === 0) lines = [defaultText(code)];
  const nnn = String(code).padStart(3, '0');
  const last = lines.length - 1;
  return Buffer.from(lines.map((l, i) => `${nnn}${i === last ? ' ' : '-'}${l}\n`).join(''), 'ascii');
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

/** Checks what is there of a line so far; returns an error message or undefined. */
function checkLineStart(line: Buffer, code: string | undefined): string | undefined {
  for (let i = 0; i < Math.min(3, line.length); i++) {
    if (!isDigit(line[i])) return 'reply line does not start with a 3-digit code';
  }
  if (line.length >= 3 && code !== undefined && line.toString('latin1', 0, 3) !== code) {
    return 'reply lines carry different codes';
  }
  if (line.length >= 4 && line[3] !== 0x20 && line[3] !== 0x2d && line[3] !== 0x0d) {
    return 'reply code is not followed by " " or "-"';
  }
  return undefined;
}

/**
 * Parse one reply from the start of `buf`. Until the final line ("NNN text" or "NNN") has its
 * "\n" the result is 'incomplete', unless `ended` says no more bytes will come: then a final
 * line without "\n" is accepted (submit tolerates that too) and anything shorter is ETRUNCATED.
 * Errors are reported as soon as the bytes seen prove the reply bad. `length` is the number of
 * bytes the reply used; bytes after it are not looked at.
 */
export function parseReply(buf: Buffer, ended = false): ParsedReply {
  let pos = 0;
  let code: string | undefined;
  const lines: string[] = [];
  for (;;) {
    const nl = buf.indexOf(0x0a, pos);
    const end = nl === -1 ? buf.length : nl;
    let line = buf.subarray(pos, end);
    // The start first: a bad start is proven by its first bytes, so the answer for a longer
    // prefix of the same bytes must not turn into ELINE_TOO_LONG.
    const bad = checkLineStart(line, code);
    if (bad !== undefined) return { state: 'error', code: 'EBAD_REPLY', message: bad };
    if (line.length > MAX_PARSE_LINE_BYTES + 1) {
      return { state: 'error', code: 'ELINE_TOO_LONG', message: `reply line longer than ${MAX_PARSE_LINE_BYTES} bytes` };
    }
    if (nl === -1 && !ended) return { state: 'incomplete' };
    if (nl === -1 && line.length === 0) {
      return { state: 'error', code: 'ETRUNCATED', message: 'reply ended before its final line' };
    }
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length > MAX_PARSE_LINE_BYTES) {
      return { state: 'error', code: 'ELINE_TOO_LONG', message: `reply line longer than ${MAX_PARSE_LINE_BYTES} bytes` };
    }
    if (line.length < 3) {
      return nl === -1
        ? { state: 'error', code: 'ETRUNCATED', message: 'reply ended inside a reply code' }
        : { state: 'error', code: 'EBAD_REPLY', message: 'reply line shorter than a 3-digit code' };
    }
    if (line.length > 3 && line[3] !== 0x20 && line[3] !== 0x2d) {
      return { state: 'error', code: 'EBAD_REPLY', message: 'reply code is not followed by " " or "-"' };
    }
    code ??= line.toString('latin1', 0, 3);
    lines.push(line.toString('utf8', Math.min(4, line.length)));
    const final = line.length === 3 || line[3] === 0x20;
    if (final) return { state: 'done', code: Number(code), lines, length: nl === -1 ? buf.length : nl + 1 };
    if (nl === -1) return { state: 'error', code: 'ETRUNCATED', message: 'reply ended after a continuation line' };
    pos = nl + 1;
  }
}
