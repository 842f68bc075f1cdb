/**
 * A message's bytes served in chunks cut at chosen offsets: for the codecs that read a
 * MessageBytes chunk by chunk (delimiters, boundary guesses), tested with input split anywhere.
 */
import { Readable } from 'node:stream';
import type { MessageBytes } from '../../src/bytes/message-bytes.js';

/** The bytes served in chunks cut at `cuts` (offsets into buf). */
export function chunked(buf: Buffer, cuts: number[]): MessageBytes {
  return {
    size: buf.length,
    stream: () => Readable.from([buf]),
    read: async (start, len) => buf.subarray(start, start + len),
    close: async () => undefined,
    chunks: async function* (start, end) {
      let prev = start;
      for (const c of [...cuts.filter((x) => x > start && x < end), end]) {
        if (c > prev) yield buf.subarray(prev, c);
        prev = c;
      }
    },
  };
}
