/**
 * Bytes read again and again by range: the message (the data file, the spooled copy of a
 * stream, or a buffer) and every stored part, for each reading, walk and unpacker that reads
 * them.
 *
 * Owns: MessageBytes (ranges of one immutable byte sequence) over a buffer or a file. Inputs: a
 * buffer, or a path (and its size). Outputs: MessageBytes. Fails with the fs error of a failed
 * read (the MIME extractor reports it as EMIME_IO).
 */
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

/** Reads of ranges use this chunk size: large enough for few syscalls, small enough for memory. */
const RANGE_READ_BYTES = 256 * 1024;

export interface MessageBytes {
  readonly size: number;
  /** The bytes themselves, when they are one buffer in memory (never changed while in use). */
  readonly buffer?: Buffer | undefined;
  /** Bytes [start, end) as a stream of chunks. */
  stream(start: number, end: number): Readable;
  /**
   * Up to `len` bytes from `start` (fewer at the end). `into`: a buffer of at least `len` bytes
   * the caller reuses from one read to the next (a file is then read into it, not into a new
   * buffer each time; bytes in memory are returned as they are): the result is valid until the
   * next read into it.
   */
  read(start: number, len: number, into?: Buffer): Promise<Buffer>;
  /**
   * Bytes [start, end) in chunks that are only valid until the next one is asked for (a file
   * is read into one reused buffer: a 100 MB message leaves no 100 MB of garbage behind).
   */
  chunks(start: number, end: number): AsyncIterable<Buffer>;
  /** Releases the file handle kept open between reads (a later read opens it again). */
  close(): Promise<void>;
}

export function bufferBytes(buf: Buffer): MessageBytes {
  return {
    size: buf.length,
    buffer: buf,
    stream: (start, end) => {
      const slice = buf.subarray(start, end);
      const chunks: Buffer[] = [];
      for (let i = 0; i < slice.length; i += RANGE_READ_BYTES) chunks.push(slice.subarray(i, i + RANGE_READ_BYTES));
      return Readable.from(chunks, { objectMode: true });
    },
    read: async (start, len) => buf.subarray(start, Math.min(buf.length, start + len)),
    close: async () => undefined,
    chunks: async function* (start, end) {
      for (let i = start; i < end; i += RANGE_READ_BYTES) yield buf.subarray(i, Math.min(end, i + RANGE_READ_BYTES));
    },
  };
}

/**
 * The lenient reading asks for many small ranges in file order (a header block, a sniff, a
 * body of a few KiB, part after part); one fs read each made a message of 900 parts wait on
 * the thread pool thousands of times. Ranges shorter than this are served from a block read
 * ahead of them. Only the message itself has such a block (one per extraction, dropped by
 * close()), not each stored part.
 */
const READ_AHEAD_BYTES = 1024 * 1024;

/** The message file: range reads with a read-ahead block (see READ_AHEAD_BYTES). */
export async function fileBytes(path: string): Promise<MessageBytes> {
  const size = (await stat(path)).size;
  return fileBytesOfSize(path, size, READ_AHEAD_BYTES);
}

export function fileBytesOfSize(path: string, size: number, readAheadBytes = 0): MessageBytes {
  // one handle for all reads: a message with many parts is read in many small ranges
  let handle: Promise<FileHandle> | undefined;
  const fh = (): Promise<FileHandle> => (handle ??= open(path, 'r'));
  const readAt = async (buf: Buffer, len: number, pos: number): Promise<number> => {
    let off = 0;
    const h = await fh();
    while (off < len) {
      const { bytesRead } = await h.read(buf, off, len - off, pos + off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off;
  };
  // a fresh buffer per block: views handed out of an earlier block stay valid
  let block: { start: number; buf: Buffer } | undefined;
  /** The bytes [pos, end) from the read-ahead block, reading a new block if needed; undefined when too long for one. */
  const ahead = async (pos: number, end: number): Promise<Buffer | undefined> => {
    if (readAheadBytes === 0 || end - pos > readAheadBytes) return undefined;
    if (pos >= size) return Buffer.alloc(0);
    if (block === undefined || pos < block.start || end > block.start + block.buf.length) {
      const buf = Buffer.allocUnsafe(Math.min(readAheadBytes, size - pos));
      block = { start: pos, buf: buf.subarray(0, await readAt(buf, buf.length, pos)) };
    }
    return block.buf.subarray(pos - block.start, Math.min(end, block.start + block.buf.length) - block.start);
  };
  return {
    size,
    stream: (start, end) =>
      end <= start ? Readable.from([], { objectMode: true }) : createReadStream(path, { start, end: end - 1, highWaterMark: RANGE_READ_BYTES }),
    read: async (start, len, into) => {
      const n = Math.max(0, Math.min(len, size - start));
      if (n === 0) return Buffer.alloc(0);
      const cached = await ahead(start, start + n);
      if (cached !== undefined) return cached;
      const buf = into !== undefined && into.length >= n ? into : Buffer.allocUnsafe(n);
      return buf.subarray(0, await readAt(buf, n, start));
    },
    chunks: async function* (start, end) {
      if (end <= start) return;
      const cached = await ahead(start, Math.min(end, size));
      if (cached !== undefined) {
        if (cached.length > 0) yield cached;
        return;
      }
      const buf = Buffer.allocUnsafe(Math.min(RANGE_READ_BYTES, end - start));
      for (let pos = start; pos < end; ) {
        const n = await readAt(buf, Math.min(buf.length, end - pos), pos);
        if (n === 0) break;
        pos += n;
        yield buf.subarray(0, n);
      }
    },
    close: async () => {
      block = undefined;
      const h = handle;
      handle = undefined;
      if (h !== undefined) await (await h.catch(() => undefined))?.close().catch(() => undefined);
    },
  };
}
