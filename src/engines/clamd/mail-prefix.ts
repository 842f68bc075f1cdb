/**
 * Make clamd treat a raw message as e-mail (peers-and-engines.md §B1.6).
 *
 * libclamav types its input as mail only when the first bytes match one of its mail magics;
 * otherwise it scans the bytes raw and never decodes base64 attachments. A message that starts
 * with e.g. `DKIM-Signature:` would pass with an encoded virus. Like clamav-milter and Haraka we
 * prepend a harmless header line when the message does not start with a known magic.
 *
 * Owns: the list of starts we trust, the prefix line, and a ScanSource wrapper that adds it.
 * Inputs: a ScanSource. Outputs: the same or a prefixed ScanSource.
 * Fails with: EIO-worthy read errors are thrown by readHead() for the caller to turn into a result.
 */
import { Readable } from 'node:stream';
import type { ScanSource } from '../engine.js';

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

/** `source` with `prefix` in front; size includes the prefix (it counts against StreamMaxLength). */
export function prefixedSource(prefix: Buffer, source: ScanSource): ScanSource {
  return {
    size: prefix.length + source.size,
    ...(source.bytes !== undefined ? { bytes: Buffer.concat([prefix, source.bytes]) } : {}),
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
