/**
 * Adding a header to Courier's data file in place (action "pass": deliver with a header naming
 * the virus, so maildrop or a later filter can act on it).
 *
 * Courier's own Received: header stays first; the new field goes right after it. The file is
 * rewritten through a private copy and then written back into the same inode (Courier has the
 * path and hard-links it later, so it must not be replaced). LF line ends, as Courier writes.
 * Fails with the errno of the failing step; the caller answers 4xx, so a half-written file is
 * discarded by Courier together with the rest of the submission.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Longest first header we look through for its end before giving up and inserting at the top. */
const MAX_FIRST_FIELD_BYTES = 64 * 1024;

export async function insertHeader(dataPath: string, field: string, tmpdir: string): Promise<void> {
  const line = `${field.replace(/[\r\n]+/g, ' ')}\n`;
  // the pid in the name lets the master remove what a killed worker left (master/tmp-sweep.ts)
  const dir = await mkdtemp(join(tmpdir, `hdr-${process.pid}-`));
  const copy = join(dir, 'data');
  try {
    await pipeline(createReadStream(dataPath), new AfterFirstField(line), createWriteStream(copy, { mode: 0o600 }));
    const fh = await open(dataPath, 'r+');
    try {
      await fh.truncate(0);
      let pos = 0;
      for await (const chunk of createReadStream(copy, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
        for (let off = 0; off < chunk.length;) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, pos);
          off += bytesWritten;
          pos += bytesWritten;
        }
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Passes bytes through, inserting `line` after the first header field (with its folded lines). */
class AfterFirstField extends Transform {
  private head: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly line: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.done) return cb(null, chunk);
    this.head = Buffer.concat([this.head, chunk]);
    const at = endOfFirstField(this.head);
    if (at >= 0 || this.head.length > MAX_FIRST_FIELD_BYTES) {
      this.flushHead(at >= 0 ? at : 0);
    }
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (!this.done) this.flushHead(this.head.length > 0 && this.head[this.head.length - 1] === 0x0a ? this.head.length : 0);
    cb();
  }
  private flushHead(at: number): void {
    this.done = true;
    this.push(this.head.subarray(0, at));
    this.push(Buffer.from(this.line, 'latin1'));
    this.push(this.head.subarray(at));
  }
}

/** Offset just after the first field's last line, or -1 if not known yet. */
function endOfFirstField(b: Buffer): number {
  let i = b.indexOf(0x0a);
  while (i >= 0) {
    if (i + 1 >= b.length) return -1; // need the next byte to know whether the field folds
    const next = b[i + 1];
    if (next !== 0x20 && next !== 0x09) return i + 1;
    i = b.indexOf(0x0a, i + 1);
  }
  return -1;
}
