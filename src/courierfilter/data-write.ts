/**
 * Writing Courier's data file in place: Courier has its path and hard-links it after the
 * filters, so the file is never replaced; it is opened for writing through the path that reaches
 * the inode the request checked (/proc/self/fd/N) and written there, owner and mode untouched.
 *
 * Owns: the write primitives the header edit (data-header.ts) and strip (effects/strip.ts)
 * share: a splice (bytes replaced, the tail behind them moved, the file cut when it shrinks,
 * fsync), range reads and writes, and the synchronous calls a small file is written with.
 * Fails with AvError EDATA_WRITE (origin internal) naming the step and the errno; the caller
 * answers 4xx.
 */
import { closeSync, fsync, openSync, readSync, writeSync, writevSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { AvError } from '../errors.js';

/** The file ended before the bytes it had when it was opened (someone else cut it). */
function shorter(): AvError {
  return new AvError('EDATA_SHORT', 'internal', 'the data file is shorter than it was');
}

/** Files up to this size are rewritten from one buffer; larger ones have their tail shifted. */
export const SMALL_FILE_BYTES = 1024 * 1024;

/** How much of a large file's tail moves per read and write. */
const SHIFT_CHUNK_BYTES = 1024 * 1024;

export const fsyncAsync = promisify(fsync);

/** Runs `fn` on the file opened for writing (same inode), closes it; errors become EDATA_WRITE. */
export async function withFd<T>(path: string, fn: (fd: number) => Promise<T>, what: string): Promise<T> {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (err) {
    throw writeError('open the data file for writing', err);
  }
  try {
    return await fn(fd);
  } catch (err) {
    throw writeError(what, err);
  } finally {
    closeSync(fd);
  }
}

export function readWholeSync(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let off = 0; off < size;) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) throw shorter();
    off += n;
  }
  return buf;
}

export function writeAllSync(fd: number, buf: Buffer, at: number): void {
  for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off, at + off);
}

/** Buffers written one after the other from `at`, in one writev (no copy into one buffer) unless it comes up short. */
export function writevAllSync(fd: number, bufs: readonly Buffer[], at: number): void {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  const done = writevSync(fd, bufs as Buffer[], at);
  if (done === total) return;
  writeAllSync(fd, Buffer.concat(bufs as Buffer[]).subarray(done), at + done);
}

/** The file as a writable handle on the same inode; the errno becomes EDATA_WRITE. */
export async function openForWrite(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r+');
  } catch (err) {
    throw writeError('open the data file for writing', err);
  }
}

export function writeError(what: string, err: unknown): AvError {
  if (err instanceof AvError) return err;
  const sys = (err as NodeJS.ErrnoException).code;
  return new AvError('EDATA_WRITE', 'internal', `cannot ${what}: ${sys ?? String(err)}`, { cause: err });
}

export interface Splice {
  /** Where the replaced bytes start. */
  readonly at: number;
  readonly oldLength: number;
  readonly bytes: Buffer;
  /** The file's size now. */
  readonly size: number;
  /** The file's bytes, when in memory (then the tail is not read). */
  readonly known: Buffer | undefined;
  readonly signal: AbortSignal | undefined;
}

/**
 * file[at, at + oldLength) becomes `bytes`, the tail behind it moved by the difference, the file
 * cut when it shrinks; fsync. A small file: one write of bytes + tail. A large one: the tail is
 * moved in chunks (from the end when it grows, from the front when it shrinks).
 */
export async function writeSplice(fh: FileHandle, s: Splice): Promise<void> {
  const tailFrom = s.at + s.oldLength;
  const move = s.bytes.length - s.oldLength;
  try {
    if (s.size <= SMALL_FILE_BYTES || move === 0) {
      const tail = move === 0 ? Buffer.alloc(0) : s.known !== undefined ? s.known.subarray(tailFrom) : await readRange(fh, tailFrom, s.size - tailFrom);
      await writeAll(fh, Buffer.concat([s.bytes, tail]), s.at);
    } else {
      await shift(fh, tailFrom, s.size, move, s.signal);
      await writeAll(fh, s.bytes, s.at);
    }
    if (move < 0) await fh.truncate(s.size + move);
    await fh.sync();
  } catch (err) {
    if (s.signal?.aborted) throw s.signal.reason;
    throw writeError('write the data file', err);
  }
}

/** Moves file[from, end) by `by` bytes, chunk by chunk, never overwriting bytes not yet moved. */
async function shift(fh: FileHandle, from: number, end: number, by: number, signal: AbortSignal | undefined): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(SHIFT_CHUNK_BYTES, Math.max(1, end - from)));
  if (by > 0) {
    for (let hi = end; hi > from;) {
      signal?.throwIfAborted();
      const lo = Math.max(from, hi - buf.length);
      await readInto(fh, buf, hi - lo, lo);
      await writeAll(fh, buf.subarray(0, hi - lo), lo + by);
      hi = lo;
    }
  } else {
    for (let lo = from; lo < end;) {
      signal?.throwIfAborted();
      const hi = Math.min(end, lo + buf.length);
      await readInto(fh, buf, hi - lo, lo);
      await writeAll(fh, buf.subarray(0, hi - lo), lo + by);
      lo = hi;
    }
  }
}

export async function readRange(fh: FileHandle, at: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  await readInto(fh, buf, length, at);
  return buf;
}

async function readInto(fh: FileHandle, buf: Buffer, length: number, at: number): Promise<void> {
  for (let off = 0; off < length;) {
    const { bytesRead } = await fh.read(buf, off, length - off, at + off);
    if (bytesRead === 0) throw shorter();
    off += bytesRead;
  }
}

export async function writeAll(fh: FileHandle, buf: Buffer, at: number): Promise<void> {
  for (let off = 0; off < buf.length;) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, at + off);
    off += bytesWritten;
  }
}
