/**
 * ScanSource, the bytes an engine scans, and its two implementations: a file on disk (the
 * data file, a spilled part) and a buffer. Defined here, below the engines, so that what makes
 * the bytes (the MIME extractor, the container stage) needs no engine to name them.
 * Owns no lifetime: whoever created the file removes it.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';

/** Bytes to scan. A source can be read more than once (one engine after another). */
export interface ScanSource {
  /** Exact size in bytes. */
  readonly size: number;
  /** A fresh stream over all the bytes, from the start. */
  stream(): Readable;
  /** All bytes in memory; callers only ask for sources whose size they have bounded. */
  buffer(): Promise<Buffer>;
  /**
   * A file holding exactly these bytes, when there is one: an engine that reads files itself
   * (YARA-X maps it) can then scan it without a copy in memory. Valid until the item's owner
   * disposes of it; opening it again gives the same bytes (it is never a FIFO or a device).
   */
  readonly path?: string | undefined;
  /** The bytes themselves, when they are in memory already (no read, no copy needed). */
  readonly bytes?: Buffer | undefined;
}

/** Bytes in memory; `path`, when given, is a file holding the same bytes (see ScanSource.path). */
export function bufferSource(buf: Buffer, path?: string): ScanSource {
  return {
    size: buf.length,
    bytes: buf,
    ...(path !== undefined ? { path } : {}),
    stream: () => Readable.from([buf], { objectMode: false }),
    buffer: async () => buf,
  };
}

export function fileSource(path: string, size: number): ScanSource {
  return {
    size,
    path,
    stream: () => createReadStream(path, { highWaterMark: 64 * 1024 }),
    buffer: () => readFile(path),
  };
}
