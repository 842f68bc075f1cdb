/**
 * ScanSource implementations: a file on disk (the data file, a spilled part) and a buffer.
 * Owns no lifetime: whoever created the file removes it.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ScanSource } from '../engines/engine.js';

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
