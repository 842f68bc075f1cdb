/**
 * ScanSource implementations: a file on disk (the data file, a spilled part) and a buffer.
 * Owns no lifetime: whoever created the file removes it.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ScanSource } from '../engines/engine.js';

export function bufferSource(buf: Buffer): ScanSource {
  return {
    size: buf.length,
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
