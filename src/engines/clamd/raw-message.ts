/**
 * How clamd is given the raw message (the clamd engine's `raw_message` option).
 *
 * libclamav types its input by its first bytes, and by file-type patterns it looks for inside
 * text and unknown binary data. Two presentations:
 *
 * - "mail": clamd parses the raw message as e-mail — its own MIME reading, its mail (target
 *   type 4) and phishing signatures. It types input as mail only when the first bytes match
 *   one of its mail magics; otherwise it scans the bytes raw and never decodes base64
 *   attachments (a message that starts with `DKIM-Signature:` would pass with an encoded
 *   virus), so, like clamav-milter and Haraka, we prepend a harmless header line when the
 *   message does not start with a known magic (peers-and-engines.md §B1.6).
 * - "data": clamd scans the raw bytes as plain data (its byte signatures, target type 0) and
 *   does not parse them as mail; the decoded parts reach it as items of their own anyway.
 *   A line put in front does not do it: clamd finds `From: `-like headers anywhere in text or
 *   in unknown binary data and reads the message from there. The raw message is framed
 *   behind gzip's two magic bytes instead: clamd types it as a gzip stream, which it neither
 *   searches for embedded files nor, since the stream does not inflate, unpacks — and its
 *   byte signatures still run over every byte (the clamd engine test checks all three against
 *   a live clamd).
 * - "text": as "data", without the base64 bodies that are scanned decoded as items of their
 *   own (ScanItem.decodedBodies: only for a message one reading vouched for, whose every base64
 *   body decoded with nothing irregular). Headers, delimiters, preambles and every other body
 *   stay. A message read both ways, or not in memory, is sent whole, as "data" sends it. What
 *   it gives up: byte signatures written over base64 text itself, in those bodies.
 * - "parts": clamd is not given the raw message of a message that read one way only (the
 *   engine declines it, Engine.declines): only the decoded parts, as Courier::Filter's ClamAVd
 *   does. What it gives up, by the admin's choice: clamd's byte signatures over the headers and
 *   MIME delimiters of such a message (its preamble, epilogue and every body are parts of their
 *   own), and over byte runs that cross from one of those into another — for one clamd scan
 *   less per message. A message read both ways (our readings could not vouch that it is plain:
 *   an irregular boundary, transfer encoding or delimiter), or not in memory, goes as "mail"
 *   sends it: clamd's own MIME reading is one more of the readings such a message may be
 *   decoded by, and our decoded parts alone would leave whatever only clamd's parser decodes
 *   (it tries every decoder for an unknown encoding, trims boundaries, finds header blocks
 *   inside text bodies) unscanned.
 *
 * Owns: the list of starts we trust, the two prefixes, a ScanSource wrapper that adds one, and
 * the raw message without its decoded bodies.
 * Inputs: a ScanSource. Outputs: the same or a prefixed ScanSource.
 * Fails with: EIO-worthy read errors are thrown by readHead() for the caller to turn into a result.
 */
import { Readable } from 'node:stream';
import type { ScanSource } from '../engine.js';

export type RawMessageMode = 'mail' | 'data' | 'text' | 'parts';

export const RAW_MESSAGE_MODES: readonly RawMessageMode[] = ['mail', 'data', 'text', 'parts'];

/** Courier data files use LF line ends; the line is an ordinary trace header. */
export const MAIL_PREFIX = Buffer.from('Received: from avfilter (localhost)\n', 'latin1');

/**
 * Starts at offset 0 that libclamav's filetype table types as mail (case-sensitive there).
 * Only entries we rely on; any other start gets the prefix, which is always safe. The clamd
 * engine test checks every entry against a live clamd.
 */
export const MAIL_MAGICS: readonly string[] = [
  'From ',
  '>From ',
  'Received: ',
  'Return-Path: ',
  'Return-path: ',
  'Delivered-To: ',
  'Date: ',
  'Subject: ',
  'To: ',
  'Message-ID: ',
  'X-Envelope-From: ',
  'X-Original-To: ',
  'X-Real-To: ',
];

/**
 * gzip's magic (RFC 1952 ID1 ID2). What follows is not a gzip header (no method byte 8), so
 * clamd's gunzip stops at once; it does not look for embedded file types inside gzip data.
 */
export const DATA_PREFIX = Buffer.from([0x1f, 0x8b]);

/** Bytes of the head needed to test every magic. */
export const HEAD_BYTES = Math.max(...MAIL_MAGICS.map((m) => m.length));

export function looksLikeMail(head: Buffer): boolean {
  return MAIL_MAGICS.some((m) => head.length >= m.length && head.toString('latin1', 0, m.length) === m);
}

/** The first `n` bytes of the source (fewer if it is shorter); the stream is released. */
export async function readHead(source: ScanSource, n: number): Promise<Buffer> {
  if (source.size === 0) return Buffer.alloc(0);
  if (source.bytes !== undefined) return source.bytes.subarray(0, n);
  const stream = source.stream();
  const parts: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream) {
      const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      parts.push(buf);
      got += buf.length;
      if (got >= n) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(parts).subarray(0, n);
}

/**
 * A source whose bytes in memory are pieces sent one after the other (the prefix, then the
 * message), so that the message is not copied behind its prefix for every scan.
 */
export interface PiecedSource extends ScanSource {
  readonly pieces?: readonly Buffer[] | undefined;
}

/**
 * `source` with `prefix` in front; size includes the prefix (it counts against StreamMaxLength).
 * A source in memory keeps its bytes where they are: `pieces` are the prefix and those bytes,
 * and `bytes` (the two joined) is made only when someone asks for it.
 */
export function prefixedSource(prefix: Buffer, source: ScanSource): PiecedSource {
  if (source.bytes !== undefined && source.bytes.length === source.size) return piecedSource(prefix, [source.bytes]);
  return {
    size: prefix.length + source.size,
    stream: () => Readable.from(withPrefix(prefix, source), { objectMode: false }),
    buffer: async () => Buffer.concat([prefix, await source.buffer()]),
  };
}

async function* withPrefix(prefix: Buffer, source: ScanSource): AsyncGenerator<Buffer> {
  yield prefix;
  const stream = source.stream();
  try {
    for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
  } finally {
    stream.destroy();
  }
}

/**
 * The bytes of `whole` outside `ranges` (sorted, disjoint, inside it), as views of it: no copy.
 * Undefined when the ranges are not that (then nothing is left out).
 */
export function outside(whole: Buffer, ranges: ReadonlyArray<readonly [number, number]>): Buffer[] | undefined {
  const pieces: Buffer[] = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < at || end <= start || end > whole.length) return undefined;
    if (start > at) pieces.push(whole.subarray(at, start));
    at = end;
  }
  if (at < whole.length) pieces.push(whole.subarray(at));
  return pieces;
}

/**
 * `pieces` in order behind `prefix`, as a source in memory: `pieces` are sent as they are, and
 * `bytes` (all of them joined) is made only when someone asks for it.
 */
function piecedSource(prefix: Buffer, pieces: readonly Buffer[]): PiecedSource {
  const all = [prefix, ...pieces];
  const size = all.reduce((n, b) => n + b.length, 0);
  let joined: Buffer | undefined;
  const bytes = (): Buffer => (joined ??= Buffer.concat(all, size));
  return {
    size,
    pieces: all,
    get bytes(): Buffer {
      return bytes();
    },
    stream: () => Readable.from(all, { objectMode: false }),
    buffer: async () => bytes(),
  };
}

/**
 * The raw message as clamd is to see it in `mode`; `decodedBodies` (ScanItem.decodedBodies)
 * are left out in "text" mode, when the message is in memory. In "parts" mode a message read
 * one way only (`readOnce`) goes as "text" would send it (the engine declines it before it
 * gets here, but a caller that asks anyway gets no more than "text"), any other as "mail".
 */
export async function presentRaw(source: ScanSource, mode: RawMessageMode, decodedBodies?: ReadonlyArray<readonly [number, number]>, readOnce?: boolean): Promise<ScanSource> {
  if ((mode === 'text' || mode === 'parts') && decodedBodies !== undefined && decodedBodies.length > 0 && source.bytes !== undefined && source.bytes.length === source.size) {
    const pieces = outside(source.bytes, decodedBodies);
    if (pieces !== undefined) return piecedSource(DATA_PREFIX, pieces);
  }
  if (mode === 'parts' && readOnce === true) return prefixedSource(DATA_PREFIX, source);
  if (mode !== 'mail' && mode !== 'parts') return prefixedSource(DATA_PREFIX, source);
  const head = await readHead(source, HEAD_BYTES);
  return looksLikeMail(head) ? source : prefixedSource(MAIL_PREFIX, source);
}
